package spawner

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// The PROXY protocol (HAProxy's spec, versions 1 and 2) carries the real
// client's address from a load balancer. goinetd reads the header itself,
// before the handler starts, and must not consume one byte after it: the
// handler reads the client's first bytes from the socket. So the header is
// framed here, from bytes peeked with MSG_PEEK, and exactly its length is
// then read off the socket; go-proxyproto parses those bytes alone.

var (
	v1Prefix = []byte("PROXY ")
	v2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	maxV1Header = 107  // the spec's bound, CRLF included
	maxV2Header = 4096 // 16 bytes and addresses and TLVs; HAProxy sends far less
)

var errProxyHeader = errors.New("malformed PROXY protocol header")

// proxyHeaderLength returns the length of the PROXY header at the start of
// b, the bytes available so far, once b holds all of it, or 0 while more
// bytes are needed. A prefix that cannot begin a header, or a header over
// the size bound, is an error.
func proxyHeaderLength(b []byte) (int, error) {
	switch {
	case len(b) == 0:
		return 0, nil
	case bytes.HasPrefix(b, v1Prefix):
		if i := bytes.Index(b, []byte("\r\n")); i >= 0 && i+2 <= maxV1Header {
			return i + 2, nil
		}
		if len(b) >= maxV1Header {
			return 0, fmt.Errorf("%w: version 1 line longer than %d bytes", errProxyHeader, maxV1Header)
		}
		return 0, nil
	case bytes.HasPrefix(b, v2Sig):
		if len(b) < 16 {
			return 0, nil
		}
		n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
		if n > maxV2Header {
			return 0, fmt.Errorf("%w: version 2 header of %d bytes, more than %d", errProxyHeader, n, maxV2Header)
		}
		if n > len(b) {
			return 0, nil
		}
		return n, nil
	case bytes.HasPrefix(v1Prefix, b[:min(len(b), len(v1Prefix))]),
		bytes.HasPrefix(v2Sig, b[:min(len(b), len(v2Sig))]):
		return 0, nil // could still become one
	}
	return 0, fmt.Errorf("%w: the connection does not start with one", errProxyHeader)
}

// proxyHeader is what a PROXY header said.
type proxyHeader struct {
	// client is the real client, or invalid for the LOCAL command (a
	// balancer's health check) and for an address family other than TCP
	// over IPv4 or IPv6: the connection is then taken as it is.
	client netip.AddrPort
}

// parseProxyHeader parses one complete header, as framed by
// proxyHeaderLength.
func parseProxyHeader(b []byte) (proxyHeader, error) {
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(b), len(b)))
	if err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if h.Command.IsLocal() || !h.TransportProtocol.IsStream() {
		return proxyHeader{}, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return proxyHeader{}, nil
	}
	ap := src.AddrPort()
	return proxyHeader{client: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// readProxyHeader reads the PROXY header from the accepted, blocking
// connection fd, waiting at most timeout, and consumes exactly its bytes.
// It waits in the netpoller, on a non-blocking duplicate of fd, so a silent
// balancer connection costs no thread; fd is blocking again when it
// returns.
func readProxyHeader(fd int, timeout time.Duration) (proxyHeader, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return proxyHeader{}, fmt.Errorf("read PROXY header: %w", err)
	}
	defer unix.SetNonblock(fd, false) // the flag is shared with dup
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return proxyHeader{}, fmt.Errorf("read PROXY header: %w", err)
	}
	f := os.NewFile(uintptr(dup), "proxy-header")
	defer f.Close()
	f.SetReadDeadline(time.Now().Add(timeout))
	raw, err := f.SyscallConn()
	if err != nil {
		return proxyHeader{}, fmt.Errorf("read PROXY header: %w", err)
	}

	buf := make([]byte, maxV2Header)
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
			peekErr = fmt.Errorf("%w: the connection closed before its end", errProxyHeader)
		default:
			length, peekErr = proxyHeaderLength(buf[:n])
			if length == 0 && peekErr == nil {
				return false // more is coming: wait for it
			}
		}
		return true
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return proxyHeader{}, fmt.Errorf("%w: none within %v", errProxyHeader, timeout)
	case err != nil:
		return proxyHeader{}, fmt.Errorf("read PROXY header: %w", err)
	case peekErr != nil:
		return proxyHeader{}, peekErr
	}
	// The header is all there: read exactly it, and no more.
	if n, err := unix.Read(dup, buf[:length]); err != nil || n != length {
		return proxyHeader{}, fmt.Errorf("read PROXY header: got %d of %d bytes: %v", n, length, err)
	}
	return parseProxyHeader(buf[:length])
}

// readProxyHeaderConn is readProxyHeader for a built-in's connection,
// which goinetd reads itself: the bytes after the header stay buffered in
// the returned connection.
func readProxyHeaderConn(c net.Conn, timeout time.Duration) (net.Conn, proxyHeader, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	r := bufio.NewReaderSize(c, maxV2Header)
	want := 1
	for {
		b, err := r.Peek(want) // what is buffered, once at least want bytes are
		if len(b) < r.Buffered() {
			b, _ = r.Peek(r.Buffered())
		}
		length, ferr := proxyHeaderLength(b)
		switch {
		case ferr != nil:
			return nil, proxyHeader{}, ferr
		case length > 0:
			head := make([]byte, length)
			if _, err := io.ReadFull(r, head); err != nil {
				return nil, proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
			}
			h, err := parseProxyHeader(head)
			return &bufferedConn{Conn: c, r: r}, h, err
		case err != nil:
			return nil, proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
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

// serveProxied serves a connection accepted, and counted, on a
// proxy_protocol service, in a goroutine of its own so that a slow or
// silent balancer never holds up the accept loop. A connection from
// outside proxy_from is refused, never believed; one whose header is
// missing, malformed, oversized, truncated or later than proxy_timeout is
// refused too. Then the client the header names is the connection's peer
// for everything: admission, the handler's environment, logs. It owns fd.
func (s *Server) serveProxied(svc *service, counted slot, fd int, sa unix.Sockaddr) {
	if counted.held {
		// Held only until fd is closed, not for the child's life.
		defer s.children.unhold()
		counted.held = false
	}
	defer unix.Close(fd)
	s.metrics.Accepted(svc.Name)
	balancer := addrPort(sa)
	if !svc.trustedBalancer(balancer.Addr()) {
		s.children.release(counted)
		s.refused(svc, balancer.String(), refusedProxySource)
		return
	}
	h, err := readProxyHeader(fd, svc.ProxyTimeout)
	if err != nil {
		s.children.release(counted)
		s.refused(svc, balancer.String(), refusedProxyHeader, "err", err)
		return
	}
	client := h.client
	if !client.IsValid() {
		client = balancer // LOCAL: the balancer's own connection
	}
	s.spawnFor(svc, counted, fd, sa, client, balancer)
}
