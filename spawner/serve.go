package spawner

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// listener is one bound service and its accept loop.
//
// The listening socket is held as an *os.File, not a net.Listener, because
// only a file's RawConn can wait for readability and let us call accept4
// ourselves (a net.Listener's RawConn refuses Read).
type listener struct {
	service *config.Service // as bound
	file    *os.File
	addr    string // the bound address, for logs
	raw     syscall.RawConn
	current atomic.Pointer[service] // settings for the next connection
	done    chan struct{}           // closed by close
	once    sync.Once
}

// close stops l's accept loop: a pending accept returns and a backoff
// pause ends.
func (l *listener) close() {
	l.once.Do(func() {
		close(l.done)
		l.file.Close()
	})
}

// closed reports whether close has been called.
func (l *listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// serve accepts connections on l and spawns a handler for each until l is
// closed. Errors never end the loop: resource shortages back off, and
// every failure is logged at a bounded rate.
func (s *Server) serve(l *listener) {
	var wait backoff
	for {
		fd, peer, err := l.accept()
		switch {
		case err == nil:
		case l.closed():
			return
		case clientGone(err):
			continue // that connection died in the backlog; take the next
		default:
			svc := l.current.Load()
			svc.acceptFailed.log(s.log, "accept failed", "service", svc.Name, "err", err)
			if !wait.sleep(l.done) {
				return
			}
			continue
		}

		svc := l.current.Load()
		err = s.spawn(svc, fd, peer)
		unix.Close(fd)
		if errors.Is(err, errFork) {
			if !wait.sleep(l.done) {
				return
			}
			continue
		}
		wait.reset()
	}
}

// accept takes one connection off l's queue, waiting in the netpoller
// while there is none. The descriptor it returns is blocking and
// close-on-exec. It fails once l is closed.
func (l *listener) accept() (fd int, peer netip.AddrPort, err error) {
	var sa unix.Sockaddr
	var acceptErr error
	err = l.raw.Read(func(lfd uintptr) bool {
		for {
			fd, sa, acceptErr = unix.Accept4(int(lfd), unix.SOCK_CLOEXEC)
			if acceptErr != unix.EINTR {
				return acceptErr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return -1, peer, err
	}
	if acceptErr != nil {
		return -1, peer, acceptErr
	}
	return fd, addrPort(sa), nil
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

// backoff is the pause of an accept loop after a resource error: 5 ms,
// doubling to at most 1 s, until a connection is served again.
type backoff struct{ d time.Duration }

const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// sleep pauses for the next backoff step. It returns false, early, when
// done is closed.
func (b *backoff) sleep(done <-chan struct{}) bool {
	b.d = min(max(2*b.d, minBackoff), maxBackoff)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

func (b *backoff) reset() { b.d = 0 }
