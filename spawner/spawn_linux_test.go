package spawner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
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

// TestVforkSpawn starts /bin/sh through goinetd's own spawn, with clone3
// and with the clone it falls back to, and checks what it got: its
// arguments, the base and extra environment, the workdir, the soft
// RLIMIT_NOFILE, a process group of its own and its stdout. (The e2e tests
// check the rest: descriptors, signals, failures.)
func TestVforkSpawn(t *testing.T) {
	if !haveVfork {
		t.Skip("no vforkExec on this architecture")
	}
	for _, clone3 := range []bool{true, false} {
		t.Run(fmt.Sprintf("clone3=%v", clone3), func(t *testing.T) {
			noClone3.Store(!clone3)
			defer noClone3.Store(false)
			testVforkSpawn(t)
		})
	}
}

func testVforkSpawn(t *testing.T) {
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

	p := &service{path: "/bin/sh", dir: "/", sys: &syscall.SysProcAttr{Setpgid: true},
		argv: []string{"sh", "-c", `echo "$BASE $EXTRA $0"; pwd; ulimit -Sn; cut -d' ' -f5 /proc/$$/stat`, "zero"},
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
	pid, err := tmpl.spawn([]uintptr{null.Fd(), w.Fd(), w.Fd()}, []string{"EXTRA=extra"}, &lim)
	w.Close()
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	out, _ := io.ReadAll(r)
	var status unix.WaitStatus
	if _, err := unix.Wait4(pid, &status, 0, nil); err != nil || status.ExitStatus() != 0 {
		t.Fatalf("wait for %d: %v, status %v", pid, err, status)
	}
	want := "base extra zero\n/\n123\n" + strconv.Itoa(pid) + "\n"
	if got := string(out); got != want {
		t.Errorf("handler saw %q; want %q", got, want)
	}
}

func TestVforkSpawnExecFailureIsReportedAndReaped(t *testing.T) {
	if !haveVfork {
		t.Skip("no vforkExec on this architecture")
	}
	p := &service{path: "/nonexistent/handler", argv: []string{"handler"}, sys: &syscall.SysProcAttr{Setpgid: true}}
	tmpl, err := newExecTemplate(p)
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if _, err := tmpl.spawn([]uintptr{null.Fd(), null.Fd(), null.Fd()}, nil, nil); !errors.Is(err, unix.ENOENT) {
		t.Errorf("spawn of a missing program: %v; want ENOENT", err)
	}
	if pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("after a failed exec, wait4 found child %d (%v); want none left", pid, err)
	}
}

func TestStartingNofileFailsCleanly(t *testing.T) {
	if _, err := startingNofile("/nonexistent/goinetd"); err == nil {
		t.Error("startingNofile of a missing binary succeeded")
	}
}
