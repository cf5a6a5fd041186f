//go:build stress

package main

// Stress and fault injection: goinetd out of processes, out of
// descriptors, serving broken handlers, flooded by hostile clients, soaked
// with connections, reloaded and stopped under load, and its lastaccess
// handler SIGKILLed mid-update. Run them with
//
//	go test -tags stress -run Stress -count=1 -v ./cmd/goinetd/
//
// Their sizes fit a few minutes on two cores without -race.
// GOINETD_STRESS_SCALE multiplies them: 10 for a 1,000,000-connection soak,
// 0.05 for a quick look. Each test logs its results as "FIGURE name: value"
// lines, the form docs/testing.md's stress suite section quotes: grep FIGURE.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// stressScale is GOINETD_STRESS_SCALE, by which every size in this file is
// multiplied: default 1, 10 for a long run, 0.05 for a quick look.
func stressScale(t *testing.T) float64 {
	t.Helper()
	v := os.Getenv("GOINETD_STRESS_SCALE")
	if v == "" {
		return 1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		t.Fatalf("GOINETD_STRESS_SCALE=%q: want a number above 0", v)
	}
	return f
}

// scaled is n times the stress scale, at least 1.
func scaled(t *testing.T, n int) int {
	t.Helper()
	return max(1, int(float64(n)*stressScale(t)))
}

// scaledTime is d times the stress scale.
func scaledTime(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	return time.Duration(float64(d) * stressScale(t))
}

// figure logs one result as "FIGURE name: value".
func figure(t *testing.T, name, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s: %s", name, fmt.Sprintf(format, args...))
}

// maxBackoff is the longest pause of an accept loop after a resource error
// (goinetd(8): "5 ms doubling to 1 s").
const maxBackoff = time.Second

// endure lets the clients of a test run for window, failing the test at
// once if goinetd exits meanwhile.
func endure(t *testing.T, d *daemon, window time.Duration) {
	t.Helper()
	timer := time.NewTimer(window)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-d.done:
		t.Fatalf("goinetd exited under stress: %v%s", d.err, runtimeCrash(d))
	}
}

// runtimeCrash returns ": " and the line in which the Go runtime said why
// it killed goinetd, or "" if it said nothing. A runtime that cannot make
// a thread says "runtime: failed to create new OS thread", or with cgo
// "runtime/cgo: pthread_create failed".
func runtimeCrash(d *daemon) string {
	for _, line := range strings.Split(d.logs.String(), "\n") {
		if strings.HasPrefix(line, "runtime: ") || strings.HasPrefix(line, "runtime/cgo: ") ||
			strings.HasPrefix(line, "fatal error: ") {
			return ": " + line
		}
	}
	return ""
}

// waitLong is waitFor with a deadline sized for a stress run.
func waitLong(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// attempt is how one client connection of a stress test went.
type attempt struct {
	took  time.Duration // from the start of the dial to the end of the reply
	reply string
	err   error // of the dial, the write or the read, the first one
}

// served reports whether the service sent payload back.
func (a attempt) served(payload string) bool { return a.err == nil && a.reply == payload }

// closed reports whether the server closed the connection with no reply,
// by end of file or a reset, as goinetd closes a client it cannot serve: a
// reset may fail the read, the write (EPIPE) or the half-close (ENOTCONN).
// A timeout is not closed: it is a hang.
func (a attempt) closed() bool {
	return a.reply == "" && (a.err == nil || errors.Is(a.err, syscall.ECONNRESET) ||
		errors.Is(a.err, syscall.EPIPE) || errors.Is(a.err, syscall.ENOTCONN))
}

// stressDialer dials from the loopback address from ("": any). The port is
// picked at connect(2), not bind(2) (IP_BIND_ADDRESS_NO_PORT), so a long
// run from one address may reuse the ports its earlier connections left in
// TIME_WAIT.
func stressDialer(from string) *net.Dialer {
	d := &net.Dialer{Timeout: ioTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return err
		}
	}
	return d
}

// try sends payload on a new connection to address, half-closes it and
// reads the reply until the server closes, within timeout. Unlike exchange
// it never fails the test: stress clients count outcomes.
func try(d *net.Dialer, address, payload string, timeout time.Duration) attempt {
	start := time.Now()
	c, err := d.Dial("tcp", address)
	if err != nil {
		return attempt{took: time.Since(start), err: err}
	}
	defer c.Close()
	c.SetDeadline(start.Add(timeout))
	_, err = io.WriteString(c, payload)
	if err == nil {
		err = c.(*net.TCPConn).CloseWrite()
	}
	b, readErr := io.ReadAll(c)
	if err == nil {
		err = readErr
	}
	return attempt{took: time.Since(start), reply: string(b), err: err}
}

// runLoops runs body over and over in n goroutines (worker 0 to n-1) until
// the stop it returns is called, or the test ends. stop waits for the
// bodies running to return.
func runLoops(t *testing.T, n int, body func(worker int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				body(w)
			}
		})
	}
	var once sync.Once
	stop = func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// durations collects times from concurrent clients.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *durations) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// percentile returns the p-th percentile (nearest rank), or 0 if there
