package spawner

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// quickExit is how soon a wait-mode child must exit, with its socket still
// readable and nothing taken from it, to count as having made no progress.
const quickExit = time.Second

// waitLoop runs l's wait-mode service: when the socket is readable (a
// connection or a datagram is pending), it starts one child with the socket
// itself, stops watching until the child has been reaped, then watches
// again. The child accepts or receives on its own.
//
// A child that exits at once and leaves the socket as it found it would
// otherwise be restarted in a hot loop; goinetd backs off instead (5 ms
// doubling to 1 s) and logs it, until a child makes progress.
func (s *Server) waitLoop(l *listener) {
	var wait backoff
	for {
		if !l.waitReadable() {
			return
		}
		svc := l.current.Load()
		if svc.Protocol == config.UDP && s.dropRefusedDatagram(l, svc) {
			continue
		}
		if !s.waitForRoom(l, svc) {
			return
		}
		sl, _, refused := s.admit(svc, netip.AddrPort{}, l.done)
		if refused != "" {
			return // closed while waiting for room
		}
		s.metrics.Accepted(svc.Name)
		exited := make(chan struct{})
		var before queueMark
		var err error
		started := time.Now()
		if ctlErr := l.fd(func(fd int) {
			before = markQueue(fd, svc.Protocol)
			// The child expects a blocking socket, as every inetd gives
			// it; goinetd does no I/O on it until the child is gone.
			unix.SetNonblock(fd, false)
			err = s.spawnWait(svc, fd, sl, exited)
			if err != nil {
				unix.SetNonblock(fd, true)
			}
		}); ctlErr != nil {
			s.children.release(sl)
			return // closed
		}
		if err != nil {
			if !wait.sleep(l.done) {
				return
			}
			continue
		}

		select {
		case <-exited:
		case <-l.done:
			return // the child keeps the socket and runs on
		}
		progressed := true
		if l.fd(func(fd int) {
			unix.SetNonblock(fd, true)
			progressed = time.Since(started) >= quickExit || !readable(fd) || before.taken(markQueue(fd, svc.Protocol))
		}) != nil {
			return
		}
		if progressed {
			wait.reset()
			continue
		}
		svc.quickExit.log(s.log, slog.LevelWarn, "wait-mode handler exited without taking what was pending; backing off",
			"service", svc.Name, "lived", time.Since(started).Round(time.Millisecond), "backoff", wait.next())
		if !wait.sleep(l.done) {
			return
		}
	}
}

// dropRefusedDatagram reads, without spawning anything, the datagram at the
// head of a UDP service's queue if its sender is refused (address rules,
// a denying rule, or its source's rate), and reports whether it did.
func (s *Server) dropRefusedDatagram(l *listener, svc *service) bool {
	if len(svc.OnlyFrom) == 0 && len(svc.NoAccess) == 0 && svc.rules == nil && svc.sources == nil && !svc.deny.active() {
		return false
	}
	dropped := false
	l.fd(func(fd int) {
		var buf [1]byte
		_, from, err := unix.Recvfrom(fd, buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err != nil {
			return
		}
		peer := addrPort(from)
		if reason := svc.refuse(peer.Addr(), time.Now()); reason != "" {
			unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT)
			s.refused(svc, noConn, peer.String(), reason)
			dropped = true
		}
	})
	return dropped
}

// waitReadable blocks until l's socket has something to accept or
// receive, and reports false if l was closed first. It only looks: poll(2)
// with no timeout tells whether the socket is readable now, and if not the
// netpoller waits for the next event.
func (l *listener) waitReadable() bool {
	err := l.raw.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0 || (err != nil && !errors.Is(err, unix.EINTR))
	})
	return err == nil && !l.closed()
}

func readable(fd int) bool {
	n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	return n > 0
}

// queueMark tells whether a child took anything from a socket: for UDP,
// the sender and first bytes of the datagram at the head of the queue (read
// with MSG_PEEK, so it stays there); for TCP, the length of the accept
// queue. A unix socket shows neither, so its mark is always equal.
type queueMark struct {
	from  string
	head  [64]byte
	n     int
	queue uint32
}

// taken reports whether after, marked when the child exited, shows that
// the child took something from the queue marked before it started.
func (before queueMark) taken(after queueMark) bool {
	if before.from != "" || after.from != "" {
		return before.from != after.from || before.n != after.n || before.head != after.head
	}
	return after.queue < before.queue
}

func markQueue(fd int, proto config.Protocol) queueMark {
	var m queueMark
	switch proto {
	case config.UDP:
		n, from, err := unix.Recvfrom(fd, m.head[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err == nil {
			m.n = n
			m.from = addrPort(from).String()
		}
	case config.TCP:
		// For a listening socket, tcpi_unacked is the accept queue length.
		if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			m.queue = info.Unacked
		}
	}
	return m
}
