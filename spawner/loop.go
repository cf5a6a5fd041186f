package spawner

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/goinetd/goinetd/internal/vfork"
	"golang.org/x/sys/unix"
)

// The spawn loop is the one OS thread that starts and reaps every handler.
//
// Go's scheduler charges a superserver for each time it goes idle and
// wakes up again, which at one client at a time is once per connection:
// an accept loop parked in the netpoller lets every P go idle, so the
// runtime's sysmon thread sleeps, and the next system call made through
// package syscall wakes it again; os/signal hands each SIGCHLD from the
// signal handler to a thread of its own and from there to the reaper's
// goroutine. Together that was a third of goinetd's CPU at one client
// (docs/performance.md).
//
// So the services that spawn per connection are served by a goroutine
// locked to its own thread, which waits in epoll_wait(2) as an ordinary
// system call. With a second P idle, the runtime leaves that P alone for
// 10 ms, so the loop wakes with no hand-off. The kernel sends SIGCHLD to the
// thread that forked the child, if it can: this one. The signal interrupts
// epoll_wait, and the loop reaps; os/signal is never asked for SIGCHLD.
// Every other spawn (wait mode, PROXY protocol) is run on this thread too,
// so every child has it as its parent.
//
// A SIGCHLD can still miss the loop: it goes to another thread while this
// one blocks signals for a vfork, or it arrives after the loop's last
// wait4 and before it blocks again; the SIGCHLD of a process a handler
// left behind, reparented to goinetd, goes to whichever thread the kernel
// picks (see leftovers.go). The loop reaps after every wake-up, and
// while goinetd has any child it wakes at least every reapBackstop.

// reapBackstop is how long an exited child may at worst wait to be reaped
// when its SIGCHLD missed the loop.
const reapBackstop = 100 * time.Millisecond

// acceptBatch is how many connections the loop takes from one listener
// before it looks at the others and reaps: enough to drain a burst, few
// enough that exited children do not pile up under a flood.
const acceptBatch = 8

// yieldEvery is how often the loop passes through Go's scheduler. A
// goroutine that has not for 10 ms looks stuck to the runtime's monitor
// thread (sysmon): it takes the loop's P away, or signals its thread,
// and polls every 20 µs again for a while. Yielding first costs a
// hand-off of the P to another thread and back (three threads woken, five
// futex calls) every few milliseconds instead.
const yieldEvery = 5 * time.Millisecond

// quietSpell is a wait in epoll_wait long enough that sysmon has taken
// the loop's P meanwhile (it does after 10 ms, polling at most every 10
// ms), so that the loop went through the scheduler to get one back: it
// counts as a yield, and the first connection after it pays for none.
const quietSpell = 20 * time.Millisecond

// spawnLoop runs the loop. Its methods may be called from any goroutine.
type spawnLoop struct {
	s      *Server
	epfd   int
	wakefd int // an eventfd in epfd: a write wakes the loop
	tid    int // the loop's thread
	done   chan struct{}

	mu       sync.Mutex
	queue    []func() // run on the loop's thread, in order
	stopped  bool
	stopOnce sync.Once

	// Owned by the loop.
	leases map[int32]*lease // by listening descriptor
	clones vfork.Pool       // the stacks of children started with noExecWait
}

// lease is a nowait listener the loop serves until it hands it back to
// its goroutine, with the reason, because serving it needs a wait the
// loop does not do (room, a rate pause, a backoff) or it was closed.
type lease struct {
	l       *listener
	fd      int
	prepaid bool // a rate_limit token is taken for the next accept
	served  bool // a handler started (a backoff can end)
	watch   bool // only wait for readability: hand back, with nil, then
	back    chan error
}

// errHandBack says the loop gave a listener back for its goroutine to wait
// for room or for the rate limit, or to serve it itself (PROXY protocol).
var errHandBack = errors.New("handed back")

// errLoopStopped says the spawn loop is not running.
var errLoopStopped = errors.New("spawn loop stopped")

// startSpawnLoop starts s's spawn loop.
func startSpawnLoop(s *Server) (*spawnLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)})
	}
	if err != nil {
		unix.Close(epfd)
		if wakefd >= 0 {
			unix.Close(wakefd)
		}
		return nil, err
	}
	lp := &spawnLoop{s: s, epfd: epfd, wakefd: wakefd, done: make(chan struct{}), leases: make(map[int32]*lease)}
	started := make(chan struct{})
	go lp.run(started)
	<-started
	return lp, nil
}

