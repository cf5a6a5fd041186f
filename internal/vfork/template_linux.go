package vfork

import (
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// vforkArgs is what vforkExec's parent and child share.
type vforkArgs struct {
	path, dir  *byte  // dir nil: the child stays in goinetd's directory
	argv, envv **byte // nil-terminated
	fds        [4]int32
	nfds       int
	nofile     *unix.Rlimit // nil: leave RLIMIT_NOFILE as it is
	groupTrap  uintptr      // setsid or setpgid(0, 0): both take no argument here

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

// Template is a program, its arguments, base environment and workdir as
// execve takes them, built once (when goinetd loads a service) and used
// by every start.
type Template struct {
	path, dir *byte
	argv      []*byte // nil-terminated
	baseEnv   []*byte // the environment every start shares
	groupTrap uintptr // SYS_SETSID or SYS_SETPGID: see NewTemplate
}

// NewTemplate returns the template that starts path with argv and env in
// dir (empty: the caller's directory), or an error naming the first of
// them that holds a NUL byte. The child gets a process group of its own,
// and with newSession a session of its own too (setsid), which also
// leaves the caller's controlling terminal behind; without a terminal to
// leave, setpgid is the cheaper of the two (setsid gives each child a
// scheduler autogroup of its own, which costs the caller its share of the
// CPU under load).
func NewTemplate(path, dir string, argv, env []string, newSession bool) (*Template, error) {
	t := &Template{groupTrap: unix.SYS_SETPGID}
	if newSession {
		t.groupTrap = unix.SYS_SETSID
	}
	var err error
	if t.path, err = syscall.BytePtrFromString(path); err != nil {
		return nil, &StringError{What: "program", Value: path}
	}
	if dir != "" {
		if t.dir, err = syscall.BytePtrFromString(dir); err != nil {
			return nil, &StringError{What: "workdir", Value: dir}
		}
	}
	if t.argv, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return nil, &StringError{What: "args"}
	}
	envv, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return nil, &StringError{What: "env"}
	}
	t.baseEnv = envv[:len(envv)-1]
	return t, nil
}

// StringError says which string of a Template holds a NUL byte, which
// execve cannot take.
type StringError struct {
	What  string // program, workdir, args or env
	Value string // the program or workdir; empty for args and env
}

func (e *StringError) Error() string {
	if e.Value != "" {
		return e.What + " \"" + e.Value + "\": holds a NUL byte"
	}
	return e.What + ": one holds a NUL byte"
}

// Unwrap returns EINVAL, what syscall says of such a string.
func (e *StringError) Unwrap() error { return syscall.EINVAL }

// Start starts the template's program with files (see Fits) as its
// descriptors 0, 1, ..., the template's environment followed by extra,
// every signal at its default action and none blocked, in a session of
// its own, and its soft RLIMIT_NOFILE set to nofile unless that is nil.
// It returns the child's pid once the child has exec'd, or the errno of
// the fork or of the exec; a child whose exec failed has been reaped.
// The calling thread is the child's parent: it gets its SIGCHLD.
func (t *Template) Start(files []uintptr, extra []string, nofile *unix.Rlimit) (int, error) {
	a := new(vforkArgs)
	if err := t.fill(a, files, extra, nofile); err != nil {
		return 0, err
	}
	a.execErr = &a.childErr
	cloneWith(a, vforkFlags3, func() { vforkExec(a) })
	return a.result()
}

// StartNoWait is Start that returns as soon as the child exists, with its
// pid or the errno of the fork, without waiting for its exec: the child
// runs on c's stack, and if its exec fails it writes the errno to
// *execErr before it exits 127; the caller learns of it when it reaps the
// child. c is in use until the child has exec'd or exited (see Pool).
func (t *Template) StartNoWait(c *Stack, files []uintptr, extra []string, nofile *unix.Rlimit,
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
// stays unblocked: the kernel aims it at this thread, the child's parent,
// instead of waking another; the child cannot run the Go handler for it,
// which CLONE_CLEAR_SIGHAND has reset.
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

// fill sets a up to start the template's program as Start describes: all
// but execErr, the clone's flags and the results. a keeps the environment
// it builds alive.
func (t *Template) fill(a *vforkArgs, files []uintptr, extra []string, nofile *unix.Rlimit) error {
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
		nofile: nofile, blockAll: ^uint64(0), groupTrap: t.groupTrap}
	for i, f := range files {
		a.fds[i] = int32(f)
	}
	return nil
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

// Fits reports whether files can be handed to Start or StartNoWait,
// which copy them to 0, 1, ... in order: at most four, and each its own
// target or above every target, so that no copy overwrites a descriptor
// still to be copied. goinetd's own descriptors are all above 2, and a
// fourth (listen_fds) goes last.
func Fits(files []uintptr) bool {
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
