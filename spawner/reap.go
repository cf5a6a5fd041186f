package spawner

import (
	"context"
	"log/slog"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
		c, killGroup := cs.remove(pid)
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
		if e.relay != nil {
			// Logged with the bytes relayed, and its slot freed, once the
			// relay ends (tls.go).
			e.relay.handlerExit = e
			e.relay.handlerReaped()
		} else {
			cs.logExit(e)
		}
		if e.svc != nil && e.relay == nil {
			cs.release(e.slot)
		} else {
			leftovers = true
		}
		if e.exited != nil {
			close(e.exited)
		}
	}
	if leftovers {
		cs.leftoverWasReaped()
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
		// slot (see leftovers.go).
		cs.log.Debug("reaped a process a handler left behind", "pid", e.pid)
		return
	}
	if e.execErr != 0 {
		// Logged as spawn would have, had it waited for the exec.
		err := syscall.Errno(e.execErr)
		stage, key, value := failedStart(e.svc, err)
		cs.metrics.ExecFailedLate(e.svc.Name, stage)
		e.svc.execFailed.log(cs.log, slog.LevelError, "spawn failed", "service", e.svc.Name, "peer", e.peer,
			"stage", stage, key, value, "pid", e.pid, "err", err)
		return
	}
	// Typed attributes in an array on the stack: no allocation per record.
	var buf [10]slog.Attr
	attrs := append(buf[:0], slog.String("service", e.svc.Name), slog.Int("pid", e.pid))
	if e.peer != "" {
		attrs = append(attrs, slog.String("peer", e.peer))
	}
	attrs = appendClient(attrs, e.client)
	if e.relay != nil {
		attrs = append(attrs, slog.Int64("bytes_in", e.relay.in.Load()), slog.Int64("bytes_out", e.relay.out.Load()))
	}
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
