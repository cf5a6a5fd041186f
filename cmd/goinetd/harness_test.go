package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goinetd/goinetd/spawner"
	"golang.org/x/sys/unix"
)

// Deadlines for conditions the tests wait on. They bound a broken test;
// a working one meets them in a few milliseconds.
const (
	waitTimeout = 10 * time.Second
	ioTimeout   = 10 * time.Second
)

// daemon is one goinetd process started by a test.
type daemon struct {
	t      *testing.T
	dir    string // the config's folder
	config string // the config file
	cmd    *exec.Cmd
	logs   *logLines
	done   chan struct{} // closed when the process has exited
	err    error         // its exit error, once done is closed
}

// startDaemon writes config into a fresh folder, starts goinetd on it and
// waits until it is serving. The test's cleanup stops it and collects any
// handler it left running. Options may adjust the command before it starts.
// withNofile is a startDaemon option that starts goinetd under prlimit
// with RLIMIT_NOFILE soft:hard; it skips the test without prlimit.
func withNofile(t *testing.T, soft, hard int) func(*exec.Cmd) {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux) to start goinetd with a given descriptor limit")
	}
	return func(c *exec.Cmd) {
		c.Args = append([]string{prlimit, fmt.Sprintf("--nofile=%d:%d", soft, hard), "--", c.Path}, c.Args[1:]...)
		c.Path = prlimit
	}
}

func startDaemon(t *testing.T, config string, options ...func(*exec.Cmd)) *daemon {
	t.Helper()
	d := launch(t, config, options...)
	d.waitLog(func(r record) bool { return r.msg() == "serving" })
	return d
}

// launch writes config into a fresh folder and starts goinetd on it,
// without waiting for anything.
func launch(t *testing.T, config string, options ...func(*exec.Cmd)) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inetd.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return launchFile(t, path, options...)
}

// launchFile starts goinetd on the config file at path.
func launchFile(t *testing.T, path string, options ...func(*exec.Cmd)) *daemon {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "goinetd"), "-config", path, "-log-level", "debug")
	cmd.Env = []string{"GOINETD_TEST_LEAK=goinetd's own environment"}
	// The suite runs once per spawn mode (Makefile): GOINETD_SPAWN picks it.
	if mode, ok := os.LookupEnv(spawner.SpawnEnv); ok {
		cmd.Env = append(cmd.Env, spawner.SpawnEnv+"="+mode)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range options {
		o(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: filepath.Dir(path), config: path, cmd: cmd, logs: newLogLines(), done: make(chan struct{})}
	go func() {
		d.logs.read(stderr)
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.cleanup)
	return d
}

// spawnMode is how goinetd starts handlers, as its "serving" record says:
// "vfork" or "forkexec" (GOINETD_SPAWN).
func (d *daemon) spawnMode() string {
	d.t.Helper()
	return d.waitLog(func(r record) bool { return r.msg() == "serving" }).str("spawn")
}

// pid is goinetd's process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop sends sig and waits for goinetd to exit, returning its exit code.
func (d *daemon) stop(sig syscall.Signal) int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal goinetd: %v", err)
	}
	return d.wait()
}

// wait waits for goinetd to exit and returns its exit code.
func (d *daemon) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(waitTimeout):
		d.t.Fatalf("goinetd did not exit within %v; log:\n%s", waitTimeout, d.logs)
	}
	var exit *exec.ExitError
	if errors.As(d.err, &exit) {
		return exit.ExitCode()
	}
	if d.err != nil {
		d.t.Fatalf("goinetd: %v", d.err)
	}
	return 0
}

// cleanup stops goinetd if the test has not, then kills and collects every
// handler still running, and fails the test if any survive.
func (d *daemon) cleanup() {
	left := d.children()
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(waitTimeout):
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	for _, pid := range left {
		// The handler is now this process's child (TestMain made it a
		// subreaper), or gone already.
		unix.Kill(pid, unix.SIGKILL)
		var status unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &status, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
	}
	if d.t.Failed() {
		d.t.Logf("goinetd log:\n%s", d.logs)
	}
}

// children returns the pids of goinetd's live child processes.
func (d *daemon) children() []int {
	pids, _ := childrenOf(d.pid())
	return pids
}

// childrenOf lists the children of pid from /proc.
func childrenOf(pid int) ([]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread is gone
		}
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// procStatus returns a field of /proc/PID/status, e.g. "Threads".
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// usage is what goinetd holds at one moment.
type usage struct{ rssKiB, threads, fds int }

func usageOf(t *testing.T, pid int) usage {
	t.Helper()
	rss, err := strconv.Atoi(strings.TrimSuffix(procStatus(t, pid, "VmRSS"), " kB"))
	if err != nil {
		t.Fatalf("VmRSS of %d: %v", pid, err)
	}
	threads, err := strconv.Atoi(procStatus(t, pid, "Threads"))
	if err != nil {
		t.Fatalf("Threads of %d: %v", pid, err)
	}
	return usage{rssKiB: rss, threads: threads, fds: fdCount(t, pid)}
}

