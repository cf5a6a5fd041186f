package main

// Attacks on goinetd's privilege: the trampoline run by someone else, and
// a config that cannot be served by the user who checks it.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// asNobody returns the command line that runs argv as nobody (uid and gid
// 65534, no supplementary groups), or skips the test if it cannot.
func asNobody(t *testing.T, argv ...string) []string {
	t.Helper()
	needRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run a command as nobody")
	}
	return append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}, argv...)
}

// TestTrampolineWithFileCapabilitiesRefuses performs the attack of a copy
// of goinetd given cap_setuid and cap_setgid: nobody runs it as the
// trampoline and asks it for uid 0. It must refuse, not print 0.
func TestTrampolineWithFileCapabilitiesRefuses(t *testing.T) {
	argvPrefix := asNobody(t)
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip("needs setcap (libcap2-bin) to give a copy of goinetd file capabilities")
	}
	dir := openDir(t)
	// The copy is named for the trampoline, so argv[0] makes it one.
	trampoline := filepath.Join(dir, "goinetd-exec")
	data, err := os.ReadFile(filepath.Join(bin, "goinetd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trampoline, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(setcap, "cap_setuid,cap_setgid+ep", trampoline).CombinedOutput(); err != nil {
		t.Skipf("setcap on %s (the file system may not support file capabilities): %v: %s", dir, err, out)
	}

	argv := append(argvPrefix, trampoline, "-cred", "0:0:", "--", "/usr/bin/id", "id", "-u")
	stdout, stderr, err := runBounded(t, nil, argv[0], argv[1:]...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 127 || stdout != "" {
		t.Fatalf("nobody running a goinetd-exec with cap_setuid, asking for uid 0: got stdout %q, %v; want nothing on stdout and exit status 127 (stderr %q)",
			stdout, err, stderr)
	}
	if want := "goinetd-exec: refused: started with raised privilege"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr: got %q; want it to start with %q", stderr, want)
	}
}

// TestTrampolineNotStartedByGoinetdRefuses runs the trampoline from a
// process that is not goinetd, as a launcher that lets its user choose
// argv[0] would (a sudo rule for goinetd, a symlink named goinetd-exec).
func TestTrampolineNotStartedByGoinetdRefuses(t *testing.T) {
	dir := t.TempDir()
	trampoline := filepath.Join(dir, "goinetd-exec")
	if err := os.Symlink(filepath.Join(bin, "goinetd"), trampoline); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runBounded(t, nil, trampoline, "--", "/usr/bin/id", "id", "-u")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 127 || stdout != "" {
		t.Fatalf("goinetd-exec started by the test: got stdout %q, %v; want nothing on stdout and exit status 127 (stderr %q)",
			stdout, err, stderr)
	}
	if want := "goinetd-exec: refused: the parent process is not goinetd"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr: got %q; want it to start with %q", stderr, want)
	}
}
