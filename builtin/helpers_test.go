package builtin

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// limit bounds every wait in these tests; nothing should come close to it.
const limit = 10 * time.Second

// fixedClock returns a clock that always says t.
func fixedClock(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

// rfc867Time is the time of RFC 867's example line, in its zone.
func rfc867Time() time.Time {
	return time.Date(1982, time.February, 22, 17, 37, 43, 0, time.FixedZone("PST", -8*3600))
}

// wantChargen returns n bytes of the chargen stream from byte offset on,
// built line by line from the printable ASCII ring, independently of
// chargenByte.
func wantChargen(offset, n int) []byte {
	var ring []byte
	for c := byte(' '); c <= '~'; c++ {
		ring = append(ring, c)
	}
	ring = append(ring, ring...) // so that a line never needs to wrap
	skip := offset % 74
	var stream []byte
	for line := offset / 74; len(stream) < skip+n; line++ {
		start := line % 95
		stream = append(stream, ring[start:start+72]...)
		stream = append(stream, "\r\n"...)
	}
	return stream[skip : skip+n]
}

// diff describes how got differs from want, briefly enough for a
// megabyte, or returns "" if they are equal.
func diff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d: got %q; want %q", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes; want %d", len(got), len(want))
	}
	return ""
}

// served is a Serve call running in its own goroutine.
type served struct {
	name string
	done chan struct{} // closed when Serve has returned
	err  error         // Serve's result, once done is closed
}

// start runs Serve(name, conn, now) in a new goroutine.
func start(name string, conn net.Conn, now func() time.Time) *served {
	s := &served{name: name, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = Serve(name, conn, now)
	}()
	return s
}

// wait returns Serve's result, failing the test if Serve has not returned
// within limit.
func (s *served) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(limit):
		t.Fatalf("Serve(%q) still running after %v; want it to have returned", s.name, limit)
		return nil
	}
}

// serveTCP connects a client to a server over loopback TCP and runs
// Serve(name) on the server's end. The client has a deadline of limit on
// every operation. Cleanup closes both ends and checks that Serve returns.
func serveTCP(t testing.TB, name string, now func() time.Time) (client *net.TCPConn, server net.Conn, s *served) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	client = c.(*net.TCPConn)
	t.Cleanup(func() { client.Close() })
	// The connection is complete in the backlog once Dial returns.
	server, err = ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return client, server, serveConn(t, name, client, server, now)
}

// servePipe is serveTCP over net.Pipe, which has no half-close and no
// kernel buffer.
func servePipe(t testing.TB, name string, now func() time.Time) (client net.Conn, s *served) {
	t.Helper()
	client, server := net.Pipe()
	return client, serveConn(t, name, client, server, now)
}

// serveConn runs Serve(name) on server, gives client a deadline of limit
// on every operation, and has Cleanup close both ends and check that Serve
// returns.
func serveConn(t testing.TB, name string, client, server net.Conn, now func() time.Time) *served {
	t.Helper()
	if err := client.SetDeadline(time.Now().Add(limit)); err != nil {
		t.Fatalf("set client deadline: %v", err)
	}
	s := start(name, server, now)
	t.Cleanup(func() {
		client.Close()
		server.Close()
		s.wait(t)
	})
	return s
}
