package builtin

import (
	"encoding/binary"
	"net"
	"time"
)

// unixEpochSince1900 is the RFC 868 time of 00:00 1 January 1970 GMT:
// 70 years of 365 days and 17 leap days, in seconds.
const unixEpochSince1900 = (70*365 + 17) * 24 * 60 * 60 // 2,208,988,800

// timeBytes returns t as time sends it: the seconds since 00:00 1 January
// 1900 GMT, truncated to 32 bits, in network byte order. The count wraps
// to 0 at 2036-02-07 06:28:16 UTC; a time before 1900 comes out as the
// two's complement of a negative count, as RFC 868's 17 Nov 1858 example
// does.
func timeBytes(t time.Time) []byte {
	seconds := uint32(t.Unix() + unixEpochSince1900) // keeps the low 32 bits
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), seconds)
}

// serveTime sends the current time and closes conn (RFC 868). It reads
// nothing, so a client that sent data may see the close as a reset after
// the four bytes.
func serveTime(conn net.Conn, now func() time.Time) error {
	_, err := conn.Write(timeBytes(now()))
	return finish(conn, err)
}

// replyTime answers any datagram with the time (RFC 868).
func replyTime(_ []byte, now func() time.Time) ([]byte, bool) {
	return timeBytes(now()), true
}
