package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goinetd/goinetd/metrics"
	"golang.org/x/sys/unix"
)

// scrape returns the value of the metric series (name and labels as the
// exposition format writes them), or -1 if it is absent.
func scrape(t *testing.T, url, series string) float64 {
	t.Helper()
	client := http.Client{Timeout: ioTimeout}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d, %v", url, resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: value %q", series, v)
			}
			return f
		}
	}
	return -1
}

// waitMetric waits until series has the value want.
func waitMetric(t *testing.T, url, series string, want float64) {
	t.Helper()
	var got float64
	waitFor(t, fmt.Sprintf("%s to be %v", series, want), func() bool {
		got = scrape(t, url, series)
		return got == want
	})
}

func TestMetrics(t *testing.T) {
	mport, echo, guarded, broken, builtin := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"),
		freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	handler := filepath.Join(t.TempDir(), "handler")
	copyFile(t, filepath.Join(bin, "echo"), handler)
	config := fmt.Sprintf("[server]\nlog_format = \"json\"\nmetrics = \"127.0.0.1:%d\"\n", mport) +
		echoService("echo", "127.0.0.1", echo) +
		echoService("guarded", "127.0.0.1", guarded, `no_access = ["127.0.0.2"]`) +
		fmt.Sprintf("[services.broken]\naddress = \"127.0.0.1\"\nport = %d\nprogram = %q\n", broken, handler) +
		fmt.Sprintf("[services.daytime]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"daytime\"\n", builtin)
	d := startDaemon(t, config)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	os.Remove(handler)

	// Before any connection, every series an alert may need exists at 0.
	for _, series := range []string{
		`goinetd_connections_accepted_total{service="echo"}`,
		`goinetd_connections_refused_total{reason="address",service="guarded"}`,
		`goinetd_connections_refused_total{reason="per_source",service="echo"}`,
		`goinetd_connections_refused_total{reason="forward",service="echo"}`,
		`goinetd_spawn_failures_total{service="broken",stage="exec"}`,
		`goinetd_spawn_failures_total{service="echo",stage="fork"}`,
		`goinetd_children_running{service="echo"}`,
		`goinetd_child_exits_total{outcome="failure",service="echo"}`,
		`goinetd_connections_accepted_total{service="daytime"}`,
	} {
		if got := scrape(t, url, series); got != 0 {
			t.Errorf("at start: got %s = %v; want 0", series, got)
		}
	}

	exchange(t, addr(echo), "a")
	held := dial(t, "", addr(echo))
	io.WriteString(held, "b")
	io.ReadFull(held, make([]byte, 1))
	expectClosed(t, dial(t, "127.0.0.2", addr(guarded)))
	expectClosed(t, dial(t, "", addr(broken)))
	exchange(t, addr(builtin), "")

	waitMetric(t, url, `goinetd_build_info{goversion="`+runtime.Version()+`",version="dev"}`, 1)
	waitMetric(t, url, `goinetd_service_up{service="echo"}`, 1)
	waitMetric(t, url, `goinetd_connections_accepted_total{service="echo"}`, 2)
	waitMetric(t, url, `goinetd_children_running{service="echo"}`, 1)
	waitMetric(t, url, `goinetd_child_exits_total{outcome="success",service="echo"}`, 1)
	waitMetric(t, url, `goinetd_connections_refused_total{reason="address",service="guarded"}`, 1)
	waitMetric(t, url, `goinetd_spawn_failures_total{service="broken",stage="exec"}`, 1)
	waitMetric(t, url, `goinetd_connections_accepted_total{service="daytime"}`, 1)
	waitMetric(t, url, `goinetd_handler_duration_seconds_count{service="daytime"}`, 1)
	held.Close()
	waitMetric(t, url, `goinetd_children_running{service="echo"}`, 0)
	waitMetric(t, url, `goinetd_handler_duration_seconds_count{service="echo"}`, 2)
	if v := scrape(t, url, `goinetd_config_last_reload_successful`); v != 1 {
		t.Errorf("goinetd_config_last_reload_successful after startup: got %v; want 1", v)
	}
	started := scrape(t, url, `goinetd_config_last_reload_success_timestamp_seconds`)
	if age := time.Since(time.Unix(int64(started), 0)); age < 0 || age > time.Minute {
		t.Errorf("last successful load was %v ago; want it at startup", age)
	}

	copyFile(t, filepath.Join(bin, "echo"), handler) // or the reload would fail
	d.reload(1)
	waitMetric(t, url, `goinetd_config_reloads_total{result="success"}`, 1)
	d.writeConfig(config + "bogus = 1\n")
	d.reload(2)
	waitMetric(t, url, `goinetd_config_reloads_total{result="failure"}`, 1)
	waitMetric(t, url, `goinetd_config_last_reload_successful`, 0)

	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status: %d", code)
	}
}

