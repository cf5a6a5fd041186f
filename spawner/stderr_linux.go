package spawner

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// stderrLog carries the standard error of one service's handlers into
// goinetd's log.
//
// Every handler of the service shares one end of a SOCK_DGRAM socketpair
// as its fd 2; goinetd reads the other end with SO_PASSCRED, so the kernel
// stamps each write with the pid of the process that made it. That costs
// one descriptor and one goroutine per service instead of a pipe and a
// reader per child, and a line is tagged with its writer's pid even when it
// is read after that child has been reaped. A single write larger than the
// socket's send buffer (about 200 KiB) fails with EMSGSIZE in the handler.
type stderrLog struct {
	writeFD int // blocking, close-on-exec; dup'd onto fd 2 of each child
	conn    *net.UnixConn
}

// stderrLog returns the stderr socket of the named service, creating it
// and its reader on first use. Callers hold s.mu.
func (s *Server) stderrLog(service string) (*stderrLog, error) {
	if e, ok := s.stderrs[service]; ok {
		return e, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("service %s: stderr socketpair: %w", service, err)
	}
	read, write := fds[0], fds[1]
	if err := unix.SetsockoptInt(read, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(read)
		unix.Close(write)
		return nil, fmt.Errorf("service %s: stderr socket SO_PASSCRED: %w", service, err)
	}
	// A larger queue lets bursts of handler output wait for the reader
	// instead of blocking the handlers; failing to grow it only costs that.
	_ = unix.SetsockoptInt(read, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.SetNonblock(read, true); err != nil {
		unix.Close(read)
		unix.Close(write)
		return nil, fmt.Errorf("service %s: stderr socket: %w", service, err)
	}
	f := os.NewFile(uintptr(read), "stderr-"+service)
	conn, err := net.FileConn(f)
	f.Close() // FileConn made its own copy
	if err != nil {
		unix.Close(write)
		return nil, fmt.Errorf("service %s: stderr socket: %w", service, err)
	}
	e := &stderrLog{writeFD: write, conn: conn.(*net.UnixConn)}
	s.stderrs[service] = e
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		e.copyToLog(s.log.With("service", service))
	}()
	return e, nil
}

// Lines come in pieces when a program writes one in several write calls
// (glibc's error() does). A piece without a newline waits for the rest
// from the same pid, up to maxPartial bytes or partialWait.
const (
	maxPartial  = 4 << 10
	partialWait = 200 * time.Millisecond
)

// partial is the start of a line a pid has not finished.
type partial struct {
	text  []byte
	since time.Time
}

// copyToLog logs every line the service's handlers write, one record a
// line, until close.
func (e *stderrLog) copyToLog(log *slog.Logger) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	pending := make(map[int]*partial)
	emit := func(pid int, line []byte) {
		log.Info("stderr", "pid", pid, "text", string(bytes.TrimRight(line, "\r\n")))
	}
	for {
		// Wake up in time to log a piece whose line never ends.
		var deadline time.Time
		for _, p := range pending {
			if d := p.since.Add(partialWait); deadline.IsZero() || d.Before(deadline) {
				deadline = d
			}
		}
		e.conn.SetReadDeadline(deadline)
		n, oobn, _, _, err := e.conn.ReadMsgUnix(buf, oob)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			for pid, p := range pending {
				if time.Since(p.since) >= partialWait {
					emit(pid, p.text)
					delete(pending, pid)
				}
			}
			continue
		case err != nil:
			// Not seen in practice; pause so that a lasting error cannot spin.
			log.Warn("reading handler stderr", "err", err)
			time.Sleep(minBackoff)
			continue
		}
		pid := senderPID(oob[:oobn])
		data := buf[:n]
		if p := pending[pid]; p != nil {
			data = append(p.text, data...)
			delete(pending, pid)
		}
		for line := range bytes.Lines(data) {
			if line[len(line)-1] == '\n' || len(line) >= maxPartial {
				emit(pid, line)
				continue
			}
			pending[pid] = &partial{text: bytes.Clone(line), since: time.Now()}
		}
	}
}

// senderPID returns the pid in a datagram's SCM_CREDENTIALS, or 0.
func senderPID(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for i := range msgs {
		if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

func (e *stderrLog) close() {
	e.conn.Close()
	unix.Close(e.writeFD)
}