// are none.
func (s *durations) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(s.d))
	return sorted[max(int(math.Ceil(p/100*float64(len(sorted))))-1, 0)]
}

// goodClient is a well-behaved client exchanging with an echo service in a
// loop while a test abuses goinetd.
type goodClient struct {
	served, failed atomic.Int64
	firstFailure   atomic.Value // string
	took           durations
	stop           func()
}

func startGoodClient(t *testing.T, address string) *goodClient {
	p := &goodClient{}
	d := stressDialer("")
	n := 0
	p.stop = runLoops(t, 1, func(int) {
		n++
		payload := "probe " + strconv.Itoa(n)
		if a := try(d, address, payload, ioTimeout); a.served(payload) {
			p.served.Add(1)
			p.took.add(a.took)
		} else {
			p.failed.Add(1)
			p.firstFailure.CompareAndSwap(nil, fmt.Sprintf("got %q, %v", a.reply, a.err))
		}
	})
	return p
}

// finish stops p, logs its figure under name and fails the test unless
// every one of its exchanges succeeded.
func (p *goodClient) finish(t *testing.T, name string) {
	t.Helper()
	p.stop()
	served, failed := p.served.Load(), p.failed.Load()
	figure(t, name, "well-behaved echo client: %d of %d exchanges served (%.2f%%); latency p50 %v, p99 %v, max %v",
		served, served+failed, 100*float64(served)/float64(max(served+failed, 1)),
		p.took.percentile(50).Round(time.Microsecond), p.took.percentile(99).Round(time.Microsecond),
		p.took.percentile(100).Round(time.Microsecond))
	if failed > 0 || served == 0 {
		t.Errorf("well-behaved client: %d of %d exchanges failed (first: %v); want every one served",
			failed, served+failed, p.firstFailure.Load())
	}
}

// zombies counts the children of pid that have exited and wait to be
// reaped.
func zombies(pid int) int {
	pids, _ := childrenOf(pid)
	n := 0
	for _, p := range pids {
		if procState(p) == "Z" {
			n++
		}
	}
	return n
}

// waitIdle waits until goinetd has no child left, live or zombie.
func waitIdle(t *testing.T, d *daemon) {
	t.Helper()
	waitLong(t, "goinetd's handlers to be reaped", 30*time.Second, func() bool { return len(d.children()) == 0 })
}

func TestStressForkFailure(t *testing.T) {
	cgroup := pidsCgroup(t)
	window := scaledTime(t, 5*time.Second)
	const clients = 4
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port))
	if got := exchange(t, addr(port), "warm"); got != "warm" {
		t.Fatalf("echo: got %q", got)
	}

	// Allow the group exactly the tasks goinetd has, its threads: every
	// fork fails with EAGAIN, and so would a new thread of its runtime. A
	// runtime that needs one then aborts goinetd: a product bug this test
	// exists to catch, not to hide.
	writeFile(t, filepath.Join(cgroup, "cgroup.procs"), strconv.Itoa(d.pid()))
	tasks := readInt(t, filepath.Join(cgroup, "pids.current"))
	writeFile(t, filepath.Join(cgroup, "pids.max"), strconv.Itoa(tasks))
	limited := time.Now()

	type result struct {
		attempt
		served bool
		ended  time.Time
	}
	var mu sync.Mutex
	var results []result
	dialer := stressDialer("")
	var sent atomic.Int64
	stop := runLoops(t, clients, func(int) {
		payload := "x" + strconv.FormatInt(sent.Add(1), 10)
		a := try(dialer, addr(port), payload, ioTimeout)
		mu.Lock()
		results = append(results, result{a, a.served(payload), time.Now()})
		mu.Unlock()
	})
	endure(t, d, window)
	if state := procState(d.pid()); state == "" || state == "Z" {
		t.Fatalf("goinetd died while forks failed (state %q)", state)
	}
	threads := procStatus(t, d.pid(), "Threads")

	writeFile(t, filepath.Join(cgroup, "pids.max"), "max")
	lifted := time.Now()
	var recovered time.Time
	waitFor(t, "an echo after the limit was lifted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			if r.served && r.ended.After(lifted) {
				recovered = r.ended
				return true
			}
		}
		return false
	})
	stop()

	var refused, servedLimited int
	var worst time.Duration
	for _, r := range results {
		switch {
		case r.served:
			if r.ended.Before(lifted) {
				servedLimited++
			}
		case r.closed():
			refused++
			worst = max(worst, r.took)
		default:
			t.Errorf("client under the process limit: got %q, %v after %v; want an echo, or closed at once", r.reply, r.err, r.took)
		}
	}
	// Every refused client's connection was accepted and closed: after a
	// failed fork, or without a fork while the loop backs off from one.
	// Each is logged, or counted in a later record's repeated=N.
	isForkFailure := func(r record) bool { return r.msg() == "spawn failed" && r.str("stage") == "fork" }
	isBackoff := func(r record) bool { return r.msg() == "refused" && r.str("reason") == "fork_backoff" }
	waitFor(t, "the held-back refusals to be logged", func() bool {
		return occurrences(d, isForkFailure)+occurrences(d, isBackoff) >= refused
	})
	forks := occurrences(d, isForkFailure)
	logged := forks + occurrences(d, isBackoff)
	records := d.logs.records(func(r record) bool { return r.msg() == "spawn failed" })
	for _, r := range records {
		if r.str("stage") != "fork" || r.str("err") != "resource temporarily unavailable" {
			t.Errorf("spawn failure record %v: want stage fork and EAGAIN", r)
		}
	}
	if refused == 0 || forks == 0 || logged != refused {
		t.Errorf("refusals: %d logged (%d fork failures in %d records) for %d refused clients; want one per refused client, and some forks",
			logged, forks, len(records), refused)
	}
	// A refused client is closed at once: no client waits in the backlog
	// for a fork that would fail.
	if bound := 100 * time.Millisecond; worst > bound {
		t.Errorf("a refused client waited %v for its connection to close; want at most %v", worst, bound)
	}
	if took := recovered.Sub(lifted); took > maxBackoff+time.Second {
		t.Errorf("first echo %v after the limit was lifted; want within %v", took, maxBackoff+time.Second)
	}
	if crash := runtimeCrash(d); crash != "" {
		t.Errorf("goinetd's runtime gave up under the process limit%s", crash)
	}
	figure(t, "fork-failure", "pids.max=%d (goinetd's tasks) for %v, %d client loops: %d clients refused, worst %v from connect to close; "+
		"%d forks failed, %d refused during backoff, all logged; %d served while limited; goinetd alive, %s threads",
		tasks, lifted.Sub(limited).Round(100*time.Millisecond), clients, refused,
		worst.Round(time.Millisecond), forks, logged-forks, servedLimited, threads)
	figure(t, "fork-recovery", "first echo %v after pids.max=max", recovered.Sub(lifted).Round(time.Millisecond))
}

