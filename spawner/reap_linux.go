package spawner

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// child is one live handler.
type child struct {
	pid     int
	service string
	peer    string // as logs show it; empty for a wait-mode child
	started time.Time
	exited  chan struct{} // if not nil, closed when the child is reaped
}

// children is the pid table of live handlers, and their reaper.
type children struct {
	log *slog.Logger

	// forkLock is held for reading across each fork and for writing by
	// the reaper. syscall.ForkExec waits by pid for a child whose exec
	// failed; the write lock keeps wait4(-1) from stealing that child, and
	// guarantees that every pid the reaper collects is already in live.
	forkLock sync.RWMutex

	mu   sync.Mutex
	live map[int]*child
}

func newChildren(log *slog.Logger) *children {
	return &children{log: log, live: make(map[int]*child)}
}

// start forks and execs argv[0]'s program at path, recording c as live
// under the pid it gets.
func (cs *children) start(path string, argv []string, attr *syscall.ProcAttr, c *child) error {
	cs.forkLock.RLock()
	defer cs.forkLock.RUnlock()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return err
	}
	c.pid = pid
	cs.mu.Lock()
	cs.live[pid] = c
	cs.mu.Unlock()
	return nil
}

func (cs *children) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.live)
}

// reap collects exited children whenever SIGCHLD arrives, until ctx ends.
func (cs *children) reap(ctx context.Context) {
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)
	for {
		cs.reapExited()
		select {
		case <-sigchld:
		case <-ctx.Done():
			return
		}
	}
}

// exit is one collected child and how it ended.
type exit struct {
	*child
	status unix.WaitStatus
	ended  time.Time
}

// reapExited waits for every child that has exited, without blocking, and
// logs each.
func (cs *children) reapExited() {
	var exits []exit
	cs.forkLock.Lock()
	for {
		var status unix.WaitStatus
		pid, err := unix.Wait4(-1, &status, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			break // no child left (ECHILD), or none has exited yet
		}
		cs.mu.Lock()
		c := cs.live[pid]
		delete(cs.live, pid)
		cs.mu.Unlock()
		if c == nil {
			c = &child{pid: pid}
		}
		exits = append(exits, exit{child: c, status: status, ended: time.Now()})
	}
	cs.forkLock.Unlock()

	for _, e := range exits {
		if e.exited != nil {
			close(e.exited)
		}
		cs.logExit(e)
	}
}

func (cs *children) logExit(e exit) {
	if e.service == "" {
		cs.log.Warn("reaped a child goinetd did not start", "pid", e.pid)
		return
	}
	attrs := []any{"service", e.service, "pid", e.pid}
	if e.peer != "" {
		attrs = append(attrs, "peer", e.peer)
	}
	switch {
	case e.status.Exited():
		attrs = append(attrs, "exit", e.status.ExitStatus())
	case e.status.Signaled():
		attrs = append(attrs, "signal", unix.SignalName(e.status.Signal()))
	}
	attrs = append(attrs, "duration", e.ended.Sub(e.started))
	cs.log.Info("connection ended", attrs...)
}
