// Package spawner does everything between a listening socket and a reaped
// child: it binds each service of a config.Config, accepts connections,
// starts a freshly executed handler per connection with the socket on its
// standard input and output, and reaps the handlers when they exit.
//
// # The model
//
// A Server owns the listeners, one accept loop per listener, the table of
// live children and the reaper. Connections are accepted with accept4(2)
// through the listener's syscall.RawConn, so the new socket is blocking
// from birth, close-on-exec, and never registered with Go's netpoller: it
// exists in goinetd only for the few microseconds between accept and exec,
// then the parent closes its copy.
//
// Handlers are started with syscall.ForkExec (vfork, then execve). The
// child gets exactly three descriptors: the connection as fds 0 and 1, and
// fd 2 as its service's stderr setting says. Its environment is built from
// nothing: PATH, the service's env, and the peer's address in the UCSPI and
// systemd conventions. It runs in a process group of its own.
//
// One reaper owns every child. SIGCHLD wakes it and it calls
// wait4(-1, WNOHANG) until no exited child is left; no goroutine or thread
// waits on a single child, so the cost of a held connection in goinetd is
// one entry in the pid table. ForkExec reaps a child whose exec failed
// itself, by pid, so spawns hold the table's fork lock for reading and the
// reaper holds it for writing: the reaper never steals that child, and
// every child it reaps has already been recorded.
//
// A failure to fork or exec, or to accept, is logged (at a bounded rate),
// the client socket is closed, and the loop goes on; resource errors
// (EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM) back off from 5 ms doubling to
// 1 s, so an exhausted host never makes goinetd spin.
//
// A Server reaps every child of its process, so a process has at most one.
package spawner
