package spawner

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goinetd/goinetd/metrics"
	"golang.org/x/sys/unix"
)

// child is one live handler.
type child struct {
	pid     int
	svc     *service
	peer    string         // as logs show it; empty for a wait-mode child
	client  netip.AddrPort // the client's address, if it has one
	started time.Time
	slot    slot          // freed when the child is reaped
	exited  chan struct{} // if not nil, closed when the child is reaped
	relay   *tlsSession   // a TLS connection's, whose relay logs the child's exit when it ends; else nil

	// The errno of a failed exec, which a child started without waiting
	// for its exec (noExecWait) writes before it exits; 0 otherwise.
	execErr uintptr

	// The timeout's timer, and whether it fired. Guarded by children.mu.
	timer    *time.Timer
	timedOut bool
	// killGroup says to SIGKILL the child's process group as soon as the
	// child is reaped (see reapExited): its service's kill_group_on_exit,
	// or a timeout or a stop that signalled it. Guarded by children.mu.
	killGroup bool
}

// children is the pid table of live handlers, and their reaper.
type children struct {
	log     *slog.Logger
	metrics *metrics.Metrics

	// reapLock is held for writing by the reaper and for reading by
	// whatever signals a child by pid (expire, signalAll): a pid that is
	// signalled has not been reaped, so it cannot have been reused.
	// Spawns need no lock: they run on the spawn loop's thread, which
	// also reaps, so a child whose exec failed is waited for by its pid
	// before the reaper can look, and every pid the reaper collects is
	// already in live.
	reapLock sync.RWMutex

	mu   sync.Mutex
	live map[int]*child
	// Live connections, children and built-ins, for admission.
	total      int
	perService map[string]int
	perSource  map[perSourceKey]int
	released   chan struct{} // closed and replaced by every release
	maxTotal   atomic.Int64  // [server] max_connections; 0: none

	// What handlers left behind (leftovers.go): whether the
	// reaper's last wait4 found no child at all, and a channel closed and
	// replaced whenever it reaps a process that is not a handler.
	childless      atomic.Bool
	leftoverReaped chan struct{}
	held           int          // descriptors of connections that goinetd holds
	maxHeld        atomic.Int64 // their cap, heldLimit; 0: none
}

func newChildren(log *slog.Logger, m *metrics.Metrics) *children {
	return &children{
		log:        log,
		metrics:    m,
		live:       make(map[int]*child),
		perService: make(map[string]int),
		perSource:  make(map[perSourceKey]int),
		released:   make(chan struct{}),

		leftoverReaped: make(chan struct{}),
	}
}

// killGrace is how long a child that outlived its timeout has between
// SIGTERM and SIGKILL.
const killGrace = 2 * time.Second

// add records c as live under pid, the child just started for it. A
// timeout above zero ends the child if it runs longer (see expire). Call
// it on the spawn loop's thread, before the loop reaps again.
func (cs *children) add(pid int, c *child, timeout time.Duration) {
	c.pid = pid
	cs.mu.Lock()
	cs.live[pid] = c
	if timeout > 0 {
		c.timer = time.AfterFunc(timeout, func() { cs.expire(c, unix.SIGTERM) })
	}
	cs.mu.Unlock()
}

// expire ends a child that outlived its timeout: SIGTERM to its process
// group (and to itself, should it have left the group), then SIGKILL after
// killGrace if it is still there. It holds the reap lock for reading, so
// the reaper cannot collect the child meanwhile and its pid cannot be
// reused under the signal.
func (cs *children) expire(c *child, sig unix.Signal) {
	cs.reapLock.RLock()
	defer cs.reapLock.RUnlock()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.live[c.pid] != c {
		return // reaped already
	}
	unix.Kill(-c.pid, sig)
	unix.Kill(c.pid, sig)
	c.killGroup = true // what ignores SIGTERM ends with the child
	logged := c.svc.connLog.allow(time.Now(), 0)
	if sig == unix.SIGTERM {
		c.timedOut = true
		if logged {
			cs.log.Warn("timeout: terminating handler", "service", c.svc.Name, "peer", c.peer, "pid", c.pid,
				"after", time.Since(c.started).Round(time.Millisecond), "kill_in", killGrace)
		}
		c.timer = time.AfterFunc(killGrace, func() { cs.expire(c, unix.SIGKILL) })
	} else if logged {
		cs.log.Warn("timeout: killing handler", "service", c.svc.Name, "peer", c.peer, "pid", c.pid)
	}
}

