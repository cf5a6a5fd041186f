package vfork

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFits(t *testing.T) {
	for _, tc := range []struct {
		files []uintptr
		want  bool
	}{
		{[]uintptr{7, 7, 8}, true},
		{[]uintptr{3, 3, 3}, true},
		{[]uintptr{5, 6, 6, 3}, true}, // fd 3 is copied to 0 before 3 is overwritten
		{[]uintptr{5, 6, 6, 9}, true},
		{[]uintptr{0, 1, 2}, true},
		{[]uintptr{5, 0, 2}, false},    // 0 would be overwritten before it is copied to 1
		{[]uintptr{4, 4, 1, 9}, false}, // 1 is overwritten before it is copied to 2
		{[]uintptr{4, 4, 2, 9}, true},
		{[]uintptr{5, 6, 7, 8, 9}, false},
	} {
		if got := Fits(tc.files); got != tc.want {
			t.Errorf("Fits(%v) = %v; want %v", tc.files, got, tc.want)
		}
	}
}

// TestVforkSpawn starts /bin/sh through goinetd's own spawn, waiting for
// its exec (Start) and not (StartNoWait), each with clone3 and with the
// clone it falls back to, and checks what it got: its arguments, the base
// and extra environment, the workdir, the soft RLIMIT_NOFILE, a process
// group and session of its own, with no terminal, and its stdout. (The
// e2e tests check the rest: descriptors, signals, failures.)
func TestVforkSpawn(t *testing.T) {
	if !Available {
		t.Skip("no vforkExec on this architecture")
	}
	for _, wait := range []bool{true, false} {
		for _, clone3 := range []bool{true, false} {
			t.Run(fmt.Sprintf("wait=%v/clone3=%v", wait, clone3), func(t *testing.T) {
				noClone3.Store(!clone3)
				defer noClone3.Store(false)
				testVforkSpawn(t, wait)
				if noClone3.Load() != !clone3 {
					t.Errorf("noClone3 = %v after the spawn; want %v", noClone3.Load(), !clone3)
				}
			})
		}
	}
}

// spawnEither starts tmpl's program with Start if wait, with StartNoWait
// otherwise; done then reports whether the child has let go of the
// Stack, and execErr is where it writes a failed exec's errno.
func spawnEither(tmpl *Template, wait bool, files []uintptr, extra []string, nofile *unix.Rlimit) (
	pid int, done func() bool, execErr *uintptr, err error) {
	execErr = new(uintptr)
	if wait {
		pid, err = tmpl.Start(files, extra, nofile)
		return pid, func() bool { return true }, execErr, err
	}
	c := new(Stack)
	pid, err = tmpl.StartNoWait(c, files, extra, nofile, execErr)
	return pid, func() bool { return atomic.LoadInt32(&c.tid) == 0 }, execErr, err
}

func testVforkSpawn(t *testing.T, wait bool) {
	for _, newSession := range []bool{false, true} {
		t.Run(fmt.Sprintf("newSession=%v", newSession), func(t *testing.T) { testVforkSpawnIn(t, wait, newSession) })
	}
}

func testVforkSpawnIn(t *testing.T, wait, newSession bool) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()

	tmpl, err := NewTemplate("/bin/sh", "/",
		[]string{"sh", "-c", `echo "$BASE $EXTRA $0"; pwd; ulimit -Sn; cut -d' ' -f5-7 /proc/$$/stat`, "zero"},
		[]string{"BASE=base", "PATH=/usr/bin:/bin"}, newSession)
	if err != nil || tmpl == nil {
		t.Fatalf("NewTemplate: %v, %v", tmpl, err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 123
	pid, done, execErr, err := spawnEither(tmpl, wait, []uintptr{null.Fd(), w.Fd(), w.Fd()}, []string{"EXTRA=extra"}, &lim)
	w.Close()
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	out, _ := io.ReadAll(r)
	var status unix.WaitStatus
	if _, err := unix.Wait4(pid, &status, 0, nil); err != nil || status.ExitStatus() != 0 {
		t.Fatalf("wait for %d: %v, status %v", pid, err, status)
	}
	// Its process group is its own; its session too with newSession,
	// with no terminal (tty_nr 0), else the test's.
	session, tty := strconv.Itoa(pid), "0"
	if !newSession {
		sid, _ := unix.Getsid(0)
		session, tty = strconv.Itoa(sid), ttyNr(t)
	}
	want := "base extra zero\n/\n123\n" + strconv.Itoa(pid) + " " + session + " " + tty + "\n"
	if got := string(out); got != want {
		t.Errorf("handler saw %q; want %q", got, want)
	}
	if !done() || *execErr != 0 {
		t.Errorf("after the child exec'd and was reaped: memory released %v, exec errno %d; want true, 0", done(), *execErr)
	}
}

// TestVforkSpawnExecFailureIsReported checks that a failed exec is
// reported: by Start at once, its child reaped; by StartNoWait through
// execErr, written before the child exits 127.
func TestVforkSpawnExecFailureIsReported(t *testing.T) {
	if !Available {
		t.Skip("no vforkExec on this architecture")
	}
	tmpl, err := NewTemplate("/nonexistent/handler", "", []string{"handler"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	if _, err := tmpl.Start(files, nil, nil); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Start of a missing program: %v; want ENOENT", err)
	}
	if pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("after a failed exec, wait4 found child %d (%v); want none left", pid, err)
	}

	pid, done, execErr, err := spawnEither(tmpl, false, files, nil, nil)
	if err != nil {
		t.Fatalf("StartNoWait of a missing program: %v; want the child started", err)
	}
	var status unix.WaitStatus
	if _, err := unix.Wait4(pid, &status, 0, nil); err != nil || status.ExitStatus() != 127 {
		t.Fatalf("wait for %d: %v, status %v; want exit 127", pid, err, status)
	}
	if syscall.Errno(*execErr) != unix.ENOENT || !done() {
		t.Errorf("after the failed exec: errno %v, memory released %v; want ENOENT, true", syscall.Errno(*execErr), done())
	}
}

// TestClonePoolIsBounded checks that the pool reuses the memory of
// children that have exec'd, and gives none out beyond maxCloning.
func TestPoolIsBounded(t *testing.T) {
	var p Pool
	var got []*Stack
	for range maxCloning {
		c := p.Get()
		if c == nil {
			t.Fatalf("Get returned nil with %d of %d in use", len(got), maxCloning)
		}
		c.tid = 1 // as StartNoWait sets it: a child uses c
		got = append(got, c)
	}
	if c := p.Get(); c != nil {
		t.Fatalf("Get with %d children between clone and exec: got memory; want nil", maxCloning)
	}
	got[3].tid = 0 // that child exec'd
	if c := p.Get(); c != got[3] {
		t.Errorf("Get after one child exec'd: got %p; want its memory %p again", c, got[3])
	}
	if n := len(p.busy) + len(p.free); n != maxCloning {
		t.Errorf("pool holds %d; want %d", n, maxCloning)
	}
}

func TestStartingNofileFailsCleanly(t *testing.T) {
	if _, err := StartingNofile("/nonexistent/goinetd"); err == nil {
		t.Error("StartingNofile of a missing binary succeeded")
	}
}

// ttyNr returns field 7 of this process's /proc stat: its controlling
// terminal's device number, 0 for none.
func ttyNr(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	return fields[4] // state ppid pgrp session tty_nr
}
