package spawner

import (
	"maps"
	"slices"
	"time"

	"github.com/goinetd/goinetd/config"
)

// Binds that failed (a busy port, an address not on the host yet, a
// permission) are tried again, as xinetd and systemd do, from
// firstBindRetry doubling to maxBindRetry, until they succeed or a reload
// drops the service.
const (
	firstBindRetry = time.Second
	maxBindRetry   = time.Minute
)

// bindRetry holds the services whose bind failed; Server.mu guards it.
type bindRetry struct {
	pending map[string]*config.Service // by name
	delay   time.Duration              // until the next try
	timer   *time.Timer                // nil when nothing is pending
	stopped bool                       // the Server is closed
}

// retryLater records the services of cfg that failed to bind in ch,
// replacing what was pending, and arms the retry from firstBindRetry.
// s.mu is held.
func (s *Server) retryLater(cfg *config.Config, ch Changes) {
	r := &s.retry
	old := r.pending
	r.pending = make(map[string]*config.Service)
	for _, svc := range cfg.Enabled() {
		if _, listening := s.listeners[listenKey(svc)]; ch.Failed[svc.Name] != nil && !listening {
			r.pending[svc.Name] = svc
			s.metrics.ServiceUp(svc.Name, false)
		}
	}
	for name := range old {
		if _, still := r.pending[name]; !still && !cfg.Serves(name) {
			s.metrics.ServiceRemoved(name)
		}
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if len(r.pending) > 0 && !r.stopped {
		r.delay = firstBindRetry
		r.timer = time.AfterFunc(r.delay, s.retryBinds)
	}
}

// retryBinds tries each pending bind again, and arms the next try, at
// twice the delay, for those that still fail. After a bind succeeds it
// calls the OnBound hook, without s.mu held.
func (s *Server) retryBinds() {
	if s.retryPending() && s.onBound != nil {
		s.onBound()
	}
}

// retryPending is retryBinds with s.mu held; it reports whether any bind
// succeeded.
func (s *Server) retryPending() (bound bool) {
	s.lock()
	defer s.mu.Unlock()
	r := &s.retry
	if r.stopped || len(r.pending) == 0 {
		return false
	}
	r.delay = min(2*r.delay, maxBindRetry)
	for _, name := range slices.Sorted(maps.Keys(r.pending)) {
		svc := r.pending[name]
		l, err := s.bind(svc)
		if err != nil {
			s.log.Warn("cannot serve service yet", "service", name, "err", err, "retry_in", r.delay)
			continue
		}
		delete(r.pending, name)
		s.startLoop(l)
		bound = true
	}
	r.timer = nil
	if len(r.pending) > 0 {
		r.timer = time.AfterFunc(r.delay, s.retryBinds)
	}
	return bound
}

// stopRetries ends the retries for good. s.mu is held.
func (s *Server) stopRetries() {
	s.retry.stopped = true
	if s.retry.timer != nil {
		s.retry.timer.Stop()
	}
}

// Pending returns the names of the enabled services that could not be
// bound and are being retried, sorted.
func (s *Server) Pending() []string {
	s.lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.retry.pending))
}
