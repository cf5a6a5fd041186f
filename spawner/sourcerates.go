package spawner

import (
	"net/netip"
	"sync"
	"time"

	"github.com/goinetd/goinetd/config"
)

// The per-source rate table of a service (rate_limit_per_source). It is
// consulted for every connection, on the spawn loop's thread, so each
// admission costs O(1) and, once the table has grown, allocates nothing:
// a map from source to an entry in a slice, the entries on a list from
// the most to the least recently seen.
//
// The table holds at most maxSources sources. A new source past that
// takes the entry of the least recently seen one; it is never let through
// unlimited. If that entry still holds state (its source is paused or
// has used some of its rate), the table is under pressure, and a new IPv6
// source is then counted under its /48 (pressurePrefixV6), so that one
// site's many /64s take one entry, not the whole table. Evicting a source
// forgets its pause: under a flood of that many sources, the service's
// own rate_limit is the defence.

// maxSources bounds each service's per-source rate table.
const maxSources = 1 << 16

// pressurePrefixV6 is the prefix length new IPv6 sources are counted
// under while the table is under pressure: a site (RFC 6177).
const pressurePrefixV6 = 48

// sourceRates is the rate limit of each source of one service.
type sourceRates struct {
	// The rate as GCRA (a token bucket in one number per source): each
	// connection moves a source's theoretical arrival time on by
	// emission, and one is refused when that time is more than burst
	// ahead of now.
	emission, burst int64 // nanoseconds
	pause           int64
	pressureBits    int // 0: IPv6 sources are not aggregated under pressure
	max             int

	mu      sync.Mutex
	index   map[netip.Prefix]int32 // each source's entry
	entries []sourceRate           // entries[0] heads the list: its next is the most recently seen
}

// sourceRate is one source's state, and its place on the recency list.
type sourceRate struct {
	src         netip.Prefix
	tat         int64 // theoretical arrival time, nanoseconds since clockOrigin
	pausedUntil int64 // nanoseconds since clockOrigin; 0: not paused
	prev, next  int32
}

// newSourceRates returns an empty table of at most size sources, for
// r per source, each paused for pause past it. IPv6 sources are counted
// under prefixV6 bits, or pressurePrefixV6 under pressure if that is
// shorter.
func newSourceRates(r config.Rate, pause time.Duration, prefixV6, size int) *sourceRates {
	emission := max(1, int64(r.Per)/int64(r.N))
	t := &sourceRates{
		emission: emission,
		burst:    int64(r.N-1) * emission,
		pause:    int64(pause),
		max:      size,
		index:    make(map[netip.Prefix]int32),
		entries:  make([]sourceRate, 1, 64),
	}
	if prefixV6 > pressurePrefixV6 {
		t.pressureBits = pressurePrefixV6
	}
	return t
}

// allow reports whether src may connect at now; a source past its rate is
// refused until its pause ends, and then starts again with its full rate.
func (r *sourceRates) allow(src netip.Prefix, now time.Time) bool {
	t := int64(sinceOrigin(now))
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.index[src]
	if !ok && r.pressureBits > 0 && src.Addr().Is6() {
		site, _ := src.Addr().Prefix(r.pressureBits)
		if i, ok = r.index[site]; !ok && r.underPressure(t) {
			src = site
		}
	}
	if !ok {
		i = r.insert(src)
	}
	r.unlink(i)
	r.pushFront(i)

	e := &r.entries[i]
	if t < e.pausedUntil {
		return false
	}
	if e.pausedUntil != 0 {
		e.tat, e.pausedUntil = 0, 0 // the pause is over: a full rate again
	}
	tat := max(e.tat, t)
	if tat-t > r.burst {
		e.pausedUntil = t + r.pause
		return false
	}
	e.tat = tat + r.emission
	return true
}

// underPressure reports whether the table is full and its least recently
// seen source still holds state, which a new source would make it lose.
func (r *sourceRates) underPressure(t int64) bool {
	if len(r.index) < r.max {
		return false
	}
	e := &r.entries[r.entries[0].prev]
	return t < e.pausedUntil || e.tat > t
}

// insert gives src a fresh entry, the least recently seen source's if the
// table is full, and returns it. The entry is on the list.
func (r *sourceRates) insert(src netip.Prefix) int32 {
	var i int32
	if len(r.index) < r.max {
		r.entries = append(r.entries, sourceRate{})
		i = int32(len(r.entries) - 1)
		r.pushFront(i)
	} else {
		i = r.entries[0].prev
		delete(r.index, r.entries[i].src)
	}
	r.entries[i].src, r.entries[i].tat, r.entries[i].pausedUntil = src, 0, 0
	r.index[src] = i
	return i
}

func (r *sourceRates) unlink(i int32) {
	e := &r.entries[i]
	r.entries[e.prev].next = e.next
	r.entries[e.next].prev = e.prev
}

func (r *sourceRates) pushFront(i int32) {
	head := &r.entries[0]
	r.entries[i].prev, r.entries[i].next = 0, head.next
	r.entries[head.next].prev = i
	head.next = i
}
