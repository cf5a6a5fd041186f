package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/vfork"
)

// testBinary is the path of this test binary, which doubles as a handler.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helperService is a service table running the test binary in mode on
// 127.0.0.1:port, plus any extra TOML lines.
func helperService(t *testing.T, name string, port int, mode string, extra ...string) string {
	return fmt.Sprintf(`
[services.%s]
address = "127.0.0.1"
port = %d
program = %q
env = { %s = %q }
%s
`, name, port, testBinary(t), helperVar, mode, strings.Join(extra, "\n"))
}

// helperUnixService is a unix socket service at path running the test
// binary in mode, plus any extra TOML lines.
func helperUnixService(t *testing.T, name, path, mode string, extra ...string) string {
	return fmt.Sprintf(`
[services.%s]
protocol = "unix"
path = %q
program = %q
env = { %s = %q }
%s
`, name, path, testBinary(t), helperVar, mode, strings.Join(extra, "\n"))
}

// echoService is a service table running the shipped echo handler.
func echoService(name, address string, port int, extra ...string) string {
	addr := ""
	if address != "" {
		addr = fmt.Sprintf("address = %q", address)
	}
	return fmt.Sprintf(`
[services.%s]
%s
port = %d
program = %q
%s
`, name, addr, port, filepath.Join(bin, "echo"), strings.Join(extra, "\n"))
}

// jsonLog is the [server] table of most tests: JSON logs, and a stop that
// waits at most a second for handlers (tests that are about the grace set
// their own), so that each test's cleanup ends quickly.
const jsonLog = "[server]\nlog_format = \"json\"\nshutdown_grace = \"1s\"\n"

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// getReport connects to a "report" helper, from the address from, and
// decodes what it says.
func getReport(t *testing.T, from, address string) report {
	t.Helper()
	c := dial(t, from, address)
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	return r
}

func TestEcho(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	for _, msg := range []string{"hello\n", "", "\x00\xff binary \r\n\x01"} {
		if got := exchange(t, addr(port), msg); got != msg {
			t.Errorf("echo of %q: got %q; want it back", msg, got)
		}
	}
}

// A spawning service's socket is watched by the spawn loop's epoll set
// alone: in Go's netpoller too, every connection would also wake the
// thread that waits there, for nothing (spawner/loop.go).
func TestOnlyTheSpawnLoopWatchesASpawningSocket(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	if got := exchange(t, addr(port), "hi"); got != "hi" {
		t.Fatalf("echo: got %q; want %q", got, "hi")
	}
	ino := listeningInode(t, port)
	sets := 0
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.pid(), fd.Name()))
		if link != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", d.pid(), fd.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(info), "\n") {
			if strings.HasPrefix(line, "tfd:") && slices.Contains(strings.Fields(line), "ino:"+ino) {
				sets++
			}
		}
	}
	if sets != 1 {
		t.Errorf("the listening socket (inode %s) is in %d epoll sets; want 1, the spawn loop's", ino, sets)
	}
}

// listeningInode returns the inode, in hex as fdinfo shows it, of the TCP
// socket listening on port.
func listeningInode(t *testing.T, port int) string {
	t.Helper()
	f := listeningSocket(t, port)
	if f == nil {
		t.Fatalf("no socket listens on port %d in /proc/net/tcp", port)
	}
	ino, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		t.Fatalf("/proc/net/tcp inode %q: %v", f[9], err)
	}
	return strconv.FormatUint(ino, 16)
}

func TestEchoLargeTransferIsByteIdentical(t *testing.T) {
	const size = 100 << 20
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	c := dial(t, "", addr(port))
	c.SetDeadline(time.Now().Add(60 * time.Second))

	sent := sha256.New()
	src := rand.NewChaCha8([32]byte{1})
	writeErr := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.MultiWriter(c, sent), src, size)
		c.CloseWrite()
		writeErr <- err
	}()
	got := sha256.New()
	n, err := io.Copy(got, c)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("got %d bytes with sha256 %x; want %d bytes with sha256 %x", n, got.Sum(nil), size, sent.Sum(nil))
	}
}

