package builtin

import (
	"bytes"
	"io"
	"net"
	"time"
)

// serveEcho sends back what the client sends until it closes its side
// (RFC 862), then closes conn, which sends the client its EOF after the
// last echoed byte.
//
// Between two TCP connections, io.Copy moves the bytes with splice(2)
// inside the kernel; other connections go through a 32 KiB buffer.
func serveEcho(conn net.Conn, _ func() time.Time) error {
	_, err := io.Copy(conn, conn)
	return finish(conn, err)
}

// replyEcho answers a datagram with a copy of it (RFC 862).
func replyEcho(request []byte, _ func() time.Time) ([]byte, bool) {
	return bytes.Clone(request), true
}
