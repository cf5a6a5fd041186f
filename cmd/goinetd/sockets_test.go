package main

// Every socket kind: wait mode, UDP, unix sockets, IPv6, built-in
// services and listen_fds socket handoff.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readLine reads one line from c.
func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("read line: got %q, %v", b, err)
		}
		if one[0] == '\n' {
			return string(b)
		}
		b = append(b, one[0])
	}
}

func TestTCPWaitModeHandsTheListenerToOneChild(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "waiter", port, "accept2", `mode = "wait"`))

	// One child serves the first two connections, a second the third.
	first := readLine(t, dial(t, "", addr(port)))
	if got := readLine(t, dial(t, "", addr(port))); got != first {
		t.Errorf("second connection served by pid %s; want the first child, %s", got, first)
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == first })
	third := readLine(t, dial(t, "", addr(port)))
	if third == first {
		t.Errorf("third connection served by pid %s again; want a new child", third)
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 2 {
		t.Errorf("goinetd spawned %d children for 3 connections; want 2", n)
	}
}

func TestWaitModeChildThatTakesNothingIsBackedOff(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "lazy", port, "exit3", `mode = "wait"`))
	dial(t, "", addr(port)) // pending, and never accepted by a child
	d.waitLog(func(r record) bool { return strings.HasPrefix(r.msg(), "wait-mode handler exited without taking") })
	// Two more seconds of records: each second at most one, the second
	// summing up the ones held back.
	d.waitLogs(2, func(r record) bool {
		return strings.HasPrefix(r.msg(), "wait-mode handler exited without taking") && r.str("repeated") != ""
	})
	spawns := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" }))
	t.Logf("%d children in about 2 s for a connection none of them takes", spawns)
	if spawns > 30 {
		t.Errorf("goinetd started %d children in about 2 s; want it to back off", spawns)
	}
}

func TestUDPWaitModeChildReceivesTheDatagram(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "udp", port, "udp-upper", `protocol = "udp"`))
	c, err := net.Dial("udp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	var pids []string
	for _, msg := range []string{"hello", "again"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1024)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply to %q: %v", msg, err)
		}
		reply, pid, _ := strings.Cut(string(buf[:n]), " ")
		if reply != strings.ToUpper(msg) {
			t.Errorf("reply to %q: got %q; want %q", msg, reply, strings.ToUpper(msg))
		}
		pids = append(pids, pid)
		d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
	}
	if pids[0] == pids[1] {
		t.Errorf("both datagrams handled by pid %s; want a child each", pids[0])
	}
}

func TestUnixSocketNoWait(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.sock")
	extra := []string{`socket_mode = "0660"`}
	asRoot := os.Geteuid() == 0
	if asRoot {
		extra = append(extra, `socket_user = "nobody"`, `socket_group = "nogroup"`)
	}
	// A stale socket from an earlier run is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	d := startDaemon(t, jsonLog+helperUnixService(t, "local", path, "report", extra...))

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket file mode: got %v; want a socket with 0660", fi.Mode())
	}
	if asRoot {
		nobody, _ := user.Lookup("nobody")
		nogroup, _ := user.LookupGroup("nogroup")
		st := fi.Sys().(*syscall.Stat_t)
		if strconv.Itoa(int(st.Uid)) != nobody.Uid || strconv.Itoa(int(st.Gid)) != nogroup.Gid {
			t.Errorf("socket owner: got %d:%d; want nobody:nogroup (%s:%s)", st.Uid, st.Gid, nobody.Uid, nogroup.Gid)
		}
	}

	c, err := net.DialTimeout("unix", path, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	for _, want := range []string{
		"PROTO=UNIX",
		"UNIXREMOTEPID=" + strconv.Itoa(os.Getpid()),
		"UNIXREMOTEEUID=" + strconv.Itoa(os.Geteuid()),
		"UNIXREMOTEEGID=" + strconv.Itoa(os.Getegid()),
	} {
		if !slices.Contains(r.Env, want) {
			t.Errorf("handler's environment %q lacks %s", r.Env, want)
		}
	}
	if !strings.HasPrefix(r.FDs["0"], "socket:") || !r.Blocking {
		t.Errorf("handler's fd 0: got %q (blocking %v); want a blocking socket", r.FDs["0"], r.Blocking)
	}

	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status: %d", code)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file after shutdown: %v; want it removed", err)
	}
}