func TestStressFDExhaustion(t *testing.T) {
	clients := scaled(t, 200)
	port := freePort(t, "127.0.0.1")
	// The clients, all 127.0.0.1, are served at once when the limit is
	// restored: past the default limits, lifted.
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port, "max_connections = 0", "max_per_source = 0"))
	if got := exchange(t, addr(port), "warm"); got != "warm" {
		t.Fatalf("echo: got %q", got)
	}
	fdsBefore := fdCount(t, d.pid())

	// Lower goinetd's limit to its lowest free descriptor: accept has none.
	var old unix.Rlimit
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	setLimit := func(l unix.Rlimit) {
		t.Helper()
		if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &l, nil); err != nil {
			t.Fatalf("prlimit goinetd's RLIMIT_NOFILE to %d: %v", l.Cur, err)
		}
	}
	low := old
	low.Cur = uint64(lowestFreeFD(t, d.pid()))
	setLimit(low)
	conns := make([]net.Conn, clients)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	dialer := stressDialer("")
	for i := range conns {
		c, err := dialer.Dial("tcp", addr(port))
		if err != nil {
			t.Fatalf("client %d of %d: %v", i, clients, err)
		}
		conns[i] = c
		c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(c, "%d", i)
		c.(*net.TCPConn).CloseWrite()
	}

	// While it cannot accept, goinetd backs off: measure its CPU over the
	// next three once-a-second failure records.
	isEMFILE := func(r record) bool { return r.msg() == "accept failed" && r.str("err") == "too many open files" }
	first := d.waitLog(isEMFILE)
	seen := len(d.logs.records(isEMFILE))
	before, start, failuresBefore := cpuTicks(t, d.pid()), time.Now(), occurrences(d, isEMFILE)
	d.waitLogs(seen+3, isEMFILE)
	ticks, blocked, failures := cpuTicks(t, d.pid())-before, time.Since(start), occurrences(d, isEMFILE)-failuresBefore
	const ticksPerSecond = 100 // USER_HZ
	perSecond := float64(ticks) / blocked.Seconds()
	if perSecond > 0.2*ticksPerSecond {
		t.Errorf("goinetd used %d CPU ticks in %v while out of descriptors; want it idle", ticks, blocked)
	}
	if state := procState(d.pid()); state == "" || state == "Z" {
		t.Fatalf("goinetd died out of descriptors (state %q)", state)
	}
	if first.str("service") != "echo" {
		t.Errorf("accept failure record %v: want service echo", first)
	}

	setLimit(old)
	restored := time.Now()
	var firstEcho atomic.Int64 // nanoseconds after restored
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i, c := range conns {
		wg.Go(func() {
			b, err := io.ReadAll(c)
			if want := strconv.Itoa(i); err != nil || string(b) != want {
				errs[i] = fmt.Errorf("client %d waiting in the backlog: got %q, %v; want %q", i, b, err, want)
				return
			}
			firstEcho.CompareAndSwap(0, int64(time.Since(restored)))
		})
	}
	wg.Wait()
	recovery := time.Since(restored)
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	waitIdle(t, d)
	waitFor(t, "goinetd's descriptors to be what they were", func() bool { return fdCount(t, d.pid()) == fdsBefore })
	figure(t, "fd-exhaustion", "RLIMIT_NOFILE=%d with %d clients waiting: %.1f CPU ticks/s (%d in %v) while blocked, "+
		"%d accept failures meanwhile (%.1f/s)",
		low.Cur, clients, perSecond, ticks, blocked.Round(time.Millisecond), failures, float64(failures)/blocked.Seconds())
	figure(t, "fd-recovery", "all %d waiting clients echoed %v after the limit was restored (first %v); fds %d→%d",
		clients, recovery.Round(time.Millisecond), time.Duration(firstEcho.Load()).Round(time.Millisecond),
		fdsBefore, fdCount(t, d.pid()))
}

