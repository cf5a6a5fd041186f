package main

// Forwarding: a forward service joins each admitted client to a new
// connection to its target, a real server in the test, on loopback.

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// target is a server a forwarder connects to: it runs serve on each
// connection it accepts, in a goroutine, and counts them.
type target struct {
	ln       net.Listener
	accepted atomic.Int64
}

// startTarget listens on network and address and serves each connection
// with serve, then closes it. The test's cleanup closes the listener and
// every connection still served, and waits for the goroutines.
func startTarget(t *testing.T, network, address string, serve func(net.Conn)) *target {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("target: listen %s %s: %v", network, address, err)
	}
	tg := &target{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := make(map[net.Conn]struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.accepted.Add(1)
			c.SetDeadline(time.Now().Add(2 * ioTimeout))
			mu.Lock()
			open[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return tg
}

// echo serves a connection by sending back what it reads, then closing
// for writing once the client has.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(interface{ CloseWrite() error }).CloseWrite()
}

func forwardService(name string, port int, to string, extra ...string) string {
	return fmt.Sprintf(`
[services.%s]
address = "127.0.0.1"
port = %d
forward = %q
%s
`, name, port, to, strings.Join(extra, "\n"))
}

// An 8 MiB transfer each way arrives whole, and the connection record
// counts its bytes.
func TestForwardMovesBytesBothWays(t *testing.T) {
	tg := startTarget(t, "tcp", "127.0.0.1:0", echo)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+forwardService("relay", port, tg.ln.Addr().String(), `banner = "relayed\r\n"`))

	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	c := dial(t, "", addr(port))
	c.SetDeadline(time.Now().Add(3 * ioTimeout))
	readBanner(t, c, "relayed\r\n")
	go func() {
		c.Write(data)
		c.CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil || n != size {
		t.Fatalf("echo through the forwarder: got %d bytes, %v; want %d", n, err, size)
	}
	if got, want := h.Sum(nil), sha256.Sum256(data); string(got) != string(want[:]) {
		t.Fatalf("echo through the forwarder: got sha256 %x; want %x", got, want)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "relay" })
	want := strconv.Itoa(size)
	if r.str("bytes_to_target") != want || r.str("bytes_to_client") != want || r.str("forward") != tg.ln.Addr().String() {
		t.Errorf("connection record: got forward %q, bytes_to_target %q, bytes_to_client %q; want %q, %s, %s",
			r.str("forward"), r.str("bytes_to_target"), r.str("bytes_to_client"), tg.ln.Addr(), want, want)
	}
	if r.str("err") != "" || r.str("timeout") != "" {
		t.Errorf("connection record: got err %q, timeout %q; want a clean end", r.str("err"), r.str("timeout"))
	}
}

// A half-close is passed on both ways: the client's end of file reaches
// the target, which can still answer; the target's reaches the client,
// which can still send.
func TestForwardPassesHalfClose(t *testing.T) {
	fromClient := make(chan string, 1)
	tg := startTarget(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		b, _ := io.ReadAll(c) // to the client's end of file
		if string(b) == "ping" {
			io.WriteString(c, "pong after your EOF")
			c.(*net.TCPConn).CloseWrite()
			return
		}
		fromClient <- string(b)
	})
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+forwardService("relay", port, tg.ln.Addr().String()))

	c := dial(t, "", addr(port))
	io.WriteString(c, "ping")
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "pong after your EOF" {
		t.Errorf("client half-closed first: got %q, %v; want the target's answer, then EOF", b, err)
	}

	// The target closes for writing first.
	tg2 := startTarget(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		io.WriteString(c, "bye")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		fromClient <- string(b)
	})
	port2 := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+forwardService("relay2", port2, tg2.ln.Addr().String()))
	c2 := dial(t, "", addr(port2))
	if b, err := io.ReadAll(c2); err != nil || string(b) != "bye" {
		t.Fatalf("target half-closed first: got %q, %v; want its bytes, then EOF", b, err)
	}
	io.WriteString(c2, "still here")
	c2.CloseWrite()
	select {
	case got := <-fromClient:
		if got != "still here" {
			t.Errorf("target after its half-close: got %q; want %q", got, "still here")
		}
	case <-time.After(ioTimeout):
		t.Fatalf("target after its half-close: got nothing within %v; want %q", ioTimeout, "still here")
	}
}