func TestUnixSocketWaitModeWithSocat(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skipf("needs socat (make deps installs it): %v", err)
	}
	path := filepath.Join(t.TempDir(), "wait.sock")
	startDaemon(t, jsonLog+helperUnixService(t, "waiter", path, "accept2", `mode = "wait"`))
	var pids []string
	for range 2 {
		out, err := exec.Command("socat", "-T10", "-u", "UNIX-CONNECT:"+path, "STDOUT").Output()
		if err != nil {
			t.Fatalf("socat: %v", err)
		}
		pids = append(pids, strings.TrimSpace(string(out)))
	}
	if pids[0] != pids[1] || pids[0] == "" {
		t.Errorf("wait-mode unix handler pids %q; want one child for both connections", pids)
	}
}

func TestUnixPathHoldingAFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := launch(t, fmt.Sprintf(`
[services.local]
protocol = "unix"
path = %q
program = %q
`, path, filepath.Join(bin, "echo")))
	if code := d.wait(); code != 1 {
		t.Fatalf("exit status: got %d; want 1", code)
	}
	if want := path + " exists and is not a socket"; !strings.Contains(d.logs.String(), want) {
		t.Errorf("log %q lacks %q", d.logs, want)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("the file at the socket path now holds %q", b)
	}
}

// needIPv6 skips the test on a host without IPv6 loopback.
func needIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("needs IPv6 loopback: %v", err)
	}
	ln.Close()
}

func TestIPv6Addresses(t *testing.T) {
	needIPv6(t)
	v6, v4only, both := freePort(t, "::1"), freePort(t, "127.0.0.1"), freePort(t, "::")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.v6]
address = "::1"
port = %d
program = %q
env = { %s = "report" }

[services.v4only]
address = "0.0.0.0"
port = %d
program = %q

