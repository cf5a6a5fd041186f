package builtin

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// echoBuffers are the buffers echo copies through, shared by connections:
// a sync.Pool holds no state a test could see.
var echoBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// serveEcho sends back what the client sends until it closes its side
// (RFC 862), then closes conn, which sends the client its EOF after the
// last echoed byte.
//
// It copies through a pooled buffer, not with splice(2): Go's splice
// borrows a pipe pair per connection and keeps it until a garbage
// collection, so a burst of echo connections would leave goinetd holding
// two descriptors for each, long after the burst.
func serveEcho(conn net.Conn, _ func() time.Time) error {
	buf := echoBuffers.Get().(*[]byte)
	defer echoBuffers.Put(buf)
	// The wrappers hide ReadFrom and WriteTo, which would splice.
	_, err := io.CopyBuffer(struct{ io.Writer }{conn}, struct{ io.Reader }{conn}, *buf)
	return finish(conn, err)
}

// replyEcho answers a datagram with a copy of it (RFC 862).
func replyEcho(request []byte, _ func() time.Time) ([]byte, bool) {
	return bytes.Clone(request), true
}
