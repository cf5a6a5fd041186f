package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

// TestTLSRelayEndsWithItsHandler performs the attack of a TLS client that
// never reads: its handler writes more than the buffers between them hold
// and is ended by its timeout, so goinetd is left with plaintext it cannot
// deliver. The relay must still end, and the connection with it, within
// a bound: otherwise each such connection keeps a goroutine and its
// descriptors after its slot (max_connections, max_per_source) has been
// freed at the handler's reaping, and one client can pile them up until
// the descriptor reserve is full and every built-in, PROXY and TLS service
// stops accepting.
func TestTLSRelayEndsWithItsHandler(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA("relay test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Sign(testcert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := leaf.WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, fmt.Sprintf(`[server]
log_format = "json"

[services.bulk]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "exec head -c 100000000 /dev/zero"]
timeout = "1s"
tls = { cert = %q, key = %q, handshake_timeout = "1s" }
`, port, cert, key))
	openFDs := func() int {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid()))
		if err != nil {
			t.Fatal(err)
		}
		return len(fds)
	}
	before := openFDs()

	raw, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadBuffer(4096)
	c := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	c.SetDeadline(time.Now().Add(ioTimeout))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: got %v; want none", err)
	}
	// The client reads nothing more: the handler fills every buffer and
	// blocks, until its timeout ends it.
	d.waitLog(func(r record) bool { return r.msg() == "timeout: terminating handler" && r.str("service") == "bulk" })
	waitFor(t, "the handler to be reaped", func() bool { return len(d.children()) == 0 })
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "bulk" })
	waitFor(t, fmt.Sprintf("goinetd's descriptors to be back to %d", before), func() bool { return openFDs() <= before })
}
