package spawner

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// service is a config.Service prepared for spawning: everything that does
// not depend on the connection is computed once, when it is loaded.
type service struct {
	*config.Service
	argv     []string
	env      []string // PATH and the config's env, sorted; the peer is added per connection
	stderrFD int      // fd 2 of the child, unless stderr is "socket"

	acceptFailed, forkFailed, execFailed limitedLog
}

// errFork marks a spawn that failed because the host is out of processes
// or memory; the accept loop backs off after it.
var errFork = errors.New("fork failed")

// prepare builds the spawn template of svc.
func (s *Server) prepare(svc *config.Service) (*service, error) {
	p := &service{
		Service:  svc,
		argv:     append([]string{filepath.Base(svc.Program)}, svc.Args...),
		env:      baseEnv(svc.Env),
		stderrFD: -1,
	}
	switch svc.Stderr {
	case config.StderrNull:
		p.stderrFD = s.devNull
	case config.StderrLog:
		e, err := s.stderrLog(svc.Name)
		if err != nil {
			return nil, err
		}
		p.stderrFD = e.writeFD
	}
	return p, nil
}

// baseEnv returns PATH, unless env sets it, followed by env.
func baseEnv(env []string) []string {
	base := []string{"PATH=" + config.DefaultPath}
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			base = base[:0]
			break
		}
	}
	base = append(base, env...)
	slices.Sort(base)
	return base
}

// spawn starts svc's program for the connection fd from peer. The caller
// closes fd afterwards. A failure is logged here; the error it returns
// wraps errFork when the accept loop should back off.
func (s *Server) spawn(svc *service, fd int, peer netip.AddrPort) error {
	local, err := unix.Getsockname(fd)
	if err != nil {
		svc.execFailed.log(s.log, "spawn failed", "service", svc.Name, "peer", peer.String(),
			"stage", "getsockname", "err", err)
		return err
	}
	stderr := svc.stderrFD
	if stderr < 0 {
		stderr = fd
	}
	attr := &syscall.ProcAttr{
		Dir:   svc.Workdir,
		Env:   connectionEnv(svc.env, peer, addrPort(local)),
		Files: []uintptr{uintptr(fd), uintptr(fd), uintptr(stderr)},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	c := &child{service: svc.Name, peer: peer, started: time.Now()}
	err = s.children.start(svc.Program, svc.argv, attr, c)
	switch {
	case err == nil:
		s.log.Debug("spawned", "service", svc.Name, "peer", peer.String(), "pid", c.pid)
		return nil
	case err == unix.EAGAIN || err == unix.ENOMEM:
		svc.forkFailed.log(s.log, "spawn failed", "service", svc.Name, "peer", peer.String(),
			"stage", "fork", "err", err)
		return fmt.Errorf("%w: %w", errFork, err)
	default:
		svc.execFailed.log(s.log, "spawn failed", "service", svc.Name, "peer", peer.String(),
			"stage", "exec", "program", svc.Program, "err", err)
		return err
	}
}

// connectionEnv returns base plus the addresses of one connection, in the
// UCSPI convention (PROTO, TCPREMOTEIP, ...) and systemd's (REMOTE_ADDR,
// REMOTE_PORT).
func connectionEnv(base []string, peer, local netip.AddrPort) []string {
	remoteIP := peer.Addr().WithZone("").String()
	remotePort := strconv.Itoa(int(peer.Port()))
	env := make([]string, len(base), len(base)+7)
	copy(env, base)
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
