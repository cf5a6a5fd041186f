package spawner

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// Changes is what Start or Apply did, by service name.
type Changes struct {
	Added   []string // newly bound
	Removed []string // no longer served; their children run on
	Rebound []string // same address, but a different kind of loop: closed and bound again
	Changed []string // socket kept, some setting differs; it applies to new connections
	Kept    []string // socket and settings unchanged
	Failed  map[string]error
}

// Apply moves the server to cfg, service by service, without a moment
// when a kept port refuses connections:
//
//   - a service whose protocol and address (or path) are unchanged keeps
//     its listening socket and its loop; its other settings apply to the
//     next connection;
//   - new services are bound before removed ones are closed;
//   - a removed service stops accepting; its running children are not
//     touched;
//   - a service whose loop changes (nowait to wait, program to builtin),
//     or whose socket options change, is closed and bound again, the one
//     case with a short gap;
//   - a service that cannot be bound is reported in Failed and the others
//     still apply.
//
// cfg must be valid (config.Load's result).
func (s *Server) Apply(cfg *config.Config) Changes {
	s.lock()
	defer s.mu.Unlock()
	return s.apply(cfg, false)
}

// listenKey identifies a listening socket across configs.
func listenKey(svc *config.Service) string {
	return string(svc.Protocol) + " " + svc.ListenAddress()
}

// apply is Apply with s.mu held. When strict (at startup), any failure
// undoes everything it bound and serves nothing.
func (s *Server) apply(cfg *config.Config, strict bool) Changes {
	ch := Changes{Failed: make(map[string]error)}
	s.deny.setTime(cfg.Server.DenyTime) // before any sensor of cfg serves
	old := s.listeners
	next := make(map[string]*listener)
	var toBind []*config.Service
	for _, svc := range cfg.Enabled() {
		key := listenKey(svc)
		l, ok := old[key]
		if ok && loopKind(l.bound) == loopKind(svc) && (l.adopted || l.bound.SocketOptions == svc.SocketOptions) {
			p, err := s.prepare(svc)
			if err != nil {
				ch.Failed[svc.Name] = fmt.Errorf("service %s: %w (keeping its old settings)", svc.Name, err)
			} else {
				if reflect.DeepEqual(l.current.Load().Service, svc) {
					ch.Kept = append(ch.Kept, svc.Name)
				} else {
					ch.Changed = append(ch.Changed, svc.Name)
				}
				l.current.Store(p)
				s.updateSocketFile(l, svc)
			}
			next[key] = l
			continue
		}
		if ok {
			// Same address, another kind of loop or other socket
			// options: it must go first.
			l.close()
			delete(old, key)
			ch.Rebound = append(ch.Rebound, svc.Name)
		} else {
			ch.Added = append(ch.Added, svc.Name)
		}
		toBind = append(toBind, svc)
	}

	var started []*listener
	inUse := make(map[*config.Service]error)
	bind := func(svc *config.Service, last bool) {
		l, err := s.bind(svc)
		switch {
		case err == nil:
			next[listenKey(svc)] = l
			started = append(started, l)
		case !last && errors.Is(err, unix.EADDRINUSE):
			inUse[svc] = err
		default:
			ch.Failed[svc.Name] = err
		}
	}
	// Bind what is new before closing what is gone. A new service whose
	// address a removed one still holds is tried again after the close.
	for _, svc := range toBind {
		bind(svc, false)
	}
	if strict && len(ch.Failed)+len(inUse) > 0 {
		for svc, err := range inUse {
			ch.Failed[svc.Name] = err
		}
		for _, l := range started {
			l.close()
		}
		return ch
	}
	for key, l := range old {
		if _, kept := next[key]; !kept {
			l.close()
			delete(s.listeners, key)
			ch.Removed = append(ch.Removed, l.current.Load().Name)
			s.log.Info("stopped listening", "service", l.current.Load().Name, "address", l.addr)
		}
	}
	for _, svc := range toBind {
		if _, ok := inUse[svc]; ok {
			bind(svc, true)
		}
	}

	for key := range s.listeners {
		if _, ok := next[key]; !ok {
			delete(s.listeners, key)
		}
	}
	s.udpPorts.Store(udpPortsOf(next))
	for _, l := range started {
		s.startLoop(l)
	}
	for name, err := range ch.Failed {
		if !strict {
			s.log.Error("cannot serve service", "service", name, "err", err)
		}
	}
	for _, name := range ch.Removed {
		s.metrics.ServiceRemoved(name)
	}
	withTLS := make(map[string]bool)
	for _, svc := range cfg.Enabled() {
		s.metrics.Declare(svc.Name, svc.Program != "", refusalReasons)
		if svc.TLS != nil {
			s.metrics.DeclareTLS(svc.Name)
			withTLS[svc.Name] = true
		}
	}
	s.tlsConfigs.keepOnly(withTLS)
	s.retryLater(cfg, ch)
	s.children.maxTotal.Store(int64(cfg.Server.MaxConnections))
	s.children.maxHeld.Store(heldLimit())
	for _, list := range [][]string{ch.Added, ch.Removed, ch.Rebound, ch.Changed, ch.Kept} {
		slices.Sort(list)
	}
	// Failures are not added.
	ch.Added = slices.DeleteFunc(ch.Added, func(n string) bool { return ch.Failed[n] != nil })
	ch.Rebound = slices.DeleteFunc(ch.Rebound, func(n string) bool { return ch.Failed[n] != nil })
	return ch
}