// run is the loop.
func (lp *spawnLoop) run(started chan<- struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // the thread stays, idle (see reserveThreads)
	defer close(lp.done)
	lp.tid = unix.Gettid()
	// Handlers start with no signal blocked, whatever goinetd started
	// with. syscall.ForkExec's child execs with the mask its parent
	// thread had at the fork (the runtime saves it and restores it in the
	// child), and a Go thread's mask is the one the process started with,
	// less the signals the runtime needs: a SIGPIPE, SIGUSR1 or SIGALRM
	// that goinetd's launcher blocked would stay blocked in every handler
	// started as another user, in a chroot or through the trampoline. No
	// code of goinetd runs before the runtime has started threads with
	// that mask, but every fork runs on this thread: clearing its mask,
	// once, clears every child's. No Go thread needs a signal blocked.
	unix.PthreadSigmask(unix.SIG_SETMASK, &unix.Sigset_t{}, nil)
	close(started)
	events := make([]unix.EpollEvent, 16)
	busySince := time.Now() // when the loop last yielded or slept long
	for {
		if now := time.Now(); now.Sub(busySince) >= yieldEvery {
			runtime.Gosched()
			busySince = now
		}
		if !lp.runQueued() {
			lp.runQueued() // what was queued before the stop
			lp.handBackAll(errLoopStopped)
			lp.s.children.reapExited()
			return
		}
		timeout := -1
		if childless := lp.s.children.reapExited(); !childless {
			timeout = int(reapBackstop / time.Millisecond)
		}
		waited := time.Now()
		n, err := unix.EpollWait(lp.epfd, events, timeout)
		if now := time.Now(); now.Sub(waited) >= quietSpell {
			busySince = now
		}
		if err != nil {
			continue // EINTR: most likely SIGCHLD
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == lp.wakefd {
				var b [8]byte
				unix.Read(lp.wakefd, b[:])
			} else if ls := lp.leases[ev.Fd]; ls != nil && ls.watch {
				lp.handBack(ls, nil)
			} else if ls != nil {
				lp.acceptReady(ls)
			}
		}
	}
}

// runQueued runs what other goroutines queued, and reports false once the
// loop is to stop.
func (lp *spawnLoop) runQueued() bool {
	lp.mu.Lock()
	queue := lp.queue
	lp.queue = nil
	lp.mu.Unlock()
	for _, f := range queue {
		f()
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return !lp.stopped
}

// do runs f on the loop's thread and returns once it has run. If the loop
// is not running, f runs on the caller's.
func (lp *spawnLoop) do(f func()) {
	if unix.Gettid() == lp.tid {
		f()
		return
	}
	ran := make(chan struct{})
	if !lp.post(func() { f(); close(ran) }) {
		f()
		return
	}
	<-ran
}

// post queues f for the loop and wakes it; it reports false if the loop
// has stopped.
func (lp *spawnLoop) post(f func()) bool {
	lp.mu.Lock()
	if lp.stopped {
		lp.mu.Unlock()
		return false
	}
	lp.queue = append(lp.queue, f)
	lp.mu.Unlock()
	one := uint64(1)
	unix.Write(lp.wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
	return true
}

// stop ends the loop, once it has run what is queued, reaped what has
// exited, and handed every listener back; it waits for it.
func (lp *spawnLoop) stop() {
	lp.stopOnce.Do(func() {
		lp.post(func() {
			lp.mu.Lock()
			lp.stopped = true
			lp.mu.Unlock()
		})
		<-lp.done
		unix.Close(lp.epfd)
		unix.Close(lp.wakefd)
	})
}

// acceptOn lets the loop accept and spawn on l, which its caller (l's
// goroutine) has room and a rate_limit token for, until the loop hands it
// back. It returns why: errHandBack, an error wrapping errFork after a
// failed fork, an accept error, or errLoopStopped once l or the loop is
// closed; and whether a handler started meanwhile.
func (lp *spawnLoop) acceptOn(l *listener) (served bool, err error) {
	ls := &lease{l: l, prepaid: true}
	err = lp.lendAndWait(ls)
	return ls.served, err
}

// watch waits until l's socket is readable, and fails with errLoopStopped
// if l or the loop is closed first. A nowait listener is not in Go's
// netpoller (see listener.unpoll); its goroutine waits here instead.
func (lp *spawnLoop) watch(l *listener) error {
	return lp.lendAndWait(&lease{l: l, watch: true})
}

// lendAndWait lends ls to the loop and waits for it back.
func (lp *spawnLoop) lendAndWait(ls *lease) error {
	ls.back = make(chan error, 1)
	if ls.l.fd(func(fd int) { ls.fd = fd }) != nil {
		return errLoopStopped
	}
	if !lp.post(func() { lp.lend(ls) }) {
		return errLoopStopped
	}
	return <-ls.back
}

// lend starts serving ls, unless its listener is closed already.
func (lp *spawnLoop) lend(ls *lease) {
	if ls.l.closed() {
		ls.back <- errLoopStopped
		return
	}
	err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, ls.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ls.fd)})
	if err != nil {
		ls.back <- err
		return
	}
	lp.leases[int32(ls.fd)] = ls
}

// handBack stops serving ls and gives it back to its goroutine with err.
func (lp *spawnLoop) handBack(ls *lease, err error) {
	unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, ls.fd, nil)
	delete(lp.leases, int32(ls.fd))
	ls.back <- err
}

// handBackAll hands every listener back with err.
func (lp *spawnLoop) handBackAll(err error) {
	for _, ls := range lp.leases {
		lp.handBack(ls, err)
	}
}

// forget hands l back if the loop serves it, before l's socket is closed:
// the loop never accepts on a descriptor that may have been reused.
func (lp *spawnLoop) forget(l *listener) {
	lp.do(func() {
		for _, ls := range lp.leases {
			if ls.l == l {
				lp.handBack(ls, errLoopStopped)
			}
		}
	})
}

