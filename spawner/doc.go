// Package spawner does everything between a listening socket and a reaped
// child: it binds each service of a config.Config, admits connections,
// starts a freshly executed handler per connection (or, in wait mode, per
// readiness of the socket) and reaps the handlers when they exit.
//
// # The model
//
// A Server owns the listeners, their loops, the table of live children
// and the reaper. Start binds a config; Apply moves a running server to a
// new one as a transaction; Shutdown drains it.
//
// Sockets are bound with package net and kept as files, so that goinetd
// can call accept4 itself: the new connection is blocking and
// close-on-exec from birth, never registered with the netpoller, and
// closed by the parent right after exec. The sockets of services that
// fork per connection are taken out of the netpoller too: one OS thread,
// the spawn loop, waits for them in an epoll set of its own, accepts and
// spawns, and each listener's goroutine takes its socket back only to
// wait for room, a rate pause or a backoff. Wait-mode services hand the
// socket itself to one child at a time; built-in services and
// forwarders (forward.go) run in process, a UDP built-in answering only
// the sources, and within the budgets, that replies.go allows; a PROXY
// protocol service reads the balancer's header first; a TLS service does
// the handshake in goinetd and relays the plaintext to its handler
// (tls.go).
//
// Admission is decided before any fork: the deny list (sensors), address
// rules, rates (each source's in a table of bounded size) and per-source
// limits refuse a connection at once; at max_connections a loop stops accepting, so
// clients wait in the backlog. Connections whose descriptor goinetd keeps
// open (built-ins, forwarders, PROXY headers being read) share half of
// RLIMIT_NOFILE; the other half is a reserve that keeps accept, spawn,
// the log and reload working.
//
// Handlers are started through package internal/vfork, from an exec
// template built when the service is loaded; only the connection's
// environment is added per spawn. The child gets exactly its descriptors
// 0, 1 and 2 (3 with listen_fds), an environment built from nothing,
// every signal at its default action and none blocked, the soft
// RLIMIT_NOFILE goinetd started with, a process group of its own whose id
// is its pid, and no controlling terminal (a session of its own only when
// goinetd kept its terminal: see hasTerminal). When waiting for
// the exec gains the spawn loop nothing (it drains a burst, or no other
// handler runs), the spawn does not wait (execWait), and a failed exec is
// logged when the child is reaped. A handler that runs as another user or
// in a chroot, every handler on an architecture other than amd64, and
// every handler under GOINETD_SPAWN=forkexec starts through
// syscall.ForkExec. Its limits, nice value and umask are applied by
// goinetd re-executed as a trampoline (package internal/trampoline).
//
// goinetd is a child subreaper, so what a handler leaves running is
// reparented to goinetd: the reaper collects it too, with no slot to free
// and no record above debug level. With kill_group_on_exit, or once a
// timeout or a stop has signalled it, a handler's process group gets
// SIGKILL right after the reaper collects the handler. A stop ends what
// is left.
//
// A failure to fork, exec or accept is logged at a bounded rate, the
// client socket is closed, and the loop goes on; resource errors (EAGAIN,
// EMFILE, ENFILE, ENOBUFS, ENOMEM) back off from 5 ms doubling to 1 s, so
// an exhausted host never makes goinetd spin. What clients and handlers
// can repeat at will, the connection records and the stderr lines, is
// logged within a budget per service, which counts what it holds back.
//
// Why each piece is as fast as it is, and what it cost before:
// docs/performance.md; how it fits together: docs/design.md.
//
// # The rules
//
// Each rule has one home, the file named; where it is cheap, a debug
// build (-race, or -tags goinetd_debug: invariants.go) or a test checks it.
//
//  1. Every fork runs on the spawn loop's thread, so that the kernel aims
//     each SIGCHLD at the loop, which reaps, and every child has one
//     parent thread. loop.go: spawnLoop.fork is the only caller of
//     package vfork's spawns and of syscall.ForkExec; Server.spawn reaches
//     it through spawnLoop.do. Checked: mustBeLoopThread.
//  2. The loop's thread never takes Server.mu: Apply and Close hold it
//     while they wait for the loop (a listener's close makes the loop
//     forget it). invariants.go: Server.lock. Checked: every Server.mu
//     lock goes through it.
//  3. A connection's slot is counted once, in the pid table under its
//     lock, from its accept until its child is reaped or its built-in
//     connection ends (a TLS connection's: both its child and its relay).
//     table.go is the only file that takes the table's lock or changes its
//     counts; a refusal or a failure frees the slot through
//     children.release, the reaper (or a TLS relay) through the same.
//  4. Every child the reaper collects has been recorded, and a child
//     whose exec failed is not collected by the reaper before its spawn
//     has waited for it: both run on the loop's thread, and a spawn
//     records its child (children.add) before the loop reaps again.
//     loop.go, table.go.
//  5. A child is signalled by pid only under the reap lock held for
//     reading, and collected under it held for writing, so the pid cannot
//     have been reused (table.go: expire, signalAll, signalLeftovers;
//     reap.go: reapExited). Its process group is killed on the reaper's
//     thread right after the wait4 that collected its leader (reap.go).
//  6. Code that runs in a child sharing goinetd's memory makes raw system
//     calls only: it lives in package internal/vfork, whose
//     TestChildCodeCallsNoRuntime disassembles it.
//  7. A handler gets only the descriptors, environment and signal state
//     above: spawn.go (descriptors and environment), sandbox.go (process
//     attributes), loop.go (the loop's signal mask, empty, which
//     ForkExec's children inherit), internal/vfork (the fast path).
//     Checked by TestConnectionVariablesAreDocumented and the end-to-end
//     tests, in both spawn modes.
//  8. The loop never accepts on a descriptor that may have been reused:
//     a listener's socket is closed only after the loop has handed it
//     back (listener.go: close; loop.go: forget).
//
// # Lock order
//
// Server.mu, then (waiting for the loop through do, which takes no lock
// of the caller's) children.reapLock, then children.mu. Every other lock
// is a leaf, held around its own fields only: spawnLoop.mu,
// listener.mu, gate.mu, sourceRates.mu, denyList.mu, limitedLog.mu,
// Server.heldMu. The loop's thread
// takes children.reapLock, children.mu and the leaves, never Server.mu.
//
// # Files
//
//	server.go       Server, New, Start, Close, and runLoop: the one dispatch on a service's kind of loop
//	reload.go       Apply: a reload as a transaction; binding and adopting sockets
//	retry.go        binds that failed, tried again
//	shutdown.go     Shutdown: drain, signal, wait
//	listener.go     a bound socket kept as a file; close; binding TCP, UDP
//	sockopts.go     the socket options of a TCP or UDP listener, set once at bind
//	socketfile.go   a unix socket's file, made and changed through checked descriptors
//	inherit.go      what goinetd drops from what it inherited: ignored signals, the terminal
//	loop.go         the spawn loop: epoll, accept batches, fork, execWait
//	nowait.go       a nowait listener's goroutine, and accepting a counted connection
//	wait.go         wait mode: the socket handed to one child at a time
//	builtin.go      built-in services, stream and datagram, run in process
//	replies.go      which UDP sources a built-in answers, within which budgets
//	forward.go      forwarding: a connection joined, in process, to one to the service's target
//	proxy.go        reading a PROXY header off a connection (internal/proxyheader parses it)
//	tls.go          TLS: the handshake in goinetd, the handler's socket pair, the relay, SSL_* variables
//	resolve.go      resolve_peer: the client's forward-confirmed name, looked up off the accept loop
//	backoff.go      the pause of a loop after a resource error
//	service.go      service: a config.Service prepared for spawning
//	spawn.go        a connection's environment, and the spawn of one handler
//	sandbox.go      user, group, chroot, pass_env, and who needs the trampoline
//	stderr.go       handlers' stderr to the log, one datagram socket per service
//	table.go        the pid table: slots, counts, live children, timeouts, signalling
//	reap.go         the reaper: wait4 until no exited child is left, and the record of each
//	leftovers.go    the subreaper, and ending what handlers left behind at a stop
//	admit.go        admission policy: address rules, rates, limits (no table lock)
//	banner.go       banner and banner_refused, written without waiting
//	load.go         the host load average that max_load compares, read at most once a second
//	sourcerates.go  the per-source rate table, of bounded size
//	denylist.go     the deny list (sensor, deny_on_rate): sources every service refuses, bounded, kept across reloads
//	rules.go        per-client rules: first match by prefix, each rule's environment
//	limitlog.go     logging at a bounded rate, and the log budgets
//	clock.go        the monotonic clock of every timer kept as a number, immune to wall clock steps
//	rawsyscalls.go  accept4, getsockname and wait4 as raw system calls
//	threads.go      the OS threads reserved at start
//	spawnmode.go    GOINETD_SPAWN: vfork or forkexec
//	invariants.go   the run-time checks of rules 1 and 2 (debug_on.go, debug_off.go)
//
// A Server reaps every child of its process, so a process has at most one.
package spawner
