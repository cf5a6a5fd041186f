package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goinetdPath is goinetd, built once by TestMain.
var goinetdPath string

func TestMain(m *testing.M) {
	// The test binary doubles as the Go echo server, as goinetd-bench does.
	if len(os.Args) > 1 && os.Args[1] == serveGoEchoFlag {
		os.Exit(serveGoEcho(os.Args[2:]))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "goinetd-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goinetdPath = filepath.Join(dir, "goinetd")
	build := exec.Command("go", "build", "-o", goinetdPath, "github.com/goinetd/goinetd/cmd/goinetd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build goinetd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// runTool runs goinetd-bench on the test's goinetd with args and -json,
// fails the test unless it exits 0, and returns its results and its
// markdown report.
func runTool(t *testing.T, args ...string) (results, string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr strings.Builder
	status := run(append([]string{"-goinetd", goinetdPath, "-json", jsonPath}, args...), &stdout, &stderr)
	if status != 0 {
		t.Fatalf("exit status %d; want 0\nstderr:\n%s\nstdout:\n%s", status, stderr.String(), stdout.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("-json: %v", err)
	}
	return res, stdout.String()
}

// TestBenchGoinetdAndGoEcho runs the whole tool, briefly, against goinetd
// spawning /bin/cat, goinetd's built-in echo and the Go echo server,
// without any peer.
func TestBenchGoinetdAndGoEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and makes a few thousand connections")
	}
	res, out := runTool(t,
		"-servers", "goinetd,goinetd-echo,go-echo",
		"-levels", "1,8",
		"-duration", "300ms", "-warmup", "50ms", "-max-conns", "5000",
		"-rounds", "1", "-hold", "20",
		"-port-base", "0")
	if len(res.Runs) != 6 {
		t.Fatalf("got %d runs; want 6 (3 servers × 2 levels)", len(res.Runs))
	}
	for _, r := range res.Runs {
		where := fmt.Sprintf("%s at %d", r.Server, r.Level)
		if r.Conns <= 0 || r.ConnsPerSec <= 0 {
			t.Errorf("%s: %d connections, %v/s; want some", where, r.Conns, r.ConnsPerSec)
		}
		if r.Errors != 0 || len(r.ErrorKinds) != 0 {
			t.Errorf("%s: errors %d %v; want none", where, r.Errors, r.ErrorKinds)
		}
		if r.P50ms <= 0 || r.P99ms < r.P50ms || r.MaxMs < r.P99ms {
			t.Errorf("%s: latency p50 %v p99 %v max %v; want 0 < p50 <= p99 <= max", where, r.P50ms, r.P99ms, r.MaxMs)
		}
		if r.PeakRSSKB <= 0 || r.MaxThreads < 1 {
			t.Errorf("%s: peak RSS %d kB, %d threads; want both above 0", where, r.PeakRSSKB, r.MaxThreads)
		}
		if r.ZombiesLeft != 0 || r.ChildrenLeft != 0 || r.ServerDied {
			t.Errorf("%s: %d zombies and %d children left, died %v; want none", where, r.ZombiesLeft, r.ChildrenLeft, r.ServerDied)
		}
		if r.OthersPct < 0 || r.OthersPct > 100 {
			t.Errorf("%s: others %v%%; want a share of the machine, 0 to 100", where, r.OthersPct)
		}
		spawns := r.Server == "goinetd"
		if spawns != (r.MaxChildren > 0) {
			t.Errorf("%s: at most %d children; want some only for goinetd spawning cat", where, r.MaxChildren)
		}
	}
	if len(res.Holds) != 3 {
		t.Fatalf("got %d hold results; want 3", len(res.Holds))
	}
	for _, h := range res.Holds {
		wantChildren := 0
		if h.Server == "goinetd" {
			wantChildren = 20
		}
		if h.Held != 20 || h.Errors != 0 || h.ChildrenHeld != wantChildren || h.ChildrenAfter != 0 || h.ZombiesAfter != 0 {
			t.Errorf("hold %s: %+v; want 20 held, %d children held, none after, no error", h.Server, h, wantChildren)
		}
	}

	for _, want := range []string{
		"## spawn /bin/cat per connection",
		"| 1 | goinetd | ",
		"| 8 | goinetd | ",
		"## in-process echo",
		"| 1 | go-echo | ",
		"| 8 | goinetd-echo | ",
		"## goinetd at a glance",
		"## Held connections",
		"None: every connection of every round completed its exchange.",
		"Left running at the end: nothing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q; got:\n%s", want, out)
		}
	}
	// No peer ran, so goinetd's figures have no ratio; go-echo's are 1.00×.
	if !strings.Contains(out, "| 1 | go-echo | ") || strings.Count(out, "(1.00×)") < 2 {
		t.Errorf("go-echo's figures are not the echo group's reference; got:\n%s", out)
	}
	if left, err := (proc{root: "/proc"}).children(os.Getpid()); err != nil || len(left) != 0 {
		t.Errorf("children of the test left: %v, %v; want none", pidsOf(left), err)
	}
}

