package main

// Real faults: a handler deleted after load, a process limit that makes
// fork fail (a cgroup v1 pids controller), and a descriptor limit that makes
// accept fail (prlimit on the running daemon).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestProgramRemovedAfterLoad(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	dir := t.TempDir()
	handler := filepath.Join(dir, "handler")
	copyFile(t, filepath.Join(bin, "echo"), handler)
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.echo]
address = "127.0.0.1"
port = %d
program = %q
`, port, handler))
	if got := exchange(t, addr(port), "one"); got != "one" {
		t.Fatalf("echo before removal: got %q", got)
	}

	if err := os.Remove(handler); err != nil {
		t.Fatal(err)
	}
	c := dial(t, "127.0.0.5", addr(port))
	expectClosed(t, c)
	r := d.waitLog(func(r record) bool { return r.msg() == "spawn failed" })
	if r.str("service") != "echo" || !strings.HasPrefix(r.str("peer"), "127.0.0.5:") ||
		r.str("stage") != "exec" || r.str("err") != "no such file or directory" {
		t.Errorf("spawn failure record %v: want service echo, peer 127.0.0.5, stage exec and ENOENT", r)
	}

	copyFile(t, filepath.Join(bin, "echo"), handler)
	if got := exchange(t, addr(port), "two"); got != "two" {
		t.Fatalf("echo after the program came back: got %q", got)
	}
}

// TestBurstToMissingProgramLogsEveryFailure queues clients while goinetd
// is stopped, so that its spawn loop takes them in one wake-up and starts
// them without waiting for the exec (all but the first at least): those
// exec failures are learnt when the children are reaped, and each must
// still close its client and be logged and counted as a spawn failure.
func TestBurstToMissingProgramLogsEveryFailure(t *testing.T) {
	port, mport := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	handler := filepath.Join(t.TempDir(), "handler")
	copyFile(t, filepath.Join(bin, "echo"), handler)
	d := startDaemon(t, jsonLog+fmt.Sprintf(`metrics = "127.0.0.1:%d"
