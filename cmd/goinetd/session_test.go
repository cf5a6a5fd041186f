package main

// Handlers and goinetd's terminal: goinetd started from a terminal (make
// run, sudo in a shell, tmux) must not let a handler reach it, to inject
// the operator's next command (TIOCSTI) or read the operator's next line
// (take the foreground). Each test runs goinetd on a pseudo-terminal of
// its own.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal, closed when the test ends: its master,
// which plays the operator's keyboard, and its slave, the terminal goinetd
// runs on. Neither becomes this process's controlling terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("needs a pseudo-terminal: open /dev/ptmx: %v", err)
	}
	master = os.NewFile(uintptr(m), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open the pty's slave: %v", err)
	}
	slave = os.NewFile(uintptr(s), fmt.Sprintf("/dev/pts/%d", n))
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// ttyNr is the controlling terminal of pid, as /proc/PID/stat gives it
// (0: none).
func ttyNr(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, _ := strconv.Atoi(fields[4]) // state ppid pgrp session tty_nr
	return n
}

// TestHandlersCannotReachGoinetdsTerminal starts goinetd on a terminal,
// as its session's leader and as a shell's foreground job, with handlers
// on each way goinetd starts one (its own vfork, syscall.ForkExec as
// another user, the trampoline) that try to inject input into the
// terminal and to take its foreground. Each must find no terminal; and
// Ctrl-C on the terminal must still stop goinetd.
func TestHandlersCannotReachGoinetdsTerminal(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Log("TIOCSTI is off in this kernel (dev.tty.legacy_tiocsti = 0): the foreground and /dev/tty are still tested")
	}
	for _, asJob := range []bool{false, true} {
		name := "session leader"
		if asJob {
			name = "shell job"
		}
		t.Run(name, func(t *testing.T) { testTerminalAttack(t, asJob) })
	}
}

func testTerminalAttack(t *testing.T, asJob bool) {
	master, slave := openPTY(t)
	ports := map[string]int{"vfork": freePort(t, "127.0.0.1")}
	cfg := jsonLog + helperService(t, "vfork", ports["vfork"], "tty")
	if os.Geteuid() == 0 {
		// As nobody, from a copy nobody may run.
		helper := filepath.Join(openDir(t), "helper")
		copyFile(t, testBinary(t), helper)
		for name, extra := range map[string][]string{
			"forkexec":   {`user = "nobody"`, `workdir = "/"`},
			"trampoline": {`user = "nobody"`, `workdir = "/"`, `umask = "0022"`},
		} {
			ports[name] = freePort(t, "127.0.0.1")
			cfg += programService(name, ports[name], helper, nil,
				append(extra, fmt.Sprintf("env = { %s = %q }", helperVar, "tty"))...)
		}
	} else {
		t.Log("not root: the handlers as nobody (syscall.ForkExec, the trampoline) are not tested")
	}
	d := startDaemon(t, cfg, func(c *exec.Cmd) {
		c.Stdin = slave
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if asJob {
			c.Args = append([]string{testBinary(t)}, c.Args...)
			c.Path = c.Args[0]
			c.Env = append(c.Env, helperVar+"=shell")
		}
	})
	goinetd := d.pid()
	if asJob {
		pids := d.children()
		if len(pids) != 1 {
			t.Fatalf("the shell's children: got %v; want goinetd alone", pids)
		}
		goinetd = pids[0]
	}
	fg, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPGRP)
	if err != nil {
		t.Fatalf("the terminal's foreground group: %v", err)
	}
	if fg != goinetd {
		t.Fatalf("the terminal's foreground group: got %d; want goinetd's (%d)", fg, goinetd)
	}
	// A session leader keeps its terminal (spawner.DropInherited); any
	// other goinetd gives it up.
	if got := ttyNr(t, goinetd) != 0; got != !asJob {
		t.Errorf("goinetd has a controlling terminal: got %v; want %v", got, !asJob)
	}

	for name, port := range ports {
		var r ttyReport
		if err := json.NewDecoder(dial(t, "", addr(port))).Decode(&r); err != nil {
			t.Fatalf("%s: decode the handler's report: %v", name, err)
		}
		// No terminal: where goinetd kept its own (a session leader), a
		// session of its own; else goinetd's, which has none left (a
		// new session per handler would cost a scheduler autogroup each).
		if r.TTY != 0 || !asJob && r.SID != r.PID {
			t.Errorf("%s: handler %d in session %d with terminal %d; want no terminal, and a session of its own if goinetd kept one",
				name, r.PID, r.SID, r.TTY)
		}
		if r.OpenTTY == "ok" || r.Fg == "ok" {
			t.Errorf("%s: handler opened /dev/tty: %s, took the terminal's foreground: %s; want neither",
				name, r.OpenTTY, r.Fg)
		}
		for fd, res := range r.TIOCSTI {
			if res == "ok" {
				t.Errorf("%s: handler injected input into the terminal through %s (TIOCSTI)", name, fd)
			}
		}
		d.waitLog(func(rec record) bool { return rec.msg() == "connection ended" && rec.str("pid") == strconv.Itoa(r.PID) })
	}
	if fg, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPGRP); err != nil || fg != goinetd {
		t.Errorf("the terminal's foreground group after the handlers: got %d, %v; want goinetd's (%d)", fg, err, goinetd)
	}

	// The operator presses Ctrl-C.
	if _, err := master.Write([]byte{3}); err != nil {
		t.Fatalf("type Ctrl-C: %v", err)
	}
	d.waitLog(func(r record) bool { return r.msg() == "stopping" && r.str("signal") == "interrupt" })
	if code := d.wait(); code != 0 {
		t.Errorf("exit status after Ctrl-C: got %d; want 0", code)
	}
}
