package spawner

import (
	"errors"
	"net"
	"net/netip"
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
		conn, err := ln.Accept()
		if err != nil {
			if l.closed() {
				return
			}
			svc := l.current.Load()
			svc.acceptFailed.log(s.log, "accept failed", "service", svc.Name, "err", err)
			if !wait.sleep(l.done) {
				return
			}
			continue
		}
		wait.reset()
		svc := l.current.Load()
		go func() {
			started := time.Now()
			err := builtin.Serve(svc.Builtin, conn, time.Now)
			s.log.Info("connection ended", "service", svc.Name, "peer", conn.RemoteAddr().String(),
				"builtin", svc.Builtin, "err", err, "duration", time.Since(started))
		}()
	}
}

// serveBuiltinPackets serves a built-in service on a UDP socket: each
// datagram gets at most one reply, and none if it comes from a port where
// another server's built-ins may live (see builtin.ReplyAllowed).
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
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.closed() || errors.Is(err, net.ErrClosed) {
				return
			}
			svc := l.current.Load()
			svc.acceptFailed.log(s.log, "receive failed", "service", svc.Name, "err", err)
			if !wait.sleep(l.done) {
				return
			}
			continue
		}
		wait.reset()
		svc := l.current.Load()
		peer := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !builtin.ReplyAllowed(peer) {
			s.log.Debug("datagram ignored", "service", svc.Name, "peer", peer.String(), "reason", "source port")
			continue
		}
		reply, ok := builtin.Reply(svc.Builtin, buf[:n], time.Now)
		if !ok {
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(reply, from); err != nil {
			s.log.Debug("reply failed", "service", svc.Name, "peer", peer.String(), "err", err)
		}
	}
}
