package spawner

import (
	"errors"
	"io"
	"net"
	"time"
)

// forwardFDs is how many descriptors a forwarded connection holds at
// most: the client's and the target's sockets, and the pipe (two) that a
// splice(2) in each direction holds for as long as it runs.
const forwardFDs = 6

// forwardConn joins conn, admitted on the forwarder svc, to a new
// connection to svc's target, and moves bytes both ways until both
// directions are done or either fails; it closes both connections. A
// connect that fails within forward_timeout (and timeout, end if set) is
// a refusal, reason refusedForward: banner_refused is written to fd and
// ok is false. Otherwise svc's banner is written to the client first.
//
// Each direction is an io.Copy between the two sockets, which the kernel
// splices where it can (TCP to TCP, TCP to and from a unix socket); an
// end of file is passed on as a half-close (CloseWrite), an error closes
// both connections, so the other direction ends too.
func (s *Server) forwardConn(svc *service, conn net.Conn, fd int, peerName string, end time.Time) (toTarget, toClient int64, err error, ok bool) {
	defer conn.Close()
	d := *svc.forward
	d.Deadline = end
	target, err := d.Dial(svc.ForwardNetwork(), svc.Forward)
	if err != nil {
		s.refused(svc, fd, peerName, refusedForward, "forward", svc.Forward, "err", err)
		return 0, 0, nil, false
	}
	defer target.Close()
	if !end.IsZero() {
		target.SetDeadline(end)
	}
	s.banner(svc, fd, peerName)

	var upErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		toTarget, upErr = pipe(target, conn)
	}()
	toClient, err = pipe(conn, target)
	<-done
	// The first error that is not the other direction's close is the one
	// that ended the connection; a stop closes conn under both.
	if err == nil || errors.Is(err, net.ErrClosed) && upErr != nil {
		err = upErr
	}
	return toTarget, toClient, err, true
}

// pipe copies src to dst until src's end of file, which it passes on by
// closing dst for writing, or an error, on which it closes both. A client
// connection whose PROXY header was read has its buffered bytes copied
// first, then its socket is read directly, so the copy can be spliced.
func pipe(dst, src net.Conn) (int64, error) {
	var n int64
	var err error
	if b, ok := src.(*bufferedConn); ok {
		n, err = io.CopyN(dst, b.r, int64(b.r.Buffered()))
		src = b.Conn
	}
	if b, ok := dst.(*bufferedConn); ok {
		dst = b.Conn
	}
	if err == nil {
		var m int64
		m, err = io.Copy(dst, src)
		n += m
	}
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			err = cw.CloseWrite()
		}
	}
	if err != nil {
		dst.Close()
		src.Close()
	}
	return n, err
}
