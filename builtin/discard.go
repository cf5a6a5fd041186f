package builtin

import (
	"io"
	"net"
	"time"
)

// serveDiscard reads and throws away what the client sends until it closes
// its side (RFC 863), then closes conn.
func serveDiscard(conn net.Conn, _ func() time.Time) error {
	_, err := io.Copy(io.Discard, conn)
	return finish(conn, err)
}

// replyDiscard never answers (RFC 863).
func replyDiscard([]byte, func() time.Time) ([]byte, bool) {
	return nil, false
}
