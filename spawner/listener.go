package spawner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// listener is one bound service and its loop.
//
// The socket is held as an *os.File, not a net.Listener: only a file's
// RawConn can wait for readability and let goinetd call accept4 itself,
// or hand the socket to a wait-mode child (a net.Listener's RawConn refuses
// Read). Built-in services wrap it in a net.Listener or net.PacketConn.
type listener struct {
	bound   *config.Service // the service it was bound for; current has the settings in force
	file    *os.File
	addr    string // the bound address or path, for logs
	raw     syscall.RawConn
	current atomic.Pointer[service] // settings for the next connection
	adopted bool                    // passed by systemd, not bound here
	done    chan struct{}           // closed by close
	loop    *spawnLoop              // which serves it (nowait services); else nil

	once    sync.Once
	mu      sync.Mutex
	closers []io.Closer // what the loop derived from file (built-ins)
	socket  *socketFile // a unix socket's file, made here; else nil
}

// close stops l's loop: a pending accept or wait returns, a backoff pause
// ends, and a unix socket's file is removed. A wait-mode child keeps its
// copy of the socket.
func (l *listener) close() {
	l.once.Do(func() {
		close(l.done)
		if l.loop != nil {
			l.loop.forget(l)
		}
		l.mu.Lock()
		l.file.Close()
		for _, c := range l.closers {
			c.Close()
		}
		l.mu.Unlock()
		if l.socket != nil {
			l.socket.remove()
		}
	})
}

// derive makes a Closer from l's socket with from, and records it so
// that close closes it too. from runs under l.mu, so that close cannot
// close the socket while from reads it. It reports false, with nothing
// made, if l is already closed.
func derive[C io.Closer](l *listener, from func(*os.File) (C, error)) (C, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var none C
	if l.closed() {
		return none, false, nil
	}
	c, err := from(l.file)
	if err != nil {
		return none, true, err
	}
	l.closers = append(l.closers, c)
	return c, true, nil
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

// fd runs f with l's descriptor, which stays open meanwhile. It never
// uses os.File.Fd, which would switch the socket to blocking mode.
func (l *listener) fd(f func(fd int)) error {
	return l.raw.Control(func(fd uintptr) { f(int(fd)) })
}

// unpoll takes l's socket out of Go's netpoller, where every connection
// that arrives would wake a thread for nothing while the spawn loop, in its
// own epoll set, serves the socket. The file is replaced by a duplicate
// made while the socket was blocking, which os.NewFile does not register;
// the socket is non-blocking again afterwards, for accept4.
func (l *listener) unpoll() error {
	var dup int
	var err error
	if ctlErr := l.fd(func(fd int) {
		if dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			return
		}
		if err = unix.SetNonblock(dup, false); err != nil {
			unix.Close(dup)
		}
	}); ctlErr != nil {
		return ctlErr
	}
	if err != nil {
		return fmt.Errorf("%s: duplicate the socket: %w", l.addr, err)
	}
	file := os.NewFile(uintptr(dup), l.file.Name())
	if err := unix.SetNonblock(dup, true); err != nil {
		file.Close()
		return fmt.Errorf("%s: %w", l.addr, err)
	}
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return fmt.Errorf("%s: %w", l.addr, err)
	}
	l.file.Close()
	l.file, l.raw = file, raw
	return nil
}

// listen binds svc's socket.
func listen(svc *config.Service) (*listener, error) {
	var (
		file   *os.File
		addr   string
		socket *socketFile
		err    error
	)
	switch svc.Protocol {
	case config.Unix:
		file, socket, err = listenUnix(svc)
		addr = svc.Path
	case config.UDP:
		file, addr, err = listenInet(svc, "udp")
	default:
		file, addr, err = listenInet(svc, "tcp")
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("service %s: %s: %w", svc.Name, addr, err)
	}
	return &listener{bound: svc, file: file, addr: addr, raw: raw, socket: socket, done: make(chan struct{})}, nil
}

// listenInet binds a TCP or UDP socket. An IPv4 address binds IPv4 only
// (0.0.0.0 too), an IPv6 one IPv6 only (:: too), and no address both.
func listenInet(svc *config.Service, network string) (*os.File, string, error) {
	switch {
	case svc.Address.Is4():
		network += "4"
	case svc.Address.Is6():
		network += "6"
	}
	addr := svc.ListenAddress()
	var lc net.ListenConfig
	if svc.FreeBind || svc.SocketOptions != (config.SocketOptions{}) {
		lc.Control = func(network, _ string, c syscall.RawConn) error {
			return beforeBind(svc, network, c)
		}
	}
	var sock interface {
		File() (*os.File, error)
		Close() error
	}
	var bound string
	if svc.Protocol == config.UDP {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			return nil, "", fmt.Errorf("listen on %s %s: %w", network, addr, unwrapOp(err))
		}
		sock, bound = pc.(*net.UDPConn), pc.LocalAddr().String()
	} else {
		ln, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			return nil, "", fmt.Errorf("listen on %s %s: %w", network, addr, unwrapOp(err))
		}
		sock, bound = ln.(*net.TCPListener), ln.Addr().String()
	}
	// Keep a duplicate of the socket as a file and drop the net value.
	file, err := sock.File()
	sock.Close()
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s %s: %w", network, addr, err)
	}
	if svc.Backlog > 0 {
		if err := setBacklog(file, svc.Backlog); err != nil {
			file.Close()
			return nil, "", fmt.Errorf("listen on %s %s: %w", network, addr, err)
		}
	}
	return file, bound, nil
}

// unwrapOp drops the *net.OpError around a bind error, whose text repeats
// the address the caller already names.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}
