package spawner

import (
	"runtime"
	"sync"
)

// reservedThreads is how many OS threads goinetd makes at startup and keeps
// idle for the Go runtime.
//
// A host out of processes (RLIMIT_NPROC, or the pids.max of goinetd's
// cgroup, e.g. systemd's TasksMax filled by handlers) fails fork with
// EAGAIN, which goinetd survives; but it fails thread creation the same
// way, and the Go runtime aborts when it cannot start a thread it wants.
// The runtime reuses idle threads before it makes new ones, and never
// destroys them, so goinetd makes enough up front: a thread per P for
// running goroutines, the spawn loop's, and spares for goroutines blocked
// in system calls (a log write, a wait-mode socket handed over). Twelve
// keeps the whole daemon under 20 threads.
const reservedThreads = 12

// reserveThreads makes the runtime start n OS threads now, by locking n
// goroutines to threads at once, and then lets them go idle.
func reserveThreads(n int) {
	var locked, release sync.WaitGroup
	locked.Add(n)
	release.Add(1)
	for range n {
		go func() {
			runtime.LockOSThread()
			locked.Done()
			release.Wait()
			runtime.UnlockOSThread() // the thread stays, idle
		}()
	}
	locked.Wait()
	release.Done()
}
