package vfork

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Available says whether this architecture has goinetd's own spawn
// (vforkExec); without it every handler starts through syscall.ForkExec.
const Available = true

// Every Go function that runs in a child, between its clone and its exec,
// is marked //go:norace and //go:nosplit, and only those: the mark is how
// TestChildCodeCallsNoRuntime finds the code to check for calls into the
// runtime and write barriers, with this file's assembly.

// rawVfork is clone or clone3 (trap) for a child that shares the caller's
// memory and stack (vfork_linux_amd64.s).
func rawVfork(trap, a1, a2 uintptr) (pid, errno uintptr)

// vforkExec starts a child as a describes and waits for its exec, and
// sets a.pid or a.errno (the clone's errno, or the exec's, which a child
// whose exec failed left in *a.execErr, which must be a.childErr).
//
// The child borrows this goroutine's stack until it execs, so this
// function may not grow the stack, allocate, or call anything but raw
// system calls; and nothing that either side needs after the clone lives
// in its frame, only in *a. The signals in a.blockAll are blocked on this
// thread from before the clone until the parent resumes, so no Go signal
// handler ever runs in the child: all of them after clone; all but
// SIGCHLD after clone3, whose CLONE_CLEAR_SIGHAND leaves the child no
// handler of goinetd's to run.
//
//go:norace
//go:nosplit
func vforkExec(a *vforkArgs) {
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&a.blockAll)), uintptr(unsafe.Pointer(&a.oldMask)), 8, 0, 0)
	var pid, errno uintptr
	if a.clone3.flags != 0 {
		pid, errno = rawVfork(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&a.clone3)), unsafe.Sizeof(a.clone3))
	} else {
		pid, errno = rawVfork(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_VFORK|uintptr(unix.SIGCHLD), 0)
	}
	if pid != 0 || errno != 0 {
		// The parent, once the child has exec'd or exited.
		a.pid, a.errno = pid, errno
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
			uintptr(unsafe.Pointer(&a.oldMask)), 0, 8, 0, 0)
		if a.childErr != 0 {
			a.errno = a.childErr
		}
		return
	}
	execChild(a)
}

// execChild is the child's side of vforkExec and cloneExec: it sets the
// child up as a describes and execs the program, or writes the errno to
// *a.execErr and exits 127. It runs on a stack of its own, or on the
// waiting parent's, in memory it shares with goinetd: it may not grow the
// stack, allocate, or write anything but its stack and *a.execErr.
//
//go:norace
//go:nosplit
func execChild(a *vforkArgs) {
	var e syscall.Errno
	// A process group of its own, whose id is its pid, so that
	// signalling the group reaches it and its own children; and a session
	// of its own when goinetd has a controlling terminal, which the
	// handler then cannot open (/dev/tty), inject input into (TIOCSTI) or
	// take the foreground of (see NewTemplate).
	if _, _, e = syscall.RawSyscall(a.groupTrap, 0, 0, 0); e != 0 {
		goto fail
	}
	// A range over the array, not a.fds[i] for i < a.nfds: no bounds
	// check, whose panic would call into the runtime.
	for i, fd := range a.fds {
		if i >= a.nfds {
			break
		}
		if int(fd) == i {
			_, _, e = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0)
		} else {
			_, _, e = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd), uintptr(i), 0)
		}
		if e != 0 {
			goto fail
		}
	}
	if a.dir != nil {
		if _, _, e = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(a.dir)), 0, 0); e != 0 {
			goto fail
		}
	}
	if a.nofile != nil {
		if _, _, e = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE,
			uintptr(unsafe.Pointer(a.nofile)), 0, 0, 0); e != 0 {
			goto fail
		}
	}
	// Go's handlers point into this process: back to the default for
	// every signal before any is unblocked. clone3's CLONE_CLEAR_SIGHAND
	// has done it; after clone, one call per signal does (SIGKILL and
	// SIGSTOP refuse, harmlessly).
	if a.clone3.flags == 0 {
		for sig := uintptr(1); sig <= 64; sig++ {
			syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&a.sigDefault)), 0, 8, 0, 0)
		}
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&a.blockNone)), 0, 8, 0, 0)
	_, _, e = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(a.path)),
		uintptr(unsafe.Pointer(a.argv)), uintptr(unsafe.Pointer(a.envv)))
fail:
	*a.execErr = uintptr(e)
	for {
		syscall.RawSyscall(unix.SYS_EXIT, 127, 0, 0)
	}
}

// rawCloneVM is clone or clone3 (trap) for a child that shares the
// caller's memory but runs on the stack below top and calls the Go
// function whose code is at fn with args (vfork_linux_amd64.s).
func rawCloneVM(trap, a1, a2, a3, top, fn, args uintptr) (pid, errno uintptr)

// execChildCode is the address of execChild's code, which rawCloneVM
// calls: a Go function value points to it.
var execChildCode = func() uintptr {
	f := execChild
	return **(**uintptr)(unsafe.Pointer(&f))
}()

// cloneExec starts a child as c.args describes, on c's stack, and returns
// as soon as it exists, with c.args.pid or c.args.errno (the clone's) set.
// The child keeps using c, and writes a failed exec's errno to
// *c.args.execErr, until the kernel clears c.tid, when it has exec'd or
// exited. The signals in c.args.blockAll are blocked on this thread for
// the clone, and so in the child until it unblocks them to exec; nosplit
// keeps the goroutine from being preempted meanwhile.
//
//go:nosplit
func cloneExec(c *Stack) {
	a := &c.args
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&a.blockAll)), uintptr(unsafe.Pointer(&a.oldMask)), 8, 0, 0)
	base := (uintptr(unsafe.Pointer(&c.stack[0])) + 15) &^ 15
	top := (uintptr(unsafe.Pointer(&c.stack[0])) + uintptr(len(c.stack)) - 64) &^ 15
	if a.clone3.flags != 0 {
		a.clone3.stack, a.clone3.stackSize = uint64(base), uint64(top-base)
		a.clone3.childTID = uint64(uintptr(unsafe.Pointer(&c.tid)))
		a.pid, a.errno = rawCloneVM(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&a.clone3)), unsafe.Sizeof(a.clone3), 0,
			top, execChildCode, uintptr(unsafe.Pointer(a)))
	} else {
		a.pid, a.errno = rawCloneVM(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_CHILD_CLEARTID|uintptr(unix.SIGCHLD), top,
			uintptr(unsafe.Pointer(&c.tid)), top, execChildCode, uintptr(unsafe.Pointer(a)))
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&a.oldMask)), 0, 8, 0, 0)
}
