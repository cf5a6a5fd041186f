package spawner

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goinetd/goinetd/metrics"
)

// The deny list: sources that touched a sensor, or tripped a service's
// rate_limit_per_source with deny_on_rate, refused by every service for
// [server] deny_time. It belongs to the Server, not to a service, so it
// survives a reload.
//
// Every admission consults it, so an empty list costs one atomic load,
// and a look-up is a map access under a leaf lock. IPv4 sources are
// addresses; IPv6 ones are the prefix the tripping service's
// source_prefix_v6 makes, and a look-up tries each prefix length in use
// (one, unless services set different lengths).
//
// The list holds at most maxDenied sources: a new source past that
// evicts the one added longest ago, and counts the eviction. Expired
// sources are dropped when looked up, and from the oldest end whenever a
// source is added or the metric is read.

// maxDenied bounds the deny list.
const maxDenied = 1 << 16

// denyList is the set of denied sources, oldest first.
type denyList struct {
	ttl     atomic.Int64 // deny_time, nanoseconds; 0: nothing is added
	count   atomic.Int32 // len(index), read without the lock
	max     int
	metrics *metrics.Metrics

	mu      sync.Mutex
	index   map[netip.Prefix]*denied
	oldest  *denied // the list, from the oldest to the newest addition
	newest  *denied
	v6Bits  []int // the IPv6 prefix lengths in the list
	v6Count [129]int32
}

// denied is one denied source on the list.
type denied struct {
	src        netip.Prefix
	until      int64 // nanoseconds since clockOrigin
	prev, next *denied
}

func newDenyList(size int, m *metrics.Metrics) *denyList {
	d := &denyList{max: size, metrics: m, index: make(map[netip.Prefix]*denied)}
	m.DeniedSources(d.len)
	return d
}

// setTime sets deny_time for the sources added from now on.
func (d *denyList) setTime(t time.Duration) { d.ttl.Store(int64(t)) }

// active reports whether any source is on the list.
func (d *denyList) active() bool { return d.count.Load() != 0 }

// has reports whether a is denied at now.
func (d *denyList) has(a netip.Addr, now time.Time) bool {
	if !d.active() {
		return false
	}
	t := int64(sinceOrigin(now))
	d.mu.Lock()
	defer d.mu.Unlock()
	if a.Is4() {
		return d.live(netip.PrefixFrom(a, 32), t)
	}
	for _, bits := range d.v6Bits {
		p, _ := a.Prefix(bits)
		if d.live(p, t) {
			return true
		}
	}
	return false
}

// live reports whether src is on the list and not expired at t, and
// drops it if it has expired.
func (d *denyList) live(src netip.Prefix, t int64) bool {
	e := d.index[src]
	if e == nil {
		return false
	}
	if t < e.until {
		return true
	}
	d.remove(e)
	return false
}

// add denies src from now for deny_time, as the newest source; a source
// already on the list starts its time again. It reports whether src was
// added (deny_time is not 0).
func (d *denyList) add(src netip.Prefix, now time.Time) bool {
	ttl := d.ttl.Load()
	if ttl == 0 {
		return false
	}
	t := int64(sinceOrigin(now))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(t)
	e := d.index[src]
	if e != nil {
		d.unlink(e)
	} else {
		if len(d.index) >= d.max {
			d.remove(d.oldest)
			d.metrics.DenyEvicted()
		}
		e = &denied{src: src}
		d.index[src] = e
		d.count.Store(int32(len(d.index)))
		if src.Addr().Is6() {
			bits := src.Bits()
			if d.v6Count[bits] == 0 {
				d.v6Bits = append(d.v6Bits, bits)
			}
			d.v6Count[bits]++
		}
	}
	e.until = t + ttl
	e.prev, e.next = d.newest, nil
	if d.newest != nil {
		d.newest.next = e
	} else {
		d.oldest = e
	}
	d.newest = e
	return true
}

// expire drops the expired sources at the oldest end of the list.
func (d *denyList) expire(t int64) {
	for d.oldest != nil && t >= d.oldest.until {
		d.remove(d.oldest)
	}
}

// remove takes e off the list.
func (d *denyList) remove(e *denied) {
	d.unlink(e)
	delete(d.index, e.src)
	d.count.Store(int32(len(d.index)))
	if e.src.Addr().Is6() {
		bits := e.src.Bits()
		if d.v6Count[bits]--; d.v6Count[bits] == 0 {
			d.v6Bits = slices.DeleteFunc(d.v6Bits, func(b int) bool { return b == bits })
		}
	}
}

func (d *denyList) unlink(e *denied) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		d.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		d.newest = e.prev
	}
	e.prev, e.next = nil, nil
}

// len is how many sources are denied now.
func (d *denyList) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(int64(sinceOrigin(time.Now())))
	return len(d.index)
}
