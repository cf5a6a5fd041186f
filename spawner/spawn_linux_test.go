package spawner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestVforkable(t *testing.T) {
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
		if got := vforkable(tc.files); got != tc.want {
			t.Errorf("vforkable(%v) = %v; want %v", tc.files, got, tc.want)
		}
	}
}

// TestVforkSpawn starts /bin/sh through goinetd's own spawn, waiting for
// its exec (spawn) and not (spawnNoWait), each with clone3 and with the
// clone it falls back to, and checks what it got: its arguments, the base
// and extra environment, the workdir, the soft RLIMIT_NOFILE, a process
// group and session of its own, with no terminal, and its stdout. (The
// e2e tests check the rest: descriptors, signals, failures.)
func TestVforkSpawn(t *testing.T) {
	if !haveVfork {
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

// spawnEither starts tmpl's program with spawn if wait, with spawnNoWait
// otherwise; done then reports whether the child has let go of the
// cloneSpawn, and execErr is where it writes a failed exec's errno.
func spawnEither(tmpl *execTemplate, wait bool, files []uintptr, extra []string, nofile *unix.Rlimit) (
	pid int, done func() bool, execErr *uintptr, err error) {
	execErr = new(uintptr)
	if wait {
		pid, err = tmpl.spawn(files, extra, nofile)
		return pid, func() bool { return true }, execErr, err
	}
	c := new(cloneSpawn)
	pid, err = tmpl.spawnNoWait(c, files, extra, nofile, execErr)
	return pid, func() bool { return atomic.LoadInt32(&c.tid) == 0 }, execErr, err
}

func testVforkSpawn(t *testing.T, wait bool) {
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

	p := &service{path: "/bin/sh", dir: "/", sys: &syscall.SysProcAttr{Setsid: true},
		argv: []string{"sh", "-c", `echo "$BASE $EXTRA $0"; pwd; ulimit -Sn; cut -d' ' -f5-7 /proc/$$/stat`, "zero"},
		env:  []string{"BASE=base", "PATH=/usr/bin:/bin"}}
	tmpl, err := newExecTemplate(p)
	if err != nil || tmpl == nil {
		t.Fatalf("newExecTemplate: %v, %v", tmpl, err)
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
	// Its process group and session are its own, with no terminal
	// (tty_nr 0).
	want := "base extra zero\n/\n123\n" + strconv.Itoa(pid) + " " + strconv.Itoa(pid) + " 0\n"
	if got := string(out); got != want {
		t.Errorf("handler saw %q; want %q", got, want)
	}
	if !done() || *execErr != 0 {
		t.Errorf("after the child exec'd and was reaped: memory released %v, exec errno %d; want true, 0", done(), *execErr)
	}
}

// TestVforkSpawnExecFailureIsReported checks that a failed exec is
// reported: by spawn at once, its child reaped; by spawnNoWait through
// execErr, written before the child exits 127.
func TestVforkSpawnExecFailureIsReported(t *testing.T) {
	if !haveVfork {
		t.Skip("no vforkExec on this architecture")
	}
	p := &service{path: "/nonexistent/handler", argv: []string{"handler"}, sys: &syscall.SysProcAttr{Setsid: true}}
	tmpl, err := newExecTemplate(p)
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	if _, err := tmpl.spawn(files, nil, nil); !errors.Is(err, unix.ENOENT) {
		t.Errorf("spawn of a missing program: %v; want ENOENT", err)
	}
	if pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("after a failed exec, wait4 found child %d (%v); want none left", pid, err)
	}

	pid, done, execErr, err := spawnEither(tmpl, false, files, nil, nil)
	if err != nil {
		t.Fatalf("spawnNoWait of a missing program: %v; want the child started", err)
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
func TestClonePoolIsBounded(t *testing.T) {
	var p clonePool
	var got []*cloneSpawn
	for range maxCloning {
		c := p.get()
		if c == nil {
			t.Fatalf("get returned nil with %d of %d in use", len(got), maxCloning)
		}
		c.tid = 1 // as spawnNoWait sets it: a child uses c
		got = append(got, c)
	}
	if c := p.get(); c != nil {
		t.Fatalf("get with %d children between clone and exec: got memory; want nil", maxCloning)
	}
	got[3].tid = 0 // that child exec'd
	if c := p.get(); c != got[3] {
		t.Errorf("get after one child exec'd: got %p; want its memory %p again", c, got[3])
	}
	if n := len(p.busy) + len(p.free); n != maxCloning {
		t.Errorf("pool holds %d; want %d", n, maxCloning)
	}
}

func TestStartingNofileFailsCleanly(t *testing.T) {
	if _, err := startingNofile("/nonexistent/goinetd"); err == nil {
		t.Error("startingNofile of a missing binary succeeded")
	}
}
