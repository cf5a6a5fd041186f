package main

// Operating goinetd: reload on SIGHUP as a transaction, graceful stop,
// sd_notify, and socket activation of goinetd itself.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// writeConfig replaces d's config file with text.
func (d *daemon) writeConfig(text string) {
	d.t.Helper()
	if err := os.WriteFile(d.config, []byte(text), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// reload sends SIGHUP and waits for the n-th reload record (reloaded or
// failed), which it returns.
func (d *daemon) reload(n int) record {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
	rs := d.waitLogs(n, func(r record) bool {
		return r.msg() == "reloaded" || strings.HasPrefix(r.msg(), "reload failed")
	})
	return rs[n-1]
}

func list(r record, key string) []string {
	var out []string
	if v, ok := r[key].([]any); ok {
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func TestReloadUnderLoadRefusesNothing(t *testing.T) {
	const reloads = 50
	kept, onlyA, onlyB := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	// Both configs serve "kept" on one port with different settings, and
	// one service each of their own.
	configA := jsonLog + echoService("kept", "127.0.0.1", kept) + echoService("a", "127.0.0.1", onlyA)
	configB := jsonLog + fmt.Sprintf("[services.kept]\naddress = \"127.0.0.1\"\nport = %d\nprogram = \"/bin/sh\"\n"+
		"args = [\"-c\", \"printf B; exec cat\"]\n", kept) + echoService("b", "127.0.0.1", onlyB)
	d := startDaemon(t, configA)

	var attempts, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				attempts.Add(1)
				c, err := net.DialTimeout("tcp", addr(kept), ioTimeout)
				if err == nil {
					c.SetDeadline(time.Now().Add(ioTimeout))
					c.(*net.TCPConn).CloseWrite()
					_, err = io.ReadAll(c)
					c.Close()
				}
				if err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	for i := 1; i <= reloads; i++ {
		next := configA
		if i%2 == 1 {
			next = configB
		}
		d.writeConfig(next)
		r := d.reload(i)
		if r.msg() != "reloaded" {
			t.Fatalf("reload %d: %v", i, r)
		}
		// The new settings apply to new connections at once.
		want := "x"
		if next == configB {
			want = "Bx"
		}
		if got := exchange(t, addr(kept), "x"); got != want {
			t.Fatalf("after reload %d: got %q; want %q", i, got, want)
		}
		// Let the clients connect a few times under each config.
		before := attempts.Load()
		waitFor(t, "clients to connect under the new config", func() bool { return attempts.Load() >= before+8 })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d connections across %d reloads, %d failed", attempts.Load(), reloads, failures.Load())
	if failures.Load() > 0 {
		t.Errorf("%d of %d connections failed across reloads (first: %v); want none", failures.Load(), attempts.Load(), firstFailure.Load())
	}

	// 50 reloads end on configA: its settings and services are the ones served.
	if got := exchange(t, addr(kept), "settled"); got != "settled" {
		t.Errorf("kept service after the last reload: got %q; want configA's echo", got)
	}
	if got := exchange(t, addr(onlyA), "a"); got != "a" {
		t.Errorf("service a: got %q", got)
	}
	if c, err := net.DialTimeout("tcp", addr(onlyB), ioTimeout); err == nil {
		c.Close()
		t.Errorf("service b, removed by the last reload, still accepts")
	}
	last := d.waitLogs(reloads, func(r record) bool { return r.msg() == "reloaded" })[reloads-1]
	// "kept" keeps its socket, but its program changed.
	if !slices.Equal(list(last, "added"), []string{"a"}) || !slices.Equal(list(last, "removed"), []string{"b"}) ||
		!slices.Equal(list(last, "changed"), []string{"kept"}) || last["unchanged"] != 0.0 {
		t.Errorf("last reload record %v: want a added, b removed, kept changed, 0 unchanged", last)
	}
}

// TestReloadSaysWhatChanged checks that a reload names each service whose
// settings changed (its args here) and counts those that did not.
func TestReloadSaysWhatChanged(t *testing.T) {
	p1, p2, p3 := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	same := echoService("same", "127.0.0.1", p1) + echoService("also", "127.0.0.1", p2)
	d := startDaemon(t, jsonLog+same+programService("cat", p3, "/bin/cat", []string{"-u"}))
	d.writeConfig(jsonLog + same + programService("cat", p3, "/bin/cat", nil))
	r := d.reload(1)
	if r.msg() != "reloaded" || !slices.Equal(list(r, "changed"), []string{"cat"}) || r["unchanged"] != 2.0 ||
		len(list(r, "added"))+len(list(r, "removed"))+len(list(r, "rebound"))+len(list(r, "failed")) != 0 {
		t.Errorf("got reload record %v; want changed [cat], 2 unchanged, nothing else", r)
	}
}

// TestReloadNamesWhatNeedsARestart checks that a [server] key a reload
// cannot apply is named in a warning, not silently ignored.
func TestReloadNamesWhatNeedsARestart(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	d.writeConfig("[server]\nlog_format = \"text\"\n" + echoService("echo", "127.0.0.1", port))
	d.reload(1)
	w := d.waitLogs(1, func(r record) bool { return r.msg() == "reload: a setting needs a restart; keeping the running one" })[0]
	if w["key"] != "server.log_format" || w["running"] != "json" || w["configured"] != "text" {
		t.Errorf("got %v; want key server.log_format, running json, configured text", w)
	}
}

func TestReloadWithABadConfigKeepsServing(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	good := jsonLog + echoService("echo", "127.0.0.1", port)
	d := startDaemon(t, good)
	d.writeConfig(good + "\n[services.bad]\nport = 0\nprogram = \"/nonexistent\"\nbogus = 1\n")
	r := d.reload(1)
	if !strings.HasPrefix(r.msg(), "reload failed") {
		t.Fatalf("reload of a bad config: %v", r)
	}
	problems := d.logs.records(func(r record) bool { return r.msg() == "reload: config problem" })
	if len(problems) != 3 {
		t.Errorf("logged %d config problems; want all 3: %v", len(problems), problems)
	}
	if got := exchange(t, addr(port), "still"); got != "still" {
		t.Errorf("after a failed reload: got %q; want the old config serving", got)
	}
}

func TestReloadRemovingAServiceLeavesItsChildren(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("going", "127.0.0.1", port))
	held := dial(t, "", addr(port))
	io.WriteString(held, "1")
	one := make([]byte, 1)
	io.ReadFull(held, one)
	d.writeConfig(jsonLog)
	if r := d.reload(1); !slices.Equal(list(r, "removed"), []string{"going"}) {
		t.Fatalf("reload record %v: want going removed", r)
	}
	if c, err := net.DialTimeout("tcp", addr(port), ioTimeout); err == nil {
		c.Close()
		t.Errorf("removed service still accepts")
	}
	io.WriteString(held, "2")
	if _, err := io.ReadFull(held, one); err != nil || string(one) != "2" {
		t.Errorf("removed service's child: got %q, %v; want it still serving", one, err)
	}
}

func TestReloadBindFailureLeavesTheRestApplied(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	old, fresh := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("old", "127.0.0.1", old))
	d.writeConfig(jsonLog + echoService("old", "127.0.0.1", old) + echoService("busy", "127.0.0.1", busy) +
		echoService("fresh", "127.0.0.1", fresh))
	r := d.reload(1)
	if !slices.Equal(list(r, "failed"), []string{"busy"}) || !slices.Equal(list(r, "added"), []string{"fresh"}) {
		t.Errorf("reload record %v: want busy failed and fresh added", r)
	}
	e := d.waitLog(func(r record) bool { return r.msg() == "cannot serve service" })
	if e.str("service") != "busy" || !strings.Contains(e.str("err"), "address already in use") {
		t.Errorf("failure record %v: want service busy, address in use", e)
	}
	for _, p := range []int{old, fresh} {
		if got := exchange(t, addr(p), "ok"); got != "ok" {
			t.Errorf("port %d after a partly failed reload: got %q", p, got)
		}
	}
}

func TestReloadChangingTheLoopRebinds(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("svc", "127.0.0.1", port))
	d.writeConfig(jsonLog + fmt.Sprintf("[services.svc]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"echo\"\n", port))
	if r := d.reload(1); !slices.Equal(list(r, "rebound"), []string{"svc"}) {
		t.Errorf("reload record %v: want svc rebound", r)
	}
	if got := exchange(t, addr(port), "builtin"); got != "builtin" {
		t.Errorf("after rebinding as a builtin: got %q", got)
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("builtin") == "echo" })
}

func TestStopWaitsForHandlersWithinGrace(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, "[server]\nlog_format = \"json\"\nshutdown_grace = \"1m\"\n"+echoService("echo", "127.0.0.1", port))
	held := dial(t, "", addr(port))
	io.WriteString(held, "x")
	io.ReadFull(held, make([]byte, 1))
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog(func(r record) bool { return r.msg() == "stopped accepting; waiting for connections to end" })
	if c, err := net.DialTimeout("tcp", addr(port), ioTimeout); err == nil {
		c.Close()
		t.Errorf("goinetd still accepts while it drains")
	}
	io.WriteString(held, "y")
	if b := make([]byte, 1); func() error { _, err := io.ReadFull(held, b); return err }() != nil {
		t.Errorf("held connection stopped working while goinetd drains")
	}
	held.Close()
	if code := d.wait(); code != 0 {
		t.Errorf("exit status when every handler finished in time: got %d; want 0", code)
	}
	d.waitLog(func(r record) bool { return r.msg() == "every connection ended" })
	if last := d.lastRecord(); last.msg() != "stopped" || last["ended"] != 1.0 || last["signalled"] != 0.0 {
		t.Errorf("got last record %v; want stopped with 1 ended, 0 signalled", last)
	}
}