func TestHandlerGetsOnlyTheSocketAndStderr(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	// Start goinetd with an extra inherited descriptor, which must not
	// reach the handler.
	leak, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	d := startDaemon(t, jsonLog+helperService(t, "report", port, "report"), func(c *exec.Cmd) {
		c.ExtraFiles = []*os.File{leak}
	})
	r := getReport(t, "", addr(port))

	var fds []string
	for fd := range r.FDs {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	if !slices.Equal(fds, []string{"0", "1", "2"}) {
		t.Errorf("handler's open fds: got %v; want [0 1 2]", r.FDs)
	}
	if !strings.HasPrefix(r.FDs["0"], "socket:") || r.FDs["0"] != r.FDs["1"] {
		t.Errorf("handler's fds 0 and 1: got %q and %q; want the same socket", r.FDs["0"], r.FDs["1"])
	}
	if !r.Blocking {
		t.Errorf("handler's socket is O_NONBLOCK; want blocking")
	}
	if r.PGID != r.PID {
		t.Errorf("handler's process group: got %d; want its own (%d)", r.PGID, r.PID)
	}
	if r.Cwd != d.dir {
		t.Errorf("handler's working directory: got %q; want the config's folder %q", r.Cwd, d.dir)
	}
}

// TestHandlerStartsWithNoSignalBlockedOrIgnored starts goinetd with
// signals ignored, as under nohup, and blocked (SIGUSR1, SIGPIPE, SIGALRM),
// as some launchers leave them. Neither may reach a handler, whichever way
// it starts: goinetd's own vfork, not waiting for the exec (no other
// handler runs) and waiting for it (one does), syscall.ForkExec (as
// another user) and the trampoline (a umask). With GOINETD_SPAWN=forkexec
// (the suite's second run) all of them start through ForkExec.
func TestHandlerStartsWithNoSignalBlockedOrIgnored(t *testing.T) {
	// grep, a C program that leaves its signals alone, shows what it got
	// through exec (a Go handler would show its own runtime's settings).
	grep := []string{"-E", "^Sig(Blk|Ign):", "/proc/self/status"}
	ports := map[string]int{"vfork": freePort(t, "127.0.0.1")}
	hold := freePort(t, "127.0.0.1")
	cfg := jsonLog +
		programService("vfork", ports["vfork"], "/bin/grep", grep) +
		programService("hold", hold, "/bin/cat", nil)
	if os.Geteuid() == 0 {
		// As nobody: through ForkExec, or the trampoline for a umask.
		ports["forkexec"], ports["trampoline"] = freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
		cfg += programService("forkexec", ports["forkexec"], "/bin/grep", grep, `user = "nobody"`, `workdir = "/"`) +
			programService("trampoline", ports["trampoline"], "/bin/grep", grep, `user = "nobody"`, `workdir = "/"`, `umask = "0022"`)
	} else {
		t.Log("not root: the handlers as nobody (syscall.ForkExec, the trampoline) are not tested")
	}
	d := startDaemon(t, cfg, func(c *exec.Cmd) {
		c.Path = testBinary(t)
		c.Args = append([]string{c.Path}, c.Args...)
		c.Env = append(c.Env, helperVar+"=exec-ignoring-blocking")
	})
	want := "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
	check := func(name string, port int) {
		t.Helper()
		if got := exchange(t, addr(port), ""); got != want {
			t.Errorf("%s: handler's signal mask and ignored signals: got %q; want %q", name, got, want)
		}
	}
	for name, port := range ports {
		check(name, port)
	}
	// With a handler running, a lone connection waits for its handler's
	// exec (spawnLoop.noWait).
	c := dial(t, "", addr(hold))
	d.waitLog(func(r record) bool { return r.msg() == "spawned" && r.str("service") == "hold" })
	check("vfork, waiting for the exec", ports["vfork"])
	c.Close()
}

// TestHandlerGetsTheFileLimitGoinetdStartedWith starts goinetd with a soft
// RLIMIT_NOFILE of 200 under a hard one of 4096. The Go runtime raises
// goinetd's own soft limit to 4096; its handlers must start with 200, as
// they would under any C superserver, whichever way they are spawned:
// goinetd's own vfork path (plain), or syscall.ForkExec (as another user).
func TestHandlerGetsTheFileLimitGoinetdStartedWith(t *testing.T) {
	needRoot(t)
	ulimit := []string{"-c", "ulimit -Sn; ulimit -Hn"}
	plain, asNobody := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		programService("plain", plain, "/bin/sh", ulimit)+
		programService("nobody", asNobody, "/bin/sh", ulimit, `user = "nobody"`, `workdir = "/"`),
		withNofile(t, 200, 4096))
	for _, port := range []int{plain, asNobody} {
		if got, want := exchange(t, addr(port), ""), "200\n4096\n"; got != want {
			t.Errorf("handler on port %d: soft and hard RLIMIT_NOFILE %q; want %q", port, got, want)
		}
	}
	if r := d.logs.records(func(r record) bool { return strings.Contains(r.msg(), "syscall.ForkExec") }); len(r) > 0 {
		t.Errorf("goinetd fell back to syscall.ForkExec for every handler: %v", r)
	}
}

