package spawner

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logInterval is the shortest time between two records of one limitedLog.
const logInterval = time.Second

// limitedLog logs a recurring failure at most once per logInterval, so that
// a flood or an exhausted host cannot flood the log. The records it holds
// back are counted, and the count is logged when the interval ends.
// The zero value is ready to use.
type limitedLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
	latest     []any // attributes of the latest record held back
	flush      *time.Timer
}

// log writes msg at level unless a record of l was written less than
// logInterval ago. Records held back are summed up in one record, with
// the attributes of the latest of them and a "repeated" count.
func (l *limitedLog) log(log *slog.Logger, level slog.Level, msg string, attrs ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.last) >= logInterval {
		l.last = now
		log.Log(context.Background(), level, msg, attrs...)
		return
	}
	l.suppressed++
	l.latest = attrs
	if l.flush == nil {
		l.flush = time.AfterFunc(l.last.Add(logInterval).Sub(now), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			log.Log(context.Background(), level, msg, append(l.latest, "repeated", l.suppressed)...)
			l.last = time.Now()
			l.suppressed = 0
			l.latest = nil
			l.flush = nil
		})
	}
}
