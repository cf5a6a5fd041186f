package spawner

// What handlers leave behind.
//
// A handler may start processes that outlive it: a daemon, a double fork,
// a background job that keeps the connection. Left alone they would be
// reparented to init and escape everything goinetd bounds a connection
// with: max_connections, timeout and stop. So:
//
//   - goinetd is a child subreaper (becomeSubreaper): a process whose
//     parent dies is reparented to goinetd, not to init. The reaper
//     collects it like a handler, but it is in no pid table entry: it is
//     logged at debug level only and frees no slot (reap.go).
//   - A handler leads a process group of its own. With kill_group_on_exit
//     (on by default in nowait mode), the reaper sends SIGKILL to that
//     group as soon as it has collected the handler (killProcessGroup), so
//     nothing of the connection survives the slot it held. A timeout or a
//     stop that signalled a handler does the same, whatever the key says.
//   - Without kill_group_on_exit (wait mode by default, where a server may
//     fork on purpose), what the handler leaves behind runs on, uncounted
//     by max_connections, and is reaped when it exits.
//   - A stop with shutdown_grace ends the leftovers that are still
//     goinetd's children too, once the handlers are done (endLeftovers).
//
// A process that leaves the handler's group (setsid, setpgid) escapes
// kill_group_on_exit and a timeout, though not the subreaper nor a stop:
// only a cgroup per connection would hold every descendant.
//
// The SIGCHLD of a reparented process goes to a thread of goinetd the
// kernel picks, most likely not the spawn loop's; the loop then reaps it
// within reapBackstop, as it wakes that often while it has any child.

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes the calling process the reaper of its orphaned
// descendants (PR_SET_CHILD_SUBREAPER, Linux 3.4). The setting belongs to
// the process, is kept across exec and is not inherited by children.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// endLeftovers ends, at a stop, the processes handlers left behind that
// are still goinetd's children: SIGTERM, then SIGKILL after killGrace to
// what is left; it waits for the reaper to collect them.
func (s *Server) endLeftovers() {
	cs := s.children
	n := cs.signalLeftovers(unix.SIGTERM)
	if n == 0 {
		return
	}
	s.log.Warn("terminating processes handlers left behind", "processes", n)
	if cs.waitChildless(time.Now().Add(killGrace)) {
		return
	}
	n = cs.signalLeftovers(unix.SIGKILL)
	s.log.Warn("killing processes handlers left behind that outlived SIGTERM", "processes", n)
	if !cs.waitChildless(time.Now().Add(killGrace)) {
		s.log.Error("processes handlers left behind still running after SIGKILL")
	}
}

// childPIDs lists goinetd's child processes, zombies included, from the
// parent pid in /proc/PID/stat: every kernel has it, unlike
// /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN). It is used only at a
// stop.
func childPIDs() []int {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		if ppid, ok := parentPID(stat); ok && ppid == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parentPID returns the ppid field of a /proc/PID/stat line: the fourth,
// the second after the command name, which is in parentheses and may hold
// spaces and parentheses itself.
func parentPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	return ppid, err == nil
}
