package main

// Processes a handler leaves behind: goinetd is their subreaper, ends the
// handler's process group when the handler exits (kill_group_on_exit),
// when its timeout ends it and at a stop, and reaps the rest.

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runLeftoverHelper runs the handler modes that leave a process behind:
//
//   - "orphan" starts a "linger" process in its own process group, tells
//     the client its pid and exits at once;
//   - "orphan-setsid" does the same, with the linger process in a session
//     of its own (out of the handler's group);
//   - "parent" does the same, then waits for the client to close;
//   - "linger" ignores SIGTERM and holds the connection (its stdin and
//     stdout) until the client closes it.
func runLeftoverHelper(mode string) int {
	if mode == "linger" {
		signal.Ignore(syscall.SIGTERM)
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := []string{helperVar + "=linger"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperVar+"=") {
			env = append(env, kv)
		}
	}
	p, err := os.StartProcess(exe, []string{exe}, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: mode == "orphan-setsid"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d\n", p.Pid)
	p.Release()
	if mode == "parent" {
		io.Copy(io.Discard, os.Stdin)
	}
	return 0
}

// leftover is a process a handler left behind, as its handler reported it.
type leftover struct {
	pid   int
	start string // its start time; "" if it was gone before the test looked
}

// startTime returns field 22 of /proc/PID/stat, the process's start time,
// which tells it from a later process given the same pid; "" if there is
// no such process.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19] // fields[0] is field 3, the state
}

// readLeftover reads the pid of the process c's handler left behind, and
// makes the test's cleanup kill and collect it should it still be there.
func readLeftover(t *testing.T, c net.Conn) leftover {
	t.Helper()
	line := readLine(t, c)
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 0 {
		t.Fatalf("handler said %q; want the pid it left behind", line)
	}
	p := leftover{pid: pid, start: startTime(pid)}
	t.Cleanup(func() {
		if !p.exists() {
			return
		}
		unix.Kill(p.pid, unix.SIGKILL)
		deadline := time.Now().Add(waitTimeout)
		for p.exists() && time.Now().Before(deadline) {
			// This process collects it if goinetd is gone (TestMain made
			// it a subreaper); otherwise goinetd does.
			var status unix.WaitStatus
			unix.Wait4(p.pid, &status, unix.WNOHANG, nil)
			time.Sleep(5 * time.Millisecond)
		}
		if p.exists() {
			t.Errorf("process %d, left behind by a handler, survived SIGKILL for %v", p.pid, waitTimeout)
		}
	})
	return p
}

// exists reports whether the process is still there, running or a zombie
// no one has reaped.
func (p leftover) exists() bool { return p.start != "" && startTime(p.pid) == p.start }

// parent returns the pid of the process's parent.
func (p leftover) parent(t *testing.T) int {
	t.Helper()
	ppid, err := strconv.Atoi(procStatus(t, p.pid, "PPid"))
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

// waitGone waits until p has ended and been reaped.
func waitGone(t *testing.T, d *daemon, p leftover) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for p.exists() {
		if time.Now().After(deadline) {
			t.Fatalf("process %d left behind by a handler: got state %q after %v; want it ended and reaped; log:\n%s",
				p.pid, procState(p.pid), waitTimeout, d.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkReapedQuietly checks that goinetd reaped p as a process a handler
// left behind: logged at debug level, never as a connection.
func checkReapedQuietly(t *testing.T, d *daemon, p leftover) {
	t.Helper()
	d.waitLog(func(r record) bool {
		return r.msg() == "reaped a process a handler left behind" && r.str("pid") == strconv.Itoa(p.pid)
	})
	for _, r := range d.logs.records(func(r record) bool { return r.str("pid") == strconv.Itoa(p.pid) }) {
		if r.str("level") != "DEBUG" || r.msg() == "connection ended" {
			t.Errorf("record about the process a handler left behind: got %v; want debug records only", r)
		}
	}
}

// A nowait handler that leaves a process behind (one that ignores SIGTERM
// and keeps the connection) and exits: by default its whole process group
// ends with it, and so does the connection.
func TestLeftoverEndsWithItsHandler(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "orphan", port, "orphan"))
	c := dial(t, "", addr(port))
	p := readLeftover(t, c)
	waitGone(t, d, p)
	if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
		t.Errorf("connection after its handler exited: got %q, %v; want EOF", rest, err)
	}
	if p.start != "" {
		checkReapedQuietly(t, d, p)
	}
}

// What a handler leaves behind and goinetd does not kill stays goinetd's
// child: reparented to goinetd, not to init, and reaped by goinetd when it
// exits. Its own session takes a process out of the handler's group, so
// kill_group_on_exit misses it: only cgroups would not.
func TestLeftoverIsGoinetdsChildAndReaped(t *testing.T) {
	for _, c := range []struct {
		name, mode, extra string
	}{
		{"kill_group_on_exit off", "orphan", "kill_group_on_exit = false"},
		{"own session", "orphan-setsid", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t, "127.0.0.1")
			d := startDaemon(t, jsonLog+helperService(t, "orphan", port, c.mode, c.extra))
			conn := dial(t, "", addr(port))
			p := readLeftover(t, conn)
			if !p.exists() {
				t.Fatalf("process %d left behind by the handler: gone at once; want it running", p.pid)
			}
			d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "orphan" })
			waitFor(t, fmt.Sprintf("process %d to be goinetd's child", p.pid), func() bool { return p.parent(t) == d.pid() })
			conn.Close() // it exits
			waitGone(t, d, p)
			checkReapedQuietly(t, d, p)
		})
	}
}

// A timeout ends the handler's whole group, even with kill_group_on_exit
// off: what ignores SIGTERM is killed when the handler has gone.
func TestTimeoutEndsTheHandlersGroup(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "parent", port, "parent", `timeout = "300ms"`, "kill_group_on_exit = false"))
	c := dial(t, "", addr(port))
	p := readLeftover(t, c)
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("timeout") == "true" })
	waitGone(t, d, p)
	if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
		t.Errorf("connection after the timeout: got %q, %v; want EOF", rest, err)
	}
}

// A stop ends, after shutdown_grace, every handler's group and every
// process handlers left behind that is still goinetd's child, even those
// that ignore SIGTERM, and reaps them before goinetd exits.
func TestStopEndsWhatHandlersLeftBehind(t *testing.T) {
	parent, orphan, escaped := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, "[server]\nlog_format = \"json\"\nshutdown_grace = \"200ms\"\n"+
		helperService(t, "parent", parent, "parent")+
		helperService(t, "orphan", orphan, "orphan", "kill_group_on_exit = false")+
		helperService(t, "escaped", escaped, "orphan-setsid"))
	var left []leftover
	for _, port := range []int{parent, orphan, escaped} {
		p := readLeftover(t, dial(t, "", addr(port)))
		if !p.exists() {
			t.Fatalf("process %d left behind by a handler: gone at once; want it running", p.pid)
		}
		left = append(left, p)
	}
	for _, p := range left[1:] {
		waitFor(t, fmt.Sprintf("process %d to be goinetd's child", p.pid), func() bool { return p.parent(t) == d.pid() })
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status when a handler had to be ended: got %d; want 0, a requested stop", code)
	}
	for _, p := range left {
		if p.exists() {
			t.Errorf("process %d left behind by a handler: got state %q after goinetd exited; want it ended and reaped",
				p.pid, procState(p.pid))
		}
	}
	d.waitLog(func(r record) bool { return r.msg() == "terminating processes handlers left behind" })
	d.waitLog(func(r record) bool { return r.msg() == "killing processes handlers left behind that outlived SIGTERM" })
}
