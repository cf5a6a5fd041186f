// Package spawner does everything between a listening socket and a reaped
// child: it binds each service of a config.Config, admits connections,
// starts a freshly executed handler per connection (or, in wait mode, per
// readiness of the socket) and reaps the handlers when they exit.
//
// # The model
//
// A Server owns the listeners, their loops, the table of live children
// and the reaper (server.go). Start binds a config; Apply moves a running
// server to a new one as a transaction (reload.go); Shutdown drains it
// (shutdown.go).
//
// Sockets are bound with package net and kept as files (listen_linux.go;
// a unix socket's file is made and changed as socketfile_linux.go says),
// so that goinetd can call accept4 itself: the new connection is blocking
// and close-on-exec from birth, never registered with the netpoller, and
// closed by the parent right after exec. The sockets of services that
// fork per connection are taken out of the netpoller too: one OS thread,
// the spawn loop (loop_linux.go), waits for them in an epoll set of its
// own, accepts and spawns, and each service's goroutine (serve.go) takes
// its socket back only to wait for room, a rate pause or a backoff.
// Wait-mode services hand the socket itself to one child at a time
// (wait_linux.go); built-in services run in process (builtin.go), a UDP
// one answering only the sources, and within the budgets, that replies.go
// allows; a PROXY protocol service reads the balancer's header first
// (proxy.go).
//
// Admission (admit.go) is decided before any fork: address rules, rates
// (each source's in a table of bounded size, sourcerates.go) and
// per-source limits refuse a connection at once; at max_connections a
// loop stops accepting, so clients wait in the backlog. A connection's slot
// is counted in the pid table, under its lock, from accept until the child
// is reaped. Connections whose descriptor goinetd keeps open (built-ins,
// PROXY headers being read) share half of RLIMIT_NOFILE; the other half is
// a reserve that keeps accept, spawn, the log and reload working.
//
// Handlers are started by goinetd's own vfork and exec (spawn_linux.go,
// vfork_linux_amd64.go), from an exec template built when the service is
// loaded; only the connection's environment is added per spawn. The child
// gets exactly its descriptors 0, 1 and 2 (3 with listen_fds), an
// environment built from nothing, every signal at its default action and
// none blocked (clone3's CLONE_CLEAR_SIGHAND resets the handlers), the
// soft RLIMIT_NOFILE goinetd started with, and a session of its own, so
// no controlling terminal, whose process group is its pid. Unlike
// syscall.ForkExec, which it follows, it needs no pipe to learn of a
// failed exec: the child, which shares the parent's memory until it
// execs, leaves the errno there. When waiting for the exec gains
// the spawn loop nothing (it drains a burst, or no other handler runs),
// the child runs on a small stack of its own instead (spawnNoWait), and a
// failed exec is logged when the child is reaped. The functions that run
// in the child are marked //go:norace and //go:nosplit; a test
// disassembles them and fails on any call into the runtime
// (childcode_test.go). A handler that runs as another user or in a
// chroot, every handler on an architecture other than amd64, and every
// handler under GOINETD_SPAWN=forkexec (spawnmode.go) starts through
// syscall.ForkExec. Its limits, nice value and umask are applied by
// goinetd re-executed as a trampoline (sandbox_linux.go,
// trampoline_linux.go), which first checks that goinetd started it and
// that it gained no privilege at exec (origin_linux.go).
//
// One thread is the parent of every child and reaps them all: the spawn
// loop. Every spawn runs on it, wherever it was asked for, so the kernel
// aims each SIGCHLD at it; the signal interrupts its epoll_wait, and it
// calls wait4(-1, WNOHANG) until no exited child is left (reap_linux.go).
// It blocks no signal, so that children of syscall.ForkExec, which inherit
// its mask, start with none blocked.
// No goroutine or thread waits on a single child, so a held connection
// costs one entry in the pid table. A spawn waits, by pid, for a child
// whose exec failed, and records the others before the loop reaps again:
// the reaper never steals that child, and every handler it reaps has
// already been recorded. A child is signalled by pid only under the
// table's reap lock, so its pid cannot have been reused.
//
// goinetd is a child subreaper, so what a handler leaves running is
// reparented to goinetd: the reaper collects it too, with no slot to free
// and no record above debug level. With kill_group_on_exit, or once a
// timeout or a stop has signalled it, a handler's process group gets
// SIGKILL right after the reaper collects the handler: the group's id
// cannot be reused while the group has a member. A stop ends what is left
// (leftovers_linux.go).
//
// A failure to fork, exec or accept is logged at a bounded rate
// (limitlog.go), the client socket is closed, and the loop goes on;
// resource errors (EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM) back off from
// 5 ms doubling to 1 s, so an exhausted host never makes goinetd spin.
// Handlers' stderr reaches the log through one datagram socket per service
// (stderr_linux.go). What clients and handlers can repeat at will, the
// connection records and the stderr lines, is logged within a budget per
// service (logBudget, in limitlog.go), which counts what it holds back.
//
// A Server reaps every child of its process, so a process has at most one.
package spawner
