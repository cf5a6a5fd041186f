package spawner

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// noWaitLoop accepts connections on l and spawns a handler for each until
// l is closed. Errors never end the loop: resource shortages back off, and
// every failure is logged at a bounded rate.
//
// When a fork fails because the host is out of processes or memory, the
// loop does not fork again for a backoff pause (5 ms doubling to 1 s), but
// it goes on accepting: each client that comes meanwhile is closed at once
// (refused as fork_backoff) instead of waiting in the backlog for a fork
// that would fail. The first connection after the pause tries again.
func (s *Server) noWaitLoop(l *listener) {
	var wait backoff
	var noForkUntil time.Time
	for {
		svc := l.current.Load()
		if !s.waitForRoom(l, svc) {
			return
		}
		if noForkUntil.IsZero() && !svc.ProxyProtocol && !svc.ResolvePeer && svc.TLS == nil {
			// The spawn loop serves l until it has to wait.
			served, err := s.loop.acceptOn(l)
			if served {
				wait.reset()
			}
			switch {
			case err == errHandBack:
			case err == errLoopStopped || l.closed():
				return
			case errors.Is(err, errFork):
				noForkUntil = time.Now().Add(wait.advance())
				s.metrics.ServiceUp(svc.Name, false) // until a fork works again
			case !s.loopFailed(l, &wait, "accept", err):
				return
			}
			continue
		}
		fd, sa, err := s.acceptCounted(l, svc)
		switch {
		case err == errFull:
			continue // another loop took the last slot: wait for room
		case err == nil:
		case l.closed():
			return
		case clientGone(err):
			continue // that connection died in the backlog; take the next
		default:
			if !s.loopFailed(l, &wait, "accept", err) {
				return
			}
			continue
		}

		// A reload while this loop waited applies to this connection too;
		// it stays counted under the name it was accepted for.
		cur, counted := l.current.Load(), slot{service: svc.Name, held: svc.heldFDs}
		if !noForkUntil.IsZero() && time.Now().Before(noForkUntil) {
			s.children.release(counted)
			s.refused(cur, fd, addrPort(sa).String(), refusedForkBackoff)
			unix.Close(fd)
			continue
		}
		if cur.TLS != nil {
			go s.spawnTLS(cur, counted, fd, sa)
			continue
		}
		if cur.ProxyProtocol {
			go s.spawnProxied(cur, counted, fd, sa)
			continue
		}
		if cur.ResolvePeer {
			go s.spawnResolved(cur, counted, fd, sa)
			continue
		}
		err = s.spawnAccepted(cur, counted, fd, sa, waitExec)
		unix.Close(fd)
		if errors.Is(err, errFork) {
			noForkUntil = time.Now().Add(wait.advance())
			s.metrics.ServiceUp(cur.Name, false) // until a fork works again
			continue
		}
		if !noForkUntil.IsZero() {
			s.metrics.ServiceUp(cur.Name, true)
		}
		wait.reset()
		noForkUntil = time.Time{}
	}
}

// errFull says acceptCounted found no room and accepted nothing.
var errFull = errors.New("at max_connections")

// acceptCounted takes one connection off l's queue, waiting in the spawn
// loop while there is none, and counts it against svc's and goinetd's
// max_connections at the moment it is accepted, under the pid table's
// lock: a connection is never accepted past a limit, so the clients over
// it wait in the kernel's backlog. If there is no room it accepts nothing
// and returns errFull.
//
// The descriptor it returns is blocking and close-on-exec; the caller owns
// the count (see release). It fails once l is closed.
func (s *Server) acceptCounted(l *listener, svc *service) (fd int, sa unix.Sockaddr, err error) {
	for {
		if ctlErr := l.fd(func(lfd int) { fd, sa, err = s.acceptNow(lfd, svc) }); ctlErr != nil {
			return -1, nil, ctlErr
		}
		if err != unix.EAGAIN {
			return fd, sa, err
		}
		if err := s.loop.watch(l); err != nil {
			return -1, nil, err
		}
	}
}

// clientGone reports accept errors that concern only the connection being
// accepted (it was reset, or the network failed under it), which the Linux
// accept(2) page says to treat like EAGAIN and retry.
func clientGone(err error) bool {
	switch err {
	case unix.ECONNABORTED, unix.EPROTO, unix.EPERM, unix.ENETDOWN, unix.ENOPROTOOPT,
		unix.EHOSTDOWN, unix.ENONET, unix.EHOSTUNREACH, unix.EOPNOTSUPP, unix.ENETUNREACH:
		return true
	}
	return false
}

// addrPort converts a socket address to a netip.AddrPort, showing an
// IPv4-mapped IPv6 address as plain IPv4.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}
