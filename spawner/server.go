package spawner

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/metrics"
	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

// Server serves the services of a config.Config.
type Server struct {
	log         *slog.Logger
	metrics     *metrics.Metrics // nil: none
	children    *children
	devNull     int    // fd 2 of handlers whose stderr is "null"
	devNullRead int    // fd 0 of listen_fds handlers
	self        string // goinetd's own executable, for the trampoline

	mu        sync.Mutex
	listeners map[string]*listener  // by listenKey
	inherited map[string]*os.File   // sockets passed by systemd, by name, not yet used
	stderrs   map[string]*stderrLog // by service name
	// heldConns are the connections goinetd serves itself, which a stop
	// closes after its grace: built-ins', forwarders' and TLS ones (see
	// holdConn).
	heldConns  map[net.Conn]struct{} // guarded by heldMu
	heldMu     sync.Mutex
	tlsConfigs tlsConfigs     // guarded by mu
	heldFull   limitedLog     // held connections at their cap
	loops      sync.WaitGroup // accept loops and stderr readers
	// vfork says whether handlers may start through package vfork, which then
	// sets their soft RLIMIT_NOFILE back to nofile (see vforkMode).
	vfork bool
	// newSession says whether handlers start in a session of their own:
	// only while goinetd has a controlling terminal for them to leave
	// behind (see hasTerminal).
	newSession bool
	nofile     *unix.Rlimit

	loop *spawnLoop // starts and reaps every handler

	deny *denyList // sources every service refuses; kept across reloads

	retry   bindRetry // services whose bind failed, tried again
	onBound func()    // called after a retried bind succeeds
	// udpPorts are the ports goinetd serves UDP on, which no UDP built-in
	// answers (replies.go); apply replaces them.
	udpPorts atomic.Pointer[ownPorts]
}

// New returns a Server that logs to log, counts in m (which may be nil)
// and starts handlers as mode says, with its spawn loop, which also reaps,
// running. Call Close or Shutdown to stop it.
func New(log *slog.Logger, m *metrics.Metrics, mode SpawnMode) (*Server, error) {
	devNull, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	devNullRead, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(devNull)
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	// Before the reaper starts, which would collect the probe's child.
	useVfork, nofile, nofileErr := vforkMode(mode)
	reserveThreads(reservedThreads)
	s := &Server{
		log:         log,
		metrics:     m,
		children:    newChildren(log, m),
		devNull:     devNull,
		devNullRead: devNullRead,
		// The kernel's link to the running binary: it stays valid when
		// the file on disk is replaced by an upgrade.
		self:      "/proc/self/exe",
		stderrs:   make(map[string]*stderrLog),
		listeners: make(map[string]*listener),
		inherited: make(map[string]*os.File),

		vfork:      useVfork,
		newSession: hasTerminal(),
		nofile:     nofile,
		heldConns:  make(map[net.Conn]struct{}),
		tlsConfigs: make(tlsConfigs),
		deny:       newDenyList(maxDenied, m),
	}
	if err := becomeSubreaper(); err != nil {
		log.Warn("processes that handlers leave behind will be reparented to init, out of goinetd's reach", "err", err)
	}
	if s.loop, err = startSpawnLoop(s); err != nil {
		unix.Close(devNull)
		unix.Close(devNullRead)
		return nil, fmt.Errorf("start the spawn loop: %w", err)
	}
	if nofileErr != nil {
		log.Info("handlers start through syscall.ForkExec, the slower way, since goinetd cannot learn "+
			"the RLIMIT_NOFILE it started with, which they must get back", "err", nofileErr)
	}
	return s, nil
}