func (cs *children) handlers() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.live)
}

// slot is what one live connection counts against.
type slot struct {
	service string
	source  netip.Prefix // valid when max_per_source applies
	held    int          // descriptors counted against maxHeld: those goinetd holds
}

// perSourceKey is what max_per_source counts live connections under.
type perSourceKey struct {
	service string
	source  netip.Prefix
}

// heldShare is the part of goinetd's descriptor limit that held
// connections may take together: the other half is the reserve.
const heldShare = 2

// heldLimit returns how many descriptors of connections goinetd may hold
// open at once, by its RLIMIT_NOFILE now, or 0 (no cap) if it cannot know.
func heldLimit() int64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<40 {
		return 0
	}
	return int64(r.Cur / heldShare)
}

// take counts one more connection of svc from source (the zero Prefix if
// the connection has no address or the service no per-source limit) and
// returns the number of live connections from that source, this one
// included. If svc or goinetd is at its max_connections, it returns a
// channel that is closed at the next release, to wait on and try again. If
// the source is at max_per_source, it returns errPerSource.
func (cs *children) take(svc *service, source netip.Prefix) (perSource int, wait <-chan struct{}, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if svc.MaxPerSource > 0 && source.IsValid() && cs.perSource[perSourceKey{svc.Name, source}] >= svc.MaxPerSource {
		return 0, nil, errPerSource
	}
	if cs.fullLocked(svc) {
		return 0, cs.released, nil
	}
	cs.reserveLocked(svc)
	return cs.addSourceLocked(slot{svc.Name, source, svc.heldFDs}), nil, nil
}

// reserveLocked counts one more connection of svc in the service's and
// goinetd's totals, and among held connections if svc holds them. Callers
// hold cs.mu and have checked fullLocked.
func (cs *children) reserveLocked(svc *service) {
	cs.total++
	cs.perService[svc.Name]++
	cs.held += svc.heldFDs
}

// addSourceLocked counts a reserved connection under its source, if it
// has one, and returns the source's count. Callers hold cs.mu.
func (cs *children) addSourceLocked(s slot) int {
	if !s.source.IsValid() {
		return 0
	}
	k := perSourceKey{s.service, s.source}
	cs.perSource[k]++
	return cs.perSource[k]
}

// heldUntilReturn makes sl count no held descriptor for the child's life,
// for a connection whose descriptor goinetd holds only until the caller,
// which reads a PROXY header or looks a name up first, closes it; it
// returns what releases that one descriptor then, to be deferred.
func (cs *children) heldUntilReturn(sl *slot) (release func()) {
	n := sl.held
	if n == 0 {
		return func() {}
	}
	sl.held = 0
	return func() {
		cs.mu.Lock()
		cs.held -= n
		cs.mu.Unlock()
	}
}

// addSource counts a connection reserved by accept under its source, and
// returns the source's count, or errPerSource (the reservation still
// held) if the source is at max_per_source.
func (cs *children) addSource(svc *service, s slot) (int, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if svc.MaxPerSource > 0 && s.source.IsValid() && cs.perSource[perSourceKey{s.service, s.source}] >= svc.MaxPerSource {
		return 0, errPerSource
	}
	return cs.addSourceLocked(s), nil
}

// fullLocked reports whether svc or goinetd is at its max_connections, or
// svc holds connections and they are at their share of the descriptor
// limit. Callers hold cs.mu.
func (cs *children) fullLocked(svc *service) bool {
	return full(cs.perService[svc.Name], svc.MaxConnections) || full(cs.total, int(cs.maxTotal.Load())) ||
		svc.heldFDs > 0 && cs.heldFullLocked()
}

// heldFullLocked reports whether held connections are at their share of
// the descriptor limit. Callers hold cs.mu.
func (cs *children) heldFullLocked() bool { return full(cs.held, int(cs.maxHeld.Load())) }

// room returns nil if svc and goinetd are below their max_connections, or
// a channel closed at the next release.
func (cs *children) room(svc *service) <-chan struct{} {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.fullLocked(svc) {
		return cs.released
	}
	return nil
}

