package main

// End-to-end tests: TestMain builds the real goinetd and handler binaries
// once, and each test starts goinetd on loopback ports and talks to it with
// real clients. The test binary doubles as a handler (see helper_test.go).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// bin is the folder holding the binaries built for this run: goinetd,
// echo and lastaccess. It is set once by TestMain and only read after.
var bin string

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperVar); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "goinetd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = dir
	// goinetd is built with the race detector when the tests are, and
	// with spawner's run-time checks (on under -race anyway) when the
	// tests are built with -tags goinetd_debug.
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	if debugBuild {
		args = append(args, "-tags", "goinetd_debug")
	}
	for _, pkg := range [][]string{{"."}, {"../../services/echo", "../../services/lastaccess"}} {
		cmd := exec.Command("go", append(args, pkg...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %v: %v\n", pkg, err)
			return 1
		}
		args = []string{"build", "-o", dir + "/"} // handlers need no race detector
	}
	if _, err := os.Stat(filepath.Join(dir, "goinetd")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Handlers that outlive a goinetd stopped by a test are reparented to
	// this process, so the test can collect them and leave no orphan.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "PR_SET_CHILD_SUBREAPER: %v\n", err)
		return 1
	}
	return m.Run()
}
