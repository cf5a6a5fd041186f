// Package builtin implements the classic inetd built-in services inside
// goinetd's own process: no handler is executed, so a built-in costs one
// goroutine per TCP connection and nothing that outlives a UDP datagram.
//
// # The services
//
//   - echo (RFC 862): a stream is sent back as it arrives until the client
//     closes its side; a datagram is answered with its own payload.
//   - discard (RFC 863): everything received is thrown away; a datagram is
//     never answered.
//   - chargen (RFC 864): the rotating pattern of the 95 printable ASCII
//     characters, 72 to a line, each line ending in CR LF. A stream gets
//     lines until the client closes the connection (what it sends is read
//     and thrown away); a datagram is answered with 0 to 512 characters of
//     the pattern, a random number of them each time.
//   - daytime (RFC 867): the date and time as one ASCII line in the RFC's
//     suggested form, "Monday, February 22, 1982 17:37:43-PST\r\n", in the
//     local time zone of the process.
//   - time (RFC 868): the seconds since 00:00 1 January 1900 GMT as a 32-bit
//     unsigned integer in network byte order.
//
// daytime and time send their answer as soon as a stream connects and then
// close it; over UDP they answer any datagram.
//
// # Streams and datagrams
//
// goinetd owns the sockets. For a stream it accepts the connection and
// calls Serve in a goroutine of its own; Serve runs the service and closes
// the connection. For a datagram it reads the request, asks RefuseSource
// whether the sender may be answered, and if so sends what Reply returns,
// within the service's reply budget.
//
// # UDP reflection and loops
//
// A UDP source address is whatever the sender wrote. A forged datagram
// "from" a victim makes a built-in send its reply to the victim
// (reflection), and chargen sends up to 19 times what it received
// (amplification). A forged datagram "from" the echo port of one server to
// the echo port of another makes the two answer each other for ever (a
// loop), and a superserver answering a forged broadcast or multicast
// source would flood a whole network (CERT advisory CA-1996-01).
//
// So echo and chargen, the built-ins worth an attacker's while (see
// Reflector), are served over UDP only with the operator's consent;
// RefuseSource refuses a source port below 1024, where the built-ins of
// other servers live, port 0, which no sender can use, the well-known
// ports above 1023 of services that answer datagrams themselves
// (ReflectorPorts), and a source address that cannot be a sender's:
// invalid, unspecified, multicast, 0.0.0.0/8 or 255.0.0.0/8. goinetd adds
// what this package cannot know: it never answers a port it serves UDP on
// itself, and bounds the replies to each source and of each service, so
// that a loop with a server on any other port dies at its first dropped
// reply.
//
// # The year 2036
//
// RFC 868 counts seconds in 32 bits: "this base will serve until the year
// 2036". The count reaches 2^32 at 2036-02-07 06:28:16 UTC, and time sends
// its low 32 bits, as every implementation does: from then on the value
// starts again from 0, and a client must know which 136-year era it is in.
package builtin
