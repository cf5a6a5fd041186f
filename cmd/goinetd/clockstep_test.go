package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A step of the wall clock (NTP, date -s, a virtual machine's clock
// correction) ends neither a denial nor a source's rate pause early: both
// are timed on the monotonic clock. When they were kept in wall-clock
// time, this machine's own clock corrections let a denied source back in
// after 0.67 s of a 1 s deny_time, and a step back would have stretched
// them by as much.
//
// The test steps the machine's clock forward by 20 s, then back, so it
// runs only as root and with GOINETD_CLOCK_STEP=1, which make test sets
// in a step of its own, when no other test is running.
func TestWallClockStepKeepsDenialsAndPauses(t *testing.T) {
	if os.Getenv("GOINETD_CLOCK_STEP") != "1" {
		t.Skip("steps the machine's wall clock: set GOINETD_CLOCK_STEP=1 to run it (make test does, alone)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to step the wall clock")
	}
	mport, trap, echo, limited := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	startDaemon(t, sensorConfig(mport, trap, echo, "10s", true)+
		echoService("limited", "127.0.0.1", limited, `rate_limit_per_source = "1/m"`, `rate_pause = "10s"`, `banner_refused = "paused\r\n"`))

	converse(t, "127.0.0.8", addr(trap), "")
	if got := converse(t, "127.0.0.8", addr(echo), ""); got != "denied\r\n" {
		t.Fatalf("source that touched the sensor: got %q; want banner_refused %q", got, "denied\r\n")
	}
	if got := converse(t, "127.0.0.9", addr(limited), "hi"); got != "hi" {
		t.Fatalf("first connection to the limited service: got %q; want the echo", got)
	}
	if got := converse(t, "127.0.0.9", addr(limited), ""); got != "paused\r\n" {
		t.Fatalf("past the rate: got %q; want banner_refused %q", got, "paused\r\n")
	}

	stepWallClock(t, 20*time.Second)
	defer stepWallClock(t, -20*time.Second)
	if got := converse(t, "127.0.0.8", addr(echo), ""); got != "denied\r\n" {
		t.Errorf("denied source, wall clock 20 s on: got %q; want still denied for deny_time (10 s)", got)
	}
	if got := converse(t, "127.0.0.9", addr(limited), ""); got != "paused\r\n" {
		t.Errorf("paused source, wall clock 20 s on: got %q; want still paused for rate_pause (10 s): banner_refused %q", got, "paused\r\n")
	}
}

// stepWallClock moves CLOCK_REALTIME by d.
func stepWallClock(t *testing.T, d time.Duration) {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Fatal(err)
	}
	ts = unix.NsecToTimespec(ts.Nano() + int64(d))
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Fatal(fmt.Errorf("step the wall clock by %v: %w", d, err))
	}
}
