// Command lastaccess is a goinetd handler that greets a TCP peer with the time
// it last connected, and records the time of this connection.
//
// # Usage
//
//	lastaccess [-db PATH]          greet the peer and record the connection
//	lastaccess [-db PATH] -list    print every record, for operators
//
// The records file is PATH (default "lastaccess.db", relative to the working
// directory; goinetd runs shipped handlers with the config folder as working
// directory).
//
// Like any inetd handler, lastaccess gets the connection on stdin (fd 0) and
// stdout (fd 1) and its diagnostics go to stderr. The peer address is taken
// from the TCPREMOTEIP environment variable when it is set (the UCSPI
// convention), and otherwise from getpeername(2) on stdin, so the program works
// under any inetd. An IPv4-mapped IPv6 address is reported as plain IPv4 and an
// IPv6 zone is dropped: records are keyed by address. To the peer it writes
// three lines and exits:
//
//	Welcome, 192.0.2.7.
//	I last saw you at 2026-11-29T18:10:00Z.      (or: I've never seen you before.)
//	I have noted your connection at 2026-11-30T09:00:00Z.
//
// Times are RFC 3339 in UTC with second precision. The "last saw" time is the
// stored string, verbatim. The greeting is written after the record is safely
// stored and the lock released, so a slow peer never holds up other peers.
//
// With -list it prints the lines of the records file and changes no record
// (it only creates PATH.lock if missing). It needs no peer.
//
// Exit status: 0 on success; 1 when the peer address cannot be found or is
// invalid, when the records cannot be read or written, or when the greeting
// cannot be written; 2 on a command-line usage error. Every failure is
// reported on stderr, naming what failed and with what path or value. (A peer
// that has already closed the connection usually ends the process with
// SIGPIPE instead; its connection is recorded all the same.)
//
// # File format
//
// One record per line, "IP|TIME\n": IP in canonical net/netip form (lower-case
// IPv6, no zone, no IPv4-mapped IPv6), TIME in RFC 3339. For example
//
//	192.0.2.7|2026-11-29T18:10:00Z
//	2001:db8::1|2026-11-30T09:00:00Z
//
// An update keeps the lines in their order: a known address is rewritten in
// place, a new one is appended. A line that is not a well-formed record is
// reported on stderr with the file path and line number, and kept as it is; it
// is never dropped, so an operator's mistake or note survives. If the same
// address appears twice, the first line is the record and the later one is
// reported and kept. A missing records file means no records yet.
//
// # Locking
//
// Every access holds flock(2) on a separate lock file, PATH.lock (created with
// mode 0644 when missing, never removed). The lock cannot be on the records file
// itself, because an update replaces that file by rename: a process blocked on
// the old inode would wake up holding a lock on a file nobody reads any more.
// A connection holds one exclusive lock across the whole read-modify-write, so
// two concurrent connections never both read the old records and one of the
// updates is never lost. -list holds a shared lock while it reads, so it sees
// either the file before an update or after it. The clock is read under the
// exclusive lock, so the time stored for an address never goes backwards unless
// the system clock does. The lock file must not be deleted while lastaccess may
// run: processes would then lock different inodes.
//
// # Crash safety
//
// An update never writes the records file in place. Under the exclusive lock
// it writes the whole new content to a temporary file in the same folder
// (named ".BASE.tmp-PID-RANDOM", where BASE is the records file's name), fsyncs
// it, renames it over PATH and fsyncs the folder. rename(2) is atomic, so after
// a crash at any moment, SIGKILL included, PATH holds either the old records or
// the new ones, never a torn line. On any failure the temporary file is removed
// and PATH is untouched. A process killed between creating and renaming its
// temporary file leaves it behind; since only the holder of the exclusive lock
// ever creates one, the next update removes every ".BASE.tmp-" file it finds
// before writing, and reports each one on stderr.
package main