// A target that refuses the connection closes the client, with
// banner_refused, and the refusal is logged with reason forward.
func TestForwardTargetRefusing(t *testing.T) {
	dead := freePort(t, "127.0.0.1") // nothing listens there
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+forwardService("relay", port, addr(dead), `banner = "hello\r\n"`, `banner_refused = "sorry\r\n"`))
	c := dial(t, "", addr(port))
	if b, err := io.ReadAll(c); string(b) != "sorry\r\n" {
		t.Errorf("target refusing: got %q, %v; want banner_refused, then the connection closed", b, err)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("service") == "relay" })
	if r.str("reason") != "forward" || !strings.Contains(r.str("err"), "refused") {
		t.Errorf("refusal record: got reason %q, err %q; want forward, connection refused", r.str("reason"), r.str("err"))
	}
	if rs := d.logs.records(func(r record) bool { return r.msg() == "connection ended" }); len(rs) != 0 {
		t.Errorf("got a connection record for a refused connection: %v; want none", rs[0])
	}
}

// timeout ends a forwarded connection, both sides, however busy.
func TestForwardTimeout(t *testing.T) {
	targetEnd := make(chan error, 1)
	tg := startTarget(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		_, err := io.ReadAll(c) // the target never answers
		targetEnd <- err
	})
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+forwardService("relay", port, tg.ln.Addr().String(), `timeout = "1s"`))
	c := dial(t, "", addr(port))
	started := time.Now()
	io.WriteString(c, "anyone?")
	expectClosed(t, c)
	if took := time.Since(started); took < 900*time.Millisecond {
		t.Errorf("forwarded connection closed after %v; want about timeout, 1s", took)
	}
	select {
	case err := <-targetEnd:
		if err != nil {
			t.Errorf("target at the timeout: got %v; want its connection closed", err)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("target at the timeout: its connection still open after %v; want it closed", ioTimeout)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" })
	if r.str("timeout") != "true" || r.str("bytes_to_target") != "7" {
		t.Errorf("connection record: got timeout %q, bytes_to_target %q; want true, 7", r.str("timeout"), r.str("bytes_to_target"))
	}
}

// An IPv6 target, and a unix socket target, from tcp and from unix.
func TestForwardIPv6AndUnixTargets(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("needs IPv6 on loopback: %v", err)
	} else {
		ln.Close()
	}
	dir := t.TempDir()
	v6 := startTarget(t, "tcp", "[::1]:0", echo)
	unixTarget := startTarget(t, "unix", filepath.Join(dir, "target.sock"), echo)
	v4 := startTarget(t, "tcp", "127.0.0.1:0", echo)
	toV6, toUnix := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	front := filepath.Join(dir, "front.sock")
	startDaemon(t, jsonLog+forwardService("v6", toV6, v6.ln.Addr().String())+
		forwardService("unix", toUnix, unixTarget.ln.Addr().String())+fmt.Sprintf(`
[services.from-unix]
protocol = "unix"
path = %q
forward = %q
`, front, v4.ln.Addr().String()))
	for _, c := range []struct{ name, addr string }{{"to ::1", addr(toV6)}, {"to a unix socket", addr(toUnix)}} {
		if got := exchange(t, c.addr, "hello "+c.name); got != "hello "+c.name {
			t.Errorf("%s: got %q; want the echo", c.name, got)
		}
	}
	u, err := net.DialTimeout("unix", front, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", front, err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(u, "from unix")
	u.(*net.UnixConn).CloseWrite()
	if b, err := io.ReadAll(u); err != nil || string(b) != "from unix" {
		t.Errorf("from a unix service: got %q, %v; want the echo", b, err)
	}
}

// A client that admission refuses never reaches the target: the forwarder
// connects only after admitting it.
func TestForwardRefusesBeforeConnecting(t *testing.T) {
	tg := startTarget(t, "tcp", "127.0.0.1:0", echo)
	guarded, open := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		forwardService("guarded", guarded, tg.ln.Addr().String(), `only_from = ["192.0.2.0/24"]`)+
		forwardService("open", open, tg.ln.Addr().String()))
	expectClosed(t, dial(t, "", addr(guarded)))
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" })
	if r.str("reason") != "address" {
		t.Errorf("refusal: got reason %q; want address", r.str("reason"))
	}
	// The target accepts in order: once it has the admitted client's
	// connection, it would have had the refused one's before.
	if got := exchange(t, addr(open), "x"); got != "x" {
		t.Fatalf("admitted client: got %q; want the echo", got)
	}
	if n := tg.accepted.Load(); n != 1 {
		t.Errorf("target accepted %d connections; want 1, the admitted client's only", n)
	}
}

