package spawner

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// How a handler is started. syscall.ForkExec is correct for everything
// but pays, per spawn, for a pipe that tells the parent whether the exec
// failed: pipe2, a blocking read that waits for the exec to close it, and
// two closes. goinetd's own spawn (vforkExec) does what ForkExec does for a
// handler that keeps goinetd's credentials and root, and passes a failed
// exec's errno back through the memory the vfork child shares with its
// parent instead, as glibc's posix_spawn does. At 8 to 128 clients it cut
// goinetd's own CPU per connection from about 90 µs to about 65 µs (see
// the README's Performance section).
//
// vforkExec still sleeps from the clone until the child's exec, about
// half of each spawn's time. When that sleep gains the spawn loop nothing
// (see spawnLoop.noWait), it starts the child with spawnNoWait instead:
// the child shares goinetd's memory as with vfork, but runs on a small
// stack of its own, and the loop goes on at once. A failed exec is then
// learnt when the child is reaped. At 8 to 128 clients that cut goinetd's
// CPU per connection by a fifth, at one client by about 7% (the README
// again).

// vforkArgs is what vforkExec's parent and child share.
type vforkArgs struct {
	path, dir  *byte  // dir nil: the child stays in goinetd's directory
	argv, envv **byte // nil-terminated
	fds        [4]int32
	nfds       int
	nofile     *unix.Rlimit // nil: leave RLIMIT_NOFILE as it is

	blockAll, blockNone, oldMask uint64
	sigDefault                   [4]uint64 // a struct sigaction of SIG_DFL
	clone3                       cloneArgs // flags 0: clone, not clone3

	pid, errno uintptr
	execErr    *uintptr // where a child whose exec failed writes the errno
	childErr   uintptr  // execErr of vforkExec
}

// cloneArgs is struct clone_args of clone3(2), as of Linux 5.3.
type cloneArgs struct {
	flags, pidFD, childTID, parentTID, exitSignal, stack, stackSize, tls uint64
}

// vforkFlags3 are clone3's flags for vforkExec: CLONE_CLEAR_SIGHAND (Linux
// 5.5) resets every handled signal in the child, which saves it a
// rt_sigaction per signal (64 system calls) while goinetd waits for its
// exec.
const vforkFlags3 = unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_CLEAR_SIGHAND

// cloneFlags3 are clone3's flags for cloneExec: no CLONE_VFORK, and the
// kernel clears the child's tid word when it has exec'd or exited.
const cloneFlags3 = unix.CLONE_VM | unix.CLONE_CHILD_CLEARTID | unix.CLONE_CLEAR_SIGHAND

// noClone3 is set once clone3 has been refused (an older kernel, or a
// seccomp filter); every spawn then uses clone.
var noClone3 atomic.Bool

// execTemplate is a handler's program, arguments, base environment and
// workdir as execve takes them, built once when the service is loaded.
type execTemplate struct {
	path, dir *byte
	argv      []*byte // nil-terminated
	baseEnv   []*byte // the service's env, without the connection's
}

// newExecTemplate returns the template of p, or nil if its handler needs
// ForkExec to switch credentials or root. Call it only where vforkExec
// works (Server.vfork).
func newExecTemplate(p *service) (*execTemplate, error) {
	if p.sys.Credential != nil || p.sys.Chroot != "" {
		return nil, nil
	}
	t := &execTemplate{}
	var err error
	if t.path, err = syscall.BytePtrFromString(p.path); err != nil {
		return nil, fmt.Errorf("program %q: %w", p.path, err)
	}
	if p.dir != "" {
		if t.dir, err = syscall.BytePtrFromString(p.dir); err != nil {
			return nil, fmt.Errorf("workdir %q: %w", p.dir, err)
		}
	}
	if t.argv, err = syscall.SlicePtrFromStrings(p.argv); err != nil {
		return nil, fmt.Errorf("args: %w", err)
	}
	env, err := syscall.SlicePtrFromStrings(p.env)
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	t.baseEnv = env[:len(env)-1]
	return t, nil
}

