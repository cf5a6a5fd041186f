package builtin

import (
	"io"
	"math/rand/v2"
	"net"
	"time"
)

// The chargen pattern of RFC 864: the 95 printable ASCII characters, space
// to '~', form a ring; line n holds the 72 characters starting at ring
// position n mod 95, then CR LF. Line 95 is line 0 again, so the stream is
// the same 95 lines over and over.
const (
	chargenFirst    = ' '
	chargenRing     = '~' - ' ' + 1 // 95
	chargenWidth    = 72
	chargenLine     = chargenWidth + 2          // with CR LF: 74
	chargenPeriod   = chargenRing * chargenLine // 7030 bytes, lines 0 to 94
	chargenDatagram = 512                       // the most a datagram gets
)

// chargenByte returns byte i of the chargen stream, counted from the start
// of line 0.
func chargenByte(i int) byte {
	line, col := i/chargenLine, i%chargenLine
	switch col {
	case chargenWidth:
		return '\r'
	case chargenWidth + 1:
		return '\n'
	}
	return chargenFirst + byte((line+col)%chargenRing)
}

// appendChargen appends the first n bytes of the chargen stream to dst.
func appendChargen(dst []byte, n int) []byte {
	for i := range n {
		dst = append(dst, chargenByte(i))
	}
	return dst
}

// serveChargen sends the chargen stream until a write fails, which is how
// it learns that the client closed the connection, then closes conn
// (RFC 864).
//
// What the client sends is read and thrown away, as the RFC allows, so that
// the client's writes never block on a full window. The reading goroutine
// ends when conn is closed, and serveChargen waits for it. Its error is
// not the service's: the stream goes on after the client half-closes, and
// any other read error shows up in the next write as well.
func serveChargen(conn net.Conn, _ func() time.Time) error {
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, conn) // not the service's error: see above
	}()
	// Whole periods: every write starts at line 0 again, and the 7 KiB
	// buffer is this connection's only allocation.
	period := appendChargen(make([]byte, 0, chargenPeriod), chargenPeriod)
	var err error
	for err == nil {
		_, err = conn.Write(period)
	}
	err = finish(conn, err)
	<-drained
	return err
}

// replyChargen answers any datagram with a random number of characters,
// 0 to 512, of the chargen stream from the start of line 0 (RFC 864).
func replyChargen([]byte, func() time.Time) ([]byte, bool) {
	n := rand.IntN(chargenDatagram + 1)
	return appendChargen(make([]byte, 0, n), n), true
}
