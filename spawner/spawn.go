package spawner

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// spawnAccepted admits the connection fd from the socket address sa,
// already counted by acceptCounted in the slot counted, and starts svc's
// program for it, waiting for its exec or not as wait says. The caller
// closes fd afterwards. A refusal or failure is logged here, and frees the
// count; the error it returns wraps errFork when the accept loop should
// back off.
func (s *Server) spawnAccepted(svc *service, counted slot, fd int, sa unix.Sockaddr, wait execWait) error {
	s.metrics.Accepted(svc.Name)
	return s.spawnFor(svc, counted, fd, sa, addrPort(sa), netip.AddrPort{}, wait)
}

// spawnFor admits the counted connection fd (with socket address sa) of
// client, which arrived through the balancer via if via is valid, and
// starts svc's program for it. See spawnAccepted. Under resolve_peer it
// looks the client's name up first, so it is then called only in a
// goroutine of the connection's own (spawnResolved, spawnProxied).
func (s *Server) spawnFor(svc *service, counted slot, fd int, sa unix.Sockaddr, client, via netip.AddrPort, wait execWait) error {
	sl, perSource, refused := s.admitCounted(svc, counted, fd, client)
	if refused != "" {
		return nil
	}
	return s.startHandler(svc, sl, perSource, fd, sa, client, via, nil, wait)
}

// startHandler starts svc's program for the admitted connection fd,
// counted in sl (perSource from its source): spawnFor's second half. With
// t, a TLS session (tls.go), the handler gets t's end of the socket pair
// instead of fd, and the session's variables; fd still gives the
// addresses.
func (s *Server) startHandler(svc *service, sl slot, perSource int, fd int, sa unix.Sockaddr, client, via netip.AddrPort, t *tlsSession, wait execWait) error {
	if svc.Banner != nil {
		s.banner(svc, fd, client.String())
	}
	conn, peerName, err := connectionEnv(fd, sa, client)
	if err == nil && client.IsValid() && svc.MaxPerSource > 0 {
		conn = append(conn, "TCPCONCURRENCY="+strconv.Itoa(perSource))
	}
	if err == nil && via.IsValid() {
		conn = append(conn, "PROXYREMOTEIP="+via.Addr().WithZone("").String(), "PROXYREMOTEPORT="+strconv.Itoa(int(via.Port())))
		peerName += " via " + via.String()
	}
	if err == nil && svc.ResolvePeer {
		if name := confirmedName(client.Addr(), svc.ResolveTimeout); name != "" {
			conn = append(conn, "TCPREMOTEHOST="+name, "REMOTE_HOST="+name)
		}
	}
	if err != nil {
		s.children.release(sl)
		svc.execFailed.log(s.log, slog.LevelError, "spawn failed", "service", svc.Name, "peer", peerName,
			"stage", "peer address", "err", err)
		return err
	}
	stdio := fd
	c := &child{svc: svc, peer: peerName, client: client, slot: sl}
	if t != nil {
		stdio, c.exited, c.relay = t.handlerFD, t.reaped, t
		conn = tlsEnv(conn, t.state)
	}
	stderr := svc.stderrFD
	if stderr < 0 {
		stderr = stdio
	}
	var h *handlerEnv
	if svc.rules != nil {
		h = svc.rules.handler(client.Addr())
	}
	return s.spawn(c, h, []uintptr{uintptr(stdio), uintptr(stdio), uintptr(stderr)}, conn, wait)
}

// spawnWait starts a wait-mode child on the listening socket fd, counted
// in sl: as fds 0 and 1, or as fd 3 under listen_fds (with stdin /dev/null
// and stdout where stderr goes). exited is closed when the child has been
// reaped.
func (s *Server) spawnWait(svc *service, fd int, sl slot, exited chan struct{}) error {
	files := []uintptr{uintptr(fd), uintptr(fd), uintptr(svc.stderrFD)}
	if svc.ListenFDs {
		files = []uintptr{uintptr(s.devNullRead), uintptr(svc.stderrFD), uintptr(svc.stderrFD), uintptr(fd)}
	}
	return s.spawn(&child{svc: svc, slot: sl, exited: exited}, nil, files, nil, waitExec)
}

