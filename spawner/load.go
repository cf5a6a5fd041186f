package spawner

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// max_load: a service refuses connections while the host's 1-minute load
// average is above its max_load. The load average is the host's, one for
// every service: it is read from /proc/loadavg at most once a second,
// by the first admission that finds it stale, and cached; an admission
// costs a clock read and two atomic loads, never a system call. A service
// without max_load never looks at it.

// loadAvgFile is where Linux publishes the load averages (a variable for
// the tests only).
var loadAvgFile = "/proc/loadavg"

// loadRefresh is how old the cached load average may get.
const loadRefresh = time.Second

// hostLoad is the host's cached 1-minute load average.
var hostLoad loadAverage

type loadAverage struct {
	next  atomic.Int64  // when to read again, in nanoseconds since clockOrigin
	value atomic.Uint64 // the load, as float64 bits
}

// over reports whether the load average is above max, reading it again
// if it is older than loadRefresh. A failed read keeps the last value.
func (l *loadAverage) over(max float64, now time.Time) bool {
	n := int64(sinceOrigin(now))
	if next := l.next.Load(); n >= next && l.next.CompareAndSwap(next, n+int64(loadRefresh)) {
		if v, err := readLoad(); err == nil {
			l.value.Store(math.Float64bits(v))
		}
	}
	return l.last() > max
}

// last returns the load average last read.
func (l *loadAverage) last() float64 { return math.Float64frombits(l.value.Load()) }

// readLoad returns the 1-minute load average.
func readLoad() (float64, error) {
	b, err := os.ReadFile(loadAvgFile)
	if err != nil {
		return 0, err
	}
	field, _, _ := bytes.Cut(b, []byte(" "))
	v, err := strconv.ParseFloat(string(field), 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a load average", loadAvgFile, field)
	}
	return v, nil
}