// TestOrphanedProbeExitsAtOnce runs goinetd as the child of its
// RLIMIT_NOFILE probe would run if the goinetd tracing it died before
// killing it: it must exit at once, serving nothing, whatever its
// arguments.
func TestOrphanedProbeExitsAtOnce(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	path := filepath.Join(t.TempDir(), "inetd.toml")
	writeFile(t, path, jsonLog+echoService("echo", "127.0.0.1", port))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "goinetd"), "-config", path)
	cmd.Args[0] = vfork.ProbeName
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("goinetd as %s: %v, output %q; want exit 0 and no output", vfork.ProbeName, err, out)
	}
	if c, err := net.DialTimeout("tcp", addr(port), time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s after goinetd ran as %s", addr(port), vfork.ProbeName)
	}
}

func TestHandlerEnvironment(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "report", port, "report", `workdir = "/"`))
	c := dial(t, "127.0.0.2", addr(port))
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	clientPort := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	want := []string{
		helperVar + "=report",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"PROTO=TCP",
		"REMOTE_ADDR=127.0.0.2",
		"REMOTE_PORT=" + clientPort,
		"TCPCONCURRENCY=1", // max_per_source applies by default
		"TCPLOCALIP=127.0.0.1",
		"TCPLOCALPORT=" + strconv.Itoa(port),
		"TCPREMOTEIP=127.0.0.2",
		"TCPREMOTEPORT=" + clientPort,
	}
	got := slices.Sorted(slices.Values(r.Env))
	if !slices.Equal(got, want) {
		t.Errorf("handler's environment:\ngot  %q\nwant %q", got, want)
	}
	if r.Cwd != "/" {
		t.Errorf("handler's working directory: got %q; want %q", r.Cwd, "/")
	}
}

func TestIPv4MappedPeerIsShownAsIPv4(t *testing.T) {
	port := freePort(t, "::")
	// No address: goinetd listens on every interface, IPv4 and IPv6, so an
	// IPv4 client arrives as ::ffff:127.0.0.3 on an IPv6 socket.
	startDaemon(t, jsonLog+fmt.Sprintf(`
[services.report]
port = %d
program = %q
env = { %s = "report", PATH = "/bin" }
`, port, testBinary(t), helperVar))
	r := getReport(t, "127.0.0.3", addr(port))
	for _, want := range []string{"TCPREMOTEIP=127.0.0.3", "REMOTE_ADDR=127.0.0.3", "TCPLOCALIP=127.0.0.1", "PATH=/bin"} {
		if !slices.Contains(r.Env, want) {
			t.Errorf("handler's environment %q lacks %s", r.Env, want)
		}
	}
}

