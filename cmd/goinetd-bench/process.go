package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one running server, started by goinetd-bench as its child.
type server struct {
	spec   *spec
	port   int
	dir    string // its config files and log
	log    string
	argv   []string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's, once exited is closed
}

func (s *server) pid() int     { return s.cmd.Process.Pid }
func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// startTimeout bounds how long a server may take to listen on its port.
const startTimeout = 10 * time.Second

// startServer starts sp on port in dir, with its output in dir/log, and
// waits until it listens on the port, polling /proc with a deadline. The
// server gets a small, fixed environment and its own process group.
func startServer(p proc, sp *spec, port int, dir string) (*server, error) {
	argv, err := sp.argv(dir, port)
	if err != nil {
		return nil, err
	}
	s := &server{spec: sp, port: port, dir: dir, argv: argv, log: filepath.Join(dir, "log"), exited: make(chan struct{})}
	out, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = out, out
	// Pdeathsig: a server never outlives a goinetd-bench that dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", sp.name, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for !p.listening(s.pid(), port) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited before it listened on %s (%v): %s", sp.name, s.addr(), s.err, s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(p)
			return nil, fmt.Errorf("%s did not listen on %s within %v: %s", sp.name, s.addr(), startTimeout, s.logTail())
		}
	}
	return s, nil
}

// alive reports whether the server has not exited.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stopGrace is how long a server has to exit after SIGTERM before it and
// its process group are killed.
const stopGrace = 5 * time.Second

// stop ends the server: SIGTERM, then SIGKILL to its process group if it
// has not exited within stopGrace. Then it kills and reaps what the
// server left behind: goinetd-bench is a child subreaper, so handlers
// orphaned by the server are its children. It returns how many it found
// running, and how many had exited unreaped (see reapOrphans).
func (s *server) stop(p proc) (running, exited int) {
	if s.alive() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopGrace):
			syscall.Kill(-s.pid(), syscall.SIGKILL)
			<-s.exited
		}
	}
	return reapOrphans(p, nil)
}

// reapOrphans kills and reaps every child of this process except those in
// keep. They are processes that a server left behind, handed to
// goinetd-bench as the subreaper: it returns how many were still running,
// and how many had exited already (zombies), their parent having ended
// without waiting for them (socat's per-connection process does so with
// its /bin/cat).
func reapOrphans(p proc, keep map[int]bool) (running, exited int) {
	kids, err := p.children(os.Getpid())
	if err != nil {
		return 0, 0
	}
	for _, k := range kids {
		if keep[k.pid] {
			continue
		}
		if k.state == 'Z' {
			exited++
		} else {
			running++
			syscall.Kill(k.pid, syscall.SIGKILL)
		}
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(k.pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
	}
	return running, exited
}

// becomeSubreaper makes this process the reaper of its orphaned
// descendants (PR_SET_CHILD_SUBREAPER), so a handler whose server died is
// found and ended rather than left running.
func becomeSubreaper() error {
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	return nil
}

// logTail is the end of the server's output, for an error message.
func (s *server) logTail() string {
	data, err := os.ReadFile(s.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 2000
	text := strings.TrimSpace(string(data))
	if len(text) > max {
		text = "..." + text[len(text)-max:]
	}
	if text == "" {
		return "(its output was empty)"
	}
	return "its output: " + text
}

// portPicker hands out TCP ports on 127.0.0.1 that are free when picked:
// from base upwards, or chosen by the kernel when base is 0.
type portPicker struct{ next int }

func (pp *portPicker) pick() (int, error) {
	if pp.next == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	for ; pp.next < 65536; pp.next++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pp.next)))
		if err != nil {
			continue
		}
		l.Close()
		pp.next++
		return pp.next - 1, nil
	}
	return 0, errors.New("no free port left above -port-base")
}
