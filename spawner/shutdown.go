package spawner

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Stopped is how a Shutdown ended the live connections (handlers and
// built-in connections) it found.
type Stopped struct {
	Ended     int // ended by themselves within the grace period
	Signalled int // signalled (handlers) or closed (built-in connections) after it
	Left      int // left running: grace 0, as classic inetd leaves them
}

// Shutdown stops the server gracefully:
//
//  1. every listener is closed at once, so nothing new is accepted;
//  2. it waits up to grace for the live connections (children and built-in
//     connections) to end;
//  3. then it sends SIGTERM to each remaining child's process group and
//     closes the remaining built-in connections;
//  4. after killGrace it sends SIGKILL to what is left, and waits for the
//     reaper to collect it;
//  5. the processes handlers left behind that are still goinetd's children
//     get SIGTERM, and SIGKILL after killGrace (see endLeftovers).
//
// A child signalled in step 3 or 4 has its process group killed when it is
// reaped, so what ignored SIGTERM ends with it. Each step is logged. With
// grace 0 it only closes the listeners and returns at once, leaving the
// children and what they started running, as classic inetd does. The
// Server is closed afterwards either way.
func (s *Server) Shutdown(grace time.Duration) Stopped {
	defer s.Close()
	s.closeListeners()
	live := s.children.connections()
	if grace <= 0 {
		s.log.Info("stopped accepting; handlers are left to finish", "connections", live)
		return Stopped{Left: live}
	}
	var st Stopped
	if live > 0 {
		st = s.endConnections(grace, live)
	}
	s.endLeftovers()
	return st
}

// endConnections is steps 2 to 4 of Shutdown, for live connections.
func (s *Server) endConnections(grace time.Duration, live int) Stopped {
	s.log.Info("stopped accepting; waiting for connections to end", "connections", live, "grace", grace)
	if s.children.waitIdle(time.Now().Add(grace)) {
		s.log.Info("every connection ended")
		return Stopped{Ended: live}
	}

	remaining := s.children.connections()
	n := s.children.signalAll(unix.SIGTERM)
	s.closeHeldConns()
	s.log.Warn("grace period over: terminating handlers", "handlers", n, "connections", remaining)
	if !s.children.waitIdle(time.Now().Add(killGrace)) {
		n := s.children.signalAll(unix.SIGKILL)
		s.log.Warn("killing handlers that outlived SIGTERM", "handlers", n)
		if !s.children.waitIdle(time.Now().Add(killGrace)) {
			s.log.Error("handlers still running after SIGKILL", "connections", s.children.connections())
		}
	}
	return Stopped{Ended: live - remaining, Signalled: remaining}
}

// closeListeners closes every listener; their loops return.
func (s *Server) closeListeners() {
	s.lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.close()
	}
}

// holdConn counts c among the connections a stop closes after its grace,
// until the returned func forgets it.
func (s *Server) holdConn(c net.Conn) (forget func()) {
	s.heldMu.Lock()
	s.heldConns[c] = struct{}{}
	s.heldMu.Unlock()
	return func() {
		s.heldMu.Lock()
		delete(s.heldConns, c)
		s.heldMu.Unlock()
	}
}

// closeHeldConns closes the connections goinetd serves itself.
func (s *Server) closeHeldConns() {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	for c := range s.heldConns {
		c.Close()
	}
}