func TestStderr(t *testing.T) {
	logPort, socketPort, nullPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		helperService(t, "tolog", logPort, "stderr")+
		helperService(t, "tosocket", socketPort, "stderr", `stderr = "socket"`)+
		helperService(t, "tonull", nullPort, "stderr", `stderr = "null"`))

	t.Run("log", func(t *testing.T) {
		pid := strings.TrimSpace(exchange(t, addr(logPort), ""))
		for _, text := range []string{"complaint from " + pid, "second line"} {
			r := d.waitLog(func(r record) bool { return r.msg() == "stderr" && r.str("text") == text })
			if r.str("service") != "tolog" || r.str("pid") != pid {
				t.Errorf("stderr record %v: want service tolog and pid %s", r, pid)
			}
		}
	})
	t.Run("socket", func(t *testing.T) {
		got := exchange(t, addr(socketPort), "")
		lines := strings.Split(got, "\n")
		if len(lines) != 4 || lines[0] != "complaint from "+lines[2] || lines[1] != "second line" {
			t.Errorf("client got %q; want the handler's stderr, then its pid", got)
		}
	})
	t.Run("null", func(t *testing.T) {
		got := exchange(t, addr(nullPort), "")
		pid := strings.TrimSpace(got)
		if _, err := strconv.Atoi(pid); err != nil {
			t.Errorf("client got %q; want only the pid", got)
		}
		// The handler's exit is logged after its stderr would have been.
		d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
		if rs := d.logs.records(func(r record) bool { return r.str("service") == "tonull" && r.msg() == "stderr" }); len(rs) > 0 {
			t.Errorf("stderr = \"null\" logged %v", rs)
		}
	})
}

func TestExitsAreLogged(t *testing.T) {
	exitPort, killPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		helperService(t, "exit3", exitPort, "exit3")+
		helperService(t, "killed", killPort, "kill"))

	c := dial(t, "127.0.0.4", addr(exitPort))
	clientPort := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	b, _ := io.ReadAll(c)
	pid := strings.TrimSpace(string(b))
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
	if r.str("service") != "exit3" || r.str("peer") != "127.0.0.4:"+clientPort || r.str("exit") != "3" {
		t.Errorf("exit record %v: want service exit3, peer 127.0.0.4:%s, exit 3", r, clientPort)
	}
	// The peer's address and port each have a field; the duration is in
	// seconds, a number.
	if r.str("peer_ip") != "127.0.0.4" || r.str("peer_port") != clientPort {
		t.Errorf("exit record %v: want peer_ip 127.0.0.4, peer_port %s", r, clientPort)
	}
	if d, ok := r["duration"].(float64); !ok || d <= 0 || d > waitTimeout.Seconds() {
		t.Errorf("exit record %v: want a duration in seconds, between 0 and %v", r, waitTimeout.Seconds())
	}

	pid = strings.TrimSpace(exchange(t, addr(killPort), ""))
	r = d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
	if r.str("signal") != "SIGKILL" || r.str("exit") != "" {
		t.Errorf("exit record %v: want signal SIGKILL and no exit status", r)
	}
}

func TestManyHeldConnectionsFewThreadsNoZombies(t *testing.T) {
	const conns = 500
	port := freePort(t, "127.0.0.1")
	// 500 connections from one client: past the default limits, lifted.
	d := startDaemon(t, jsonLog+logEveryConnection+echoService("echo", "127.0.0.1", port, "max_connections = 0", "max_per_source = 0"))

	clients := make([]net.Conn, 0, conns)
	for range conns {
		clients = append(clients, dial(t, "", addr(port)))
	}
	// Every connection has its own live handler once it echoes.
	for i, c := range clients {
		if _, err := fmt.Fprintf(c, "%d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		want := fmt.Sprintf("%d\n", i)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("connection %d: got %q, %v; want %q", i, got, err, want)
		}
	}
	if n := len(d.children()); n != conns {
		t.Errorf("goinetd has %d children; want %d", n, conns)
	}
	threads, _ := strconv.Atoi(procStatus(t, d.pid(), "Threads"))
	t.Logf("%d connections held: goinetd runs %d threads, VmRSS %s", conns, threads, procStatus(t, d.pid(), "VmRSS"))
	if threads > 20 {
		t.Errorf("goinetd runs %d threads with %d connections held; want at most 20", threads, conns)
	}

	for _, c := range clients {
		c.Close()
	}
	d.waitLogs(conns, func(r record) bool { return r.msg() == "connection ended" })
	waitFor(t, "every handler to be reaped", func() bool {
		for _, pid := range d.children() {
			if procState(pid) == "Z" || procState(pid) != "" {
				return false
			}
		}
		return true
	})
}