// spawn forks and execs the program of c's service with files as its
// descriptors 0, 1, 2 (and 3) and the connection's variables conn after
// the service's env (or h's, a rule's environment, if h is not nil), for
// the connection c describes, and logs a failure. c's slot is freed when
// the child is reaped, or at once if it cannot start.
func (s *Server) spawn(c *child, h *handlerEnv, files []uintptr, conn []string, wait execWait) error {
	svc, peer, sl := c.svc, c.peer, c.slot
	c.started, c.killGroup = time.Now(), svc.KillGroupOnExit
	var err error
	s.loop.do(func() {
		var pid int
		if pid, err = s.loop.fork(svc, h, files, conn, &c.execErr, wait); err == nil {
			s.children.add(pid, c, svc.Timeout)
		}
	})
	if err != nil {
		s.children.release(sl)
	}
	switch {
	case err == nil:
		s.metrics.Started(svc.Name)
		s.log.Debug("spawned", "service", svc.Name, "peer", peer, "pid", c.pid)
		return nil
	case err == unix.EAGAIN || err == unix.ENOMEM:
		s.metrics.SpawnFailed(svc.Name, "fork")
		svc.forkFailed.log(s.log, slog.LevelError, "spawn failed", "service", svc.Name, "peer", peer,
			"stage", "fork", "err", err)
		return fmt.Errorf("%w: %w", errFork, err)
	default:
		stage, key, value := failedStart(svc, err)
		s.metrics.SpawnFailed(svc.Name, stage)
		svc.execFailed.log(s.log, slog.LevelError, "spawn failed", "service", svc.Name, "peer", peer,
			"stage", stage, key, value, "err", err)
		return err
	}
}

// failedStart names the step of starting svc's handler that failed with
// err, the errno of its chdir or of its exec (the kernel does not say
// which), and what it failed on: stage chdir and the workdir when the
// handler could not have entered that folder (gone, or closed to its
// user), else stage exec and the program.
func failedStart(svc *service, err error) (stage, key, value string) {
	if workdirFailed(svc, err) {
		return "chdir", "workdir", svc.Workdir
	}
	return "exec", "program", svc.Program
}

// workdirFailed reports whether err, from starting svc's handler, is its
// chdir's: the folder is gone, or its user may not enter it.
func workdirFailed(svc *service, err error) bool {
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) || svc.Workdir == "" {
		return false
	}
	root := "/"
	if svc.Chroot != "" {
		root = svc.Chroot
	}
	if _, statErr := os.Stat(filepath.Join(root, svc.Workdir)); statErr != nil {
		return true
	}
	return svc.Credential != nil && config.AccessDenied(root, svc.Workdir, svc.Credential, config.MaySearch) != nil
}

// connectionEnv returns what the handler of the connection fd should know
// of it, to follow the service's env, and the peer as logs show it:
//
//   - TCP: the addresses, client's (the peer, or the client a PROXY
//     header named) and local, in the UCSPI convention (PROTO=TCP, TCPREMOTEIP,
//     TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT) and systemd's (REMOTE_ADDR,
//     REMOTE_PORT); an IPv4-mapped IPv6 address is shown as IPv4.
//   - unix: the peer's credentials, as ucspi-unix gives them (PROTO=UNIX,
//     UNIXREMOTEPID, UNIXREMOTEEUID, UNIXREMOTEEGID).
func connectionEnv(fd int, sa unix.Sockaddr, client netip.AddrPort) (env []string, peer string, err error) {
	env = make([]string, 0, 10)
	if _, ok := sa.(*unix.SockaddrUnix); ok {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return nil, "unix", fmt.Errorf("SO_PEERCRED: %w", err)
		}
		pid, uid, gid := strconv.Itoa(int(cred.Pid)), strconv.Itoa(int(cred.Uid)), strconv.Itoa(int(cred.Gid))
		return append(env, "PROTO=UNIX", "UNIXREMOTEPID="+pid, "UNIXREMOTEEUID="+uid, "UNIXREMOTEEGID="+gid),
			"unix:pid=" + pid + ",uid=" + uid, nil
	}
	local, err := getsockname(fd)
	if err != nil {
		return nil, client.String(), fmt.Errorf("getsockname: %w", err)
	}
	return tcpEnv(env, client, addrPort(local)), client.String(), nil
}

// tcpEnv appends the addresses of one TCP connection to env.
func tcpEnv(env []string, peer, local netip.AddrPort) []string {
	remoteIP := peer.Addr().WithZone("").String()
	remotePort := strconv.Itoa(int(peer.Port()))
	return append(env,
		"PROTO=TCP",
		"TCPREMOTEIP="+remoteIP,
		"TCPREMOTEPORT="+remotePort,
		"TCPLOCALIP="+local.Addr().WithZone("").String(),
		"TCPLOCALPORT="+strconv.Itoa(int(local.Port())),
		"REMOTE_ADDR="+remoteIP,
		"REMOTE_PORT="+remotePort,
	)
}

// errFork marks a spawn that failed because the host is out of processes
// or memory; the accept loop backs off after it.
var errFork = errors.New("fork failed")