// acceptReady takes up to acceptBatch connections from ls's listener and
// spawns a handler for each, as noWaitLoop would, and hands the listener
// back when it must wait or has failed.
func (lp *spawnLoop) acceptReady(ls *lease) {
	s := lp.s
	for i := range acceptBatch {
		svc := ls.l.current.Load()
		if svc.ProxyProtocol || svc.ResolvePeer { // served in goroutines, off this thread
			lp.handBack(ls, errHandBack)
			return
		}
		if !ls.prepaid {
			if svc.pause() > 0 {
				lp.handBack(ls, errHandBack)
				return
			}
			ls.prepaid = true
		}
		fd, sa, err := s.acceptNow(ls.fd, svc)
		switch {
		case err == unix.EAGAIN:
			return
		case err == errFull:
			lp.handBack(ls, errHandBack)
			return
		case clientGone(err):
			continue
		case err != nil:
			lp.handBack(ls, err)
			return
		}
		ls.prepaid = false
		wait := waitExec
		if i > 0 || lp.idle() {
			wait = noExecWait
		}
		err = s.spawnAccepted(svc, slot{service: svc.Name}, fd, sa, wait)
		unix.Close(fd)
		if errors.Is(err, errFork) {
			lp.handBack(ls, err)
			return
		}
		ls.served = true
	}
}

// execWait says whether a spawn through vfork waits for its child's exec.
//
// The loop sleeps through a spawn that waits (a vfork) and wakes when
// the child has exec'd, often to more connections that arrived meanwhile:
// under steady load that batches its wake-ups. A spawn need not wait when
// that gains nothing: when the loop took a second or later connection in
// one wake-up, others are queued behind it already; when no other handler
// runs, no other client is likely to arrive during the exec (idle). Then
// the loop goes on at once, and sleeps only in epoll_wait.
type execWait uint8

const (
	waitExec   execWait = iota // vfork.Template.Start: a failed exec fails the spawn
	noExecWait                 // StartNoWait, while the pool has a stack: the reaper learns of a failed exec
)

// fork starts svc's program with files as its descriptors 0, 1, 2 (and
// 3) and svc.env (h's, if h is not nil: a rule's) followed by the
// connection's variables conn: through
// package vfork when it can, through syscall.ForkExec otherwise; without
// waiting for the exec if wait says so and a stack is free, and then a
// failed exec's errno is written to *execErr for the reaper. It returns
// the child's pid, or the errno of the fork or the exec.
//
// This is the only caller of package vfork's spawns and of
// syscall.ForkExec: every handler is a child of the loop's thread, which
// reaps them all. Call it on that thread (Server.spawn does, through do).
func (lp *spawnLoop) fork(svc *service, h *handlerEnv, files []uintptr, conn []string, execErr *uintptr, wait execWait) (int, error) {
	lp.mustBeLoopThread()
	exec, base := svc.exec, svc.env
	if h != nil {
		exec, base = h.exec, h.env
	}
	if exec != nil && vfork.Fits(files) {
		if wait == noExecWait {
			if st := lp.clones.Get(); st != nil {
				return exec.StartNoWait(st, files, conn, lp.s.nofile, execErr)
			}
		}
		return exec.Start(files, conn, lp.s.nofile)
	}
	env := append(slices.Clip(base), conn...)
	return syscall.ForkExec(svc.path, svc.argv, &syscall.ProcAttr{Dir: svc.dir, Env: env, Files: files, Sys: svc.sys})
}

// execTemplate returns the vfork template of p's handler with env, or nil if it
// starts through syscall.ForkExec: vfork is off (s.vfork), or the handler
// switches credentials or root, which only ForkExec does.
func (s *Server) execTemplate(p *service, env []string) (*vfork.Template, error) {
	if !s.vfork || p.sys.Credential != nil || p.sys.Chroot != "" {
		return nil, nil
	}
	return vfork.NewTemplate(p.path, p.dir, p.argv, env, s.newSession)
}

// vforkMode returns whether handlers may start through package vfork in
// mode, and the soft RLIMIT_NOFILE they then get back (see
// vfork.StartingNofile), or the error that turns vfork off. Call it before
// the reaper starts, which would collect the probe's child.
func vforkMode(mode SpawnMode) (use bool, nofile *unix.Rlimit, err error) {
	if !vfork.Available || mode == SpawnForkExec {
		return false, nil, nil
	}
	nofile, err = vfork.StartingNofile("/proc/self/exe")
	return err == nil, nofile, err
}

// idle reports whether no handler runs but, perhaps, one that has exited
// unseen: with one client at a time, its handler has often exited and its
// client connected again before the loop saw the SIGCHLD. That child is
// left for the reaper, after this spawn, so that its record is not
// written on the new client's path.
func (lp *spawnLoop) idle() bool {
	switch lp.s.children.handlers() {
	case 0:
		return true
	case 1:
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err == nil && info.Signo == int32(unix.SIGCHLD)
	}
	return false
}