// bind makes a listener for svc, from a socket systemd passed under svc's
// name if there is one, else by binding, with its settings prepared.
func (s *Server) bind(svc *config.Service) (*listener, error) {
	var l *listener
	var err error
	if f, ok := s.inherited[svc.Name]; ok {
		l, err = adopt(svc, f)
		if err == nil {
			delete(s.inherited, svc.Name)
		}
	} else {
		l, err = listen(svc)
	}
	if err == nil && loopKind(svc) == noWaitMode {
		l.loop = s.loop
		if err = l.unpoll(); err != nil {
			l.close()
			err = fmt.Errorf("service %s: %w", svc.Name, err)
		}
	}
	if err != nil {
		return nil, err
	}
	p, err := s.prepare(svc)
	if err != nil {
		l.close()
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	l.current.Store(p)
	return l, nil
}

// updateSocketFile gives a kept unix socket the mode and owner of its new
// settings, through the socket goinetd made: if its path now holds
// anything else, that is left alone.
func (s *Server) updateSocketFile(l *listener, svc *config.Service) {
	if l.socket == nil {
		return
	}
	switch err := l.socket.set(svc.SocketMode, svc.SocketUID, svc.SocketGID); {
	case errors.Is(err, errNotOurSocket):
		s.log.Error("socket file replaced; its mode and owner are left alone", "service", svc.Name, "path", svc.Path)
	case errors.Is(err, unix.ENOENT):
		s.log.Error("socket file removed; clients cannot connect until goinetd restarts", "service", svc.Name, "path", svc.Path)
	case err != nil:
		s.log.Error("socket file", "service", svc.Name, "path", svc.Path, "err", err)
	}
}

// Adopt takes sockets passed by systemd (see activation.Files): each is
// used, instead of binding, by the service its name matches. Call it
// before Start. A socket whose name matches no service is kept, open, for
// a later reload that adds one; see Unused.
func (s *Server) Adopt(files []*os.File) {
	s.lock()
	defer s.mu.Unlock()
	for _, f := range files {
		s.inherited[f.Name()] = f
	}
}

// Unused returns the names of sockets passed by systemd that no service
// has taken.
func (s *Server) Unused() []string {
	s.lock()
	defer s.mu.Unlock()
	return sortedNames(s.inherited)
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// adopt makes a listener of a socket passed by systemd for svc, after
// checking that it is the kind of socket svc declares, on svc's port or
// path.
func adopt(svc *config.Service, f *os.File) (*listener, error) {
	fd := int(f.Fd()) // blocking for now; made non-blocking below
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("service %s: socket %q passed by systemd: %w", svc.Name, f.Name(), err)
	}
	domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	want := unix.SOCK_STREAM
	if svc.Protocol == config.UDP {
		want = unix.SOCK_DGRAM
	}
	if typ != want || (svc.Protocol == config.Unix) != (domain == unix.AF_UNIX) {
		return nil, fmt.Errorf("service %s: socket %q passed by systemd is not a %s socket", svc.Name, f.Name(), svc.Protocol)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("service %s: socket %q passed by systemd: %w", svc.Name, f.Name(), err)
	}
	var bound string
	switch sa := sa.(type) {
	case *unix.SockaddrUnix:
		bound = sa.Name
		if bound != svc.Path {
			return nil, fmt.Errorf("service %s: socket passed by systemd is %s; the config says %s", svc.Name, bound, svc.Path)
		}
	default:
		ap := addrPort(sa)
		bound = ap.String()
		if ap.Port() != svc.Port || (svc.Address.IsValid() && !svc.Address.IsUnspecified() && ap.Addr() != svc.Address) {
			return nil, fmt.Errorf("service %s: socket passed by systemd is bound to %s; the config says %s", svc.Name, bound, svc.ListenAddress())
		}
	}
	// A pollable duplicate: the netpoller needs a non-blocking socket.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err == nil {
		err = unix.SetNonblock(dup, true)
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: socket passed by systemd: %w", svc.Name, err)
	}
	f.Close()
	file := os.NewFile(uintptr(dup), "systemd:"+strconv.Itoa(dup))
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return &listener{bound: svc, file: file, addr: bound, raw: raw, adopted: true, done: make(chan struct{})}, nil
}
