package spawner

import (
	"log/slog"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Banners: banner is written to an admitted connection before its handler
// starts or a built-in serves it; banner_refused to a refused one before it
// is closed (Server.refused writes it, so every refusal does).
//
// Both are written by one send with MSG_DONTWAIT, never waiting: the
// spawn loop's thread writes them on blocking sockets, and a client that
// never reads must not hold it. The config bounds a banner to
// config.MaxBannerBytes, which the empty send buffer of a freshly accepted
// connection always holds (TCP's starts at tcp_wmem's default, 16 KiB; a
// unix stream socket's at wmem_default), so the send completes at once.
// What does not fit (a peer gone already, a buffer shrunk by the
// operator) is dropped, and logged at a bounded rate for banner; a refused
// client is being closed anyway. MSG_NOSIGNAL: a client that has reset
// must not raise SIGPIPE.

// writeBanner writes b to the connection fd without waiting and reports
// whether all of it was sent.
func writeBanner(fd int, b []byte) bool {
	n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	return err == nil && n == len(b)
}

// banner writes svc's banner to the admitted connection fd, if it has
// one, and logs a banner that did not fit.
func (s *Server) banner(svc *service, fd int, peer string) {
	if svc.Banner != nil && !writeBanner(fd, svc.Banner) {
		svc.bannerFailed.log(s.log, slog.LevelWarn, "banner not written whole; the handler starts anyway",
			"service", svc.Name, "peer", peer)
	}
}

// connFD returns the descriptor of conn, a connection goinetd holds open
// (a built-in's), or noConn. It stays valid until conn is closed.
func connFD(conn net.Conn) int {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return noConn
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return noConn
	}
	fd := noConn
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}
