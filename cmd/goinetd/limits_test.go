package main

// The default limits and the descriptor reserve, attacked with real idle
// connections: one client holding hundreds of connections, a built-in
// service that would take every descriptor goinetd has, and a built-in
// connection left idle.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
)

// One client holding 300 idle connections to a service with no limit in
// its config gets max_per_source handlers, not 300, and the service still
// serves another source.
func TestDefaultLimitsBoundOneClient(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "plain", port, "report-hold"))
	const attack = 300
	for i := range attack {
		if i < config.DefaultMaxPerSource {
			holdReport(t, "127.0.0.2", addr(port))
			continue
		}
		c := dial(t, "127.0.0.2", addr(port))
		b, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) || len(b) > 0 {
			t.Fatalf("connection %d of one source, past the default max_per_source (%d): got %q, %v; want it closed at once",
				i+1, config.DefaultMaxPerSource, b, err)
		}
	}
	if n := len(d.children()); n != config.DefaultMaxPerSource {
		t.Errorf("one client holding %d connections: got %d handlers; want %d", attack, n, config.DefaultMaxPerSource)
	}
	if _, r := holdReport(t, "127.0.0.3", addr(port)); envValue(r, "TCPCONCURRENCY") != "1" {
		t.Errorf("another source meanwhile: got TCPCONCURRENCY %q; want 1", envValue(r, "TCPCONCURRENCY"))
	}
}

// A built-in service whose limits are lifted cannot take goinetd's
// descriptors: with RLIMIT_NOFILE 150, 140 idle connections to it leave
// every other service serving and reload working, and the built-in serves
// the clients that waited once the idle ones leave.
func TestBuiltinConnectionsLeaveADescriptorReserve(t *testing.T) {
	const nofile, attack = 150, 140
	builtinPort, echoPort, laterPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	builtin := fmt.Sprintf(`
[services.builtin-echo]
address = "127.0.0.1"
port = %d
builtin = "echo"
max_connections = 0
max_per_source = 0
`, builtinPort)
	base := jsonLog + builtin + echoService("echo", "127.0.0.1", echoPort)
	d := startDaemon(t, base, withNofile(t, nofile, nofile))

	idle := make([]net.Conn, 0, attack)
	for range attack {
		idle = append(idle, dial(t, "127.0.0.2", addr(builtinPort)))
	}
	// goinetd takes at most half of them; the rest wait in the backlog.
	waitFor(t, "goinetd to accept what it will of the idle connections", func() bool {
		return acceptQueue(t, builtinPort) <= attack-nofile/2
	})
	if got := exchange(t, addr(echoPort), "still here"); got != "still here" {
		t.Errorf("another service while the built-in is at its cap: got %q; want the echo", got)
	}
	r := d.waitLog(func(r record) bool {
		return r.msg() == "held connections at their share of the descriptor limit; waiting"
	})
	if r.str("limit") != fmt.Sprint(nofile/2) {
		t.Errorf("held connections' cap with RLIMIT_NOFILE %d: got %s; want %d", nofile, r.str("limit"), nofile/2)
	}
	if n := fdCount(t, d.pid()); n > nofile-20 {
		t.Errorf("goinetd holds %d descriptors of %d; want a reserve of at least 20", n, nofile)
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
	if got := exchange(t, addr(builtinPort), "served"); got != "served" {
		t.Errorf("the built-in once the idle clients left: got %q; want the echo", got)
	}
}

// idle_timeout closes a built-in's connection on which nothing moves, and
// only that: chargen to a client that reads outlives it.
func TestBuiltinIdleTimeout(t *testing.T) {
	echoPort, chargenPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[defaults]
address = "127.0.0.1"
idle_timeout = "1s"

[services.echo]
port = %d
builtin = "echo"

[services.chargen]
port = %d
builtin = "chargen"
`, echoPort, chargenPort))

	c := dial(t, "", addr(echoPort))
	io.WriteString(c, "x")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("echo: %v", err)
	}
	started := time.Now()
	expectClosed(t, c)
	if idle := time.Since(started); idle < 900*time.Millisecond {
		t.Errorf("idle echo connection closed after %v; want about idle_timeout, 1s", idle)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "echo" })
	if r.str("idle_timeout") != "true" {
		t.Errorf("record of the idle connection %v: want idle_timeout=true", r)
	}

	// A client that keeps reading for 2.5 idle timeouts is not idle.
	c = dial(t, "", addr(chargenPort))
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		if _, err := c.Read(make([]byte, 64<<10)); err != nil {
			t.Fatalf("chargen, read by its client, after %v: %v; want it still streaming", time.Since(end.Add(-2500*time.Millisecond)), err)
		}
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "chargen" })); n != 0 {
		t.Errorf("chargen read by its client ended within 2.5 s with idle_timeout 1s")
	}
	// Once it stops reading, its connection is idle: goinetd's writes wait.
	r = d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "chargen" })
	if r.str("idle_timeout") != "true" {
		t.Errorf("record of chargen to a client that stopped reading %v: want idle_timeout=true", r)
	}
}
