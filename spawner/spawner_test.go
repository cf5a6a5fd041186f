package spawner

// Unit tests of the pieces that need no process; spawning, reaping and
// fault handling are tested end to end in cmd/goinetd.

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

func TestTCPEnv(t *testing.T) {
	base := baseEnv([]string{"A=1", "Z=2"})
	peer := netip.MustParseAddrPort("[::ffff:192.0.2.7]:40000")
	local := netip.MustParseAddrPort("[2001:db8::1%eth0]:23")
	got := tcpEnv(slices.Clone(base), addrPort(&unix.SockaddrInet6{Port: 40000, Addr: peer.Addr().As16()}), local)
	want := []string{
		"A=1", "PATH=" + config.DefaultPath, "Z=2",
		"PROTO=TCP", "TCPREMOTEIP=192.0.2.7", "TCPREMOTEPORT=40000",
		"TCPLOCALIP=2001:db8::1", "TCPLOCALPORT=23",
		"REMOTE_ADDR=192.0.2.7", "REMOTE_PORT=40000",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestBaseEnvKeepsAConfiguredPath(t *testing.T) {
	got := baseEnv([]string{"B=2", "PATH=/opt/bin"})
	if want := []string{"B=2", "PATH=/opt/bin"}; !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestBackoffDoublesToOneSecondAndEndsEarly(t *testing.T) {
	var b backoff
	closed := make(chan struct{})
	close(closed)
	var got []time.Duration
	for range 10 {
		b.sleep(closed)
		got = append(got, b.d)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Errorf("backoff steps: got %v; want %v", got, want)
	}
	if b.sleep(closed) {
		t.Errorf("sleep with done closed returned true; want false at once")
	}
	b.reset()
	if b.d != 0 {
		t.Errorf("after reset: got %v; want 0", b.d)
	}
}

// recordHandler is a slog.Handler that sends each record to a channel.
type recordHandler chan slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error { h <- r; return nil }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h recordHandler) WithGroup(string) slog.Handler                 { return h }

func TestLimitedLogHoldsBackRepeatsAndCountsThem(t *testing.T) {
	records := make(recordHandler, 10)
	log := slog.New(records)
	var l limitedLog
	for i := range 5 {
		l.log(log, slog.LevelError, "spawn failed", "try", i)
	}
	first := <-records
	if first.Message != "spawn failed" || attr(first, "try") != "0" || attr(first, "repeated") != "" {
		t.Errorf("first record: got %q %v; want the first failure at once", first.Message, attrs(first))
	}
	select {
	case summary := <-records:
		if attr(summary, "try") != "4" || attr(summary, "repeated") != "4" {
			t.Errorf("summary record: got %v; want the latest failure with repeated=4", attrs(summary))
		}
	case <-time.After(5 * logInterval):
		t.Fatalf("no summary of the held-back records within %v", 5*logInterval)
	}
	if len(records) != 0 {
		t.Errorf("%d more records; want none", len(records))
	}
}

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
		}
		return true
	})
	return v
}

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	return m
}
