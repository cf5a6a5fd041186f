package vfork

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// ProbeName is argv[0] of the child StartingNofile starts. goinetd exits at
// once when it is started under this name: that child runs only if the
// goinetd that traces it dies before it kills it.
const ProbeName = "goinetd-nofile-probe"

// StartingNofile returns the soft RLIMIT_NOFILE goinetd's process started
// with, or nil if it is the one in force. The Go runtime raises the soft
// limit to the hard one at startup, and syscall.ForkExec sets it back in
// every child from a value only package syscall holds; Start takes it as
// an argument instead. To learn it, StartingNofile starts goinetd's own binary through ForkExec, traced, so
// that the child stops at its exec before any of its code runs, reads the
// child's limit and kills it. It must run before the reaper starts, which
// would collect the child.
func StartingNofile(self string) (*unix.Rlimit, error) {
	// A tracee reports to the thread that started it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec(self, []string{ProbeName},
		&syscall.ProcAttr{Sys: &syscall.SysProcAttr{Ptrace: true}})
	if err != nil {
		return nil, &ProbeError{Step: "start " + self + " traced", Err: err}
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
		return nil, &ProbeError{Step: "wait for the traced child", Err: err}
	}
	if !status.Stopped() {
		return nil, &ProbeError{Step: "wait for the traced child", Err: errNotStopped}
	}
	var started, now unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &started); err != nil {
		return nil, &ProbeError{Step: "read the traced child's RLIMIT_NOFILE", Err: err}
	}
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &now); err != nil {
		return nil, &ProbeError{Step: "read RLIMIT_NOFILE", Err: err}
	}
	if started == now {
		return nil, nil
	}
	return &started, nil
}

// ProbeError says which step of StartingNofile failed.
type ProbeError struct {
	Step string
	Err  error
}

func (e *ProbeError) Error() string { return e.Step + ": " + e.Err.Error() }

func (e *ProbeError) Unwrap() error { return e.Err }

// errNotStopped says the traced child ended, or stopped for another
// reason, before its exec.
var errNotStopped = probeFailure("the child did not stop at its exec")

type probeFailure string

func (f probeFailure) Error() string { return string(f) }
