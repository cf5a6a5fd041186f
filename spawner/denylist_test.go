package spawner

import (
	"net/netip"
	"testing"
	"time"
)

// Past its size, the list evicts the source added longest ago, and a
// source added again becomes the newest.
func TestDenyListEvictsTheOldest(t *testing.T) {
	d := newDenyList(4, nil)
	d.setTime(time.Hour)
	now := time.Now()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	for i := range 4 {
		d.add(netip.PrefixFrom(addr(i), 32), now)
	}
	d.add(netip.PrefixFrom(addr(0), 32), now) // 0 is the newest now
	for i := 4; i < 1000; i++ {
		d.add(netip.PrefixFrom(addr(i), 32), now)
		if n := d.len(); n > 4 {
			t.Fatalf("after %d sources: got %d on the list; want at most 4", i+1, n)
		}
	}
	for i := range 1000 {
		if got, want := d.has(addr(i), now), i >= 996; got != want {
			t.Errorf("source %v denied: got %v; want %v (only the 4 newest are kept)", addr(i), got, want)
		}
	}
}

// A source is denied for deny_time from its addition; deny_time 0 adds
// nothing; an IPv6 source is its prefix.
func TestDenyListTime(t *testing.T) {
	d := newDenyList(16, nil)
	now := time.Now()
	a := netip.MustParseAddr("192.0.2.1")
	if d.add(netip.PrefixFrom(a, 32), now) || d.has(a, now) {
		t.Fatalf("deny_time 0: got the source denied; want nothing added")
	}
	d.setTime(time.Second)
	d.add(netip.PrefixFrom(a, 32), now)
	site := netip.MustParsePrefix("2001:db8:1:2::/64")
	d.add(site, now)
	for _, c := range []struct {
		addr string
		at   time.Duration
		want bool
	}{
		{"192.0.2.1", 0, true},
		{"192.0.2.2", 0, false},
		{"2001:db8:1:2::99", 0, true},
		{"2001:db8:1:3::1", 0, false},
		{"192.0.2.1", 999 * time.Millisecond, true},
		{"192.0.2.1", time.Second, false},
		{"2001:db8:1:2::99", time.Second, false},
	} {
		if got := d.has(netip.MustParseAddr(c.addr), now.Add(c.at)); got != c.want {
			t.Errorf("%s denied %v after: got %v; want %v", c.addr, c.at, got, c.want)
		}
	}
	if d.active() || len(d.v6Bits) != 0 {
		t.Errorf("after deny_time: got %d sources, IPv6 lengths %v; want none", d.count.Load(), d.v6Bits)
	}
}

// The cost of the deny check every admission makes: empty (the common
// case), and full with the client not on it.
func BenchmarkDenyListHas(b *testing.B) {
	client := netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	for _, n := range []int{0, maxDenied} {
		d := newDenyList(maxDenied, nil)
		d.setTime(time.Hour)
		for i := range n {
			d.add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), now)
		}
		b.Run(map[int]string{0: "empty", maxDenied: "full"}[n], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d.has(client, now) {
					b.Fatal("denied")
				}
			}
		})
	}
}