// heldFull reports whether held connections are at their share of the
// descriptor limit.
func (cs *children) heldFull() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.heldFullLocked()
}

func full(n, max int) bool { return max > 0 && n >= max }

// release frees a slot taken by take. Callers hold cs.mu.
func (cs *children) releaseLocked(s slot) {
	cs.total--
	cs.held -= s.held
	if cs.perService[s.service]--; cs.perService[s.service] <= 0 {
		delete(cs.perService, s.service)
	}
	if s.source.IsValid() {
		k := perSourceKey{s.service, s.source}
		if cs.perSource[k]--; cs.perSource[k] <= 0 {
			delete(cs.perSource, k)
		}
	}
	close(cs.released)
	cs.released = make(chan struct{})
}

// release frees a slot taken by take.
func (cs *children) release(s slot) {
	cs.mu.Lock()
	cs.releaseLocked(s)
	cs.mu.Unlock()
}

// active returns the number of live connections: children and built-in
// connections.
func (cs *children) connections() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.total
}

// waitIdle waits until no connection is live or deadline passes, and
// reports whether none is.
func (cs *children) waitIdle(deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		cs.mu.Lock()
		idle, released := cs.total == 0, cs.released
		cs.mu.Unlock()
		if idle {
			return true
		}
		select {
		case <-released:
		case <-t.C:
			return false
		}
	}
}

// signalAll sends sig to every live child's process group (and the child
// itself), marks each to have its group killed when it is reaped, and
// returns how many it signalled. Like expire, it holds the reap lock for
// reading so that no pid it signals has been reaped.
func (cs *children) signalAll(sig unix.Signal) int {
	cs.reapLock.RLock()
	defer cs.reapLock.RUnlock()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for pid, c := range cs.live {
		unix.Kill(-pid, sig)
		unix.Kill(pid, sig)
		c.killGroup = true
	}
	return len(cs.live)
}

// signalLeftovers sends sig to each child of goinetd's that is not a live
// handler, and returns how many it signalled. It holds the reap lock for
// reading from the moment it lists the children until it has signalled
// them: a child cannot be reaped meanwhile, so its pid cannot be reused.
func (cs *children) signalLeftovers(sig unix.Signal) int {
	if cs.childless.Load() {
		return 0
	}
	cs.reapLock.RLock()
	defer cs.reapLock.RUnlock()
	pids := childPIDs()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for _, pid := range pids {
		if cs.live[pid] == nil {
			unix.Kill(pid, sig)
			n++
		}
	}
	return n
}

// waitChildless waits until the reaper has found goinetd without any child
// or deadline passes, and reports whether it has.
func (cs *children) waitChildless(deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		cs.mu.Lock()
		reaped := cs.leftoverReaped
		cs.mu.Unlock()
		if cs.childless.Load() {
			return true
		}
		select {
		case <-reaped:
		case <-t.C:
			return cs.childless.Load()
		}
	}
}

// remove takes the child pid, just collected by the reaper, out of the
// table and stops its timeout, and returns it and whether to end its
// process group; a pid not in the table is a process a handler left
// behind, returned as a child with no service. Call it under the reap lock.
func (cs *children) remove(pid int) (c *child, killGroup bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c = cs.live[pid]
	if c == nil {
		return &child{pid: pid}, false
	}
	delete(cs.live, pid)
	if c.timer != nil {
		c.timer.Stop()
	}
	return c, c.killGroup
}

// leftoverWasReaped wakes whoever waits for a leftover to be reaped.
func (cs *children) leftoverWasReaped() {
	cs.mu.Lock()
	close(cs.leftoverReaped)
	cs.leftoverReaped = make(chan struct{})
	cs.mu.Unlock()
}

// acceptNow is acceptCounted without the wait: it takes the connection
// queued on the listening socket lfd, or fails with EAGAIN if there is
// none, or with errFull.
func (s *Server) acceptNow(lfd int, svc *service) (int, unix.Sockaddr, error) {
	cs := s.children
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.fullLocked(svc) {
		return -1, nil, errFull
	}
	for {
		fd, sa, err := accept4(lfd)
		if err == nil {
			cs.reserveLocked(svc)
		}
		if err != unix.EINTR {
			return fd, sa, err
		}
	}
}