// metricsRequest is a scrape that keeps its connection alive.
const metricsRequest = "GET /metrics HTTP/1.1\r\nHost: goinetd\r\n\r\n"

// TestIdleMetricsConnectionsCannotStarveServices holds many kept-alive
// connections to the metrics endpoint of a goinetd short of descriptors:
// the endpoint takes only a few of them, the rest wait in its backlog, and
// the echo service still answers.
func TestIdleMetricsConnectionsCannotStarveServices(t *testing.T) {
	mport, echo := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf("metrics = \"127.0.0.1:%d\"\n", mport)+echoService("echo", "127.0.0.1", echo))
	if got := exchange(t, addr(echo), "warm"); got != "warm" {
		t.Fatalf("echo: got %q; want %q", got, "warm")
	}
	// Room for 100 more descriptors: fewer than the clients below.
	const room, clients = 100, 200
	var old unix.Rlimit
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	low := unix.Rlimit{Cur: uint64(lowestFreeFD(t, d.pid()) + room), Max: old.Max}
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Fatal(err)
	}
	defer unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &old, nil)

	// Every client scrapes once and keeps its connection; those served
	// get their answer, and then idle.
	for range clients {
		c := dial(t, "", fmt.Sprintf("127.0.0.1:%d", mport))
		if _, err := io.WriteString(c, metricsRequest); err != nil {
			t.Fatalf("write to metrics: %v", err)
		}
	}
	waitFor(t, fmt.Sprintf("the metrics endpoint to hold %d connections", metrics.MaxConnections), func() bool {
		return countSockets(t, d.pid(), mport) >= metrics.MaxConnections
	})
	c := dial(t, "", addr(echo))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "still there")
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if string(b) != "still there" {
		t.Fatalf("echo with %d idle metrics connections open: got %q, %v; want %q", clients, b, err, "still there")
	}
	if n := countSockets(t, d.pid(), mport); n > metrics.MaxConnections {
		t.Errorf("goinetd holds %d metrics connections; want at most %d", n, metrics.MaxConnections)
	}
}

// countSockets counts pid's TCP sockets connected on local port port, from
// /proc/PID/net/tcp and its descriptors.
func countSockets(t *testing.T, pid, port int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	local := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// Established (01) or closing on the server's side, not listening (0A).
		if len(f) > 9 && strings.HasSuffix(f[1], local) && f[3] != "0A" {
			inodes[f[9]] = true
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
			n++
		}
	}
	return n
}

// TestMetricsClosesIdleConnections: a kept-alive connection that sends no
// second request is closed by goinetd after metrics.IdleTimeout.
func TestMetricsClosesIdleConnections(t *testing.T) {
	mport, echo := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+fmt.Sprintf("metrics = \"127.0.0.1:%d\"\n", mport)+echoService("echo", "127.0.0.1", echo))
	c := dial(t, "", fmt.Sprintf("127.0.0.1:%d", mport))
	if _, err := io.WriteString(c, metricsRequest); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("scrape: got status %d, close %v; want 200 and a kept-alive connection", resp.StatusCode, resp.Close)
	}
	idle := time.Now()
	c.SetReadDeadline(idle.Add(metrics.IdleTimeout + waitTimeout))
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle metrics connection after %v: got %d bytes, %v; want EOF after %v",
			time.Since(idle).Round(time.Millisecond), n, err, metrics.IdleTimeout)
	}
	t.Logf("idle metrics connection closed after %v", time.Since(idle).Round(time.Millisecond))
}

// TestMetricsServerErrorsAreJSON: what net/http logs itself (here, the
// accept errors of a goinetd out of descriptors) is a record of goinetd's
// log in its format, not a plain line.
func TestMetricsServerErrorsAreJSON(t *testing.T) {
	mport, echo := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf("metrics = \"127.0.0.1:%d\"\n", mport)+echoService("echo", "127.0.0.1", echo))
	var old unix.Rlimit
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	low := unix.Rlimit{Cur: uint64(lowestFreeFD(t, d.pid())), Max: old.Max}
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Fatal(err)
	}
	defer unix.Prlimit(d.pid(), unix.RLIMIT_NOFILE, &old, nil)
	dial(t, "", fmt.Sprintf("127.0.0.1:%d", mport)) // accept fails with EMFILE

	r := d.waitLog(func(r record) bool { return strings.HasPrefix(r.msg(), "http: Accept error") })
	if r.str("level") != "WARN" || r.str("metrics") != fmt.Sprintf("127.0.0.1:%d", mport) {
		t.Errorf("net/http's record %v: got level %q, metrics %q; want WARN and the endpoint's address",
			r, r.str("level"), r.str("metrics"))
	}
	for _, line := range strings.Split(d.logs.String(), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line %q: got plain text; want a JSON record", line)
		}
	}
}
