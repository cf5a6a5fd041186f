package main

// Admission control, decided before any child is started: address rules,
// connection limits, per-source limits, rate limits and timeouts, with
// real connections from distinct loopback sources.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// holdReport connects from the address from to a "report-hold" handler
// and returns the connection, still open, and what the handler saw.
func holdReport(t *testing.T, from, address string) (net.Conn, report) {
	t.Helper()
	c := dial(t, from, address)
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("decode report from %s: %v", from, err)
	}
	return c, r
}

func envValue(r report, name string) string {
	for _, kv := range r.Env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// maxLive replays the log's spawned and ended records and returns the
// largest number of children that were live at once.
func maxLive(d *daemon) int {
	live, most := 0, 0
	for _, r := range d.logs.records(func(r record) bool { return r.msg() == "spawned" || r.msg() == "connection ended" }) {
		if r.msg() == "spawned" {
			live++
		} else {
			live--
		}
		most = max(most, live)
	}
	return most
}

func TestAddressRules(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("guarded", "127.0.0.1", port,
		`only_from = ["127.0.0.0/29"]`, `no_access = ["127.0.0.3"]`))

	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		c := dial(t, from, addr(port))
		io.WriteString(c, "hi")
		c.CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "hi" {
			t.Errorf("from %s, allowed: got %q, %v; want the echo", from, b, err)
		}
	}
	for _, from := range []string{"127.0.0.3", "127.0.0.9"} {
		expectClosed(t, dial(t, from, addr(port)))
		r := d.waitLog(func(r record) bool {
			return r.msg() == "refused" && strings.HasPrefix(r.str("peer"), from+":")
		})
		if r.str("reason") != "address" || r.str("service") != "guarded" {
			t.Errorf("refusal record %v: want reason address for service guarded", r)
		}
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 2 {
		t.Errorf("%d children started; want 2, none for the refused clients", n)
	}
}

func TestRefusalsAreLoggedAtABoundedRate(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("guarded", "127.0.0.1", port, `no_access = ["127.0.0.4"]`))
	const scan = 200
	start := time.Now()
	for range scan {
		expectClosed(t, dial(t, "127.0.0.4", addr(port)))
	}
	elapsed := time.Since(start)
	// Then one allowed connection: its record comes after every refusal's.
	exchange(t, addr(port), "x")
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" })
	records := d.logs.records(func(r record) bool { return r.msg() == "refused" })
	t.Logf("%d refusals in %v made %d log records", scan, elapsed.Round(time.Millisecond), len(records))
	if limit := 2 + 2*int(elapsed/time.Second); len(records) > limit {
		t.Errorf("%d refusals made %d log records in %v; want at most %d", scan, len(records), elapsed, limit)
	}
}

func TestIPv4MappedClientMatchesIPv4Rules(t *testing.T) {
	needIPv6(t)
	port := freePort(t, "::")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.dual]