// spawn starts the template's program with files as its descriptors 0,
// 1, ... and the service's env followed by extra, and sets
// its soft RLIMIT_NOFILE to nofile unless that is nil. It returns the
// child's pid once the child has exec'd, or the errno of the fork or of
// the exec; a child whose exec failed has been reaped.
func (t *execTemplate) spawn(files []uintptr, extra []string, nofile *unix.Rlimit) (int, error) {
	a := new(vforkArgs)
	if err := t.fill(a, files, extra, nofile); err != nil {
		return 0, err
	}
	a.execErr = &a.childErr
	cloneWith(a, vforkFlags3, func() { vforkExec(a) })
	return a.result()
}

// spawnNoWait is spawn that returns as soon as the child exists, with its
// pid or the errno of the fork, without waiting for its exec: the child
// runs on c's stack, and if its exec fails it writes the errno to
// *execErr before it exits 127. c is in use until c.tid is 0.
func (t *execTemplate) spawnNoWait(c *cloneSpawn, files []uintptr, extra []string, nofile *unix.Rlimit,
	execErr *uintptr) (int, error) {
	a := &c.args
	if err := t.fill(a, files, extra, nofile); err != nil {
		return 0, err
	}
	a.execErr = execErr
	atomic.StoreInt32(&c.tid, 1)
	cloneWith(a, cloneFlags3, func() { cloneExec(c) })
	if a.errno != 0 {
		atomic.StoreInt32(&c.tid, 0) // no child uses c
		return 0, syscall.Errno(a.errno)
	}
	return int(a.pid), nil
}

// cloneWith runs clone (vforkExec or cloneExec of a) with clone3 and
// flags3, unless clone3 has been refused before; if clone3 is refused now,
// it remembers that and runs clone again with clone. Under clone3 SIGCHLD
// stays unblocked: it then waits for this thread, the spawn loop's,
// instead of waking another (loop_linux.go); the child cannot run
// goinetd's handler for it, which CLONE_CLEAR_SIGHAND has reset.
func cloneWith(a *vforkArgs, flags3 uint64, clone func()) {
	if !noClone3.Load() {
		a.blockAll &^= 1 << (unix.SIGCHLD - 1)
		a.clone3 = cloneArgs{flags: flags3, exitSignal: uint64(unix.SIGCHLD)}
		clone()
		// An errno the child passed back is its exec's, not clone3's.
		if a.childErr != 0 || !clone3Refused(syscall.Errno(a.errno)) {
			return
		}
		noClone3.Store(true)
		a.clone3, a.pid, a.errno, a.blockAll = cloneArgs{}, 0, 0, ^uint64(0)
	}
	clone()
}

// fill sets a up to start the template's program as spawn describes: all
// but execErr, the clone's flags and the results. a keeps the environment
// it builds alive.
func (t *execTemplate) fill(a *vforkArgs, files []uintptr, extra []string, nofile *unix.Rlimit) error {
	envv := make([]*byte, len(t.baseEnv), len(t.baseEnv)+len(extra)+1)
	copy(envv, t.baseEnv)
	for _, kv := range extra {
		p, err := syscall.BytePtrFromString(kv)
		if err != nil {
			return err
		}
		envv = append(envv, p)
	}
	envv = append(envv, nil)
	*a = vforkArgs{path: t.path, dir: t.dir, argv: &t.argv[0], envv: &envv[0], nfds: len(files),
		nofile: nofile, blockAll: ^uint64(0)}
	for i, f := range files {
		a.fds[i] = int32(f)
	}
	return nil
}

// cloneSpawn is the memory a child started by spawnNoWait uses until it
// has exec'd or exited: its arguments and its stack (execChild needs a
// few hundred bytes of it). Go's heap does not move objects, and c stays
// reachable while the child uses it (see clonePool).
type cloneSpawn struct {
	args  vforkArgs
	tid   int32 // 1 from the clone until the kernel clears it
	stack [4096]byte
}