// Start binds every enabled service of cfg and starts accepting on them.
// A service that cannot be bound is logged and its bind retried (see
// retry.go) while the others serve; Start fails only if cfg has enabled
// services and none could be bound. With [server] require_all_services,
// any failure fails it. On failure nothing is served: what was bound is
// closed, and the error names each failed service and address.
func (s *Server) Start(cfg *config.Config) error {
	s.lock()
	defer s.mu.Unlock()
	strict := cfg.Server.RequireAllServices
	ch := s.apply(cfg, strict)
	if len(ch.Failed) == 0 {
		return nil
	}
	if !strict && len(s.listeners) > 0 {
		return nil
	}
	for _, l := range s.listeners {
		l.close()
		delete(s.listeners, listenKey(l.bound))
	}
	s.stopRetries()
	var errs *multierror.Error
	for _, name := range sortedNames(ch.Failed) {
		errs = multierror.Append(errs, ch.Failed[name])
	}
	errs.ErrorFormat = oneErrorPerLine
	return errs
}

// OnBound sets f to be called, on a goroutine of its own, each time a bind
// that had failed succeeds on a retry. Call it before Start.
func (s *Server) OnBound(f func()) { s.onBound = f }

// startLoop records l as serving and runs its loop.
func (s *Server) startLoop(l *listener) {
	s.listeners[listenKey(l.bound)] = l
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.runLoop(l)
	}()
	attrs := []any{"service", l.bound.Name, "address", l.addr, "mode", l.bound.Mode}
	switch {
	case l.bound.Builtin != "":
		attrs = append(attrs, "builtin", l.bound.Builtin)
	case l.bound.Forward != "":
		attrs = append(attrs, "forward", l.bound.Forward)
	default:
		attrs = append(attrs, "program", l.bound.Program)
	}
	if l.adopted {
		attrs = append(attrs, "socket", "passed by systemd")
	}
	s.log.Info("listening", attrs...)
	s.metrics.ServiceUp(l.bound.Name, true)
}

// runLoop runs the loop that fits l's service until l is closed.
func (s *Server) runLoop(l *listener) {
	switch loopKind(l.bound) {
	case builtinPackets:
		s.builtinPacketLoop(l)
	case builtinStream:
		s.builtinStreamLoop(l)
	case waitMode:
		s.waitLoop(l)
	default:
		s.noWaitLoop(l)
	}
}

// A kind of loop that serves a listener; a socket kept across a reload
// keeps its loop, so a change of kind rebinds it.
type kindOfLoop int

const (
	noWaitMode     kindOfLoop = iota // nowait.go and loop.go: a handler per connection
	waitMode                         // wait.go: the socket handed to one handler at a time
	builtinStream                    // builtin.go: a built-in's or a forwarder's connections, in process
	builtinPackets                   // builtin.go: a UDP built-in's datagrams, in process
)

// loopKind returns the kind of loop that serves svc.
func loopKind(svc *config.Service) kindOfLoop {
	switch {
	case svc.Builtin != "" && svc.Protocol == config.UDP:
		return builtinPackets
	case svc.Builtin != "" || svc.Forward != "":
		return builtinStream
	case svc.Mode == config.Wait:
		return waitMode
	}
	return noWaitMode
}

// Close stops accepting on every service, waits for the accept loops to
// return and stops the spawn loop, which reaps. Running children are left
// to finish on their own, as classic inetd leaves them.
func (s *Server) Close() {
	s.lock()
	s.stopRetries()
	for _, l := range s.listeners {
		l.close()
	}
	for _, e := range s.stderrs {
		e.close()
	}
	s.mu.Unlock()
	s.loops.Wait()
	s.loop.stop()
	unix.Close(s.devNull)
	unix.Close(s.devNullRead)
}

// Connections returns the number of live connections: handlers running
// and built-in connections open.
func (s *Server) Connections() int { return s.children.connections() }

// SpawnMode returns how handlers are started: SpawnVfork if goinetd's own
// spawn is used where it can be, SpawnForkExec if every handler starts
// through syscall.ForkExec (as asked, or as the only way here).
func (s *Server) SpawnMode() SpawnMode {
	if s.vfork {
		return SpawnVfork
	}
	return SpawnForkExec
}

func oneErrorPerLine(errs []error) string {
	var b []byte
	for i, err := range errs {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, err.Error()...)
	}
	return string(b)
}
