package main

import (
	"context"
	"crypto/tls"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

// tlsEchoServer serves TLS echo on a loopback port until the test ends,
// with a certificate made like the bench's, and returns its address and
// the CA that signed it.
func tlsEchoServer(t *testing.T) (string, tlsFiles) {
	t.Helper()
	files, err := makeTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := listenLocal(t)
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		tl.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.Copy(c, c)
				c.(*tls.Conn).CloseWrite()
			})
		}
	})
	return ln.Addr().String(), files
}

func TestTLSClientResumesOnlyWhenAsked(t *testing.T) {
	addr, files := tlsEchoServer(t)
	for _, tc := range []struct {
		handshake string
		want      []bool // DidResume, connection by connection
	}{
		{handshakeFull, []bool{false, false, false}},
		{handshakeResumed, []bool{false, true, true}},
	} {
		cl := newTLSClient(files.roots, tc.handshake)
		for i, want := range tc.want {
			// A new worker 0 each time, as each closedLoop makes: the
			// session must carry over from one to the next.
			kind, resumed := cl.worker(0)(context.Background(), addr, time.Now().Add(10*time.Second))
			if kind != "" {
				t.Fatalf("%s connection %d: got failure %q; want none", tc.handshake, i, kind)
			}
			if resumed != want {
				t.Errorf("%s connection %d: got resumed %v; want %v", tc.handshake, i, resumed, want)
			}
		}
	}
}

func TestTLSClientRefusesAnUntrustedServer(t *testing.T) {
	addr, _ := tlsEchoServer(t)
	other, err := testcert.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	kind, _ := newTLSClient(other.Pool(), handshakeFull).worker(0)(context.Background(), addr, time.Now().Add(10*time.Second))
	if !strings.HasPrefix(kind, "handshake: ") {
		t.Errorf("got %q; want a handshake failure", kind)
	}
}

func TestBulkTransfer(t *testing.T) {
	addr, files := tlsEchoServer(t)
	elapsed, negotiated, kind := bulkTransfer(context.Background(), files.roots, addr, 3*bulkChunk+5, time.Now().Add(30*time.Second))
	if kind != "" {
		t.Fatalf("got failure %q; want none", kind)
	}
	if elapsed <= 0 {
		t.Errorf("elapsed: got %v; want above 0", elapsed)
	}
	if !strings.HasPrefix(negotiated, "TLS 1.3, ") || !strings.HasSuffix(negotiated, ", CurveP256") {
		t.Errorf("negotiated: got %q; want TLS 1.3 on P-256", negotiated)
	}
}

func TestBulkTransferSeesATruncatedEcho(t *testing.T) {
	files, err := makeTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := listenLocal(t)
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := tl.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Echo only the first 10 bytes, then read the rest and end.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 10)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(buf)
		}
		io.Copy(io.Discard, c)
		c.(*tls.Conn).CloseWrite()
	}()
	t.Cleanup(func() {
		tl.Close()
		<-done
	})
	_, _, kind := bulkTransfer(context.Background(), files.roots, ln.Addr().String(), 1000, time.Now().Add(10*time.Second))
	if want := "bulk: read 10 bytes back of 1000"; kind != want {
		t.Errorf("got %q; want %q", kind, want)
	}
}

func TestPerUnit(t *testing.T) {
	if got := perUnit(50, 100, 1000); got != 500 {
		t.Errorf("50 ticks at 100/s over 1000 connections: got %v µs; want 500", got)
	}
	for _, tc := range []struct {
		ticks uint64
		units float64
	}{{0, 1000}, {50, 0}} {
		if got := perUnit(tc.ticks, 100, tc.units); !math.IsNaN(got) {
			t.Errorf("%d ticks over %v: got %v; want NaN (no figure)", tc.ticks, tc.units, got)
		}
	}
}