[services.gone]
address = "127.0.0.1"
port = %d
program = %q
`, mport, port, handler))
	if err := os.Remove(handler); err != nil {
		t.Fatal(err)
	}

	const burst = 12
	if err := unix.Kill(d.pid(), unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(d.pid(), unix.SIGCONT) })
	var clients []*net.TCPConn
	for range burst {
		clients = append(clients, dial(t, "", addr(port))) // the kernel completes it into the backlog
	}
	if err := unix.Kill(d.pid(), unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		expectClosed(t, c)
	}
	failed := func(r record) bool {
		return r.msg() == "spawn failed" && r.str("service") == "gone" && r.str("stage") == "exec" &&
			r.str("err") == "no such file or directory"
	}
	waitFor(t, fmt.Sprintf("%d spawn failures logged", burst), func() bool { return occurrences(d, failed) >= burst })
	if n := occurrences(d, failed); n != burst {
		t.Errorf("%d spawn failures logged for %d clients; want one each", n, burst)
	}
	// A child that was started without waiting for its exec is logged as
	// spawned first: some were, or this test did not test that path.
	// syscall.ForkExec always waits.
	late := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" && r.str("service") == "gone" }))
	if late == 0 && d.spawnMode() != "forkexec" {
		t.Error("no child of the burst was started without waiting for its exec")
	}
	if ended := d.logs.records(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "gone" }); len(ended) > 0 {
		t.Errorf("a failed exec logged as a connection that ended: %v", ended[0])
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	waitMetric(t, url, `goinetd_spawn_failures_total{service="gone",stage="exec"}`, burst)
	if late > 0 { // otherwise no child ran: the series does not exist
		waitMetric(t, url, `goinetd_children_running{service="gone"}`, 0)
	}
	t.Logf("%d clients in one burst: %d learnt their exec failed at reap", burst, late)
}

func TestForkFailureClosesClientAndRecovers(t *testing.T) {
	cgroup := pidsCgroup(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	if got := exchange(t, addr(port), "warm"); got != "warm" {
		t.Fatalf("echo: got %q", got)
	}

	// Put goinetd in a group that allows no more tasks than it has: every
	// fork fails with EAGAIN.
	writeFile(t, filepath.Join(cgroup, "cgroup.procs"), strconv.Itoa(d.pid()))
	writeFile(t, filepath.Join(cgroup, "pids.max"), strconv.Itoa(readInt(t, filepath.Join(cgroup, "pids.current"))))
	// Each client is closed at once: the first ones after a failed fork,
	// the others without a fork until the backoff pause ends.
	const refused = 20
	worst := time.Duration(0)
	for range refused {
		start := time.Now()
		expectClosed(t, dial(t, "", addr(port)))
		worst = max(worst, time.Since(start))
	}
	t.Logf("%d clients refused while forks failed; the slowest was closed in %v", refused, worst.Round(time.Millisecond))
	if state := procState(d.pid()); state == "" || state == "Z" {
		t.Fatalf("goinetd died while forks failed (state %q); log:\n%s", state, d.logs)
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "spawn failed" })
	if r.str("stage") != "fork" || r.str("err") != "resource temporarily unavailable" {
		t.Errorf("fork failure record %v: want stage fork and EAGAIN", r)
	}
	// Every refused client is logged, as a fork failure or a refusal
	// while forks back off, at a bounded rate; held-back records are
	// counted in the next one's "repeated".
	counted := func() int {
		return occurrences(d, func(r record) bool {
			return r.msg() == "spawn failed" || r.msg() == "refused" && r.str("reason") == "fork_backoff"
		})
	}
	waitFor(t, "every refused client to be logged", func() bool { return counted() == refused })

	writeFile(t, filepath.Join(cgroup, "pids.max"), "max")
	lifted := time.Now()
	waitFor(t, "echo to work again", func() bool {
		c := dial(t, "", addr(port))
		defer c.Close()
		io.WriteString(c, "back")
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		return string(b) == "back"
	})
	t.Logf("served again %v after the limit was lifted", time.Since(lifted).Round(time.Millisecond))
}

func TestAcceptEMFILEBacksOffAndRecovers(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	if got := exchange(t, addr(port), "warm"); got != "warm" {
		t.Fatalf("echo: got %q", got)
	}

	// Lower goinetd's limit to its lowest free descriptor: accept has none.
	var old unix.Rlimit
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	low := unix.Rlimit{Cur: uint64(lowestFreeFD(t, d.pid())), Max: old.Max}
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Fatal(err)
	}
	const waiting = 3
	clients := make([]net.Conn, waiting)
	for i := range clients {
		clients[i] = dial(t, "", addr(port))
		fmt.Fprintf(clients[i], "%d", i)
		clients[i].(*net.TCPConn).CloseWrite()
	}
	// While it cannot accept, goinetd backs off instead of spinning: two
	// failure records about a second apart cost it little CPU.
	d.waitLog(func(r record) bool { return r.msg() == "accept failed" && r.str("err") == "too many open files" })
	before, start := cpuTicks(t, d.pid()), time.Now()
	d.waitLogs(2, func(r record) bool { return r.msg() == "accept failed" && r.str("repeated") != "" })
	ticks, elapsed := cpuTicks(t, d.pid())-before, time.Since(start)
	t.Logf("blocked on EMFILE: %d CPU ticks in %v", ticks, elapsed.Round(time.Millisecond))
	if ticksPerSecond := 100.0; float64(ticks) > 0.2*ticksPerSecond*elapsed.Seconds() {
		t.Errorf("goinetd used %d CPU ticks in %v while out of descriptors; want it idle", ticks, elapsed)
	}

	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		b, err := io.ReadAll(c)
		if want := strconv.Itoa(i); err != nil || string(b) != want {
			t.Errorf("client %d waiting in the backlog: got %q, %v; want %q", i, b, err, want)
		}
	}
}

// lowestFreeFD returns the lowest descriptor number pid has not open.
func lowestFreeFD(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	open := map[int]bool{}
	for _, e := range entries {
		n, _ := strconv.Atoi(e.Name())
		open[n] = true
	}
	n := 0
	for open[n] {
		n++
	}
	return n
}

// expectClosed checks that the server closes c without sending anything.
func expectClosed(t *testing.T, c io.Reader) {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("refused connection: got %v; want it closed at once", err)
	}
	if len(b) > 0 {
		t.Fatalf("refused connection got %q; want nothing", b)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// pidsCgroup creates a cgroup v1 pids controller group for the test, or
// skips the test if this host has none it may write. Cleanup moves what is
// left in it back to the root group and removes it.
func pidsCgroup(t *testing.T) string {
	t.Helper()
	const root = "/sys/fs/cgroup/pids"
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup")
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skipf("needs the cgroup v1 pids controller at %s: %v", root, err)
	}
	dir := filepath.Join(root, fmt.Sprintf("goinetd-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a pids cgroup: %v", err)
	}
	t.Cleanup(func() {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, pid := range strings.Fields(string(b)) {
			os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	return dir
}

func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatalf("write %q to %s: %v", value, path, err)
	}
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// cpuTicks is the user and system time pid has used, in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return utime + stime
}