// clonePool holds the cloneSpawns of children between their clone and
// their exec, and those free for reuse. The spawn loop owns it.
type clonePool struct {
	busy, free []*cloneSpawn
}

// maxCloning is how many children may be between their clone and their
// exec at once; beyond, spawns wait for the exec. It bounds the pool's
// memory, which does not grow with the children that have exec'd.
const maxCloning = 32

// get returns a cloneSpawn to start one more child with, or nil if
// maxCloning are in use.
func (p *clonePool) get() *cloneSpawn {
	kept := p.busy[:0]
	for _, c := range p.busy {
		if atomic.LoadInt32(&c.tid) != 0 {
			kept = append(kept, c)
		} else {
			c.args = vforkArgs{} // drop the environment
			p.free = append(p.free, c)
		}
	}
	clear(p.busy[len(kept):])
	p.busy = kept
	if len(p.busy) >= maxCloning {
		return nil
	}
	var c *cloneSpawn
	if n := len(p.free); n > 0 {
		c, p.free = p.free[n-1], p.free[:n-1]
	} else {
		c = new(cloneSpawn)
	}
	p.busy = append(p.busy, c)
	return c
}

// clone3Refused reports whether clone3 failed because this kernel or its
// seccomp filter does not offer it, as opposed to a fork failure.
func clone3Refused(err syscall.Errno) bool {
	return err == unix.ENOSYS || err == unix.EINVAL || err == unix.E2BIG || err == unix.EPERM
}

// result returns the pid vforkExec started, or its errno, and reaps a
// child whose exec failed.
func (a *vforkArgs) result() (int, error) {
	if a.errno == 0 {
		return int(a.pid), nil
	}
	if a.childErr != 0 {
		// The exec failed and the child exited at once: collect it.
		for {
			var status unix.WaitStatus
			if _, err := unix.Wait4(int(a.pid), &status, 0, nil); err != unix.EINTR {
				break
			}
		}
	}
	return 0, syscall.Errno(a.errno)
}

// vforkable reports whether files can be handed to vforkExec, which
// copies them to 0, 1, ... in order: each must be its own target or above
// every target, so that no copy overwrites a descriptor still to be copied.
// goinetd's own descriptors are all above 2, and a fourth (listen_fds) goes
// last.
func vforkable(files []uintptr) bool {
	if len(files) > 4 {
		return false
	}
	for i, f := range files {
		if f != uintptr(i) && f < uintptr(len(files)) {
			return false
		}
	}
	return true
}

// ProbeName is argv[0] of the child startingNofile starts. goinetd exits at
// once when it is started under this name: that child runs only if the
// goinetd that traces it dies before it kills it.
const ProbeName = "goinetd-nofile-probe"

// startingNofile returns the soft RLIMIT_NOFILE goinetd's process started
// with, or nil if it is the one in force. The Go runtime raises the soft
// limit to the hard one at startup, and syscall.ForkExec sets it back in
// every child from a value only package syscall holds. To learn it,
// startingNofile starts goinetd's own binary through ForkExec, traced, so
// that the child stops at its exec before any of its code runs, reads the
// child's limit and kills it. It must run before the reaper starts, which
// would collect the child.
func startingNofile(self string) (*unix.Rlimit, error) {
	// A tracee reports to the thread that started it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec(self, []string{ProbeName},
		&syscall.ProcAttr{Sys: &syscall.SysProcAttr{Ptrace: true}})
	if err != nil {
		return nil, fmt.Errorf("start %s traced: %w", self, err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		for {
			if _, err := unix.Wait4(pid, nil, 0, nil); err != unix.EINTR {
				return
			}
		}
	}()
	var status unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &status, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("wait for the traced child %d: %w", pid, err)
	}
	if !status.Stopped() {
		return nil, fmt.Errorf("traced child %d did not stop at its exec (status %#x)", pid, status)
	}
	var started, now unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &started); err != nil {
		return nil, fmt.Errorf("read the traced child's RLIMIT_NOFILE: %w", err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &now); err != nil {
		return nil, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if started == now {
		return nil, nil
	}
	return &started, nil
}