port = %d
program = %q
only_from = ["127.0.0.0/8"]
`, port, bin+"/echo"))
	if got := exchange(t, addr(port), "v4"); got != "v4" {
		t.Errorf("IPv4 client of a dual-stack service with an IPv4 rule: got %q; want the echo", got)
	}
	expectClosed(t, dial(t, "", fmt.Sprintf("[::1]:%d", port)))
	d.waitLog(func(r record) bool { return r.msg() == "refused" && strings.HasPrefix(r.str("peer"), "[::1]:") })
}

func TestMaxConnectionsQueuesInTheBacklog(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "capped", port, "report-hold", "max_connections = 2"))
	first, _ := holdReport(t, "", addr(port))
	holdReport(t, "", addr(port))

	// The third connects (the kernel completes the handshake) and waits
	// in the backlog: no child, no refusal.
	third := dial(t, "", addr(port))
	waitFor(t, "the third connection in goinetd's accept queue", func() bool { return acceptQueue(t, port) == 1 })
	if n := len(d.children()); n != 2 {
		t.Errorf("goinetd has %d children at max_connections = 2", n)
	}
	first.Close()
	var r report
	if err := json.NewDecoder(third).Decode(&r); err != nil {
		t.Fatalf("third connection, after a slot was freed: %v", err)
	}
	if most := maxLive(d); most != 2 {
		t.Errorf("at most %d children were live at once; want 2", most)
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "refused" })); n != 0 {
		t.Errorf("%d refusals; want none, the backlog holds the clients", n)
	}
}

func TestServerMaxConnectionsSpansServices(t *testing.T) {
	a, b := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, "[server]\nlog_format = \"json\"\nmax_connections = 2\n"+
		helperService(t, "a", a, "report-hold")+helperService(t, "b", b, "report-hold"))
	held, _ := holdReport(t, "", addr(a))
	holdReport(t, "", addr(b))
	waiting := dial(t, "", addr(b))
	waitFor(t, "a connection in b's accept queue", func() bool { return acceptQueue(t, b) == 1 })
	held.Close()
	var r report
	if err := json.NewDecoder(waiting).Decode(&r); err != nil {
		t.Fatalf("waiting connection, after a slot was freed on another service: %v", err)
	}
	if most := maxLive(d); most != 2 {
		t.Errorf("at most %d children were live at once across services; want 2", most)
	}
}

func TestMaxPerSource(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "fair", port, "report-hold", "max_per_source = 2"))
	c1, r1 := holdReport(t, "127.0.0.2", addr(port))
	_, r2 := holdReport(t, "127.0.0.2", addr(port))
	if envValue(r1, "TCPCONCURRENCY") != "1" || envValue(r2, "TCPCONCURRENCY") != "2" {
		t.Errorf("TCPCONCURRENCY of the first two from one source: got %q and %q; want 1 and 2",
			envValue(r1, "TCPCONCURRENCY"), envValue(r2, "TCPCONCURRENCY"))
	}
	expectClosed(t, dial(t, "127.0.0.2", addr(port)))
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" })
	if r.str("reason") != "per_source" || !strings.HasPrefix(r.str("peer"), "127.0.0.2:") {
		t.Errorf("refusal %v: want reason per_source for 127.0.0.2", r)
	}
	_, other := holdReport(t, "127.0.0.3", addr(port))
	if got := envValue(other, "TCPCONCURRENCY"); got != "1" {
		t.Errorf("another source's TCPCONCURRENCY: got %q; want 1", got)
	}
	// The slot is freed just after the exit is logged: 127.0.0.2 is
	// admitted again as soon as the reaper gets there.
	c1.Close()
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == fmt.Sprint(r1.PID) })
	var again report
	waitFor(t, "127.0.0.2 to be admitted again", func() bool {
		c := dial(t, "127.0.0.2", addr(port))
		return json.NewDecoder(c).Decode(&again) == nil
	})
	if got := envValue(again, "TCPCONCURRENCY"); got != "2" {
		t.Errorf("after one of its connections ended, 127.0.0.2's TCPCONCURRENCY: got %q; want 2", got)
	}
}

func TestRateLimitPausesTheServiceAndResumes(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("limited", "127.0.0.1", port, `rate_limit = "3/m"`, `rate_pause = "1s"`))
	for i := range 3 {
		if got := exchange(t, addr(port), "ok"); got != "ok" {
			t.Fatalf("connection %d within the rate: got %q", i+1, got)
		}
	}
	// The fourth waits in the backlog until the pause is over, then the
	// service resumes with its full rate, though 3 a minute has not
	// refilled by then: the pause is the whole penalty.
	c := dial(t, "", addr(port))
	io.WriteString(c, "late")
	c.CloseWrite()
	r := d.waitLog(func(r record) bool { return r.msg() == "rate limit reached; pausing" })
	if r.str("rate_limit") != "3/m" || r.str("pause") == "" {
		t.Errorf("pause record %v: want rate_limit 3/m and the pause", r)
	}
	paused := time.Now()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "late" {
		t.Fatalf("fourth connection: got %q, %v; want it served after the pause", b, err)
	}
	t.Logf("fourth connection served %v after the pause began", time.Since(paused).Round(time.Millisecond))
	for i := range 2 {
		if got := exchange(t, addr(port), "more"); got != "more" {
			t.Errorf("connection %d after the pause: got %q", i+1, got)
		}
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "refused" })); n != 0 {
		t.Errorf("%d refusals; want none: a service rate limit pauses accepting", n)
	}
}

func TestRateLimitPerSourceRefusesOnlyThatSource(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("limited", "127.0.0.1", port,
		`rate_limit_per_source = "2/s"`, `rate_pause = "1s"`))
	for range 2 {
		c := dial(t, "127.0.0.2", addr(port))
		c.CloseWrite()
		io.ReadAll(c)
	}
	expectClosed(t, dial(t, "127.0.0.2", addr(port)))
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" })
	if r.str("reason") != "rate_per_source" {
		t.Errorf("refusal %v: want reason rate_per_source", r)
	}
	// Another source is served meanwhile.
	c := dial(t, "127.0.0.3", addr(port))
	io.WriteString(c, "other")
	c.CloseWrite()
	if b, _ := io.ReadAll(c); string(b) != "other" {
		t.Errorf("another source during the pause: got %q; want the echo", b)
	}
	// And the paused source heals by itself.
	waitFor(t, "127.0.0.2 to be served again after its pause", func() bool {
		c := dial(t, "127.0.0.2", addr(port))
		defer c.Close()
		io.WriteString(c, "back")
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		return string(b) == "back"
	})
}

func TestTimeoutTerminatesThenKills(t *testing.T) {
	term, kill := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.sleeper]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "echo started; exec sleep 60"]
timeout = "500ms"

[services.stubborn]
address = "127.0.0.1"
port = %d
program = "/bin/sh"
args = ["-c", "trap '' TERM; echo started; exec sleep 60"]
timeout = "500ms"
`, term, kill))

	for _, c := range []struct {
		port   int
		signal string
		logged string
	}{
		{term, "SIGTERM", "timeout: terminating handler"},
		{kill, "SIGKILL", "timeout: killing handler"},
	} {
		conn := dial(t, "", addr(c.port))
		if line := readLine(t, conn); line != "started" {
			t.Fatalf("handler said %q", line)
		}
		// The connection ends with the handler.
		if b, err := io.ReadAll(conn); err != nil || len(b) > 0 {
			t.Errorf("connection after the timeout: got %q, %v; want EOF", b, err)
		}
		d.waitLog(func(r record) bool { return r.msg() == c.logged })
		r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("signal") == c.signal })
		if r.str("timeout") != "true" {
			t.Errorf("exit record %v: want timeout=true", r)
		}
	}
}

