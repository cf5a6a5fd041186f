package main

// Socket options: each, set in the config, is what the handler finds on
// its connection (getsockopt on fd 0), and defer_accept starts no handler
// for a client that sends nothing.

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sockoptsOf connects to address and returns the options the "sockopts"
// handler reports.
func sockoptsOf(t *testing.T, address string) map[string]int {
	t.Helper()
	c := dial(t, "", address)
	var opts map[string]int
	if err := json.NewDecoder(c).Decode(&opts); err != nil {
		t.Fatalf("decode the handler's socket options: %v", err)
	}
	return opts
}

// checkOptions compares the options got with want, by name.
func checkOptions(t *testing.T, got, want map[string]int) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s on the handler's socket: got %d (reported: %t); want %d", name, g, ok, w)
		}
	}
}

// sockoptsConfig sets every TCP option to a value none of the kernel's
// defaults has. The kernel reports twice the buffer size set (the rest is
// its bookkeeping), as socket(7) says.
const sockoptsConfig = `
tcp_nodelay = true
keepalive = true
keepalive_idle = "77s"
keepalive_interval = "11s"
keepalive_count = 5
receive_buffer = "96KiB"
send_buffer = 40000
ip_tos = 0x28
ip_ttl = 42
`

func TestSocketOptionsReachTheHandler(t *testing.T) {
	port, plain := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "tuned", port, "sockopts", sockoptsConfig)+
		helperService(t, "plain", plain, "sockopts"))

	checkOptions(t, sockoptsOf(t, addr(port)), map[string]int{
		"TCP_NODELAY": 1, "SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 77, "TCP_KEEPINTVL": 11, "TCP_KEEPCNT": 5,
		"SO_RCVBUF": 2 * 96 << 10, "SO_SNDBUF": 2 * 40000, "IP_TOS": 0x28, "IP_TTL": 42,
	})
	// Without the keys, the kernel's defaults: no option is on.
	checkOptions(t, sockoptsOf(t, addr(plain)), map[string]int{"TCP_NODELAY": 0, "SO_KEEPALIVE": 0, "IP_TOS": 0})
}

func TestSocketOptionsReachTheHandlerOverIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("needs IPv6 on loopback: %v", err)
	} else {
		ln.Close()
	}
	port := freePort(t, "::1")
	config := strings.Replace(helperService(t, "tuned6", port, "sockopts", sockoptsConfig), `"127.0.0.1"`, `"::1"`, 1)
	startDaemon(t, jsonLog+config)
	checkOptions(t, sockoptsOf(t, net.JoinHostPort("::1", strconv.Itoa(port))), map[string]int{
		"TCP_NODELAY": 1, "SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 77, "IPV6_TCLASS": 0x28, "IPV6_UNICAST_HOPS": 42,
	})
}

// A service without an address binds one IPv6 socket that IPv4 clients
// reach too: each family's TOS and TTL are set on it.
func TestSocketOptionsReachTheHandlerOnADualStackSocket(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("needs IPv6 on loopback: %v", err)
	} else {
		ln.Close()
	}
	port := freePort(t, "::")
	config := strings.Replace(helperService(t, "both", port, "sockopts", sockoptsConfig), `address = "127.0.0.1"`, "", 1)
	startDaemon(t, jsonLog+config)
	checkOptions(t, sockoptsOf(t, addr(port)), map[string]int{"TCP_NODELAY": 1, "IP_TOS": 0x28, "IP_TTL": 42})
	checkOptions(t, sockoptsOf(t, net.JoinHostPort("::1", strconv.Itoa(port))), map[string]int{
		"TCP_NODELAY": 1, "IPV6_TCLASS": 0x28, "IPV6_UNICAST_HOPS": 42,
	})
}

func TestSocketOptionsReachAUDPHandler(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "udp", port, "udp-sockopts", `protocol = "udp"`,
		`receive_buffer = "64KiB"`, `send_buffer = "32KiB"`, `ip_tos = 0x28`, `ip_ttl = 42`))
	c, err := net.Dial("udp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte("options?")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read the handler's reply: %v", err)
	}
	var opts map[string]int
	if err := json.Unmarshal(buf[:n], &opts); err != nil {
		t.Fatalf("decode %q: %v", buf[:n], err)
	}
	checkOptions(t, opts, map[string]int{"SO_RCVBUF": 2 * 64 << 10, "SO_SNDBUF": 2 * 32 << 10, "IP_TOS": 0x28, "IP_TTL": 42})
}

func TestSocketMarkReachesTheHandler(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_MARK needs CAP_NET_ADMIN: run as root")
	}
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "marked", port, "sockopts", `mark = 4711`))
	checkOptions(t, sockoptsOf(t, addr(port)), map[string]int{"SO_MARK": 4711})
}

// The backlog is not readable with getsockopt; ss reads it from the
// kernel's socket diagnostics (the Send-Q of a listening socket).
func TestBacklogIsSetOnTheListener(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("needs ss (iproute2) to read a listener's backlog")
	}
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "short", port, "sockopts", `backlog = 17`))
	out, err := exec.Command(ss, "-Hltn", "sport = :"+strconv.Itoa(port)).Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	// State Recv-Q Send-Q Local Peer: Send-Q is the backlog.
	fields := strings.Fields(string(out))
	if len(fields) < 3 || fields[2] != "17" {
		t.Errorf("ss -ltn for port %d: got %q; want a listener with Send-Q (backlog) 17", port, out)
	}
}

func TestDeferAcceptStartsNoHandlerForASilentClient(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "deferred", port, "sockopts", `defer_accept = "30s"`))
	isSpawned := func(r record) bool { return r.msg() == "spawned" }
	spawned := func() int { return len(d.logs.records(isSpawned)) }

	silent := dial(t, "", addr(port)) // connected, and sends nothing
	// A second client that speaks is served while the first still waits
	// in the kernel: had the first been accepted, it would have been
	// accepted first.
	talker := dial(t, "", addr(port))
	if _, err := talker.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var opts map[string]int
	if err := json.NewDecoder(talker).Decode(&opts); err != nil {
		t.Fatalf("the client that sent data: decode the handler's report: %v", err)
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" })
	d.waitLogs(1, isSpawned)
	if n := spawned(); n != 1 {
		t.Errorf("after a silent client and one that sent a byte: got %d handlers; want 1", n)
	}
	// Once the silent client speaks, it gets its handler.
	if _, err := silent.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(silent).Decode(&opts); err != nil {
		t.Fatalf("the silent client, once it sent data: decode the handler's report: %v", err)
	}
	d.waitLogs(2, isSpawned)
}

func TestReloadWithOtherSocketOptionsRebinds(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "svc", port, "sockopts"))
	checkOptions(t, sockoptsOf(t, addr(port)), map[string]int{"TCP_NODELAY": 0})
	d.writeConfig(jsonLog + helperService(t, "svc", port, "sockopts", `tcp_nodelay = true`))
	if r := d.reload(1); r.msg() != "reloaded" {
		t.Fatalf("reload: got %q; want reloaded", r.msg())
	}
	checkOptions(t, sockoptsOf(t, addr(port)), map[string]int{"TCP_NODELAY": 1})
}