func mib(kib int) float64 { return float64(kib) / 1024 }

// fdCount is the number of descriptors pid has open.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	n, _ := descriptors(t, pid)
	return n
}

// descriptors counts the descriptors pid has open, and the pipes among them.
func descriptors(t *testing.T, pid int) (all, pipes int) {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); strings.HasPrefix(target, "pipe:") {
			pipes++
		}
	}
	return len(entries), pipes
}

// procState returns the one-letter state of pid (R, S, Z, ...), or "" if
// there is no such process.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
// It is for conditions no event announces (a process count in /proc).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// record is one JSON log record of goinetd.
type record map[string]any

func (r record) msg() string { s, _ := r["msg"].(string); return s }

func (r record) str(key string) string {
	switch v := r[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// logLines collects goinetd's log, line by line, and lets tests wait for
// a line.
type logLines struct {
	mu      sync.Mutex
	lines   []string
	parsed  []record      // the JSON records among lines, parsed once
	changed chan struct{} // closed and replaced on each new line
	eof     bool
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

func (l *logLines) read(r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var r record
		isJSON := json.Unmarshal(s.Bytes(), &r) == nil
		l.mu.Lock()
		l.lines = append(l.lines, s.Text())
		if isJSON {
			l.parsed = append(l.parsed, r)
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.eof = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// records returns the JSON records logged so far that match.
func (l *logLines) records(match func(record) bool) []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []record
	for _, r := range l.parsed {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// waitLog waits for the first JSON record that matches, failing the test
// if none comes within waitTimeout or goinetd exits first.
func (d *daemon) waitLog(match func(record) bool) record {
	d.t.Helper()
	return d.waitLogs(1, match)[0]
}

// waitLogs waits until n JSON records match and returns them.
func (d *daemon) waitLogs(n int, match func(record) bool) []record {
	d.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.logs.mu.Lock()
		changed, eof := d.logs.changed, d.logs.eof
		d.logs.mu.Unlock()
		if rs := d.logs.records(match); len(rs) >= n {
			return rs[:n]
		} else if eof {
			d.t.Fatalf("goinetd exited after %d of %d awaited log records; log:\n%s", len(rs), n, d.logs)
		}
		select {
		case <-changed:
		case <-deadline:
			d.t.Fatalf("timed out after %v waiting for %d log records; log:\n%s", waitTimeout, n, d.logs)
		}
	}
}

// lastRecord waits until goinetd's log ends (it has exited) and returns
// its last JSON record.
func (d *daemon) lastRecord() record {
	d.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.logs.mu.Lock()
		changed, eof, parsed := d.logs.changed, d.logs.eof, d.logs.parsed
		d.logs.mu.Unlock()
		if eof {
			if len(parsed) == 0 {
				d.t.Fatalf("goinetd logged no JSON record; log:\n%s", d.logs)
			}
			return parsed[len(parsed)-1]
		}
		select {
		case <-changed:
		case <-deadline:
			d.t.Fatalf("timed out after %v waiting for goinetd's log to end; log:\n%s", waitTimeout, d.logs)
		}
	}
}

// portsHandedOut counts freePort's calls, so that each gets a new port.
var portsHandedOut atomic.Uint32

// freePort returns a port that was free for TCP and UDP on host a moment
// ago. It is below the kernel's ephemeral range (32768 and up): there, a
// client's connect could take the port between this call and goinetd's
// bind on a busy host. The pid spreads concurrent test binaries apart.
func freePort(t *testing.T, host string) int {
	t.Helper()
	for range 2000 {
		p := 20000 + int((uint32(os.Getpid())*97+portsHandedOut.Add(1))%12000)
		hp := net.JoinHostPort(host, strconv.Itoa(p))
		ln, err := net.Listen("tcp", hp)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", hp)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return p
	}
	t.Fatalf("no free port on %s", host)
	return 0
}

// sendUDPFrom sends msg to 127.0.0.1:port from a socket bound to the
// loopback address from, and returns that socket, closed at cleanup.
func sendUDPFrom(t *testing.T, from string, port int, msg string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.WriteToUDP([]byte(msg), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	return c
}

// dial connects to addr, from the loopback address from if it is not
// empty.
func dial(t *testing.T, from, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return c.(*net.TCPConn)
}

// exchange sends data on a new connection to addr, half-closes it and
// returns everything the server sends back until it closes.
func exchange(t *testing.T, addr, data string) string {
	t.Helper()
	c := dial(t, "", addr)
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatalf("write to %s: %v", addr, err)
	}
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

// occurrences counts the events behind the records that match. A failure
// that repeats is logged at most once a second (see limitedLog): the first
// record stands for one event, and the next one, with repeated=N, for the
// N held back meanwhile.
func occurrences(d *daemon, match func(record) bool) int {
	n := 0
	for _, r := range d.logs.records(match) {
		if k, err := strconv.Atoi(r.str("repeated")); err == nil {
			n += k
		} else {
			n++
		}
	}
	return n
}
