package spawner

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/goinetd/goinetd/builtin"
)

// serveBuiltinStream serves a built-in service on a stream socket: each
// connection is served by package builtin in a goroutine of its own; no
// child is started.
func (s *Server) serveBuiltinStream(l *listener) {
	ln, err := net.FileListener(l.file)
	if err != nil {
		s.log.Error("builtin service", "service", l.service.Name, "err", err)
		return
	}
	if !l.derive(ln) {
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
		if svc.ProxyProtocol {
			go s.serveBuiltinConn(l, svc, conn)
			continue
		}
		s.serveBuiltinConn(l, svc, conn)
	}
}

// serveBuiltinConn admits one connection of a built-in stream service and
// serves it in a goroutine. A proxy_protocol service (called in a
// goroutine of its own) first reads the PROXY header, with the rules of
// serveProxied, and the client it names is the peer.
func (s *Server) serveBuiltinConn(l *listener, svc *service, conn net.Conn) {
	var peer netip.AddrPort
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		peer = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	peerName := peer.String()
	if svc.ProxyProtocol {
		if !svc.trustedBalancer(peer.Addr()) {
			s.refused(svc, peerName, refusedProxySource)
			conn.Close()
			return
		}
		c, h, err := readProxyHeaderConn(conn, svc.ProxyTimeout)
		if err != nil {
			s.refused(svc, peerName, refusedProxyHeader, "err", err)
			conn.Close()
			return
		}
		if h.client.IsValid() {
			peerName = h.client.String() + " via " + peer.String()
			peer = h.client
		}
		conn = c
	}
	sl, _, refused := s.admit(svc, peer, l.done)
	if refused != "" {
		conn.Close()
		return
	}
	s.mu.Lock()
	s.builtinConns[conn] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.builtinConns, conn)
			s.mu.Unlock()
			s.children.release(sl)
		}()
		started := time.Now()
		if svc.Timeout > 0 {
			conn.SetDeadline(started.Add(svc.Timeout))
		}
		err := builtin.Serve(svc.Builtin, conn, time.Now)
		ended := time.Now()
		s.metrics.Ended(svc.Name, ended.Sub(started))
		if !svc.connLog.allow(ended, 0) {
			return
		}
		attrs := []any{"service", svc.Name, "peer", peerName, "builtin", svc.Builtin}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			attrs = append(attrs, "timeout", true)
		} else if err != nil {
			attrs = append(attrs, "err", err)
		}
		s.log.Info("connection ended", append(attrs, "duration", ended.Sub(started))...)
	}()
}

// serveBuiltinPackets serves a built-in service on a UDP socket: each
// datagram gets at most one reply, and none unless its source may be
// answered and the reply fits the budgets (see replies.go).
func (s *Server) serveBuiltinPackets(l *listener) {
	pc, err := net.FilePacketConn(l.file)
	if err != nil {
		s.log.Error("builtin service", "service", l.service.Name, "err", err)
		return
	}
	if !l.derive(pc) {
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
			s.refused(svc, peer.String(), reason)
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
