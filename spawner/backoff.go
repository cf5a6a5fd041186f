package spawner

import (
	"log/slog"
	"time"
)

// loopFailed logs a failed accept or receive (what) of l's service, at a
// bounded rate, and backs off; the service is down (goinetd_service_up 0)
// during the pause. It reports false if l is closed, before or during the
// pause: the loop should return.
func (s *Server) loopFailed(l *listener, wait *backoff, what string, err error) bool {
	if l.closed() {
		return false
	}
	svc := l.current.Load()
	svc.acceptFailed.log(s.log, slog.LevelError, what+" failed", "service", svc.Name, "err", err)
	s.metrics.ServiceUp(svc.Name, false)
	if !wait.sleep(l.done) {
		return false
	}
	s.metrics.ServiceUp(svc.Name, true)
	return true
}

// backoff is the pause of an accept loop after a resource error: 5 ms,
// doubling to at most 1 s, until a connection is served again.
type backoff struct{ d time.Duration }

const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// advance moves to the next backoff step, without pausing, and returns it.
func (b *backoff) advance() time.Duration {
	b.d = b.next()
	return b.d
}

// sleep pauses for the next backoff step. It returns false, early, when
// done is closed.
func (b *backoff) sleep(done <-chan struct{}) bool {
	t := time.NewTimer(b.advance())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// next is the pause the next sleep will take.
func (b *backoff) next() time.Duration { return min(max(2*b.d, minBackoff), maxBackoff) }

func (b *backoff) reset() { b.d = 0 }