// TestStopRightAfterStart stops goinetd the moment it serves, while its
// built-in loops may still be making their listeners from the sockets;
// each stop must end cleanly (in a race build, a race exits 66).
func TestStopRightAfterStart(t *testing.T) {
	for range 4 {
		stream, packets := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
		d := startDaemon(t, jsonLog+
			fmt.Sprintf("[services.echo]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"echo\"\n", stream)+
			fmt.Sprintf("[services.daytime]\nprotocol = \"udp\"\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"daytime\"\n", packets))
		if code := d.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("exit status of a stop right after the start: got %d; want 0; log:\n%s", code, d.logs)
		}
	}
}

// TestStopClosesBuiltinConnectionsQuietly checks that a built-in's
// connection closed by a stop is logged as such, not with Go's "use of
// closed network connection".
func TestStopClosesBuiltinConnectionsQuietly(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, "[server]\nlog_format = \"json\"\nshutdown_grace = \"100ms\"\n"+
		fmt.Sprintf("[services.echo]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"echo\"\n", port))
	c := dial(t, "", addr(port))
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1)) // the built-in serves it
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status: got %d; want 0", code)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("builtin") == "echo" })
	if r["err"] != nil || r["stopped"] != true {
		t.Errorf("got %v; want stopped=true and no err", r)
	}
}

