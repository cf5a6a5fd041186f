package spawner

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goinetd/goinetd/config"
)

// Every record goinetd writes for something a client or a handler can
// repeat at will goes through a logBudget, so that a flood costs the log a
// bounded number of records, and the ones held back are counted: refusals
// and failures (limitedLog), connection records (service.connLog) and
// handlers' stderr (stderrLog).

// logBudget lets at most max records, and if maxBytes > 0 at most
// maxBytes bytes of them, through per interval, and counts the rest. After
// an interval in which it held any back, it passes their count to summary,
// once; that summary is the first record of the next interval.
//
// allow takes no lock and allocates nothing, so that hot paths may ask it
// for every record. The intervals are fixed windows and concurrent
// callers may race at a window's turn, so a window can let through a few
// more than max when many goroutines log at once.
type logBudget struct {
	max, maxBytes int64
	interval      time.Duration
	summary       func(records, bytes int64)
	timer         *time.Timer // calls flush; armed by the first record held back

	start           atomic.Int64 // the current window's start, in ns since clockOrigin
	used, usedBytes atomic.Int64 // what the current window let through, or tried to
	held, heldBytes atomic.Int64 // held back since the last summary
	armed           atomic.Bool  // timer will call flush
}

// newLogBudget returns a budget of max records (0: any number) and
// maxBytes bytes (0: any number) per interval. summary is called from a
// goroutine of its own.
func newLogBudget(max, maxBytes int64, interval time.Duration, summary func(records, bytes int64)) *logBudget {
	b := &logBudget{max: max, maxBytes: maxBytes, interval: interval, summary: summary}
	b.timer = time.AfterFunc(time.Hour, b.flush)
	b.timer.Stop()
	return b
}

// allow reports whether a record of size bytes, made at now, may be
// written; if not, it is counted for the next summary. A nil budget
// allows every record.
func (b *logBudget) allow(now time.Time, size int) bool {
	if b == nil {
		return true
	}
	t := int64(sinceOrigin(now))
	if start := b.start.Load(); t-start >= int64(b.interval) && b.start.CompareAndSwap(start, t) {
		b.used.Store(0)
		b.usedBytes.Store(0)
	}
	n, bytes := b.used.Add(1), b.usedBytes.Add(int64(size))
	if (b.max == 0 || n <= b.max) && (b.maxBytes == 0 || bytes <= b.maxBytes) {
		return true
	}
	b.held.Add(1)
	b.heldBytes.Add(int64(size))
	if b.armed.CompareAndSwap(false, true) {
		b.timer.Reset(time.Duration(b.start.Load() + int64(b.interval) - t))
	}
	return false
}

// flush passes what was held back to summary and starts a window with it.
func (b *logBudget) flush() {
	b.armed.Store(false) // before taking the counts: a record held back from now on arms the timer again
	n, bytes := b.held.Swap(0), b.heldBytes.Swap(0)
	if n == 0 {
		return
	}
	b.start.Store(int64(sinceOrigin(time.Now())))
	b.used.Store(1)
	b.usedBytes.Store(0)
	b.summary(n, bytes)
}

// connectionLog returns the budget of svc's connection records, or nil if
// connection_log_rate lifts it.
func connectionLog(log *slog.Logger, svc *config.Service) *logBudget {
	r := svc.ConnectionLogRate
	if r.N == 0 {
		return nil
	}
	return newLogBudget(int64(r.N), 0, r.Per, func(n, _ int64) {
		log.Warn("connection records dropped", "service", svc.Name, "dropped", n, "connection_log_rate", r.String())
	})
}

// logInterval is the shortest time between two records of one limitedLog.
const logInterval = time.Second

// limitedLog logs a recurring failure at most once per logInterval, so that
// a flood or an exhausted host cannot flood the log. The records it holds
// back are counted, and logged as one when the interval ends: the latest
// of them, with a "repeated" count. The zero value is ready to use.
type limitedLog struct {
	mu     sync.Mutex
	budget *logBudget
	latest []any // attributes of the latest record held back
}

// log writes msg at level unless a record of l was written less than
// logInterval ago.
func (l *limitedLog) log(log *slog.Logger, level slog.Level, msg string, attrs ...any) {
	l.mu.Lock()
	if l.budget == nil {
		l.budget = newLogBudget(1, 0, logInterval, func(n, _ int64) {
			l.mu.Lock()
			latest := l.latest
			l.latest = nil
			l.mu.Unlock()
			log.Log(context.Background(), level, msg, append(latest, "repeated", n)...)
		})
	}
	if !l.budget.allow(time.Now(), 0) {
		l.latest = attrs
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	log.Log(context.Background(), level, msg, attrs...)
}
