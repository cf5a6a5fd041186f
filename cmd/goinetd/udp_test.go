package main

// Attacks on the UDP built-ins: a forged source that makes goinetd answer
// itself, a flood that asks chargen for more than it is sent, and sources
// on the ports of services that answer datagrams themselves; and what
// `goinetd check` says of a UDP chargen.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpBuiltin is a service table for the UDP built-in name on 127.0.0.1.
func udpBuiltin(name, builtin string, port int, extra string) string {
	return fmt.Sprintf("\n[services.%s]\nprotocol = \"udp\"\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = %q\n%s\n", name, port, builtin, extra)
}

// metricsServer is a [server] table with JSON logs and metrics on a free
// loopback port, and the URL to scrape.
func metricsServer(t *testing.T) (table, url string) {
	t.Helper()
	port := freePort(t, "127.0.0.1")
	return fmt.Sprintf("[server]\nlog_format = \"json\"\nmetrics = \"127.0.0.1:%d\"\n", port),
		fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
}

// sendForged sends one UDP datagram holding payload to dst with the
// forged source src, through a raw IPv4 socket, as an attacker off the
// host would. It skips the test unless it may open a raw socket (root, or
// CAP_NET_RAW).
func sendForged(t *testing.T, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		t.Skipf("needs root (CAP_NET_RAW) to forge a source address: %v", err)
	}
	if err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	defer unix.Close(fd)
	// IPPROTO_RAW implies IP_HDRINCL; the kernel fills in the total
	// length, the id and the header checksum. A UDP checksum of 0 means
	// none, which IPv4 allows.
	packet := make([]byte, 20+8+len(payload))
	packet[0] = 0x45 // IPv4, a 5-word header
	packet[8] = 64   // TTL
	packet[9] = unix.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(packet[12:16], s4[:])
	copy(packet[16:20], d4[:])
	binary.BigEndian.PutUint16(packet[20:], src.Port())
	binary.BigEndian.PutUint16(packet[22:], dst.Port())
	binary.BigEndian.PutUint16(packet[24:], uint16(8+len(payload)))
	copy(packet[28:], payload)
	if err := unix.Sendto(fd, packet, 0, &unix.SockaddrInet4{Addr: d4}); err != nil {
		t.Fatalf("send a datagram forged from %v to %v: %v", src, dst, err)
	}
}

// udpClientOn returns a UDP socket bound to host (port 0: any), with a
// deadline of ioTimeout, closed when the test ends.
func udpClientOn(t *testing.T, host string, port int) (*net.UDPConn, error) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(host), Port: port})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return c, nil
}

// roundTrip sends msg from c to the echo service on port and waits for it
// to come back. The packet loop handles datagrams in order, so once it
// does, every datagram sent to port before it has been handled.
func roundTrip(t *testing.T, c *net.UDPConn, port int, msg string) {
	t.Helper()
	if _, err := c.WriteToUDP([]byte(msg), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("echo of %q: %v", msg, err)
		}
		if from.Port == port && string(buf[:n]) == msg {
			return
		}
	}
}

// scrapeCount is scrape for a counter that is absent until counted: 0.
func scrapeCount(t *testing.T, url, series string) float64 {
	t.Helper()
	return max(scrape(t, url, series), 0)
}