func TestStopTerminatesThenKillsAfterGrace(t *testing.T) {
	term, kill := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, "[server]\nlog_format = \"json\"\nshutdown_grace = \"200ms\"\n"+fmt.Sprintf(`
[services.sleeper]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "echo up; exec sleep 60"]

[services.stubborn]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "trap '' TERM; echo up; exec sleep 60"]
`, term, kill))
	a, b := dial(t, "", addr(term)), dial(t, "", addr(kill))
	readLine(t, a)
	readLine(t, b)
	// A requested stop is a success for the service manager, even when
	// handlers had to be ended.
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status when handlers had to be ended: got %d; want 0", code)
	}
	if last := d.lastRecord(); last.msg() != "stopped" || last["ended"] != 0.0 || last["signalled"] != 2.0 {
		t.Errorf("got last record %v; want stopped with 0 ended, 2 signalled", last)
	}
	for _, msg := range []string{"grace period over: terminating handlers", "killing handlers that outlived SIGTERM"} {
		d.waitLog(func(r record) bool { return r.msg() == msg })
	}
	for _, c := range []net.Conn{a, b} {
		if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
			t.Errorf("connection of an ended handler: got %q, %v; want EOF", rest, err)
		}
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("signal") == "SIGTERM" })
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("signal") == "SIGKILL" })
}

// notifySocket makes a socket for goinetd's sd_notify messages and
// returns its path and a function that returns the next message, failing
// the test if none comes within waitTimeout.
func notifySocket(t *testing.T) (string, func() string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sock, func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(waitTimeout))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read from NOTIFY_SOCKET: %v", err)
		}
		return string(buf[:n])
	}
}

