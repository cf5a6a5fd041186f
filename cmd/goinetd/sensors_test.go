package main

// Sensors and the deny list: a source that touches a sensor, or trips
// rate_limit_per_source with deny_on_rate, is refused by every service
// for deny_time.

import (
	"fmt"
	"io"
	"testing"
	"time"
)

// converse sends data from the address from, half-closes, and returns
// what the service sends before it closes: the echo, or a banner_refused.
// A client that expects to be refused sends nothing: goinetd closes
// without reading, and unread data would make the kernel reset the
// connection, losing the banner.
func converse(t *testing.T, from, address, data string) string {
	t.Helper()
	c := dial(t, from, address)
	io.WriteString(c, data)
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s as %s: %v", address, from, err)
	}
	return string(b)
}

func sensorConfig(mport, trap, echo int, denyTime string, sensor bool) string {
	cfg := jsonLog + fmt.Sprintf("metrics = \"127.0.0.1:%d\"\ndeny_time = %q\n", mport, denyTime) +
		echoService("echo", "127.0.0.1", echo, `banner_refused = "denied\r\n"`)
	if sensor {
		cfg += fmt.Sprintf("\n[services.trap]\naddress = \"127.0.0.1\"\nport = %d\nsensor = true\nbanner_refused = \"bye\\r\\n\"\n", trap)
	}
	return cfg
}

// A source that touches the sensor is refused by another service, with
// its banner_refused, and stays so across a reload that removes the
// sensor; another source is served; the sensor starts nothing.
func TestSensorDeniesItsSourceEverywhere(t *testing.T) {
	mport, trap, echo := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, sensorConfig(mport, trap, echo, "10m", true))
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	denied := `goinetd_connections_refused_total{reason="denied",service="echo"}`
	if got := scrape(t, url, denied); got != 0 {
		t.Errorf("at start: got %s = %v; want 0", denied, got)
	}
	if got := converse(t, "127.0.0.2", addr(echo), "hi"); got != "hi" {
		t.Fatalf("before the sensor: got %q; want the echo %q", got, "hi")
	}

	if got := converse(t, "127.0.0.2", addr(trap), ""); got != "bye\r\n" {
		t.Errorf("sensor: got %q; want only its banner_refused %q", got, "bye\r\n")
	}
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "sensor" })
	waitMetric(t, url, "goinetd_denied_sources", 1)
	if got := converse(t, "127.0.0.2", addr(echo), ""); got != "denied\r\n" {
		t.Errorf("source that touched the sensor: got %q; want only banner_refused %q", got, "denied\r\n")
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "denied" })
	if r.str("service") != "echo" {
		t.Errorf("refusal record %v: got service %q; want echo", r, r.str("service"))
	}
	waitMetric(t, url, denied, 1)
	if got := converse(t, "127.0.0.3", addr(echo), "hi"); got != "hi" {
		t.Errorf("another source: got %q; want the echo %q", got, "hi")
	}

	// A reload that removes the sensor keeps the list.
	d.writeConfig(sensorConfig(mport, trap, echo, "10m", false))
	if r := d.reload(1); r.msg() != "reloaded" {
		t.Fatalf("reload: got %v; want reloaded", r)
	}
	if got := converse(t, "127.0.0.2", addr(echo), ""); got != "denied\r\n" {
		t.Errorf("after a reload: got %q; want banner_refused %q", got, "denied\r\n")
	}
	if got := scrape(t, url, "goinetd_denied_sources"); got != 1 {
		t.Errorf("after a reload: got goinetd_denied_sources = %v; want 1", got)
	}
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 2 {
		t.Errorf("%d children started; want 2 (the two echoes served), none for the sensor or the denied", n)
	}
}

// A source is denied for deny_time, then served again; deny_time = "0s"
// makes a sensor only log.
func TestDenyTimeExpires(t *testing.T) {
	mport, trap, echo := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, sensorConfig(mport, trap, echo, "1s", true))
	converse(t, "127.0.0.4", addr(trap), "")
	tripped := time.Now()
	if got := converse(t, "127.0.0.4", addr(echo), ""); got != "denied\r\n" {
		t.Fatalf("within deny_time: got %q; want banner_refused %q", got, "denied\r\n")
	}
	waitFor(t, "the denied source to be served again", func() bool {
		return converse(t, "127.0.0.4", addr(echo), "") == "" // the echo of nothing
	})
	if e := time.Since(tripped); e < time.Second {
		t.Errorf("served again after %v; want after deny_time (1s)", e)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	if got := scrape(t, url, "goinetd_denied_sources"); got != 0 {
		t.Errorf("after deny_time: got goinetd_denied_sources = %v; want 0", got)
	}

	d.writeConfig(sensorConfig(mport, trap, echo, "0s", true))
	if r := d.reload(1); r.msg() != "reloaded" {
		t.Fatalf("reload: got %v; want reloaded", r)
	}
	if got := converse(t, "127.0.0.5", addr(trap), ""); got != "bye\r\n" {
		t.Errorf("sensor with deny_time 0s: got %q; want its banner_refused", got)
	}
	if got := converse(t, "127.0.0.5", addr(echo), "hi"); got != "hi" {
		t.Errorf("with deny_time = \"0s\": got %q; want the echo (a sensor only logs)", got)
	}
}

// A source past rate_limit_per_source with deny_on_rate is refused by
// every service; another source is not.
func TestDenyOnRate(t *testing.T) {
	limited, other := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		echoService("limited", "127.0.0.1", limited, `rate_limit_per_source = "1/m"`, "deny_on_rate = true")+
		echoService("other", "127.0.0.1", other, `banner_refused = "denied\r\n"`))
	if got := converse(t, "127.0.0.6", addr(limited), "hi"); got != "hi" {
		t.Fatalf("first connection: got %q; want the echo", got)
	}
	if got := converse(t, "127.0.0.6", addr(limited), ""); got != "" {
		t.Errorf("past the rate: got %q; want the connection closed", got)
	}
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "rate_per_source" })
	if got := converse(t, "127.0.0.6", addr(other), ""); got != "denied\r\n" {
		t.Errorf("another service, source past the rate: got %q; want banner_refused %q", got, "denied\r\n")
	}
	if got := converse(t, "127.0.0.7", addr(other), "hi"); got != "hi" {
		t.Errorf("another source: got %q; want the echo", got)
	}
}
