package spawner

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/goinetd/goinetd/config"
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
	log     *slog.Logger // with the service's name

	// The budget of stderr_line_rate and stderr_byte_rate (nil: none),
	// which the reader loads for each line; limits are the settings it was
	// made from, guarded by Server.mu.
	budget atomic.Pointer[logBudget]
	limits [2]config.Rate
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
	e := &stderrLog{writeFD: write, conn: conn.(*net.UnixConn), log: s.log.With("service", service)}
	s.stderrs[service] = e
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		e.copyToLog()
	}()
	return e, nil
}

// limit bounds the lines logged per period as svc says, keeping the
// current budget if the settings are unchanged. Callers hold s.mu.
func (e *stderrLog) limit(svc *config.Service) {
	lines, bytes := svc.StderrLineRate, svc.StderrByteRate
	if e.limits == [2]config.Rate{lines, bytes} {
		return
	}
	e.limits = [2]config.Rate{lines, bytes}
	if lines.N == 0 && bytes.N == 0 {
		e.budget.Store(nil)
		return
	}
	// One budget, over the line rate's period: the byte rate is scaled to it.
	per, maxBytes := lines.Per, int64(bytes.N)
	switch {
	case lines.N == 0:
		per = bytes.Per
	case bytes.N > 0:
		maxBytes = max(1, int64(float64(bytes.N)*float64(lines.Per)/float64(bytes.Per)))
	}
	e.budget.Store(newLogBudget(int64(lines.N), maxBytes, per, func(n, size int64) {
		e.log.Warn("stderr lines dropped", "dropped", n, "dropped_bytes", size,
			"stderr_line_rate", lines.String(), "stderr_byte_rate", bytes.String())
	}))
}

// Lines come in pieces when a program writes one in several write calls
// (glibc's error() does). A piece without a newline waits for the rest
// from the same pid, up to config.MaxStderrRecord bytes or partialWait.
const partialWait = 200 * time.Millisecond

// partial is the start of a line a pid has not finished, or, with skip,
// the rest of a line logged truncated, dropped until its newline.
type partial struct {
	text  []byte
	skip  bool
	since time.Time
}

// copyToLog logs the lines the service's handlers write, one record a
// line, until close. Blank lines are dropped; a line longer than
// config.MaxStderrRecord, or cut by the size of a datagram, is logged as
// its start, marked truncated; lines beyond the service's budget are
// counted, not logged.
func (e *stderrLog) copyToLog() {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	pending := make(map[int]*partial)
	for {
		// Wake up in time to log a piece whose line never ends.
		var deadline time.Time
		for _, p := range pending {
			if d := p.since.Add(partialWait); deadline.IsZero() || d.Before(deadline) {
				deadline = d
			}
		}
		e.conn.SetReadDeadline(deadline)
		n, oobn, flags, _, err := e.conn.ReadMsgUnix(buf, oob)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			for pid, p := range pending {
				if time.Since(p.since) >= partialWait {
					if !p.skip {
						e.emit(pid, p.text, false)
					}
					delete(pending, pid)
				}
			}
			continue
		case err != nil:
			// Not seen in practice; pause so that a lasting error cannot spin.
			e.log.Warn("reading handler stderr", "err", err)
			time.Sleep(minBackoff)
			continue
		}
		pid := senderPID(oob[:oobn])
		data := buf[:n]
		if p := pending[pid]; p != nil {
			if p.skip {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					p.since = time.Now()
					continue
				}
				data = data[i+1:]
			} else {
				data = append(p.text, data...)
			}
			delete(pending, pid)
		}
		cut := flags&unix.MSG_TRUNC != 0 // the datagram was longer than buf
		for line := range bytes.Lines(data) {
			switch {
			case line[len(line)-1] == '\n':
				e.emit(pid, line, false)
			case cut:
				e.emit(pid, line, true)
			case len(line) > config.MaxStderrRecord:
				e.emit(pid, line, true)
				pending[pid] = &partial{skip: true, since: time.Now()}
			default:
				pending[pid] = &partial{text: bytes.Clone(line), since: time.Now()}
			}
		}
	}
}

// emit logs line, written by pid, unless it is blank or beyond the
// budget; truncated marks a line known to be cut.
func (e *stderrLog) emit(pid int, line []byte, truncated bool) {
	text := bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(text)) == 0 {
		return
	}
	if len(text) > config.MaxStderrRecord {
		n := config.MaxStderrRecord
		for n > 0 && !utf8.RuneStart(text[n]) {
			n-- // do not split a character
		}
		text, truncated = text[:n], true
	}
	if !e.budget.Load().allow(time.Now(), len(text)) {
		return
	}
	if truncated {
		e.log.Info("stderr", "pid", pid, "text", string(text), "truncated", true)
		return
	}
	e.log.Info("stderr", "pid", pid, "text", string(text))
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