func TestSdNotify(t *testing.T) {
	sock, next := notifySocket(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "report", port, "report"), func(c *exec.Cmd) {
		c.Env = append(c.Env, "NOTIFY_SOCKET="+sock)
	})
	if got := next(); got != "READY=1\nSTATUS=serving 1 services: report" {
		t.Errorf("first notification: got %q; want READY=1 and a STATUS", got)
	}
	// NOTIFY_SOCKET is goinetd's, never a handler's.
	if r := getReport(t, "", addr(port)); slices.ContainsFunc(r.Env, func(kv string) bool { return strings.HasPrefix(kv, "NOTIFY_SOCKET=") }) {
		t.Errorf("handler's environment %q holds NOTIFY_SOCKET", r.Env)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	reloading := next()
	usec, ok := strings.CutPrefix(reloading, "RELOADING=1\nMONOTONIC_USEC=")
	if n, err := strconv.ParseInt(usec, 10, 64); !ok || err != nil || n <= 0 {
		t.Errorf("reload notification: got %q; want RELOADING=1 and MONOTONIC_USEC", reloading)
	}
	if got := next(); !strings.HasPrefix(got, "READY=1\nSTATUS=") {
		t.Errorf("after the reload: got %q; want READY=1", got)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if got := next(); got != "STOPPING=1" {
		t.Errorf("on stop: got %q; want STOPPING=1", got)
	}
	d.wait()
}

// activated starts goinetd on config with the listening socket ln passed
// as fd 3 the way systemd passes it: LISTEN_FDS=1, LISTEN_FDNAMES=name,
// and LISTEN_PID set to goinetd's own pid by a shell that then execs it.
func activated(t *testing.T, config string, ln *net.TCPListener, name string) *daemon {
	t.Helper()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return startDaemon(t, config, func(c *exec.Cmd) {
		c.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}, c.Args...)
		c.Path = "/bin/sh"
		c.Env = append(c.Env, "LISTEN_FDS=1", "LISTEN_FDNAMES="+name)
		c.ExtraFiles = []*os.File{f}
	})
}

func TestSocketActivationAcrossARestart(t *testing.T) {
	// The test holds the listening socket, as systemd would.
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	config := jsonLog + helperService(t, "echo", port, "report")

	first := activated(t, config, ln, "echo")
	first.waitLog(func(r record) bool { return r.msg() == "listening" && r.str("socket") == "passed by systemd" })
	r := getReport(t, "", addr(port))
	for _, kv := range r.Env {
		if strings.HasPrefix(kv, "LISTEN_") {
			t.Errorf("handler's environment holds %s; want no LISTEN_ variable", kv)
		}
	}
	if code := first.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status: %d", code)
	}

	// Between the two goinetd processes the port still accepts: the
	// kernel queues the connection, and the next goinetd serves it.
	waiting := dial(t, "", addr(port))
	second := activated(t, config, ln, "echo")
	var r2 report
	if err := json.NewDecoder(waiting).Decode(&r2); err != nil {
		t.Fatalf("connection made while no goinetd ran: %v", err)
	}
	second.waitLog(func(r record) bool { return r.msg() == "connection ended" })
}

func TestSocketActivationChecksTheSocket(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other := freePort(t, "127.0.0.1")
	f, _ := ln.File()
	defer f.Close()
	d := launch(t, jsonLog+echoService("echo", "127.0.0.1", other), func(c *exec.Cmd) {
		c.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}, c.Args...)
		c.Path = "/bin/sh"
		c.Env = append(c.Env, "LISTEN_FDS=1", "LISTEN_FDNAMES=echo")
		c.ExtraFiles = []*os.File{f}
	})
	if code := d.wait(); code != 1 {
		t.Fatalf("exit status with a passed socket on the wrong port: got %d; want 1", code)
	}
	if want := "socket passed by systemd is bound to"; !strings.Contains(d.logs.String(), want) {
		t.Errorf("log %q lacks %q", d.logs, want)
	}
}

func TestDropInFilesAddServicesOnReload(t *testing.T) {
	main, dropped := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, "include = [\"goinetd.d/*.toml\"]\n"+jsonLog+echoService("main", "127.0.0.1", main))
	dir := filepath.Join(d.dir, "goinetd.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra.toml"), []byte(echoService("extra", "127.0.0.1", dropped)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"check", "-config", d.config}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "included "+filepath.Join(dir, "extra.toml")) {
		t.Errorf("goinetd check: exit %d, %q %q; want it to list the drop-in file", code, out.String(), errOut.String())
	}
	if r := d.reload(1); !slices.Equal(list(r, "added"), []string{"extra"}) {
		t.Errorf("reload record %v: want extra added", r)
	}
	if got := exchange(t, addr(dropped), "dropped in"); got != "dropped in" {
		t.Errorf("service from a drop-in file: got %q", got)
	}
	// A drop-in that names a service twice is an error naming both files.
	if err := os.WriteFile(filepath.Join(dir, "twice.toml"), []byte(echoService("main", "127.0.0.1", dropped+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := d.reload(2); !strings.HasPrefix(r.msg(), "reload failed") {
		t.Fatalf("reload with a duplicate service: %v", r)
	}
	want := filepath.Join(dir, "twice.toml") + ":2: services.main: is also defined in " + d.config
	d.waitLog(func(r record) bool { return r.msg() == "reload: config problem" && r.str("problem") == want })
}