[services.both]
port = %d
program = %q
`, v6, testBinary(t), helperVar, v4only, filepath.Join(bin, "echo"), both, filepath.Join(bin, "echo")))
	_ = d

	r := getReport(t, "", net.JoinHostPort("::1", strconv.Itoa(v6)))
	for _, want := range []string{"TCPREMOTEIP=::1", "TCPLOCALIP=::1", "REMOTE_ADDR=::1"} {
		if !slices.Contains(r.Env, want) {
			t.Errorf("IPv6 handler's environment %q lacks %s", r.Env, want)
		}
	}
	if got := exchange(t, addr(v4only), "four"); got != "four" {
		t.Errorf("0.0.0.0 service over IPv4: got %q", got)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("::1", strconv.Itoa(v4only)), ioTimeout); err == nil {
		c.Close()
		t.Errorf("0.0.0.0 service accepted an IPv6 connection; want IPv4 only")
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		if got := exchange(t, net.JoinHostPort(host, strconv.Itoa(both)), host); got != host {
			t.Errorf("service with no address, over %s: got %q", host, got)
		}
	}
}

func TestBuiltinsOverTCP(t *testing.T) {
	ports := map[string]int{}
	cfg := jsonLog
	for _, name := range []string{"echo", "discard", "daytime", "time", "chargen"} {
		ports[name] = freePort(t, "127.0.0.1")
		cfg += fmt.Sprintf("\n[services.%s]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = %q\n", name, ports[name], name)
	}
	d := startDaemon(t, cfg)

	if got := exchange(t, addr(ports["echo"]), "echo me\x00\xff"); got != "echo me\x00\xff" {
		t.Errorf("echo: got %q", got)
	}
	if got := exchange(t, addr(ports["discard"]), strings.Repeat("x", 1<<20)); got != "" {
		t.Errorf("discard: got %q", got)
	}
	before := time.Now().Truncate(time.Second)
	got := exchange(t, addr(ports["daytime"]), "")
	at, err := time.Parse("Monday, January 2, 2006 15:04:05-MST\r\n", got)
	if err != nil || at.Before(before.Add(-time.Hour*24)) {
		t.Errorf("daytime: got %q (%v); want a date line ending in CRLF", got, err)
	}
	got = exchange(t, addr(ports["time"]), "")
	if len(got) != 4 {
		t.Fatalf("time: got %d bytes; want 4", len(got))
	}
	secs := int64(binary.BigEndian.Uint32([]byte(got))) - 2208988800
	if d := time.Since(time.Unix(secs, 0)); d < -2*time.Second || d > time.Minute {
		t.Errorf("time: got %d seconds since 1900, %v from now", secs+2208988800, d)
	}
	c := dial(t, "", addr(ports["chargen"]))
	lines := make([]byte, 3*74)
	if _, err := io.ReadFull(c, lines); err != nil {
		t.Fatal(err)
	}
	const ring = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	for i := range 3 {
		want := (ring + ring)[i:i+72] + "\r\n"
		if got := string(lines[i*74 : (i+1)*74]); got != want {
			t.Errorf("chargen line %d: got %q; want %q", i, got, want)
		}
	}
	c.Close()
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("builtin") == "chargen" })
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 0 {
		t.Errorf("built-ins spawned %d children; want none", n)
	}
}

func TestBuiltinsOverUDP(t *testing.T) {
	ports := map[string]int{}
	cfg := jsonLog
	for _, name := range []string{"echo", "discard", "daytime", "time", "chargen"} {
		ports[name] = freePort(t, "127.0.0.1")
		cfg += fmt.Sprintf("\n[services.%s]\naddress = \"127.0.0.1\"\nprotocol = \"udp\"\nport = %d\nbuiltin = %q\n", name, ports[name], name)
		if name == "echo" || name == "chargen" {
			cfg += "udp_reflection = true\n"
		}
	}
	startDaemon(t, cfg)

	ask := func(c *net.UDPConn, name, msg string) (string, error) {
		t.Helper()
		if _, err := c.WriteToUDP([]byte(msg), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[name]}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		buf := make([]byte, 2048)
		n, _, err := c.ReadFromUDP(buf)
		return string(buf[:n]), err
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := ask(c, "echo", "ping"); got != "ping" {
		t.Errorf("udp echo: got %q, %v", got, err)
	}
	if got, err := ask(c, "time", ""); len(got) != 4 {
		t.Errorf("udp time: got %q, %v; want 4 bytes", got, err)
	}
	if got, err := ask(c, "daytime", "?"); !strings.HasSuffix(got, "\r\n") {
		t.Errorf("udp daytime: got %q, %v", got, err)
	}
	if got, err := ask(c, "chargen", ""); err != nil || len(got) > 512 {
		t.Errorf("udp chargen: got %d bytes, %v; want at most 512", len(got), err)
	}

	// A datagram from a port below 1024 gets no answer: it may come from
	// another server's built-in. Answers come in order, so once the later
	// datagram's answer arrives, the earlier one would have too.
	if os.Geteuid() != 0 {
		t.Skip("needs root to send from a port below 1024")
	}
	low, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000})
	if err != nil {
		t.Skipf("cannot bind port 1000: %v", err)
	}
	defer low.Close()
	low.WriteToUDP([]byte("loop?"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports["echo"]})
	if got, err := ask(c, "echo", "after"); got != "after" {
		t.Fatalf("udp echo: got %q, %v", got, err)
	}
	if n, _ := queued(t, low); n != 0 {
		t.Errorf("udp echo answered %d datagrams to source port 1000; want none", n)
	}
	// discard never answers either.
	c.WriteToUDP([]byte("drop"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports["discard"]})
	if got, err := ask(c, "echo", "last"); got != "last" {
		t.Errorf("udp echo after discard: got %q, %v; want only the echo", got, err)
	}
}

func TestListenFDsHandoff(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "activated", port, "listen-fds", `mode = "wait"`, `listen_fds = true`))
	r := getReport(t, "", addr(port))
	pid := strconv.Itoa(r.PID)
	for _, want := range []string{"LISTEN_PID=" + pid, "LISTEN_FDS=1", "LISTEN_FDNAMES=activated"} {
		if !slices.Contains(r.Env, want) {
			t.Errorf("handler's environment %q lacks %s", r.Env, want)
		}
	}
	if !r.Accepting || !strings.HasPrefix(r.FDs["3"], "socket:") || len(r.FDs) != 4 {
		t.Errorf("handler's fds %v (fd 3 listening: %v); want 0-2 and the listening socket as 3", r.FDs, r.Accepting)
	}
	if r.FDs["0"] != "/dev/null" {
		t.Errorf("handler's stdin: got %q; want /dev/null", r.FDs["0"])
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
}

func TestListenFDsWithSystemdSocketProxyd(t *testing.T) {
	const proxyd = "/lib/systemd/systemd-socket-proxyd"
	if _, err := os.Stat(proxyd); err != nil {
		t.Skipf("needs %s (Debian's systemd package): %v", proxyd, err)
	}
	backend, front := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+echoService("backend", "127.0.0.1", backend)+fmt.Sprintf(`
[services.proxy]
address = "127.0.0.1"
port = %d
mode = "wait"
listen_fds = true
program = %q
args = [%q]
`, front, proxyd, addr(backend)))
	// systemd-socket-proxyd ends a connection at the client's EOF, so
	// read the echo back before closing.
	for _, msg := range []string{"through the proxy", "and again"} {
		c := dial(t, "", addr(front))
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Errorf("echo through systemd-socket-proxyd: got %q, %v; want %q", got, err, msg)
		}
		c.Close()
	}
}
