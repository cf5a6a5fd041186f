// Package vfork starts a program the way goinetd starts a handler on its
// fast path: a child that shares goinetd's memory (CLONE_VM) until it
// execs, as glibc's posix_spawn does, instead of syscall.ForkExec's full
// fork and its pipe for a failed exec. It is the only code of goinetd
// that runs in such a child, and the only package with assembly,
// //go:nosplit or //go:norace, and it is fenced accordingly: it imports
// only syscall, x/sys/unix, runtime, sync/atomic and unsafe, logs
// nothing, knows nothing of services or connections, and starts no
// goroutine.
//
// Two ways to start a child, from one Template built ahead:
//
//   - Template.Start clones with CLONE_VFORK: the child runs on the
//     caller's stack while the caller sleeps until it execs, and leaves a
//     failed exec's errno in memory both share.
//   - Template.StartNoWait clones without CLONE_VFORK: the child runs on
//     a Stack of its own from a Pool, the caller goes on at once, and a
//     failed exec's errno is written where the caller said, for it to
//     read when it reaps the child.
//
// Both try clone3 with CLONE_CLEAR_SIGHAND first, and fall back to clone
// for good once clone3 is refused. StartingNofile is the probe that
// learns the RLIMIT_NOFILE goinetd started with, which both give back to
// the child. Available is false on architectures other than amd64: the
// caller then uses syscall.ForkExec, as it does under GOINETD_SPAWN=forkexec.
//
// # The child's rules
//
// The Go code that runs in the child (vforkExec after its clone,
// execChild) is marked //go:norace and //go:nosplit, and only it is; it
// makes raw system calls and nothing else: no call into the runtime (a
// stack check's morestack, a bounds check's panic, an allocation, the
// race detector), no write barrier, no indirect call. Nothing the parent
// needs after the clone lives in vforkExec's frame, which the child
// overwrites. Every signal is blocked on the calling thread across the
// clone (all but SIGCHLD under clone3, whose CLONE_CLEAR_SIGHAND leaves
// the child no Go handler to run), so no Go signal handler ever runs in
// the child. TestChildCodeCallsNoRuntime checks the machine code.
//
// # On a Go upgrade
//
// The compiler promises none of the above; re-check:
//
//   - go test -race ./internal/vfork/ passes: TestChildCodeCallsNoRuntime
//     disassembles the child code, with and without -race, and fails on
//     any call into the runtime, write barrier or indirect call.
//   - The assembly (vfork_linux_amd64.s) still matches the ABI: rawCloneVM
//     calls execChild through ABIInternal (its argument in AX, X15 zero,
//     16 bytes of spill space), and rawVfork keeps its return address in
//     R12 across the system call, as package syscall's rawVforkSyscall
//     does; compare with syscall/asm_linux_amd64.s of the new release.
//   - A Go function value still points to a word holding its code's
//     address (execChildCode).
//   - The runtime still never moves heap objects (a Stack is in use by a
//     child the garbage collector does not know of).
//   - BenchmarkSpawn (spawn_bench_test.go) against the figures in the
//     docs/performance.md, and the end-to-end suite both ways
//     (make test runs it with GOINETD_SPAWN=forkexec too).
//
// Should the fast path break in the field, GOINETD_SPAWN=forkexec turns
// it off without a rebuild.
package vfork
