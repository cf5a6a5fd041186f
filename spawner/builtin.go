package spawner

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/goinetd/goinetd/builtin"
)

// builtinStreamLoop serves a built-in service on a stream socket: each
// connection is served by package builtin in a goroutine of its own; no
// child is started. A connection is counted (see admit) the moment it is
// accepted, since its descriptor is held from then on.
func (s *Server) builtinStreamLoop(l *listener) {
	ln, open, err := derive(l, net.FileListener)
	if err != nil {
		s.log.Error("builtin service", "service", l.bound.Name, "err", err)
		return
	}
	if !open {
		return
	}
	var wait backoff
	for {
		if !s.waitForRoom(l, l.current.Load()) {
			return
		}
		conn, err := ln.Accept()
		if err != nil {
			if !s.loopFailed(l, &wait, "accept", err) {
				return
			}
			continue
		}
		wait.reset()
		svc := l.current.Load()
		s.metrics.Accepted(svc.Name)
		counted, _, closed := s.admit(svc, netip.AddrPort{}, l.done)
		if closed != "" {
			conn.Close()
			return
		}
		if svc.ProxyProtocol {
			go s.runBuiltinConn(svc, counted, conn)
			continue
		}
		s.runBuiltinConn(svc, counted, conn)
	}
}

// runBuiltinConn admits one connection of a built-in stream service, or
// of a forwarder (forward.go),
// counted in counted, and serves it in a goroutine. A proxy_protocol
// service (called in a goroutine of its own) first reads the PROXY header,
// with the rules of spawnProxied, and the client it names is the peer. A
// TLS service does its handshake (tls.go) in the serving goroutine.
func (s *Server) runBuiltinConn(svc *service, counted slot, conn net.Conn) {
	var peer netip.AddrPort
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		peer = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	peerName := peer.String()
	fd := noConn // for the banners, which are written before conn is wrapped
	if svc.Banner != nil || svc.BannerRefused != nil {
		fd = connFD(conn)
	}
	if svc.ProxyProtocol {
		if !svc.trustedBalancer(peer.Addr()) {
			s.children.release(counted)
			s.refused(svc, fd, peerName, refusedProxySource)
			conn.Close()
			return
		}
		c, h, err := readProxyHeaderConn(conn, svc.ProxyTimeout)
		if err != nil {
			s.children.release(counted)
			s.refused(svc, fd, peerName, refusedProxyHeader, "err", err)
			conn.Close()
			return
		}
		if h.Client.IsValid() {
			peerName = h.Client.String() + " via " + peer.String()
			peer = h.Client
		}
		conn = c
	}
	sl, _, refused := s.admitCounted(svc, counted, fd, peer)
	if refused != "" {
		conn.Close()
		return
	}
	if svc.forward == nil {
		s.banner(svc, fd, peerName) // a forwarder's, once its target answers
	}
	forget := s.holdConn(conn)
	go func() {
		defer func() {
			forget()
			s.children.release(sl)
		}()
		served := conn // what the built-in reads and writes: conn, or its TLS session
		if svc.tls != nil {
			tc, err := s.handshake(svc, conn, time.Now(), peerName)
			if err != nil {
				conn.Close()
				return
			}
			served = tc
		}
		started := time.Now()
		var end time.Time
		if svc.Timeout > 0 {
			end = started.Add(svc.Timeout)
			conn.SetDeadline(end)
		}
		var err error
		var toTarget, toClient int64
		if svc.forward != nil {
			var ok bool
			if toTarget, toClient, err, ok = s.forwardConn(svc, conn, fd, peerName, end); !ok {
				return // refused: its target did not answer
			}
		} else {
			if svc.IdleTimeout > 0 {
				served = newIdleConn(served, svc.IdleTimeout, end)
			}
			err = builtin.Serve(svc.Builtin, served, time.Now)
		}
		ended := time.Now()
		s.metrics.Ended(svc.Name, ended.Sub(started))
		if !svc.connLog.allow(ended, 0) {
			return
		}
		attrs := []any{"service", svc.Name, "peer", peerName, "builtin", svc.Builtin}
		if svc.forward != nil {
			attrs = []any{"service", svc.Name, "peer", peerName, "forward", svc.Forward,
				"bytes_to_target", toTarget, "bytes_to_client", toClient}
		}
		if peer.IsValid() {
			attrs = append(attrs, "peer_ip", peer.Addr().WithZone("").String(), "peer_port", int(peer.Port()))
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && (end.IsZero() || ended.Before(end)):
			attrs = append(attrs, "idle_timeout", true)
		case errors.Is(err, os.ErrDeadlineExceeded):
			attrs = append(attrs, "timeout", true)
		case errors.Is(err, net.ErrClosed):
			// Only a stop closes a built-in's connection under it.
			attrs = append(attrs, "stopped", true)
		case err != nil:
			attrs = append(attrs, "err", err)
		}
		s.log.Info("connection ended", append(attrs, "duration", ended.Sub(started))...)
	}()
}

// idleConn ends a built-in's connection when a read or a write waits
// longer than idle: each one that moves a byte pushes the deadline, of
// both directions, idle further, but never past end (the timeout) if end
// is set. Reads and writes may run in two goroutines, as chargen's do.
type idleConn struct {
	net.Conn
	idle time.Duration
	end  time.Time
}

func newIdleConn(c net.Conn, idle time.Duration, end time.Time) *idleConn {
	ic := &idleConn{Conn: c, idle: idle, end: end}
	ic.extend()
	return ic
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.extend()
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.extend()
	}
	return n, err
}

// extend moves the deadline to idle from now, or to end if that is
// sooner.
func (c *idleConn) extend() {
	d := time.Now().Add(c.idle)
	if !c.end.IsZero() && c.end.Before(d) {
		d = c.end
	}
	c.Conn.SetDeadline(d)
}

// builtinPacketLoop serves a built-in service on a UDP socket: each
// datagram gets at most one reply, and none unless its source may be
// answered and the reply fits the budgets (see replies.go).
func (s *Server) builtinPacketLoop(l *listener) {
	pc, open, err := derive(l, net.FilePacketConn)
	if err != nil {
		s.log.Error("builtin service", "service", l.bound.Name, "err", err)
		return
	}
	if !open {
		return
	}
	conn := pc.(*net.UDPConn)
	buf := make([]byte, 64<<10)
	var wait backoff
	for {
		if !s.waitForRoom(l, l.current.Load()) {
			return
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !s.loopFailed(l, &wait, "receive", err) {
				return
			}
			continue
		}
		wait.reset()
		svc := l.current.Load()
		s.metrics.Accepted(svc.Name)
		peer := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		now := time.Now()
		if reason := svc.refuse(peer.Addr(), now); reason != "" {
			s.refused(svc, noConn, peer.String(), reason)
			continue
		}
		if svc.replies == nil {
			continue // a built-in that never answers: discard
		}
		if reason := s.refuseReplyTo(peer); reason != "" {
			s.unanswered(svc, peer, reason)
			continue
		}
		reply, ok := builtin.Reply(svc.Builtin, buf[:n], time.Now)
		if !ok {
			continue
		}
		if reason, key := svc.replies.spend(svc.source(peer.Addr()), len(reply), now); reason != "" {
			s.unanswered(svc, peer, reason, "budget", key)
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(reply, from); err != nil {
			s.log.Debug("reply failed", "service", svc.Name, "peer", peer.String(), "err", err)
			continue
		}
		s.metrics.Replied(svc.Name, len(reply))
	}
}