func TestStressBadHandlers(t *testing.T) {
	window := scaledTime(t, 3*time.Second)
	good, removed, segv, quit, stuck := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"),
		freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	program := filepath.Join(t.TempDir(), "removed")
	copyFile(t, filepath.Join(bin, "echo"), program)
	d := startDaemon(t, jsonLog+logEveryConnection+echoService("good", "127.0.0.1", good)+
		programService("removed", removed, program, nil)+
		// No core file: the shell drops its own limit before it crashes.
		programService("segv", segv, "/bin/sh", []string{"-c", "ulimit -c 0; kill -SEGV $$"})+
		programService("quit", quit, "/bin/true", nil)+
		programService("stuck", stuck, "/bin/sleep", []string{"3600"}, `timeout = "1s"`))
	if err := os.Remove(program); err != nil {
		t.Fatal(err)
	}

	p := startGoodClient(t, addr(good))
	bad := []struct {
		name string
		port int
	}{{"removed", removed}, {"segv", segv}, {"quit", quit}, {"stuck", stuck}}
	const loopsPerService = 2
	var mu sync.Mutex
	connections := map[string]int{}
	var unexpected []string
	dialer := stressDialer("")
	stop := runLoops(t, len(bad)*loopsPerService, func(w int) {
		b := bad[w%len(bad)]
		a := try(dialer, addr(b.port), "hello", ioTimeout)
		mu.Lock()
		defer mu.Unlock()
		connections[b.name]++
		if !a.closed() {
			unexpected = append(unexpected, fmt.Sprintf("%s: got %q, %v", b.name, a.reply, a.err))
		}
	})
	endure(t, d, window)
	stop()
	p.finish(t, "bad-handlers")
	for _, u := range unexpected {
		t.Errorf("client of a broken handler: %s; want the connection closed", u)
	}

	// Every connection to a broken handler is accounted for in the log.
	ended := func(service, key, value string) func(record) bool {
		return func(r record) bool {
			return r.msg() == "connection ended" && r.str("service") == service && r.str(key) == value
		}
	}
	execFailed := func(r record) bool {
		return r.msg() == "spawn failed" && r.str("service") == "removed" && r.str("stage") == "exec" &&
			r.str("err") == "no such file or directory"
	}
	checks := []struct {
		service string
		match   func(record) bool
		what    string
	}{
		{"removed", execFailed, "spawn failed stage=exec ENOENT"},
		{"segv", ended("segv", "signal", "SIGSEGV"), "connection ended signal=SIGSEGV"},
		{"quit", ended("quit", "exit", "0"), "connection ended exit=0"},
		{"stuck", ended("stuck", "timeout", "true"), "connection ended timeout=true"},
	}
	var counts []string
	for _, c := range checks {
		want := connections[c.service]
		waitFor(t, fmt.Sprintf("%d records of %s", want, c.what), func() bool { return occurrences(d, c.match) >= want })
		if got := occurrences(d, c.match); got != want || want == 0 {
			t.Errorf("%s: %d logged for %d connections; want one each, and some", c.what, got, want)
		}
		counts = append(counts, fmt.Sprintf("%s %d", c.service, want))
	}
	for _, r := range d.logs.records(ended("stuck", "timeout", "true")) {
		if r.str("signal") != "SIGTERM" {
			t.Errorf("timed-out handler record %v: want it ended by SIGTERM", r)
			break
		}
	}
	waitIdle(t, d)
	figure(t, "bad-handlers-abuse", "%v of %d loops each on handlers removed, SIGSEGV, exiting at once, stuck (timeout 1s): "+
		"connections %s; each failure logged", window, loopsPerService, strings.Join(counts, ", "))
}

