package spawner

import (
	"bufio"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/metrics"
)

// TestServiceIsDownDuringABackoff checks that goinetd_service_up is 0
// while a loop pauses after a resource error, and 1 again after.
func TestServiceIsDownDuringABackoff(t *testing.T) {
	m := metrics.New()
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: m}
	l := &listener{done: make(chan struct{})}
	l.current.Store(&service{Service: &config.Service{Name: "svc"}})
	m.ServiceUp("svc", true)
	up := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		sc := bufio.NewScanner(rec.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `goinetd_service_up{service="svc"} `); ok {
				return v
			}
		}
		return "absent"
	}

	wait := backoff{d: maxBackoff} // the next pause is 1 s: long enough to look
	returned := make(chan bool)
	go func() { returned <- s.loopFailed(l, &wait, "accept", syscall.EMFILE) }()
	deadline := time.Now().Add(5 * time.Second)
	for up() != "0" {
		if time.Now().After(deadline) {
			t.Fatalf("during the pause: got goinetd_service_up %s; want 0", up())
		}
		time.Sleep(time.Millisecond) // polling the gauge, with a deadline
	}
	if !<-returned {
		t.Fatal("loopFailed returned false; want true: the listener is open")
	}
	if got := up(); got != "1" {
		t.Errorf("after the pause: got goinetd_service_up %s; want 1", got)
	}
}