// TestBenchTLSGoinetd runs the TLS comparison, briefly, against goinetd
// alone (no peer): full and resumed handshakes at two levels, and the
// bulk test.
func TestBenchTLSGoinetd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and makes a few hundred TLS connections")
	}
	res, out := runTool(t, "-tls", "-servers", "goinetd",
		"-levels", "1,4", "-duration", "300ms", "-warmup", "100ms",
		"-rounds", "1", "-bulk-mb", "4", "-port-base", "0")
	if len(res.Runs) != 4 {
		t.Fatalf("got %d runs; want 4 (2 levels × full and resumed handshakes)", len(res.Runs))
	}
	for _, r := range res.Runs {
		where := fmt.Sprintf("%s at %d, %s handshakes", r.Server, r.Level, r.Handshake)
		if r.Conns <= 0 || r.Errors != 0 || r.ZombiesLeft != 0 || r.ChildrenLeft != 0 {
			t.Errorf("%s: %d connections, %d errors %v, %d zombies and %d children left; want some, and none of the rest",
				where, r.Conns, r.Errors, r.ErrorKinds, r.ZombiesLeft, r.ChildrenLeft)
		}
		switch r.Handshake {
		case handshakeFull:
			if r.Resumed != 0 {
				t.Errorf("%s: %d resumed; want 0", where, r.Resumed)
			}
		case handshakeResumed:
			if float64(r.Resumed) < minResumedShare*float64(r.Conns) {
				t.Errorf("%s: %d of %d resumed; want at least %v of them", where, r.Resumed, r.Conns, minResumedShare)
			}
		default:
			t.Errorf("%s: handshake %q; want full or resumed", where, r.Handshake)
		}
	}
	if len(res.Bulks) != 1 || res.Bulks[0].Error != "" || res.Bulks[0].MBps <= 0 || res.Bulks[0].MB != 4 {
		t.Fatalf("bulk results: %+v; want one of 4 MB, at some MB/s, without error", res.Bulks)
	}
	for _, want := range []string{
		"## TLS in front of /bin/cat per connection: full handshakes",
		"## TLS in front of /bin/cat per connection: resumed handshakes",
		"| 4 | goinetd | ",
		"## One connection's bulk throughput (TLS)",
		"| goinetd | ",
		"Left running at the end: nothing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q; got:\n%s", want, out)
		}
	}
	if left, err := (proc{root: "/proc"}).children(os.Getpid()); err != nil || len(left) != 0 {
		t.Errorf("children of the test left: %v, %v; want none", pidsOf(left), err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-servers", "nosuch"},
		{"-levels", "0"},
		{"-rounds", "0"},
		{"-server", "x=/bin/cat"},
		{"extra"},
		{"-tls", "-hold", "10"},
		{"-tls", "-server", "x=/bin/cat {port}"},
		{"-tls", "-bulk-mb", "-1"},
	} {
		var stdout, stderr strings.Builder
		status := run(append([]string{"-goinetd", goinetdPath}, args...), &stdout, &stderr)
		if status == 0 || stderr.Len() == 0 {
			t.Errorf("run %q: status %d, stderr %q; want a usage error", args, status, stderr.String())
		}
	}
}