func TestSIGTERMWithNoGraceLeavesHandlersRunning(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, "[server]\nlog_format = \"json\"\nshutdown_grace = \"0s\"\n"+echoService("echo", "127.0.0.1", port))
	held := dial(t, "", addr(port))
	if _, err := io.WriteString(held, "before\n"); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("before\n"))
	if _, err := io.ReadFull(held, line); err != nil {
		t.Fatalf("echo before SIGTERM: %v", err)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("goinetd exit status after SIGTERM: got %d; want 0", code)
	}
	if _, err := net.DialTimeout("tcp", addr(port), ioTimeout); err == nil {
		t.Errorf("port %d still accepts after goinetd stopped", port)
	}
	// The handler outlives goinetd and still serves its client.
	if _, err := io.WriteString(held, "after\n"); err != nil {
		t.Fatal(err)
	}
	line = make([]byte, len("after\n"))
	if _, err := io.ReadFull(held, line); err != nil || string(line) != "after\n" {
		t.Errorf("echo after SIGTERM: got %q, %v; want %q", line, err, "after\n")
	}
}

func TestSIGINTExitsZero(t *testing.T) {
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", freePort(t, "127.0.0.1")))
	if code := d.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit status after SIGINT: got %d; want 0", code)
	}
}

func TestBadConfigExitsBeforeBinding(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := launch(t, echoService("good", "127.0.0.1", port)+`
[services.bad]
port = 0
program = "/nonexistent/handler"
`)
	if code := d.wait(); code != 1 {
		t.Fatalf("exit status: got %d; want 1", code)
	}
	for _, want := range []string{
		"inetd.toml:9: services.bad.port: 0 is out of range 1-65535",
		"inetd.toml:10: services.bad.program: /nonexistent/handler: no such file or directory",
	} {
		if !strings.Contains(d.logs.String(), want) {
			t.Errorf("stderr %q lacks %q", d.logs, want)
		}
	}
	// The good service was never bound.
	ln, err := net.Listen("tcp", addr(port))
	if err != nil {
		t.Fatalf("port of the good service: %v", err)
	}
	ln.Close()
}

func TestBindFailureNamesServiceAndAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	free := freePort(t, "127.0.0.1")
	strict := "[server]\nlog_format = \"json\"\nrequire_all_services = true\n"
	d := launch(t, strict+echoService("a-free", "127.0.0.1", free)+echoService("b-busy", "127.0.0.1", busy))
	if code := d.wait(); code != 1 {
		t.Fatalf("exit status with require_all_services: got %d; want 1", code)
	}
	want := fmt.Sprintf("service b-busy: listen on tcp4 127.0.0.1:%d: bind: address already in use", busy)
	if !strings.Contains(d.logs.String(), want) {
		t.Errorf("log %q lacks %q", d.logs, want)
	}
	ln, err := net.Listen("tcp", addr(free))
	if err != nil {
		t.Fatalf("the service that did bind was not released: %v", err)
	}
	ln.Close()
}

