package main

// max_load: connections refused while the load average is above it.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
)

// A threshold far below the host's load refuses; one far above serves.
func TestMaxLoadRefusesAboveTheLoadAverage(t *testing.T) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Skipf("needs /proc/loadavg: %v", err)
	}
	field, _, _ := bytes.Cut(b, []byte(" "))
	if load, err := strconv.ParseFloat(string(field), 64); err != nil || load == 0 {
		t.Skipf("the 1-minute load average reads %q: a threshold below it cannot be tested", field)
	}
	mport, shed, calm := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, fmt.Sprintf("[server]\nlog_format = \"json\"\nmetrics = \"127.0.0.1:%d\"\n", mport)+
		echoService("shed", "127.0.0.1", shed, "max_load = 0.0001", `banner_refused = "busy\r\n"`)+
		echoService("calm", "127.0.0.1", calm, "max_load = 1000000"))
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	series := `goinetd_connections_refused_total{reason="load",service="shed"}`
	if got := scrape(t, url, series); got != 0 {
		t.Errorf("at start: got %s = %v; want 0", series, got)
	}

	const clients = 3
	for range clients {
		c := dial(t, "", addr(shed))
		if b, err := io.ReadAll(c); err != nil || string(b) != "busy\r\n" {
			t.Errorf("client of a service over max_load: got %q, %v; want only banner_refused %q", b, err, "busy\r\n")
		}
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "load" })
	if r.str("service") != "shed" {
		t.Errorf("refusal record %v: want service shed", r)
	}
	waitMetric(t, url, series, clients)
	if got := exchange(t, addr(calm), "hi"); got != "hi" {
		t.Errorf("service under max_load: got %q; want the echo", got)
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 1 {
		t.Errorf("%d children started; want 1, none for the refused clients", n)
	}
}