func TestStressFloods(t *testing.T) {
	var (
		drops     = scaled(t, 2000) // opened and dropped at once, half with a reset
		halfOpen  = scaled(t, 100)  // per half-open service: partial data, never closed
		vanishing = scaled(t, 300)  // per writing service: read one byte, close
		slow      = scaled(t, 10)   // slow readers of a writing handler
		window    = scaledTime(t, 2*time.Second)
	)
	good, drop, held, heldBuiltin, hose, hoseBuiltin := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"),
		freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	// Every flood comes from 127.0.0.1, in hundreds of connections at once:
	// the default limits are lifted, so that the flood reaches goinetd.
	d := startDaemon(t, "[server]\nlog_format = \"json\"\n[defaults]\nmax_connections = 0\nmax_per_source = 0\nconnection_log_rate = 0\n"+
		echoService("good", "127.0.0.1", good)+echoService("drop", "127.0.0.1", drop)+
		programService("held", held, "/bin/cat", nil)+
		fmt.Sprintf("[services.heldbuiltin]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"echo\"\n", heldBuiltin)+
		programService("hose", hose, "/usr/bin/yes", nil)+
		fmt.Sprintf("[services.hosebuiltin]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"chargen\"\n", hoseBuiltin))
	if got := exchange(t, addr(good), "warm"); got != "warm" {
		t.Fatalf("echo: got %q", got)
	}
	fdsBefore, pipesBefore := descriptors(t, d.pid())
	p := startGoodClient(t, addr(good))

	var kept []net.Conn // closed at the end of the flood
	t.Cleanup(func() {
		for _, c := range kept {
			c.Close()
		}
	})
	dialer := stressDialer("")
	keep := func(port int) net.Conn {
		c, err := dialer.Dial("tcp", addr(port))
		if err != nil {
			t.Fatalf("dial %d: %v", port, err)
		}
		kept = append(kept, c)
		return c
	}

	// Slow readers: a byte every 20 ms from a handler that writes forever.
	var slowBytes atomic.Int64
	var slowConns []net.Conn
	for range slow {
		slowConns = append(slowConns, keep(hose))
	}
	stopSlow := runLoops(t, slow, func(w int) {
		c := slowConns[w]
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		if n, _ := c.Read(make([]byte, 1)); n == 1 {
			slowBytes.Add(1)
		}
		time.Sleep(20 * time.Millisecond) // the pace of a slow reader; it waits for nothing
	})

	// Half-open clients: a partial line, and the connection held.
	for _, port := range []int{held, heldBuiltin} {
		for range halfOpen {
			io.WriteString(keep(port), "partial line, no newline, never closed")
		}
	}

	// Connections opened and dropped at once, half of them with a reset.
	var dropFailures atomic.Int64
	var wg sync.WaitGroup
	const flooders = 50
	for f := range flooders {
		wg.Go(func() {
			for i := f; i < drops; i += flooders {
				c, err := dialer.Dial("tcp", addr(drop))
				if err != nil {
					dropFailures.Add(1)
					continue
				}
				if i%2 == 0 {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
			}
		})
	}
	wg.Wait()

	// Clients that vanish: one byte of a handler's endless output, then
	// gone without reading the rest.
	var vanishFailures atomic.Int64
	for _, port := range []int{hose, hoseBuiltin} {
		for f := range flooders {
			wg.Go(func() {
				for i := f; i < vanishing; i += flooders {
					c, err := dialer.Dial("tcp", addr(port))
					if err == nil {
						c.SetDeadline(time.Now().Add(ioTimeout))
						_, err = c.Read(make([]byte, 1))
						c.Close()
					}
					if err != nil {
						vanishFailures.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()

	endure(t, d, window)
	live := d.children()
	if want := halfOpen + slow; len(live) < want {
		t.Errorf("handlers of held connections: %d live; want at least %d (half-open and slow clients)", len(live), want)
	}
	stopSlow()
	for _, c := range kept {
		c.Close()
	}
	p.finish(t, "floods")
	waitIdle(t, d)
	// The built-in echo copies with splice(2) through a pipe of the Go
	// runtime's, which keeps its pipes in a sync.Pool until a garbage
	// collection (every two minutes in an idle process): apart from them,
	// goinetd holds what it held before, and they are two per half-open
	// built-in connection at most.
	var cached int
	waitFor(t, "goinetd's descriptors to be what they were", func() bool {
		fds, pipes := descriptors(t, d.pid())
		cached = pipes - pipesBefore
		return fds-cached == fdsBefore
	})
	if cached > 2*halfOpen {
		t.Errorf("goinetd holds %d more pipe descriptors than before; want at most %d, the splice pipes of the built-in echo", cached, 2*halfOpen)
	}
	if n := dropFailures.Load() + vanishFailures.Load(); n > 0 {
		t.Errorf("%d flood clients failed to connect or read a byte; want none", n)
	}
	spawned := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" }))
	isEnded := func(r record) bool { return r.msg() == "connection ended" && r.str("pid") != "" }
	waitFor(t, "an end record for every handler", func() bool { return len(d.logs.records(isEnded)) >= spawned })
	if got := len(d.logs.records(isEnded)); got != spawned {
		t.Errorf("handlers: %d spawned, %d logged as ended; want the same", spawned, got)
	}
	if failures := d.logs.records(func(r record) bool { return r.msg() == "spawn failed" || r.msg() == "accept failed" }); len(failures) > 0 {
		t.Errorf("failures under the flood: %v; want none", failures)
	}
	figure(t, "floods-injected", "%d connections dropped at once (half reset), %d half-open held (cat and builtin echo), "+
		"%d vanished (yes and builtin chargen), %d slow readers (%d bytes read)",
		drops, 2*halfOpen, 2*vanishing, slow, slowBytes.Load())
	figure(t, "floods-after", "%d handlers spawned, all reaped and logged; goinetd fds %d→%d, of which %d are splice pipes Go caches until a GC; zombies %d",
		spawned, fdsBefore, fdCount(t, d.pid()), cached, zombies(d.pid()))
}

func TestStressSoak(t *testing.T) {
	if raceEnabled {
		t.Skip("the soak measures goinetd's own memory and threads, and goinetd is built with -race when the tests are: run it without -race")
	}
	total := scaled(t, 100_000)
	warmUp := max(total/20, 1000)
	const clients = 4
	port := freePort(t, "127.0.0.1")
	// The log goes to a file, at info level as in production: one
	// "connection ended" record per connection, too many to keep in memory.
	logPath := filepath.Join(t.TempDir(), "goinetd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	d := launch(t, jsonLog+logEveryConnection+programService("soak", port, "/bin/cat", nil), func(c *exec.Cmd) {
		c.Args = append(c.Args, "-log-level", "info")
		c.Stderr = logFile
	})
	waitFor(t, "goinetd to serve", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `"msg":"serving"`)
	})

	var failures atomic.Int64
	var firstFailure atomic.Value
	connect := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				dialer := stressDialer(fmt.Sprintf("127.0.0.%d", 10+w))
				for i := next.Add(1); i <= int64(n) && failures.Load() == 0; i = next.Add(1) {
					payload := "soak " + strconv.FormatInt(i, 10)
					if a := try(dialer, addr(port), payload, ioTimeout); !a.served(payload) {
						failures.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("connection %d: got %q, %v", i, a.reply, a.err))
					}
				}
			})
		}
		wg.Wait()
	}
	connect(warmUp)
	waitIdle(t, d)
	first := usageOf(t, d.pid())

	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		connect(total)
	}()
	peak, maxZombies := first, 0
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-d.done:
			t.Fatalf("goinetd exited during the soak: %v", d.err)
		case <-tick.C:
			u := usageOf(t, d.pid())
			peak = usage{max(peak.rssKiB, u.rssKiB), max(peak.threads, u.threads), max(peak.fds, u.fds)}
			maxZombies = max(maxZombies, zombies(d.pid()))
		}
	}
	elapsed := time.Since(start)
	if failures.Load() > 0 {
		t.Fatalf("%d soak connections failed (first: %v)", failures.Load(), firstFailure.Load())
	}
	waitIdle(t, d)
	last := usageOf(t, d.pid())
	peak = usage{max(peak.rssKiB, last.rssKiB), max(peak.threads, last.threads), max(peak.fds, last.fds)}
	if last.rssKiB > first.rssKiB+4096 {
		t.Errorf("goinetd's RSS grew from %d KiB to %d KiB over %d connections; want within 4 MiB", first.rssKiB, last.rssKiB, total)
	}
	if last.threads > first.threads+2 {
		t.Errorf("goinetd's threads grew from %d to %d; want at most 2 more", first.threads, last.threads)
	}
	if last.fds != first.fds {
		t.Errorf("goinetd's descriptors: %d after the soak, %d before; want the same", last.fds, first.fds)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status after the soak: %d", code)
	}

	// Every connection was logged once, as a handler that exited 0.
	counts := map[string]int{}
	var problems []string
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var r record
		if err := json.Unmarshal(s.Bytes(), &r); err != nil {
			problems = append(problems, s.Text())
			continue
		}
		counts[r.msg()]++
		if (r.msg() == "connection ended" && r.str("exit") != "0") || r.str("level") != "INFO" {
			problems = append(problems, s.Text())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := counts["connection ended"], warmUp+total; got != want {
		t.Errorf("connection ended records: got %d; want %d", got, want)
	}
	if len(problems) > 0 {
		t.Errorf("%d unexpected log lines, the first: %s", len(problems), problems[0])
	}
	figure(t, "soak", "%d connections in %v, %.0f/s, %d client loops; RSS %.1f→%.1f MiB (peak %.1f); threads %d→%d (peak %d); "+
		"fds %d→%d (peak %d); zombies %d at the end (at most %d waiting for the reaper in a sample)",
		total, elapsed.Round(time.Second), float64(total)/elapsed.Seconds(), clients,
		mib(first.rssKiB), mib(last.rssKiB), mib(peak.rssKiB), first.threads, last.threads, peak.threads,
		first.fds, last.fds, peak.fds, zombies(d.pid()), maxZombies)
}