// TestStartServesWhatItCan checks that a port that cannot be bound at
// startup does not keep the others from serving, that goinetd says which
// one failed, and that it binds it once the port is free.
func TestStartServesWhatItCan(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	free, mport := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	sock, notified := notifySocket(t)
	d := startDaemon(t, fmt.Sprintf("[server]\nlog_format = \"json\"\nmetrics = \"127.0.0.1:%d\"\n", mport)+
		echoService("a-free", "127.0.0.1", free)+echoService("b-busy", "127.0.0.1", busy),
		func(c *exec.Cmd) { c.Env = append(c.Env, "NOTIFY_SOCKET="+sock) })
	if got, want := notified(), "READY=1\nSTATUS=serving 1 services: a-free; cannot bind 1, retrying: b-busy"; got != want {
		t.Errorf("systemd's status: got %q; want %q", got, want)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	failed := d.waitLog(func(r record) bool { return r.msg() == "cannot serve service" })
	if failed.str("service") != "b-busy" || !strings.Contains(failed.str("err"), "address already in use") {
		t.Errorf("got %v; want b-busy named with address already in use", failed)
	}
	if got := exchange(t, addr(free), "a"); got != "a" {
		t.Errorf("the service that could be bound: got %q; want the echo", got)
	}
	waitMetric(t, url, `goinetd_service_up{service="a-free"}`, 1)
	waitMetric(t, url, `goinetd_service_up{service="b-busy"}`, 0)

	taken.Close()
	d.waitLog(func(r record) bool { return r.msg() == "listening" && r.str("service") == "b-busy" })
	if got, want := notified(), "STATUS=serving 2 services: a-free, b-busy"; got != want {
		t.Errorf("systemd's status once bound: got %q; want %q", got, want)
	}
	if got := exchange(t, addr(busy), "b"); got != "b" {
		t.Errorf("the service bound on a retry: got %q; want the echo", got)
	}
	waitMetric(t, url, `goinetd_service_up{service="b-busy"}`, 1)
}

// TestStartFailsWhenNothingCanBeServed checks that goinetd exits 1 when
// no service at all could be bound.
func TestStartFailsWhenNothingCanBeServed(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	d := launch(t, jsonLog+echoService("busy", "127.0.0.1", taken.Addr().(*net.TCPAddr).Port))
	if code := d.wait(); code != 1 {
		t.Fatalf("exit status: got %d; want 1", code)
	}
	if want := "address already in use"; !strings.Contains(d.logs.String(), want) {
		t.Errorf("log %q lacks %q", d.logs, want)
	}
}

// TestFreeBind checks that freebind binds an address that is not on the
// host (TEST-NET-1, nothing is sent to it), and that without it the bind
// fails and the other services serve.
func TestFreeBind(t *testing.T) {
	vip, novip := nonLocalAddress(t, "198.51.100.7"), nonLocalAddress(t, "198.51.100.8")
	port, other := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("vip", vip, port, "freebind = true")+
		echoService("novip", novip, port)+echoService("local", "127.0.0.1", other))
	up := d.waitLog(func(r record) bool { return r.msg() == "listening" && r.str("service") == "vip" })
	if want := net.JoinHostPort(vip, strconv.Itoa(port)); up.str("address") != want {
		t.Errorf("got %v; want vip listening on %s", up, want)
	}
	failed := d.waitLog(func(r record) bool { return r.msg() == "cannot serve service" })
	if failed.str("service") != "novip" || !strings.Contains(failed.str("err"), "cannot assign requested address") {
		t.Errorf("got %v; want novip refused by the kernel", failed)
	}
	if got := exchange(t, addr(other), "x"); got != "x" {
		t.Errorf("the local service: got %q; want the echo", got)
	}
}

// nonLocalAddress returns a, an address for documentation, after checking
// that it is not on this host (a plain bind to it fails), or skips.
func nonLocalAddress(t *testing.T, a string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
	if err == nil {
		ln.Close()
		t.Skipf("%s is an address of this host; the test needs one that is not", a)
	}
	return a
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(echoService("echo", "127.0.0.1", 7)+`
[services.off]
port = 8
program = "/nonexistent"
disabled = true
`), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", good}, &stdout, &stderr); code != 0 {
		t.Fatalf("check of a good config: exit %d; stderr %q", code, stderr.String())
	}
	want := fmt.Sprintf("%s: ok, 2 services (1 enabled)\necho: tcp 127.0.0.1:7 nowait stderr=log: %s\noff: disabled\n",
		good, filepath.Join(bin, "echo"))
	if stdout.String() != want {
		t.Errorf("check output:\ngot  %q\nwant %q", stdout.String(), want)
	}

	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[services.x]\nport = 99999\nprogram = 3\nfoo = 1\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", "-config", bad}, &stdout, &stderr); code != 1 {
		t.Fatalf("check of a bad config: exit %d; want 1", code)
	}
	want = bad + ":4: services.x.foo: unknown key\n" +
		bad + ":2: services.x.port: 99999 is out of range 1-65535\n" +
		bad + ":3: services.x.program: must be a string, not the integer 3\n"
	_ = want
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 3 {
		t.Errorf("check of a bad config printed %q; want 3 problems, one per line", stderr.String())
	}
	for _, w := range []string{":2: services.x.port: 99999 is out of range 1-65535", ":3: services.x.program: must be a string, not the integer 3", ":4: services.x.foo: unknown key"} {
		if !strings.Contains(stderr.String(), bad+w) {
			t.Errorf("check output %q lacks %q", stderr.String(), bad+w)
		}
	}
}

