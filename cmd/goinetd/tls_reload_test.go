package main

// Certificates replaced on disk and picked up at SIGHUP, with the config
// file unchanged, while clients keep handshaking.

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

// handshakeLog is what a loop of TLS clients saw: when each handshake
// began, the serial of the certificate it got, and the failures.
type handshakeLog struct {
	mu       sync.Mutex
	started  []time.Time
	serials  []*big.Int
	failures []string
}

func (h *handshakeLog) add(start time.Time, serial *big.Int, failure string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if failure != "" {
		h.failures = append(h.failures, failure)
		return
	}
	h.started, h.serials = append(h.started, start), append(h.serials, serial)
}

// since counts the handshakes that began after t, and among them those
// that got the certificate serial.
func (h *handshakeLog) since(t time.Time, serial *big.Int) (all, got int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.started {
		if s.After(t) {
			all++
			if serial != nil && h.serials[i].Cmp(serial) == 0 {
				got++
			}
		}
	}
	return all, got
}

// loopHandshakes runs clients goroutines that each connect, handshake
// with cfg (a full handshake: no session cache), exchange a line and
// close, over and over until the returned stop is called.
func loopHandshakes(t *testing.T, address string, cfg *tls.Config, clients int) (*handshakeLog, func()) {
	h := &handshakeLog{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				c, err := tryTLS("", address, cfg)
				if err != nil {
					h.add(start, nil, fmt.Sprintf("handshake begun at %v: %v", start.Format(time.StampMicro), err))
					continue
				}
				serial := c.ConnectionState().PeerCertificates[0].SerialNumber
				io.WriteString(c, "ping")
				c.CloseWrite()
				b, err := io.ReadAll(c)
				c.Close()
				if string(b) != "ping" {
					h.add(start, nil, fmt.Sprintf("exchange begun at %v: got %q, %v", start.Format(time.StampMicro), b, err))
					continue
				}
				h.add(start, serial, "")
			}
		})
	}
	var once sync.Once
	stop := func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return h, stop
}

// replaceFile writes text to a new file beside path and renames it over
// path, as an operator's deploy does.
func replaceFile(t *testing.T, path string, text []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, text, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestTLSCertificateRotationUnderLoad(t *testing.T) {
	const clients, rotations, enough = 4, 3, 20
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("rotate", port, "/bin/cat", nil, f.table()))
	old := f.leaf

	// A client connected before the rotations keeps its connection.
	held := dialTLS(t, addr(port), f.client())
	h, stop := loopHandshakes(t, addr(port), f.client(), clients)
	waitFor(t, fmt.Sprintf("%d handshakes with the first certificate", enough), func() bool {
		_, n := h.since(time.Time{}, old.Cert.SerialNumber)
		return n >= enough
	})
	reloads := 0
	// reload sends SIGHUP, waits for its record, then for enough
	// handshakes begun after it, which must all have got the certificate
	// serial.
	reload := func(what string, serial *big.Int) record {
		t.Helper()
		reloads++
		r := d.reload(reloads)
		after := time.Now()
		waitFor(t, fmt.Sprintf("%d handshakes after %s", enough, what), func() bool {
			n, _ := h.since(after, nil)
			return n >= enough
		})
		if all, got := h.since(after, serial); got != all {
			t.Errorf("handshakes begun after %s: %d of %d got the expected certificate; want all", what, got, all)
		}
		return r
	}

	renewed := old
	for i := range rotations {
		renewed = signLeaf(t, f.ca, testcert.Options{CommonName: fmt.Sprintf("renewed %d", i)})
		replaceFile(t, f.cert, renewed.CertPEM)
		replaceFile(t, f.key, renewed.KeyPEM)
		what := fmt.Sprintf("rotation %d", i)
		if r := reload(what, renewed.Cert.SerialNumber); r.msg() != "reloaded" {
			t.Errorf("%s, the config unchanged: got %v; want reloaded", what, r)
		}
	}

	// A certificate that does not load: the reload is refused like any
	// config problem, naming the file (inetd.toml(5)), and the last good
	// certificate stays.
	replaceFile(t, f.cert, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
	if r := reload("a broken certificate", renewed.Cert.SerialNumber); !strings.HasPrefix(r.msg(), "reload failed") {
		t.Errorf("reload with a broken certificate: got %v; want it refused, the certificates kept", r)
	}
	problems := d.logs.records(func(r record) bool {
		return r.msg() == "reload: config problem" && strings.Contains(r.str("problem"), f.cert)
	})
	if len(problems) != 1 {
		t.Errorf("config problems naming %s: got %v; want one", f.cert, problems)
	}
	// Fixed, it is picked up at the next reload.
	fixed := signLeaf(t, f.ca, testcert.Options{CommonName: "fixed"})
	replaceFile(t, f.cert, fixed.CertPEM)
	replaceFile(t, f.key, fixed.KeyPEM)
	if r := reload("the fix", fixed.Cert.SerialNumber); r.msg() != "reloaded" {
		t.Errorf("reload with the certificate fixed: got %v; want reloaded", r)
	}
	stop()
	if len(h.failures) > 0 {
		t.Errorf("%d handshakes or exchanges failed during the rotations; want 0. First: %s", len(h.failures), h.failures[0])
	}
	all, _ := h.since(time.Time{}, nil)
	t.Logf("%d handshakes by %d clients during %d reloads", all, clients, reloads)

	// The connection made before the rotations still works.
	held.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(held, "still here")
	held.CloseWrite()
	if b, err := io.ReadAll(held); string(b) != "still here" {
		t.Errorf("a connection made before the rotations: got %q, %v; want %q", b, err, "still here")
	}
}