func TestStressReloadAndStopUnderLoad(t *testing.T) {
	reloads := scaled(t, 20)
	const clients = 8
	port := freePort(t, "127.0.0.1")
	// 8 clients from one address, whose handlers may outlive their
	// exchange a moment: the per-source cap is lifted.
	server := "[server]\nlog_format = \"json\"\nshutdown_grace = \"1m\"\n[defaults]\nmax_per_source = 0\nconnection_log_rate = 0\n"
	// Both configs keep the service on its port, with another handler.
	configA := server + echoService("svc", "127.0.0.1", port)
	configB := server + programService("svc", port, "/bin/cat", nil)
	d := startDaemon(t, configA)

	// Each client connection ends in one of these ways.
	var served, refused, reset, eof, other atomic.Int64
	var firstOther atomic.Value
	var took durations
	dialer := stressDialer("")
	var sent atomic.Int64
	stop := runLoops(t, clients, func(int) {
		payload := "r" + strconv.FormatInt(sent.Add(1), 10)
		a := try(dialer, addr(port), payload, ioTimeout)
		took.add(a.took)
		switch {
		case a.served(payload):
			served.Add(1)
		case errors.Is(a.err, syscall.ECONNREFUSED):
			refused.Add(1) // dialled after the listener closed
		case a.closed() && a.err != nil:
			reset.Add(1) // in the backlog when the listener closed
		case a.closed():
			eof.Add(1)
		default:
			other.Add(1)
			firstOther.CompareAndSwap(nil, fmt.Sprintf("got %q, %v after %v", a.reply, a.err, a.took))
		}
	})
	for i := 1; i <= reloads; i++ {
		next := configA
		if i%2 == 1 {
			next = configB
		}
		d.writeConfig(next)
		if r := d.reload(i); r.msg() != "reloaded" || !slices.Equal(list(r, "changed"), []string{"svc"}) {
			t.Fatalf("reload %d: %v; want svc changed", i, r)
		}
		before := served.Load()
		waitFor(t, "clients to be served under the new config", func() bool { return served.Load() >= before+20 })
	}
	stopped := time.Now()
	code := d.stop(syscall.SIGTERM)
	drained := time.Since(stopped)
	waitFor(t, "clients to be refused once goinetd is gone", func() bool { return refused.Load() >= clients })
	stop()
	if code != 0 {
		t.Errorf("exit status: got %d; want 0, every handler finished within shutdown_grace", code)
	}

	// Every connection goinetd accepted has a child, and every child an
	// end record; the clients served are exactly those connections.
	ended := map[string]bool{}
	for _, r := range d.logs.records(func(r record) bool { return r.msg() == "connection ended" }) {
		ended[r.str("pid")] = true
	}
	spawned := d.logs.records(func(r record) bool { return r.msg() == "spawned" })
	for _, r := range spawned {
		if !ended[r.str("pid")] {
			t.Errorf("handler %s was spawned (%v) and never logged as ended", r.str("pid"), r)
		}
	}
	if len(spawned) != len(ended) || int64(len(spawned)) != served.Load() {
		t.Errorf("%d clients served, %d handlers spawned, %d logged as ended; want all three equal",
			served.Load(), len(spawned), len(ended))
	}
	if eof.Load() > 0 || other.Load() > 0 {
		t.Errorf("%d connections closed without an echo or a reset, %d failed otherwise (first: %v); want none",
			eof.Load(), other.Load(), firstOther.Load())
	}
	if failures := d.logs.records(func(r record) bool {
		return r.msg() == "spawn failed" || r.msg() == "accept failed" || r.msg() == "refused"
	}); len(failures) > 0 {
		t.Errorf("failures under reloads: %v; want none", failures)
	}

	// goinetd is gone: a handler it left would now be this process's child
	// (TestMain made it a subreaper).
	orphans, err := childrenOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range orphans {
		t.Errorf("process %d (state %s) outlived goinetd", pid, procState(pid))
		unix.Kill(pid, unix.SIGKILL)
		var status unix.WaitStatus
		unix.Wait4(pid, &status, 0, nil)
	}
	figure(t, "reload-and-stop", "%d reloads, then SIGTERM (drained in %v, exit %d), %d client loops: %d served, "+
		"%d reset in the backlog at close, %d refused after, %d hung or dropped (worst %v); spawned %d = ended %d; orphans %d",
		reloads, drained.Round(time.Millisecond), code, clients, served.Load(), reset.Load(), refused.Load(),
		eof.Load()+other.Load(), took.percentile(100).Round(time.Millisecond), len(spawned), len(ended), len(orphans))
}

