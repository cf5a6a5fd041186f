package spawner

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
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

	// The errno of a failed exec, which a child started without waiting
	// for its exec (spawnNoWait) writes before it exits; 0 otherwise.
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

	// What handlers left behind (leftovers_linux.go): whether the
	// reaper's last wait4 found no child at all, and a channel closed and
	// replaced whenever it reaps a process that is not a handler.
	childless      atomic.Bool
	leftoverReaped chan struct{}
	held           int          // connections whose descriptor goinetd holds
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

func (cs *children) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.live)
}

// exit is one collected child and how it ended.
type exit struct {
	*child
	status unix.WaitStatus
	ended  time.Time
}

// appendClient adds client's address and port, if it has them, as the
// peer_ip and peer_port of a record.
func appendClient(attrs []slog.Attr, client netip.AddrPort) []slog.Attr {
	if !client.IsValid() {
		return attrs
	}
	return append(attrs, slog.String("peer_ip", client.Addr().WithZone("").String()), slog.Int("peer_port", int(client.Port())))
}

// reapExited waits for every child that has exited, without blocking, and
// logs each; it ends the process group of a child whose killGroup is set.
// It reports whether goinetd has no child left at all, handler or
// leftover (wait4 fails with ECHILD).
func (cs *children) reapExited() (childless bool) {
	var exits []exit
	var err error
	cs.reapLock.Lock()
	for {
		var status unix.WaitStatus
		var pid int
		pid, err = wait4NoHang(&status)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			break // no child left (ECHILD), or none has exited yet
		}
		cs.mu.Lock()
		c := cs.live[pid]
		killGroup := false
		if c != nil {
			delete(cs.live, pid)
			if c.timer != nil {
				c.timer.Stop()
			}
			killGroup = c.killGroup
		} else {
			c = &child{pid: pid} // a process a handler left behind
		}
		cs.mu.Unlock()
		if killGroup {
			killProcessGroup(pid)
		}
		exits = append(exits, exit{child: c, status: status, ended: time.Now()})
	}
	childless = err == unix.ECHILD
	cs.childless.Store(childless)
	cs.reapLock.Unlock()

	// Log each exit before freeing its slot, so that the log never shows
	// a connection that took the slot before the one that left it.
	leftovers := false
	for _, e := range exits {
		cs.logExit(e)
		if e.svc != nil {
			cs.release(e.slot)
		} else {
			leftovers = true
		}
		if e.exited != nil {
			close(e.exited)
		}
	}
	if leftovers {
		cs.mu.Lock()
		close(cs.leftoverReaped)
		cs.leftoverReaped = make(chan struct{})
		cs.mu.Unlock()
	}
	return childless
}

// killProcessGroup sends SIGKILL to the process group whose leader, pid,
// the reaper has just collected. Call it on the reaper's thread, under the
// reap lock, at once after the wait4 that returned pid.
//
// A handler leads its own process group (pgid == pid). The kernel frees a
// pid number only when no process uses it as pid, process group id or
// session id. So after the leader is reaped, -pid still names its group
// for as long as the group has a member, and no new process can take pid
// or that group meanwhile: the signal reaches only the group's members,
// the handler's descendants that stayed in it. If the group is empty, the
// kill finds nothing (ESRCH), unless the pid counter wrapped through
// pid_max back to pid, and the new process made itself a group leader,
// between the wait4 and this kill: not goinetd's own spawns, which run on
// this thread, and for another process pid_max forks in that window. A
// descendant that left the group (setsid, setpgid) is not reached; it is
// reaped when it exits, since goinetd is a subreaper (see becomeSubreaper).
//
// A raw system call, like wait4NoHang: kill does not block, and the spawn
// loop's thread stays out of the scheduler.
func killProcessGroup(pid int) {
	unix.RawSyscall(unix.SYS_KILL, uintptr(-pid), uintptr(unix.SIGKILL), 0)
}

func (cs *children) logExit(e exit) {
	if e.svc == nil {
		// Not a connection: its handler's exit was logged, and it held no
		// slot (see leftovers_linux.go).
		cs.log.Debug("reaped a process a handler left behind", "pid", e.pid)
		return
	}
	if e.execErr != 0 {
		// Logged as start would have, had it waited for the exec.
		err := syscall.Errno(e.execErr)
		stage, key, value := failedStart(e.svc, err)
		cs.metrics.ExecFailedLate(e.svc.Name, stage)
		e.svc.execFailed.log(cs.log, slog.LevelError, "spawn failed", "service", e.svc.Name, "peer", e.peer,
			"stage", stage, key, value, "pid", e.pid, "err", err)
		return
	}
	// Typed attributes in an array on the stack: no allocation per record.
	var buf [8]slog.Attr
	attrs := append(buf[:0], slog.String("service", e.svc.Name), slog.Int("pid", e.pid))
	if e.peer != "" {
		attrs = append(attrs, slog.String("peer", e.peer))
	}
	attrs = appendClient(attrs, e.client)
	outcome := "success"
	switch {
	case e.status.Exited():
		attrs = append(attrs, slog.Int("exit", e.status.ExitStatus()))
		if e.status.ExitStatus() != 0 {
			outcome = "failure"
		}
	case e.status.Signaled():
		attrs = append(attrs, slog.String("signal", unix.SignalName(e.status.Signal())))
		outcome = "signal"
	}
	if e.timedOut {
		outcome = "timeout"
	}
	cs.metrics.Exited(e.svc.Name, outcome, e.ended.Sub(e.started))
	if e.timedOut {
		attrs = append(attrs, slog.Bool("timeout", true))
	}
	if !e.svc.connLog.allow(e.ended, 0) {
		return
	}
	attrs = append(attrs, slog.Duration("duration", e.ended.Sub(e.started)))
	cs.log.LogAttrs(context.Background(), slog.LevelInfo, "connection ended", attrs...)
}
