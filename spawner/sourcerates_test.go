package spawner

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
)

// v4Source is the i-th of a run of distinct IPv4 sources in 10.0.0.0/8.
func v4Source(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

// fillPaused fills r with max sources, each past its rate and paused at t.
func fillPaused(t *testing.T, r *sourceRates, n int, at time.Time) {
	t.Helper()
	for i := range r.max {
		for range n {
			r.allow(v4Source(i), at)
		}
		if r.allow(v4Source(i), at) {
			t.Fatalf("source %d of the fill past its rate of %d: allowed", i, n)
		}
	}
	if len(r.index) != r.max {
		t.Fatalf("the table holds %d sources; want %d", len(r.index), r.max)
	}
}

// A full table of paused sources never lets a new source through without
// a limit: the attack of issue 21 (item 12), at the table's real size.
func TestSourceRatesFullTableStillLimitsANewSource(t *testing.T) {
	const n = 3
	r := newSourceRates(config.Rate{N: n, Per: time.Minute}, 10*time.Second, 64, maxSources)
	t0 := time.Now()
	fillPaused(t, r, n, t0)
	newcomer := netip.MustParsePrefix("192.0.2.1/32")
	for i := range n {
		if !r.allow(newcomer, t0.Add(time.Second)) {
			t.Fatalf("connection %d of a new source, within its rate, to a full table: refused", i+1)
		}
	}
	if r.allow(newcomer, t0.Add(time.Second)) {
		t.Errorf("connection %d of a new source to a full table of paused sources: allowed; want it refused, past its rate of %d/m", n+1, n)
	}
	if len(r.index) != maxSources {
		t.Errorf("the table holds %d sources; want %d, the least recently seen evicted", len(r.index), maxSources)
	}
}

// The source evicted for a new one is the least recently seen; one seen
// recently keeps its pause.
func TestSourceRatesEvictLeastRecentlySeen(t *testing.T) {
	r := newSourceRates(config.Rate{N: 1, Per: time.Minute}, time.Hour, 64, 4)
	t0 := time.Now()
	fillPaused(t, r, 1, t0)    // sources 0-3, paused
	r.allow(v4Source(0), t0)   // source 0 seen again: now 1 is the least recent
	r.allow(v4Source(100), t0) // evicts 1
	if _, ok := r.index[v4Source(1)]; ok {
		t.Errorf("source 1, the least recently seen, is still in the table")
	}
	if r.allow(v4Source(0), t0.Add(time.Second)) {
		t.Errorf("source 0, seen recently and paused, was allowed; want it still paused")
	}
	if !r.allow(v4Source(1), t0.Add(time.Second)) {
		t.Errorf("source 1, evicted, was refused; want it to start afresh")
	}
}

// Under pressure (a full table whose least recent source still holds
// state), new IPv6 /64s are counted under their /48; without it, each /64
// has its own rate.
func TestSourceRatesAggregateIPv6UnderPressure(t *testing.T) {
	site := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, byte(i)}), 64)
	}
	t0 := time.Now()

	idle := newSourceRates(config.Rate{N: 2, Per: time.Second}, time.Hour, 64, 4)
	fillPaused(t, idle, 2, t0.Add(-2*time.Hour)) // paused, but long ago: idle now
	for i := range 3 {
		if !idle.allow(site(i), t0) {
			t.Errorf("/64 number %d of one /48, to a full table of idle sources: refused; want its own rate", i)
		}
	}

	pressed := newSourceRates(config.Rate{N: 2, Per: time.Second}, time.Hour, 64, 4)
	fillPaused(t, pressed, 2, t0)
	got := []bool{pressed.allow(site(0), t0), pressed.allow(site(1), t0), pressed.allow(site(2), t0)}
	if want := []bool{true, true, false}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("three /64s of one /48, to a table under pressure, with 2/s per source: got %v; want %v, one rate for the /48", got, want)
	}
	if _, ok := pressed.index[netip.MustParsePrefix("2001:db8:1::/48")]; !ok {
		t.Errorf("under pressure the table has no entry for the /48")
	}
}

// BenchmarkSourceRatesFull measures one admission of a source new to a
// full table of paused sources, the case that scanned the whole table, at
// two table sizes: the cost does not grow with the table.
func BenchmarkSourceRatesFull(b *testing.B) {
	for _, size := range []int{1 << 10, maxSources} {
		b.Run(fmt.Sprintf("sources=%d", size), func(b *testing.B) {
			r := newSourceRates(config.Rate{N: 1, Per: time.Minute}, time.Hour, 64, size)
			t0 := time.Now()
			for i := range size {
				r.allow(v4Source(i), t0)
				r.allow(v4Source(i), t0)
			}
			i := size
			b.ReportAllocs()
			for b.Loop() {
				r.allow(v4Source(i%(4*size)), t0)
				i++
			}
		})
	}
}

// BenchmarkSourceRatesKnown measures one admission of a source already in
// a full table.
func BenchmarkSourceRatesKnown(b *testing.B) {
	r := newSourceRates(config.Rate{N: 1, Per: time.Millisecond}, time.Hour, 64, maxSources)
	t0 := time.Now()
	for i := range maxSources {
		r.allow(v4Source(i), t0)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r.allow(v4Source(i%maxSources), t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}