func TestBuiltinTimeoutAndAddressRules(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.discard]
address = "127.0.0.1"
port = %d
builtin = "discard"
timeout = "300ms"
no_access = ["127.0.0.6"]
`, port))
	expectClosed(t, dial(t, "127.0.0.6", addr(port)))
	c := dial(t, "", addr(port))
	if b, err := io.ReadAll(c); err != nil || len(b) > 0 {
		t.Errorf("discard connection past its timeout: got %q, %v; want it closed", b, err)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("builtin") == "discard" })
	if r.str("timeout") != "true" {
		t.Errorf("builtin exit record %v: want timeout=true", r)
	}
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "address" })
}

func TestUDPWaitModeAddressRules(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "udp", port, "udp-upper", `protocol = "udp"`, `no_access = ["127.0.0.2"]`))
	refused := sendUDPFrom(t, "127.0.0.2", port, "nope")
	allowed := sendUDPFrom(t, "127.0.0.3", port, "yes")
	allowed.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 64)
	n, _, err := allowed.ReadFromUDP(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "YES ") {
		t.Fatalf("allowed sender: got %q, %v", buf[:n], err)
	}
	// Datagrams are taken in order, so the refused one was dropped first.
	refused.SetReadDeadline(time.Now())
	if n, _, err := refused.ReadFromUDP(buf); err == nil {
		t.Errorf("refused sender got %q; want nothing", buf[:n])
	}
	d.waitLog(func(r record) bool { return r.msg() == "refused" && strings.HasPrefix(r.str("peer"), "127.0.0.2:") })
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 1 {
		t.Errorf("%d children for one allowed and one refused datagram; want 1", n)
	}
}

// acceptQueue returns the number of connections waiting in the accept
// queue of the IPv4 listening socket on port, from /proc/net/tcp, or -1
// if there is no such socket.
func acceptQueue(t *testing.T, port int) int {
	t.Helper()
	f := listeningSocket(t, port)
	if f == nil {
		return -1
	}
	// A listening socket shows its accept queue as rx_queue.
	var tx, rx int
	fmt.Sscanf(f[4], "%x:%x", &tx, &rx)
	return rx
}

// listeningSocket returns the fields of the /proc/net/tcp line of the IPv4
// socket listening on port (sl local_address rem_address st
// tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...), or nil.
func listeningSocket(t *testing.T, port int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], local) && f[3] == "0A" {
			return f
		}
	}
	return nil
}

// loopbackIPv6 adds addrs to the loopback interface for the test, or skips
// it; cleanup removes them.
func loopbackIPv6(t *testing.T, addrs ...string) {
	t.Helper()
	needIPv6(t)
	ip, err := exec.LookPath("ip")
	if err != nil || os.Geteuid() != 0 {
		t.Skipf("needs root and iproute2's ip to add IPv6 addresses to lo: %v", err)
	}
	for _, a := range addrs {
		if out, err := exec.Command(ip, "-6", "addr", "add", a+"/128", "dev", "lo", "nodad").CombinedOutput(); err != nil {
			t.Skipf("cannot add %s to lo: %v %s", a, err, out)
		}
		t.Cleanup(func() { exec.Command(ip, "-6", "addr", "del", a+"/128", "dev", "lo").Run() })
	}
}

func TestMaxPerSourceGroupsIPv6ByPrefix(t *testing.T) {
	const a, sameSlash64, otherSlash64 = "fd00:676f:6964::2", "fd00:676f:6964::3", "fd00:676f:6964:1::2"
	loopbackIPv6(t, a, sameSlash64, otherSlash64)
	by64, by128 := freePort(t, "::"), freePort(t, "::")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.by64]
address = "::"
port = %d
program = %q
env = { %[3]s = "report-hold" }
max_per_source = 1

[services.by128]
address = "::"
port = %d
program = %q
env = { %[3]s = "report-hold" }
max_per_source = 1
source_prefix_v6 = 128
`, by64, testBinary(t), helperVar, by128, testBinary(t)))
	at := func(port int) string { return net.JoinHostPort("::", strconv.Itoa(port)) }

	// One host owns a /64: a second address in it is the same source.
	holdReport(t, a, at(by64))
	expectClosed(t, dial(t, sameSlash64, at(by64)))
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "per_source" })
	if !strings.HasPrefix(r.str("peer"), "["+sameSlash64+"]:") {
		t.Errorf("refusal %v: want the second address of the /64", r)
	}
	if _, rep := holdReport(t, otherSlash64, at(by64)); envValue(rep, "TCPREMOTEIP") != otherSlash64 {
		t.Errorf("another /64: TCPREMOTEIP %q; want %s", envValue(rep, "TCPREMOTEIP"), otherSlash64)
	}
	// With source_prefix_v6 = 128 every address is a source of its own.
	holdReport(t, a, at(by128))
	holdReport(t, sameSlash64, at(by128))
}