// A forwarded connection holds six of goinetd's descriptors (two sockets,
// a splice pipe each way), and counts six times in the descriptor
// reserve: 140 idle clients of a forwarder whose
// limits are lifted, with RLIMIT_NOFILE 150, leave other services serving
// and reload working.
func TestForwardConnectionsLeaveADescriptorReserve(t *testing.T) {
	const nofile, attack = 150, 140
	tg := startTarget(t, "tcp", "127.0.0.1:0", func(c net.Conn) { io.ReadAll(c) })
	relayPort, echoPort, laterPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	base := jsonLog + forwardService("relay", relayPort, tg.ln.Addr().String(), "max_connections = 0", "max_per_source = 0") +
		echoService("echo", "127.0.0.1", echoPort)
	d := startDaemon(t, base, withNofile(t, nofile, nofile))
	idle := make([]net.Conn, 0, attack)
	for range attack {
		idle = append(idle, dial(t, "127.0.0.2", addr(relayPort)))
	}
	// goinetd takes a twelfth of them: six descriptors each, half the limit.
	waitFor(t, "goinetd to accept what it will of the idle connections", func() bool {
		return acceptQueue(t, relayPort) <= attack-nofile/2/6
	})
	if n := fdCount(t, d.pid()); n > nofile-20 {
		t.Fatalf("goinetd holds %d descriptors of %d; want a reserve of at least 20", n, nofile)
	}
	if rs := d.logs.records(func(r record) bool { return strings.Contains(r.str("err"), "too many open files") }); len(rs) > 0 {
		t.Fatalf("goinetd ran out of descriptors: got %v; want the forwarder waiting at its share", rs[0])
	}
	d.waitLog(func(r record) bool {
		return r.msg() == "held connections at their share of the descriptor limit; waiting"
	})
	if n := fdCount(t, d.pid()); n > nofile-20 {
		t.Errorf("goinetd holds %d descriptors of %d; want a reserve of at least 20", n, nofile)
	}
	if got := exchange(t, addr(echoPort), "still here"); got != "still here" {
		t.Errorf("another service while the forwarder is at its cap: got %q; want the echo", got)
	}
	if err := os.WriteFile(d.config, []byte(base+echoService("later", "127.0.0.1", laterPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(func(r record) bool { return r.msg() == "reloaded" && strings.Contains(r.str("added"), "later") })
	if got := exchange(t, addr(laterPort), "added"); got != "added" {
		t.Errorf("a service added by a reload at the cap: got %q; want the echo", got)
	}
	for _, c := range idle {
		c.Close()
	}
}

// Behind a balancer, the PROXY header is read first and not forwarded;
// the client it names is the peer that only_from judges and the record
// names, and the bytes sent with the header reach the target.
func TestForwardBehindProxyProtocol(t *testing.T) {
	tg := startTarget(t, "tcp", "127.0.0.1:0", echo)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+forwardService("relay", port, tg.ln.Addr().String(),
		`proxy_protocol = true`, `proxy_from = ["127.0.0.1/32"]`, `only_from = ["203.0.113.0/24"]`))

	c := dial(t, "", addr(port))
	c.Write([]byte("PROXY TCP4 203.0.113.5 10.0.0.1 5 80\r\nsent with the header"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "sent with the header" {
		t.Errorf("through the balancer: got %q, %v; want the bytes after the header, echoed", b, err)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" })
	if r.str("peer_ip") != "203.0.113.5" {
		t.Errorf("connection record: got peer_ip %q; want the client the header names, 203.0.113.5", r.str("peer_ip"))
	}

	refused := dial(t, "", addr(port))
	refused.Write([]byte("PROXY TCP4 198.51.100.7 10.0.0.1 5 80\r\nhi"))
	expectClosed(t, refused)
	if r := d.waitLog(func(r record) bool { return r.msg() == "refused" }); r.str("reason") != "address" {
		t.Errorf("a client outside only_from behind the balancer: got reason %q; want address", r.str("reason"))
	}
	if n := tg.accepted.Load(); n != 1 {
		t.Errorf("target accepted %d connections; want 1, the admitted client's only", n)
	}
}