func TestStressLastaccess(t *testing.T) {
	const sources = 200
	// Updates queue on the records file's lock, which is not fair: with
	// hundreds waiting, one may wait many times the mean.
	const lockQueue = time.Minute
	updates := scaled(t, 2000)
	port := freePort(t, "127.0.0.1")
	dir := t.TempDir()
	db := filepath.Join(dir, "records")
	d := startDaemon(t, jsonLog+logEveryConnection+programService("lastaccess", port, filepath.Join(bin, "lastaccess"), []string{"-db", db}))

	// 127.0.0.2-101 and 127.0.1.2-101: all of 127/8 is loopback.
	addrs := make([]string, sources)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.%d.%d", i/100, i%100+2)
	}

	// The killer SIGKILLs a random handler every 0-30 ms (seeded). It holds a pidfd
	// on its pick and checks the pick is still goinetd's running child
	// before it signals, so a recycled pid is never hit.
	var kills atomic.Int64
	rng := rand.New(rand.NewPCG(20261129, 7))
	stopKiller := runLoops(t, 1, func(int) {
		time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond)))) // a random moment; it waits for nothing
		pids := d.children()
		if len(pids) == 0 {
			return
		}
		pid := pids[rng.IntN(len(pids))]
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		if !slices.Contains(d.children(), pid) || procState(pid) == "Z" {
			return
		}
		if unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil {
			kills.Add(1)
		}
	})

	var mu sync.Mutex
	told := map[string]string{} // ip -> latest time a complete greeting noted
	var greeted, cut int
	var took durations
	var unexpected []string
	var wg sync.WaitGroup
	start := time.Now()
	for w, from := range addrs {
		wg.Go(func() {
			dialer := stressDialer(from)
			for i := w; i < updates; i += sources {
				a := try(dialer, addr(port), "", lockQueue)
				noted, ok := parseGreeting(a.reply, from)
				mu.Lock()
				switch {
				case ok:
					greeted++
					told[from] = max(told[from], noted)
					took.add(a.took)
				case a.closed():
					cut++ // the handler was killed before it greeted
				default:
					unexpected = append(unexpected, fmt.Sprintf("%s: got %q, %v", from, a.reply, a.err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopKiller()
	waitIdle(t, d)
	for _, u := range unexpected {
		t.Errorf("lastaccess client %s", u)
	}

	// The records are a folder of one file per address (a fresh path). Every
	// file holds one complete line, IP|TIME, for the address it is named
	// after, and every IP that was greeted is there, with a time no earlier
	// than the one it was told.
	stored := map[string]string{}
	for _, name := range dirNames(t, db) {
		if name == ".tmp" {
			continue
		}
		content, err := os.ReadFile(filepath.Join(db, name))
		if err != nil {
			t.Fatal(err)
		}
		line, complete := strings.CutSuffix(string(content), "\n")
		ip, when, _ := strings.Cut(line, "|")
		a, err := netip.ParseAddr(ip)
		if _, terr := time.Parse(time.RFC3339, when); !complete || strings.Contains(line, "\n") ||
			err != nil || terr != nil || a.String() != ip || ip != name {
			t.Errorf("records file %s: got %q; want one line %s|TIME", name, content, name)
			continue
		}
		stored[ip] = when
	}
	for ip, noted := range told {
		if when, ok := stored[ip]; !ok || when < noted { // one format, UTC: string order is time order
			t.Errorf("%s was told its connection was noted at %s; records hold %q", ip, noted, when)
		}
	}
	for ip := range stored {
		if !slices.Contains(addrs, ip) {
			t.Errorf("records hold %s, which never connected", ip)
		}
	}
	killed := len(d.logs.records(func(r record) bool { return r.msg() == "connection ended" && r.str("signal") == "SIGKILL" }))

	// Only temporary files of killed handlers may be left, in records/.tmp,
	// and the next update removes them.
	if names := dirNames(t, dir); !slices.Equal(names, []string{"records", "records.lock"}) {
		t.Errorf("folder: %v; want only records and records.lock", names)
	}
	tmp := filepath.Join(db, ".tmp")
	leftovers := dirNames(t, tmp)
	for _, name := range leftovers {
		if !strings.Contains(name, ".tmp-") {
			t.Errorf("unexpected file %s in %s", name, tmp)
		}
	}
	if _, ok := parseGreeting(try(stressDialer("127.0.0.1"), addr(port), "", lockQueue).reply, "127.0.0.1"); !ok {
		t.Errorf("an update after the storm got no greeting")
	}
	if names := dirNames(t, tmp); len(names) != 0 {
		t.Errorf("%s after one more update: %v; want it empty", tmp, names)
	}
	figure(t, "lastaccess", "%d updates from %d addresses, %d at a time, in %v (%.0f/s): %d greeted (p50 %v, p99 %v), "+
		"%d cut by %d SIGKILLs (%d handlers ended by SIGKILL); %d records, all well-formed, none lost or torn; "+
		"%d temp files of killed handlers, removed by the next update",
		updates, sources, min(sources, updates), elapsed.Round(100*time.Millisecond), float64(updates)/elapsed.Seconds(),
		greeted, took.percentile(50).Round(time.Millisecond), took.percentile(99).Round(time.Millisecond),
		cut, kills.Load(), killed, len(stored), len(leftovers))
}

// parseGreeting checks a lastaccess greeting to ip and returns the time it
// says the connection was noted at.
func parseGreeting(s, ip string) (noted string, ok bool) {
	lines := strings.Split(s, "\n")
	if len(lines) != 4 || lines[0] != "Welcome, "+ip+"." || lines[3] != "" ||
		lines[1] != "I've never seen you before." && !strings.HasPrefix(lines[1], "I last saw you at ") {
		return "", false
	}
	noted, ok = strings.CutPrefix(lines[2], "I have noted your connection at ")
	noted, dot := strings.CutSuffix(noted, ".")
	return noted, ok && dot
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