// TestCheckWarns checks that a valid but risky config passes check (exit
// 0) with each warning on stderr, naming file, line and key.
func TestCheckWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warn.toml")
	os.WriteFile(path, []byte("[server]\nmetrics = \"0.0.0.0:9102\"\n"+echoService("echo", "127.0.0.1", 7)), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("check of a risky config: exit %d; want 0; stderr %q", code, stderr.String())
	}
	want := "warning: " + path + ":2: server.metrics: \"0.0.0.0:9102\" is reachable beyond this host"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("got stderr %q; want it to start with %q", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), ": ok, 1 services") {
		t.Errorf("got stdout %q; want the ok summary", stdout.String())
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(filepath.Join(bin, "goinetd"), "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "goinetd ") {
		t.Errorf("goinetd -version: got %q, %v", out, err)
	}
}

func TestLastaccessManyConcurrentSources(t *testing.T) {
	const sources, perSource = 60, 5
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.lastaccess]
address = "127.0.0.1"
port = %d
program = %q
args = ["-db", "records"]
`, port, filepath.Join(bin, "lastaccess")))

	var wg sync.WaitGroup
	greetings := make(chan string, sources*perSource)
	for i := range sources * perSource {
		from := fmt.Sprintf("127.0.0.%d", 1+i%sources)
		wg.Go(func() {
			c := dial(t, from, addr(port))
			b, err := io.ReadAll(c)
			if err != nil {
				t.Errorf("read greeting from %s: %v", from, err)
			}
			greetings <- string(b)
		})
	}
	wg.Wait()
	close(greetings)
	neverSeen := 0
	for g := range greetings {
		if !strings.HasPrefix(g, "Welcome, 127.0.0.") || strings.Count(g, "\n") != 3 {
			t.Errorf("greeting %q: want three lines starting with Welcome", g)
		}
		if strings.Contains(g, "\nI've never seen you before.\n") {
			neverSeen++
		}
	}
	if neverSeen != sources {
		t.Errorf("%d \"never seen\" greetings; want %d", neverSeen, sources)
	}
	// A fresh records path is a folder of one file per address: read the
	// records the way an operator does, whatever the layout.
	var stderr bytes.Buffer
	list := exec.Command(filepath.Join(bin, "lastaccess"), "-db", filepath.Join(d.dir, "records"), "-list")
	list.Stderr = &stderr
	b, err := list.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("lastaccess -list: %v, stderr %q", err, stderr.String())
	}
	records := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	ips := map[string]bool{}
	for _, r := range records {
		ip, at, ok := strings.Cut(r, "|")
		if _, err := time.Parse(time.RFC3339, at); !ok || err != nil || net.ParseIP(ip) == nil {
			t.Errorf("malformed record %q", r)
		}
		ips[ip] = true
	}
	if len(records) != sources || len(ips) != sources {
		t.Errorf("got %d records for %d addresses; want %d of each", len(records), len(ips), sources)
	}
}

func TestStderrLineWrittenInPiecesIsOneRecord(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.pieces]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "printf 'one ' >&2; printf 'line\nand a second' >&2; printf ' one\n' >&2; printf 'unfinished' >&2"]
`, port))
	exchange(t, addr(port), "")
	for _, want := range []string{"one line", "and a second one", "unfinished"} {
		d.waitLog(func(r record) bool { return r.msg() == "stderr" && r.str("text") == want })
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "stderr" })); n != 3 {
		t.Errorf("%d stderr records; want 3, one a line", n)
	}
}
