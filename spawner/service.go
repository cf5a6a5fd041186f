package spawner

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/goinetd/goinetd/builtin"
	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/internal/vfork"
)

// service is a config.Service prepared for spawning: everything that does
// not depend on the connection is computed once, when it is loaded.
type service struct {
	*config.Service
	*gate
	path     string               // what to exec: the program, or the trampoline
	argv     []string             // its argv
	env      []string             // PATH and the config's env, sorted; the peer is added per connection
	sys      *syscall.SysProcAttr // shared, read-only, by every spawn
	exec     *vfork.Template      // nil: syscall.ForkExec starts the handler
	dir      string               // where the handler starts; empty: in goinetd's own directory
	stderrFD int                  // fd 2 of the child, unless stderr is "socket"
	replies  *replyGate           // a UDP built-in that answers: its reply budgets; else nil
	forward  *net.Dialer          // a forwarder's dialer to its target; else nil
	tls      *tls.Config          // a TLS service's (tls.go); else nil
	// heldFDs is how many descriptors goinetd keeps open per connection
	// beyond its accept: a built-in's connection for its whole life, a
	// PROXY protocol one's until its header is read and a resolve_peer
	// one's until its name is looked up (1), a forwarder's (forwardFDs), a
	// TLS one's until the relay ends (3: the accepted one, the netpoller's
	// duplicate of it, and goinetd's end of the handler's socket pair).
	// They count against maxHeld.
	heldFDs int

	acceptFailed, forkFailed, execFailed, quickExit, bannerFailed limitedLog
	connLog                                                       *logBudget // connection records; nil: unbounded
}

// prepare builds the spawn template of svc.
func (s *Server) prepare(svc *config.Service) (*service, error) {
	p := &service{Service: svc, gate: newGate(svc.Limits, s.deny, svc.Sensor), stderrFD: -1, connLog: connectionLog(s.log, svc)}
	switch {
	case svc.Forward != "":
		p.heldFDs = forwardFDs
	case svc.TLS != nil && svc.Builtin == "":
		p.heldFDs = 3
	case svc.Builtin != "" && svc.Protocol != config.UDP || svc.ProxyProtocol || svc.ResolvePeer:
		p.heldFDs = 1
	}
	if svc.MaxLoad > 0 {
		if _, err := readLoad(); err != nil {
			return nil, fmt.Errorf("max_load: %w", err)
		}
	}
	if svc.Sensor {
		return p, nil // it runs nothing
	}
	if svc.TLS != nil {
		s.prepareTLS(p)
	}
	if svc.Forward != "" {
		p.forward = &net.Dialer{Timeout: svc.ForwardTimeout}
		return p, nil
	}
	if svc.Builtin != "" {
		if svc.Protocol == config.UDP && builtin.Answers(svc.Builtin) {
			p.replies = newReplyGate(svc.Replies)
		}
		return p, nil
	}
	p.path = svc.Program
	p.dir = svc.Workdir
	p.argv = svc.Argv()
	p.env = baseEnv(svc.Env)
	s.sandbox(p)
	var err error
	if p.exec, err = s.execTemplate(p, p.env); err != nil {
		return nil, err
	}
	if err = s.prepareRules(p); err != nil {
		return nil, err
	}
	switch svc.Stderr {
	case config.StderrNull:
		p.stderrFD = s.devNull
	case config.StderrLog:
		e, err := s.stderrLog(svc.Name)
		if err != nil {
			return nil, err
		}
		e.limit(svc)
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