// queued takes the datagrams queued on c now, without waiting for more
// (a read deadline in the past would not even look), and returns how many
// there were and their bytes.
func queued(t *testing.T, c *net.UDPConn) (datagrams, bytes int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	err = raw.Control(func(fd uintptr) {
		for {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			datagrams, bytes = datagrams+1, bytes+n
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return datagrams, bytes
}

// askUntilAnswered sends an empty datagram from c to port until one is
// answered, each time waiting up to 100 ms, at most 100 times: the service's
// receive queue may be full and drop it. Datagrams are handled in order, so
// once it is answered, every datagram the service had received before it
// has been handled.
func askUntilAnswered(t *testing.T, c *net.UDPConn, port int) {
	t.Helper()
	buf := make([]byte, 65536)
	for range 100 {
		if _, err := c.WriteToUDP(nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := c.ReadFromUDP(buf); err == nil {
			return
		}
	}
	t.Fatalf("no answer from port %d to 100 datagrams in 10s", port)
}

// TestUDPBuiltinDoesNotAnswerGoinetdsOwnPorts forges datagrams whose
// source is a UDP built-in of goinetd: the echo service itself, and its
// daytime service. Answered, each starts a loop inside goinetd that runs
// until restart (~75,000 datagrams a second were measured); every reply
// budget is lifted here, so only the own-port rule stops it.
func TestUDPBuiltinDoesNotAnswerGoinetdsOwnPorts(t *testing.T) {
	server, url := metricsServer(t)
	echo, daytime := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	lifted := "udp_reply_rate = 0\nudp_reply_bytes = 0\nudp_reply_rate_per_source = 0\nudp_reply_bytes_per_source = 0"
	startDaemon(t, server+
		udpBuiltin("echo", "echo", echo, "udp_reflection = true\n"+lifted)+
		udpBuiltin("daytime", "daytime", daytime, lifted))
	echoAt := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(echo))
	daytimeAt := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(daytime))

	sendForged(t, echoAt, echoAt, []byte("from yourself"))
	sendForged(t, daytimeAt, echoAt, []byte("from your daytime"))
	received := `goinetd_connections_accepted_total{service="echo"}`
	waitFor(t, "echo to receive both forged datagrams", func() bool { return scrape(t, url, received) >= 2 })
	client, err := udpClientOn(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, client, echo, "probe")

	if got := scrape(t, url, received); got != 3 {
		t.Errorf("datagrams echo received: got %v; want 3, the two forged ones and the probe, each once: it answered its own port (a loop)", got)
	}
	if got := scrapeCount(t, url, `goinetd_connections_accepted_total{service="daytime"}`); got != 0 {
		t.Errorf("datagrams daytime received: got %v; want 0: echo answered the daytime port", got)
	}
	if got := scrapeCount(t, url, `goinetd_udp_unanswered_total{reason="own_port",service="echo"}`); got != 2 {
		t.Errorf("datagrams echo left unanswered for coming from goinetd's own port: got %v; want 2", got)
	}
	if got := scrapeCount(t, url, `goinetd_udp_replies_total{service="echo"}`); got != 1 {
		t.Errorf("replies echo sent: got %v; want 1, to the probe", got)
	}
}

// TestUDPBuiltinBudgetBoundsAmplification floods chargen with empty
// datagrams from one source: each asks for up to 512 bytes, so unbounded,
// the source (a victim, with a forged address) gets up to 19 times what
// was sent. It gets at most its budget instead, first with the default
// budgets (10 replies a second bind first), then with only the default
// bytes per source (8 KiB a second) left.
func TestUDPBuiltinBudgetBoundsAmplification(t *testing.T) {
	const flood = 2000
	for _, c := range []struct {
		name      string
		extra     string
		perSecond float64 // what one source may get
		count     func(datagrams, bytes int) float64
		unit      string
	}{
		{"default budgets", "", 10, func(d, _ int) float64 { return float64(d) }, "replies"},
		{"bytes per source", "udp_reply_rate_per_source = 0\nudp_reply_rate = 0\nudp_reply_bytes = 0",
			8192, func(_, b int) float64 { return float64(b) }, "bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			server, url := metricsServer(t)
			chargen := freePort(t, "127.0.0.1")
			d := startDaemon(t, server+udpBuiltin("chargen", "chargen", chargen, "udp_reflection = true\n"+c.extra))
			victim, err := udpClientOn(t, "127.0.0.1", 0)
			if err != nil {
				t.Fatal(err)
			}
			victim.SetReadBuffer(4 << 20) // so that the replies of the old code would not be lost
			to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: chargen}
			start := time.Now()
			for range flood {
				if _, err := victim.WriteToUDP(nil, to); err != nil {
					t.Fatal(err)
				}
			}
			// Another source, with a budget of its own: once it has a
			// reply, the flood has been handled.
			probe, err := udpClientOn(t, "127.0.0.2", 0)
			if err != nil {
				t.Fatal(err)
			}
			askUntilAnswered(t, probe, chargen)
			elapsed := time.Since(start).Seconds()
			datagrams, bytes := queued(t, victim)
			got, limit := c.count(datagrams, bytes), c.perSecond*(1+elapsed)
			t.Logf("%d empty datagrams: %d replies, %d bytes in %.3fs", flood, datagrams, bytes, elapsed)
			if datagrams == 0 {
				t.Errorf("got no reply at all; want the budget's worth")
			}
			if got > limit {
				t.Errorf("one source got %v %s in %.3fs; want at most %v (%v a second, all at once after a quiet time)",
					got, c.unit, elapsed, limit, c.perSecond)
			}
			if n := scrapeCount(t, url, `goinetd_udp_unanswered_total{reason="source_budget",service="chargen"}`); n == 0 {
				t.Errorf("datagrams left unanswered over the source's budget: got 0; want them counted")
			}
			// Logged at a bounded rate: one record at once, then at most
			// one a second.
			records := d.logs.records(func(r record) bool {
				return r.msg() == "datagram not answered" && r.str("reason") == "source_budget"
			})
			if len(records) == 0 || float64(len(records)) > 2+elapsed {
				t.Errorf("records of unanswered datagrams: got %d in %.3fs; want 1 and at most one a second more", len(records), elapsed)
			}
		})
	}
}

