package main

// goinetd's relay between a TLS client and its handler's plaintext
// socket: half-close each way (close_notify becomes end of file, and end
// of file close_notify), the bytes it counts, its metrics, and TLS behind
// a PROXY protocol header.

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writeShutRead is the "write-shut-read" helper: it writes a line, shuts
// down the writing side of its socket, so that the client sees the end
// of the answer, then reads the client's data to end of file and keeps it
// in the file args[0].
func writeShutRead(args []string) int {
	if _, err := os.Stdout.WriteString("early answer\n"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := unix.Shutdown(1, unix.SHUT_WR); err != nil {
		fmt.Fprintf(os.Stderr, "shutdown(1, SHUT_WR): %v\n", err)
		return 1
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(args[0], b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// recordingConn keeps what it reads, so that a test can look at the TLS
// records the server sent.
type recordingConn struct {
	net.Conn
	mu   sync.Mutex
	read []byte
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.read = append(c.read, b[:n]...)
	c.mu.Unlock()
	return n, err
}

// lastRecordType returns the content type of the last TLS record c read
// (21 is an alert), or -1 if what it read does not end with a whole one.
func (c *recordingConn) lastRecordType() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	typ, b := -1, c.read
	for len(b) >= 5 {
		n := 5 + (int(b[3])<<8 | int(b[4]))
		if len(b) < n {
			return -1
		}
		typ, b = int(b[0]), b[n:]
	}
	if len(b) > 0 {
		return -1
	}
	return typ
}

// dialRecorded is dialTLS through a recordingConn.
func dialRecorded(t *testing.T, address string, cfg *tls.Config) (*tls.Conn, *recordingConn) {
	t.Helper()
	rec := &recordingConn{Conn: dial(t, "", address)}
	c, err := handshake(rec, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", address, err)
	}
	return c, rec
}

// checkCloseNotify fails the test unless the last record the server sent
// on a TLS 1.2 connection is an alert, which a clean end of file after it
// makes close_notify. TLS 1.3 encrypts the record type: Python's client
// (tls_clients_test.go) checks close_notify there.
func checkCloseNotify(t *testing.T, what string, version uint16, rec *recordingConn) {
	t.Helper()
	if version != tls.VersionTLS12 {
		return
	}
	if typ := rec.lastRecordType(); typ != 21 {
		t.Errorf("%s: the server's last TLS record has type %d; want 21, its close_notify alert", what, typ)
	}
}

// connectionEnded waits for the "connection ended" record of service's
// connection from the client c.
func connectionEnded(d *daemon, service string, c net.Conn) record {
	d.t.Helper()
	port := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	return d.waitLog(func(r record) bool {
		return r.msg() == "connection ended" && r.str("service") == service && r.str("peer_port") == port
	})
}

// TestTLSHalfCloseFromClient: the client's close_notify is end of file on
// the handler's stdin, and the handler, which answers only then, is heard.
// The connection's record counts the bytes each way.
func TestTLSHalfCloseFromClient(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("count", port, "/bin/sh", []string{"-c", `n=$(wc -c); echo "read $n bytes"`}, f.table()))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, v := range tlsVersions {
		c, rec := dialRecorded(t, addr(port), withVersion(f.client(), v.version))
		if _, err := c.Write(payload); err != nil {
			t.Fatalf("%s: write: %v", v.name, err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatalf("%s: CloseWrite: %v", v.name, err)
		}
		got, err := io.ReadAll(c)
		want := fmt.Sprintf("read %d bytes\n", len(payload))
		if err != nil || string(got) != want {
			t.Errorf("%s: after close_notify, got %q, %v; want %q, then end of file", v.name, got, err, want)
		}
		checkCloseNotify(t, v.name, v.version, rec)
		e := connectionEnded(d, "count", c)
		if e.str("bytes_in") != strconv.Itoa(len(payload)) || e.str("bytes_out") != strconv.Itoa(len(want)) {
			t.Errorf("%s: connection ended with bytes_in %q, bytes_out %q; want %d, %d (record %v)",
				v.name, e.str("bytes_in"), e.str("bytes_out"), len(payload), len(want), e)
		}
	}
}

// TestTLSHalfCloseFromHandler: a handler that shuts down its stdout is
// end of file for the client (close_notify), and still reads what the
// client sends after it.
func TestTLSHalfCloseFromHandler(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	kept := filepath.Join(t.TempDir(), "read")
	d := startDaemon(t, jsonLog+helperService(t, "shut", port, "write-shut-read",
		fmt.Sprintf("args = [%q]", kept), f.table()))
	for _, v := range tlsVersions {
		c, rec := dialRecorded(t, addr(port), withVersion(f.client(), v.version))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "early answer\n" {
			t.Errorf("%s: got %q, %v; want %q, then end of file", v.name, got, err, "early answer\n")
		}
		checkCloseNotify(t, v.name, v.version, rec)
		late := "sent after the handler's end of file"
		if _, err := io.WriteString(c, late); err != nil {
			t.Errorf("%s: write after the handler's end of file: %v", v.name, err)
		}
		c.CloseWrite()
		connectionEnded(d, "shut", c)
		if b, err := os.ReadFile(kept); err != nil || string(b) != late {
			t.Errorf("%s: the handler read %q, %v after shutting down its stdout; want %q", v.name, b, err, late)
		}
		os.Remove(kept)
	}
}

func TestTLSMetrics(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	server, url := tlsMetricsLog(t)
	d := startDaemon(t, server+programService("cat", port, "/bin/cat", nil, f.table(`handshake_timeout = "1s"`)))
	for _, direction := range []string{"in", "out"} {
		series := fmt.Sprintf(`goinetd_tls_bytes_total{direction=%q,service="cat"}`, direction)
		if got := scrape(t, url, series); got != 0 {
			t.Errorf("at start: got %s = %v; want 0", series, got)
		}
	}
	sent := 0
	for i, v := range tlsVersions {
		c := dialTLS(t, addr(port), withVersion(f.client(), v.version))
		msg := strings.Repeat("x", 1000*(i+1))
		io.WriteString(c, msg)
		c.CloseWrite()
		if b, err := io.ReadAll(c); string(b) != msg {
			t.Fatalf("%s: cat over TLS: got %d bytes, %v; want %d", v.name, len(b), err, len(msg))
		}
		sent += len(msg)
		e := connectionEnded(d, "cat", c)
		if e.str("bytes_in") != strconv.Itoa(len(msg)) || e.str("bytes_out") != strconv.Itoa(len(msg)) {
			t.Errorf("%s: connection ended with bytes_in %q, bytes_out %q; want %d each", v.name, e.str("bytes_in"), e.str("bytes_out"), len(msg))
		}
	}
	plain := dial(t, "", addr(port))
	io.WriteString(plain, "plaintext\r\n\r\n")
	endedByServer(t, "a plaintext client", plain)
	silent := dial(t, "", addr(port))
	endedByServer(t, "a silent client", silent)

	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="ok",service="cat"}`, 2)
	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="failed",service="cat"}`, 1)
	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="timeout",service="cat"}`, 1)
	waitMetric(t, url, `goinetd_tls_bytes_total{direction="in",service="cat"}`, float64(sent))
	waitMetric(t, url, `goinetd_tls_bytes_total{direction="out",service="cat"}`, float64(sent))
	// The histogram times the handshakes that succeeded, and may time
	// the others too.
	count := scrape(t, url, `goinetd_tls_handshake_seconds_count{service="cat"}`)
	sum := scrape(t, url, `goinetd_tls_handshake_seconds_sum{service="cat"}`)
	if count < 2 || count > 4 || sum <= 0 {
		t.Errorf("goinetd_tls_handshake_seconds: count %v, sum %v; want 2 to 4 handshakes timed, sum > 0", count, sum)
	}
	if inf := scrape(t, url, `goinetd_tls_handshake_seconds_bucket{service="cat",le="+Inf"}`); inf != count {
		t.Errorf("goinetd_tls_handshake_seconds: +Inf bucket %v, count %v; want them equal", inf, count)
	}
}

// prefixConn sends prefix in the same write as the first bytes written
// to it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Write(b []byte) (int, error) {
	if c.prefix == nil {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(append(append([]byte(nil), c.prefix...), b...))
	n -= len(c.prefix)
	c.prefix = nil
	return max(n, 0), err
}

// TestTLSBehindProxyProtocol: the PROXY header comes first, in the clear,
// then the TLS handshake, as HAProxy sends them; the handler sees the
// header's client.
func TestTLSBehindProxyProtocol(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "behind", port, "report",
		`proxy_protocol = true`, `proxy_from = ["127.0.0.1"]`, f.table()))
	for _, tc := range []struct {
		header []byte
		client string
	}{
		{[]byte("PROXY TCP4 198.51.100.7 10.0.0.1 40000 443\r\n"), "198.51.100.7"},
		{proxyV2("198.51.100.8:40001"), "198.51.100.8"},
	} {
		for _, onePacket := range []bool{false, true} {
			var raw net.Conn = dial(t, "", addr(port))
			if onePacket {
				// The ClientHello in the header's packet: goinetd reads
				// the header and not a byte more.
				raw = &prefixConn{Conn: raw, prefix: tc.header}
			} else if _, err := raw.Write(tc.header); err != nil {
				t.Fatal(err)
			}
			c, err := handshake(raw, f.client())
			if err != nil {
				t.Fatalf("TLS after the header %q (one packet: %v): %v", tc.header[:12], onePacket, err)
			}
			var r report
			if err := json.NewDecoder(c).Decode(&r); err != nil {
				t.Fatalf("decode the report: %v", err)
			}
			if got := envValue(r, "TCPREMOTEIP"); got != tc.client {
				t.Errorf("header %q: TCPREMOTEIP %q; want %q", tc.header[:12], got, tc.client)
			}
			if got := envValue(r, "SSL_PROTOCOL"); got != "TLSv1.3" {
				t.Errorf("header %q: SSL_PROTOCOL %q; want TLSv1.3", tc.header[:12], got)
			}
		}
	}
	t.Run("haproxy", func(t *testing.T) {
		front := startHAProxy(t, port, "send-proxy-v2")
		c, err := tryTLS("127.0.0.2", front, f.client())
		if err != nil {
			t.Fatalf("TLS through HAProxy: %v", err)
		}
		defer c.Close()
		var r report
		if err := json.NewDecoder(c).Decode(&r); err != nil {
			t.Fatalf("decode the report: %v", err)
		}
		if got := envValue(r, "TCPREMOTEIP"); got != "127.0.0.2" {
			t.Errorf("through HAProxy: TCPREMOTEIP %q; want 127.0.0.2, the real client", got)
		}
	})
}

// TestTLSTimeout: the service's timeout ends a TLS connection like any
// other, handler and client both.
func TestTLSTimeout(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("slowcat", port, "/bin/cat", nil, f.table(), `timeout = "1s"`))
	c := dialTLS(t, addr(port), f.client())
	ping(t, c)
	e := connectionEnded(d, "slowcat", c)
	if e.str("timeout") != "true" {
		t.Errorf("connection ended %v; want timeout=true", e)
	}
	ended := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("client after the timeout: %v; want end of file", err)
	}
	if took := time.Since(ended); took > 5*time.Second {
		t.Errorf("the client's connection ended %v after the handler's; want at once", took)
	}
}

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
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.bulk]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "exec head -c 100000000 /dev/zero"]
timeout = "1s"
%s
`, port, f.table(`handshake_timeout = "1s"`)))
	before := fdCount(t, d.pid())

	raw, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadBuffer(4096)
	c := tls.Client(raw, f.client())
	c.SetDeadline(time.Now().Add(ioTimeout))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: got %v; want none", err)
	}
	// The client reads nothing more: the handler fills every buffer and
	// blocks, until its timeout ends it.
	d.waitLog(func(r record) bool { return r.msg() == "timeout: terminating handler" && r.str("service") == "bulk" })
	waitFor(t, "the handler to be reaped", func() bool { return len(d.children()) == 0 })
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "bulk" })
	waitFor(t, fmt.Sprintf("goinetd's descriptors to be back to %d", before), func() bool { return fdCount(t, d.pid()) <= before })
}