// tlsSampleResults is one round of goinetd and two TLS peers, at one
// level, with both handshakes, and a bulk test.
func tlsSampleResults() *results {
	res := &results{Levels: []int{8}, Specs: []*spec{
		{name: "goinetd", group: groupTLS, role: roleSubject},
		{name: "stunnel", group: groupTLS, role: rolePeer},
		{name: "socat", group: groupTLS, role: rolePeer},
	}}
	// conn/s and CPU tree µs/conn: goinetd beats both with full
	// handshakes; socat serves more resumed ones.
	for _, f := range []struct {
		server, handshake  string
		connsPerSec, cpuUs float64
		conns, resumed     int
	}{
		{"goinetd", handshakeFull, 400, 2000, 400, 0},
		{"stunnel", handshakeFull, 200, 5000, 200, 0},
		{"socat", handshakeFull, 150, 7000, 150, 0},
		{"goinetd", handshakeResumed, 500, 1500, 500, 492},
		{"stunnel", handshakeResumed, 250, 4000, 250, 250},
		{"socat", handshakeResumed, 600, 6000, 600, 300},
	} {
		res.Runs = append(res.Runs, levelResult{Server: f.server, Round: 1, Level: 8, Handshake: f.handshake,
			ConnsPerSec: f.connsPerSec, CPUus: f.cpuUs / 2, CPUChildrenUs: f.cpuUs, Conns: f.conns, Resumed: f.resumed})
	}
	res.Bulks = []bulkResult{
		{Server: "goinetd", Round: 1, MBps: 90, CPUTreeUsPerMB: 5000, Negotiated: "TLS 1.3"},
		{Server: "stunnel", Round: 1, MBps: 100, CPUTreeUsPerMB: 6000, Negotiated: "TLS 1.3"},
		{Server: "socat", Round: 1, Error: "bulk: read: timeout"},
	}
	return res
}

func TestRenderTLSGlance(t *testing.T) {
	res := tlsSampleResults()
	if got := res.resumedPct("goinetd", handshakeResumed, 8); got != 98.4 {
		t.Errorf("goinetd resumed: got %v%%; want 98.4%%", got)
	}
	if got := res.resumedPct("goinetd", handshakeResumed, 32); !math.IsNaN(got) {
		t.Errorf("a level not run: got %v; want NaN", got)
	}
	var b strings.Builder
	res.renderTLSGlance(&b)
	out := b.String()
	for _, want := range []string{
		"| handshakes | conc | conn/s goinetd | ÷ stunnel | ÷ socat | CPU tree µs/conn goinetd | ÷ stunnel | ÷ socat | own CPU µs/conn goinetd / stunnel / socat | resumed % goinetd / stunnel / socat | goal met |",
		"| full | 8 | 400 | 2.00× | 2.67× | 2000 | 0.40× | 0.29× | 1000 / 2500 / 3500 | 0.0 / 0.0 / 0.0 | yes |",
		"| resumed | 8 | 500 | 2.00× | 0.83× | 1500 | 0.38× | 0.25× | 750 / 2000 / 3000 | 98.4 / 100.0 / 50.0 | no |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the TLS glance lacks\n%s\ngot:\n%s", want, out)
		}
	}
	b.Reset()
	res.renderBulk(&b)
	out = b.String()
	for _, want := range []string{
		"| goinetd | 90 | 5000 | 1 | TLS 1.3 |",
		"| stunnel | 100 | 6000 | 1 | TLS 1.3 |",
		"- goinetd ÷ stunnel: 0.90×",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the bulk table lacks\n%s\ngot:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| socat |") || strings.Contains(out, "÷ socat") {
		t.Errorf("socat's bulk test failed, so it has no figure; got:\n%s", out)
	}
}

// In a TLS table a server's own CPU time has no ratio (socat's own process
// makes no handshake); its tree's has.
func TestTLSTableOwnCPUHasNoRatio(t *testing.T) {
	var b strings.Builder
	tlsSampleResults().renderTable(&b, groupTLS, handshakeFull)
	if want := "| 1000 | 2000 (0.40×) |"; !strings.Contains(b.String(), want) {
		t.Errorf("goinetd's CPU cells: want %q; got:\n%s", want, b.String())
	}
}

// A plain run's report has neither TLS section.
func TestRenderPlainHasNoTLS(t *testing.T) {
	var b strings.Builder
	sampleResults().render(&b)
	for _, unwanted := range []string{"TLS peers", "bulk throughput", "handshakes"} {
		if strings.Contains(b.String(), unwanted) {
			t.Errorf("a plain report says %q", unwanted)
		}
	}
}
