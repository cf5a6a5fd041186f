package spawner

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/goinetd/goinetd/internal/proxyheader"
	"golang.org/x/sys/unix"
)

// readProxyHeader reads the PROXY header (see package proxyheader) from the accepted, blocking
// connection fd, waiting at most timeout, and consumes exactly its bytes.
// It waits in the netpoller, on a non-blocking duplicate of fd, so a silent
// balancer connection costs no thread; fd is blocking again when it
// returns.
func readProxyHeader(fd int, timeout time.Duration) (proxyheader.Header, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return proxyheader.Header{}, fmt.Errorf("read PROXY header: %w", err)
	}
	defer unix.SetNonblock(fd, false) // the flag is shared with dup
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return proxyheader.Header{}, fmt.Errorf("read PROXY header: %w", err)
	}
	f := os.NewFile(uintptr(dup), "proxy-header")
	defer f.Close()
	f.SetReadDeadline(time.Now().Add(timeout))
	raw, err := f.SyscallConn()
	if err != nil {
		return proxyheader.Header{}, fmt.Errorf("read PROXY header: %w", err)
	}

	buf := make([]byte, proxyheader.MaxLength)
	var length int
	var peekErr error
	err = raw.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return false
		case err != nil:
			peekErr = err
		case n == 0:
			peekErr = fmt.Errorf("%w: the connection closed before its end", proxyheader.ErrMalformed)
		default:
			length, peekErr = proxyheader.Length(buf[:n])
			if length == 0 && peekErr == nil {
				return false // more is coming: wait for it
			}
		}
		return true
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return proxyheader.Header{}, fmt.Errorf("%w: none within %v", proxyheader.ErrMalformed, timeout)
	case err != nil:
		return proxyheader.Header{}, fmt.Errorf("read PROXY header: %w", err)
	case peekErr != nil:
		return proxyheader.Header{}, peekErr
	}
	// The header is all there: read exactly it, and no more.
	if n, err := unix.Read(dup, buf[:length]); err != nil || n != length {
		return proxyheader.Header{}, fmt.Errorf("read PROXY header: got %d of %d bytes: %v", n, length, err)
	}
	return proxyheader.Parse(buf[:length])
}

// readProxyHeaderConn is readProxyHeader for a built-in's connection,
// which goinetd reads itself: the bytes after the header stay buffered in
// the returned connection.
func readProxyHeaderConn(c net.Conn, timeout time.Duration) (net.Conn, proxyheader.Header, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	r := bufio.NewReaderSize(c, proxyheader.MaxLength)
	want := 1
	for {
		b, err := r.Peek(want) // what is buffered, once at least want bytes are
		if len(b) < r.Buffered() {
			b, _ = r.Peek(r.Buffered())
		}
		length, ferr := proxyheader.Length(b)
		switch {
		case ferr != nil:
			return nil, proxyheader.Header{}, ferr
		case length > 0:
			head := make([]byte, length)
			if _, err := io.ReadFull(r, head); err != nil {
				return nil, proxyheader.Header{}, fmt.Errorf("%w: %w", proxyheader.ErrMalformed, err)
			}
			h, err := proxyheader.Parse(head)
			return &bufferedConn{Conn: c, r: r}, h, err
		case err != nil:
			return nil, proxyheader.Header{}, fmt.Errorf("%w: %w", proxyheader.ErrMalformed, err)
		}
		want = len(b) + 1
	}
}

// bufferedConn reads what its reader buffered before reading its Conn.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// spawnProxied serves a connection accepted, and counted, on a
// proxy_protocol service, in a goroutine of its own so that a slow or
// silent balancer never holds up the accept loop. See proxiedClient. It
// owns fd.
func (s *Server) spawnProxied(svc *service, counted slot, fd int, sa unix.Sockaddr) {
	defer s.children.heldUntilReturn(&counted)()
	defer unix.Close(fd)
	s.metrics.Accepted(svc.Name)
	if client, balancer, ok := s.proxiedClient(svc, counted, fd, sa); ok {
		s.spawnFor(svc, counted, fd, sa, client, balancer, waitExec)
	}
}

// proxiedClient reads the PROXY header of the counted connection fd, from
// the balancer at sa, and returns the client it names and the balancer. A
// connection from outside proxy_from is refused, never believed; one
// whose header is missing, malformed, oversized, truncated or later than
// proxy_timeout is refused too: then it frees the count and returns false.
// The client the header names is the connection's peer for everything:
// admission, the handler's environment, logs.
func (s *Server) proxiedClient(svc *service, counted slot, fd int, sa unix.Sockaddr) (client, balancer netip.AddrPort, ok bool) {
	balancer = addrPort(sa)
	if !svc.trustedBalancer(balancer.Addr()) {
		s.children.release(counted)
		s.refused(svc, fd, balancer.String(), refusedProxySource)
		return client, balancer, false
	}
	h, err := readProxyHeader(fd, svc.ProxyTimeout)
	if err != nil {
		s.children.release(counted)
		s.refused(svc, fd, balancer.String(), refusedProxyHeader, "err", err)
		return client, balancer, false
	}
	client = h.Client
	if !client.IsValid() {
		client = balancer // LOCAL: the balancer's own connection
	}
	return client, balancer, true
}
