package main

import (
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