// TestUDPBuiltinDoesNotAnswerReflectorPorts sends to the echo service from
// the well-known ports of services that answer datagrams themselves: a
// reply there starts a loop with that service.
func TestUDPBuiltinDoesNotAnswerReflectorPorts(t *testing.T) {
	server, url := metricsServer(t)
	echo := freePort(t, "127.0.0.1")
	startDaemon(t, server+udpBuiltin("echo", "echo", echo, "udp_reflection = true"))
	var watchers []*net.UDPConn
	for _, port := range []int{1900, 5353, 11211} {
		c, err := udpClientOn(t, "127.0.0.1", port)
		if err != nil {
			t.Logf("cannot bind 127.0.0.1:%d (%v): not tried", port, err)
			continue
		}
		if _, err := c.WriteToUDP([]byte("loop?"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: echo}); err != nil {
			t.Fatal(err)
		}
		watchers = append(watchers, c)
	}
	if len(watchers) == 0 {
		t.Skip("no reflector port was free to send from")
	}
	client, err := udpClientOn(t, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, client, echo, "probe")
	for _, c := range watchers {
		if n, _ := queued(t, c); n != 0 {
			t.Errorf("echo answered %d datagrams to source port %d; want none", n, c.LocalAddr().(*net.UDPAddr).Port)
		}
	}
	series := `goinetd_udp_unanswered_total{reason="reflector_port",service="echo"}`
	if got := scrapeCount(t, url, series); got != float64(len(watchers)) {
		t.Errorf("%s: got %v; want %d", series, got, len(watchers))
	}
}

// TestUDPBuiltinDoesNotAnswerAWildcardServicesPort forges a datagram from
// another loopback address on the port of a service bound to every
// address: that service is reachable there too.
func TestUDPBuiltinDoesNotAnswerAWildcardServicesPort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to forge a source address")
	}
	server, url := metricsServer(t)
	echo, wild := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	// The time service binds 0.0.0.0 (IPv4 only, so that a test on ::1
	// elsewhere is not in the way); nothing but loopback reaches it here.
	startDaemon(t, server+udpBuiltin("echo", "echo", echo, "udp_reflection = true")+
		fmt.Sprintf("\n[services.time]\nprotocol = \"udp\"\naddress = \"0.0.0.0\"\nport = %d\nbuiltin = \"time\"\n", wild))
	from := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), uint16(wild))
	sendForged(t, from, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(echo)), []byte("from time"))
	waitFor(t, "echo to receive the forged datagram", func() bool {
		return scrape(t, url, `goinetd_connections_accepted_total{service="echo"}`) >= 1
	})
	// From an address of its own, whose budget a loop would not use up.
	client, err := udpClientOn(t, "127.0.0.2", 0)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, client, echo, "probe")
	if got := scrapeCount(t, url, `goinetd_connections_accepted_total{service="time"}`); got != 0 {
		t.Errorf("datagrams the time service received: got %v; want 0: echo answered it at %v", got, from)
	}
	if got := scrapeCount(t, url, `goinetd_udp_unanswered_total{reason="own_port",service="echo"}`); got != 1 {
		t.Errorf("datagrams echo left unanswered for coming from goinetd's own port: got %v; want 1", got)
	}
}

// TestCheckUDPBuiltins runs `goinetd check` on a UDP chargen: without
// udp_reflection it is an error that names the key; with it, bound to
// every address, a warning.
func TestCheckUDPBuiltins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inetd.toml")
	chargen := "[services.chargen]\nprotocol = \"udp\"\nport = 19\nbuiltin = \"chargen\"\n"
	os.WriteFile(path, []byte(chargen), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("check of a udp chargen without udp_reflection: exit %d; want 1", code)
	}
	want := path + ":4: services.chargen.builtin: \"chargen\" over udp answers an empty datagram with up to 512 bytes"
	if !strings.HasPrefix(stderr.String(), want) || !strings.Contains(stderr.String(), "set udp_reflection = true") {
		t.Errorf("got stderr %q; want it to start with %q and name udp_reflection", stderr.String(), want)
	}

	os.WriteFile(path, []byte(chargen+"udp_reflection = true\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", "-config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("check of a udp chargen with udp_reflection: exit %d; want 0; stderr %q", code, stderr.String())
	}
	want = "warning: " + path + ":1: services.chargen.address: a udp built-in answers whatever source a datagram names"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("got stderr %q; want it to start with %q", stderr.String(), want)
	}
}
