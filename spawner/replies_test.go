package spawner

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/goinetd/goinetd/config"
)

// spendAll spends replies of size from source at now until one is refused,
// at most max times, and returns how many fitted and why the last did not.
func spendAll(g *replyGate, source netip.Prefix, size int, now time.Time, max int) (int, string, string) {
	for i := range max {
		if reason, key := g.spend(source, size, now); reason != "" {
			return i, reason, key
		}
	}
	return max, "", ""
}

func TestReplyGateBudgets(t *testing.T) {
	src := netip.MustParsePrefix("192.0.2.1/32")
	other := netip.MustParsePrefix("192.0.2.2/32")
	for _, c := range []struct {
		name      string
		replies   config.Replies
		size      int
		want      int // replies that fit at once
		reason    string
		key       string
		refilled  time.Duration // after which one more fits
		otherFits bool          // whether another source then gets a reply
	}{
		{"replies per source", config.Replies{RatePerSource: config.Rate{N: 10, Per: time.Second}},
			0, 10, unansweredSourceBudget, "udp_reply_rate_per_source", 100 * time.Millisecond, true},
		{"bytes per source", config.Replies{BytesPerSource: config.Rate{N: 8192, Per: time.Second}},
			512, 16, unansweredSourceBudget, "udp_reply_bytes_per_source", 63 * time.Millisecond, true},
		{"replies of the service", config.Replies{Rate: config.Rate{N: 5, Per: time.Minute}},
			100, 5, unansweredServiceBudget, "udp_reply_rate", 12 * time.Second, false},
		{"bytes of the service", config.Replies{Bytes: config.Rate{N: 1000, Per: 10 * time.Second}},
			100, 10, unansweredServiceBudget, "udp_reply_bytes", time.Second, false},
		{"the smallest of all", config.Replies{RatePerSource: config.Rate{N: 10, Per: time.Second},
			BytesPerSource: config.Rate{N: 8192, Per: time.Second}, Rate: config.Rate{N: 3, Per: time.Second}},
			512, 3, unansweredServiceBudget, "udp_reply_rate", 334 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newReplyGate(c.replies)
			t0 := clockOrigin.Add(time.Hour)
			n, reason, key := spendAll(g, src, c.size, t0, 1000)
			if n != c.want || reason != c.reason || key != c.key {
				t.Fatalf("replies of %d bytes at once: got %d, then %q (%s); want %d, then %q (%s)", c.size, n, reason, key, c.want, c.reason, c.key)
			}
			if reason, _ := g.spend(src, c.size, t0.Add(c.refilled-time.Millisecond)); reason == "" {
				t.Errorf("a reply %v later: got one; want none until %v", c.refilled-time.Millisecond, c.refilled)
			}
			if reason, _ := g.spend(src, c.size, t0.Add(c.refilled)); reason != "" {
				t.Errorf("a reply %v later: got %q; want it to fit", c.refilled, reason)
			}
			if reason, _ := g.spend(other, c.size, t0.Add(c.refilled)); (reason == "") != c.otherFits {
				t.Errorf("a reply to another source: got %q; want it to fit: %v", reason, c.otherFits)
			}
		})
	}
}

func TestReplyGateZeroLiftsEveryBudget(t *testing.T) {
	g := newReplyGate(config.Replies{})
	if g.sources != nil {
		t.Errorf("got a per-source table with both per-source budgets lifted; want none")
	}
	src := netip.MustParsePrefix("192.0.2.1/32")
	if n, reason, _ := spendAll(g, src, 65507, clockOrigin, 100000); n != 100000 {
		t.Errorf("with every budget lifted: got %d replies, then %q; want them all", n, reason)
	}
}

func TestReplyLargerThanTheBurstNeverFits(t *testing.T) {
	g := newReplyGate(config.Replies{BytesPerSource: config.Rate{N: 8192, Per: time.Second}})
	src := netip.MustParsePrefix("192.0.2.1/32")
	if reason, key := g.spend(src, 8193, clockOrigin.Add(time.Hour)); reason != unansweredSourceBudget {
		t.Errorf("a reply of 8193 bytes with 8192 bytes/s: got %q (%s); want %q", reason, key, unansweredSourceBudget)
	}
	if reason, _ := g.spend(src, 8192, clockOrigin.Add(time.Hour)); reason != "" {
		t.Errorf("a reply of 8192 bytes with 8192 bytes/s: got %q; want it to fit", reason)
	}
}

// TestSourceTableUnderPressure floods the per-source table with many more
// sources than it holds, all at the same moment: the table stays its size,
// and a source that has spent its budget gets nothing more, however many
// other sources pushed it out in between.
func TestSourceTableUnderPressure(t *testing.T) {
	if size := unsafe.Sizeof(sourceBudgets{}); size > 256<<10 {
		t.Errorf("per-source table: got %d bytes; want at most 256 KiB", size)
	}
	g := newReplyGate(config.Replies{RatePerSource: config.Rate{N: 10, Per: time.Second}})
	now := clockOrigin.Add(time.Hour)
	victim := netip.MustParsePrefix("198.51.100.7/32")
	if n, _, _ := spendAll(g, victim, 0, now, 100); n != 10 {
		t.Fatalf("victim: got %d replies; want 10", n)
	}
	for i := range 20_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if n, _, _ := spendAll(g, netip.PrefixFrom(a, 32), 0, now, 100); n > 10 {
			t.Fatalf("source %s: got %d replies; want at most 10", a, n)
		}
	}
	if n, _, _ := spendAll(g, victim, 0, now, 100); n != 0 {
		t.Errorf("victim again, after 20,000 other sources: got %d replies; want 0 until its budget refills", n)
	}
	// Once everyone's budget is whole, a new source gets its own in full.
	later := now.Add(time.Second)
	if n, _, _ := spendAll(g, netip.MustParsePrefix("203.0.113.9/32"), 0, later, 100); n != 10 {
		t.Errorf("a new source a second later: got %d replies; want 10", n)
	}
}

func TestOwnPorts(t *testing.T) {
	listeners := map[string]*listener{}
	for i, svc := range []*config.Service{
		{Protocol: config.UDP, Port: 7},
		{Protocol: config.UDP, Port: 17014},
		{Protocol: config.UDP, Port: 65535},
		{Protocol: config.TCP, Port: 17015},
	} {
		listeners[string(rune('a'+i))] = &listener{bound: svc}
	}
	p := udpPortsOf(listeners)
	for port, want := range map[uint16]bool{7: true, 17014: true, 65535: true, 17015: false, 0: false, 17013: false, 64: false} {
		if got := p.has(port); got != want {
			t.Errorf("has(%d): got %v; want %v", port, got, want)
		}
	}
	if (*ownPorts)(nil).has(7) {
		t.Errorf("nil set has(7): got true; want false")
	}
}

// BenchmarkReplyGateSpend is the budget's cost per datagram, with the
// default budgets, spread over many sources.
func BenchmarkReplyGateSpend(b *testing.B) {
	g := newReplyGate(config.Replies{Rate: config.DefaultReplyRate, Bytes: config.DefaultReplyBytes,
		RatePerSource: config.DefaultReplyRatePerSource, BytesPerSource: config.DefaultReplyBytesPerSource})
	now := clockOrigin
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		g.spend(netip.PrefixFrom(a, 32), 256, now.Add(time.Duration(i)*time.Microsecond))
	}
}
