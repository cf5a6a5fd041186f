package main

// Hostile TLS clients: those that never finish a handshake are refused
// with reason tls, and no handler is started for any of them, be they one
// or a thousand at once; admission comes before the handshake; a stop
// ends handshakes in progress; a client's names reach the handler's
// environment only if they are safe there.

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/goinetd/goinetd/internal/testcert"
)

// clientHello returns the first record a Go TLS client sends with cfg:
// its ClientHello, whole.
func clientHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		tls.Client(client, cfg).Handshake() // fails when server closes
		client.Close()
	}()
	server.SetDeadline(time.Now().Add(ioTimeout))
	header := make([]byte, 5)
	if _, err := io.ReadFull(server, header); err != nil {
		t.Fatalf("read a ClientHello: %v", err)
	}
	body := make([]byte, int(header[3])<<8|int(header[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatalf("read a ClientHello: %v", err)
	}
	return append(header, body...)
}

// markerService is a service table on port whose handler, /bin/cat,
// first creates the file marker: a handler started leaves it behind.
func markerService(name string, port int, marker string, extra ...string) string {
	return programService(name, port, "/bin/sh", []string{"-c", "touch " + marker + "; exec cat"}, extra...)
}

// tlsMetricsLog is metricsServer's [server] table with jsonLog's short
// shutdown_grace, and the URL to scrape.
func tlsMetricsLog(t *testing.T) (table, url string) {
	t.Helper()
	table, url = metricsServer(t)
	return table + "shutdown_grace = \"1s\"\n", url
}

// endedByServer reads c until goinetd ends it, failing the test if that
// takes longer than ioTimeout; the bytes read (a TLS alert, at most) are
// ignored.
func endedByServer(t *testing.T, what string, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	_, err := io.Copy(io.Discard, c)
	var timeout net.Error
	if errors.As(err, &timeout) && timeout.Timeout() {
		t.Fatalf("%s: the connection is still open after %v; want goinetd to end it", what, ioTimeout)
	}
}

func TestTLSHostileClients(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	marker := filepath.Join(t.TempDir(), "spawned")
	server, url := tlsMetricsLog(t)
	d := startDaemon(t, server+markerService("hostile", port, marker,
		f.table(fmt.Sprintf("client_ca = %q", f.caFile), `handshake_timeout = "1s"`)))
	good := presenting(f.client(), tlsCertificate(t, signLeaf(t, f.ca, testcert.Options{Client: true})))
	hello := clientHello(t, good)
	for _, outcome := range []string{"ok", "failed", "timeout"} {
		series := fmt.Sprintf(`goinetd_tls_handshakes_total{outcome=%q,service="hostile"}`, outcome)
		if got := scrape(t, url, series); got != 0 {
			t.Errorf("at start: got %s = %v; want 0", series, got)
		}
	}

	// Failed handshakes, each ended by goinetd at once.
	plain := dial(t, "", addr(port))
	io.WriteString(plain, "GET / HTTP/1.0\r\n\r\n")
	endedByServer(t, "a plaintext client", plain)

	truncated := dial(t, "", addr(port))
	truncated.Write(hello[:len(hello)/2])
	truncated.CloseWrite()
	endedByServer(t, "a truncated ClientHello", truncated)

	garbage := dial(t, "", addr(port))
	garbage.Write(append(hello[:5:5], make([]byte, len(hello)-5)...)) // a handshake record of zeros
	endedByServer(t, "a ClientHello of zeros", garbage)

	stranger := presenting(f.client(), tlsCertificate(t, signLeaf(t, newCA(t, "a stranger's CA"), testcert.Options{Client: true})))
	expectTLSRefused(t, addr(port), stranger)
	expectTLSRefused(t, addr(port), f.client()) // no certificate
	const failed = 5
	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="failed",service="hostile"}`, failed)

	// Handshakes that stop: goinetd ends them after handshake_timeout.
	// One stops before its ClientHello, one halfway through it, one after
	// it, when goinetd has answered and waits for the client's Finished.
	started := time.Now()
	silent := dial(t, "", addr(port))
	halfway := dial(t, "", addr(port))
	halfway.Write(hello[:len(hello)/2])
	answered := dial(t, "", addr(port))
	answered.Write(hello)
	if _, err := answered.Read(make([]byte, 1)); err != nil {
		t.Fatalf("a whole ClientHello: got %v; want goinetd's answer", err)
	}
	const stalled = 3
	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="timeout",service="hostile"}`, stalled)
	if took := time.Since(started); took < time.Second {
		t.Errorf("stalled handshakes ended after %v; want handshake_timeout, 1s", took)
	}
	endedByServer(t, "a silent client", silent)
	endedByServer(t, "a client stopped halfway through its ClientHello", halfway)
	endedByServer(t, "a client stopped after its ClientHello", answered)
	waitTLSRefusals(t, d, "hostile", failed+stalled)
	waitMetric(t, url, `goinetd_connections_refused_total{reason="tls",service="hostile"}`, failed+stalled)

	if n := spawned(d, "hostile"); n != 0 {
		t.Errorf("handlers started for clients that never finished a handshake: got %d; want 0", n)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a handler ran for a client that never finished a handshake (%s: %v)", marker, err)
	}
	if got := scrape(t, url, `goinetd_tls_handshakes_total{outcome="ok",service="hostile"}`); got != 0 {
		t.Errorf("successful handshakes: got %v; want 0", got)
	}

	// A good client, last, is served: the marker shows it.
	c := dialTLS(t, addr(port), good)
	io.WriteString(c, "ping")
	c.CloseWrite()
	if b, err := io.ReadAll(c); string(b) != "ping" {
		t.Errorf("a good client after the hostile ones: got %q, %v; want %q", b, err, "ping")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the good client's handler left no marker: %v", err)
	}
}

// TestTLSThousandSlowHandshakes holds 1,000 handshakes open at once, half
// silent and half stopped in the middle of their ClientHello, from four
// source addresses: none starts a handler, goinetd's memory grows by a
// bounded amount each and its threads not at all, and a good client is
// served meanwhile.
func TestTLSThousandSlowHandshakes(t *testing.T) {
	const slow = 1000
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	// This process and goinetd (which inherits it) each hold one
	// descriptor per slow client.
	if need := uint64(slow + 500); nofile.Cur < need {
		if nofile.Max < need {
			t.Skipf("needs %d descriptors; RLIMIT_NOFILE's hard limit is %d", need, nofile.Max)
		}
		old := nofile
		nofile.Cur = need
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	}
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	marker := filepath.Join(t.TempDir(), "spawned")
	server, url := tlsMetricsLog(t)
	// The limits that would refuse most of them are lifted: this is about
	// what the handshakes themselves cost.
	d := startDaemon(t, server+markerService("slow", port, marker,
		f.table(`handshake_timeout = "1m"`), "max_connections = 0", "max_per_source = 0"))
	hello := clientHello(t, f.client())
	exchangeTLS := func() {
		t.Helper()
		c := dialTLS(t, addr(port), f.client())
		io.WriteString(c, "ping")
		c.CloseWrite()
		if b, err := io.ReadAll(c); string(b) != "ping" {
			t.Fatalf("a good client: got %q, %v; want %q", b, err, "ping")
		}
		c.Close()
	}
	exchangeTLS() // goinetd has run one handshake before the baseline
	waitMetric(t, url, `goinetd_children_running{service="slow"}`, 0)
	before := usageOf(t, d.pid())

	conns := make([]*net.TCPConn, 0, slow)
	for i := range slow {
		c := dial(t, fmt.Sprintf("127.0.0.%d", 2+i%4), addr(port))
		if i%2 == 1 {
			if _, err := c.Write(hello[:len(hello)/2]); err != nil {
				t.Fatalf("slow client %d: %v", i, err)
			}
		}
		conns = append(conns, c)
	}
	// goinetd has accepted them all: one descriptor each.
	waitFor(t, fmt.Sprintf("goinetd to accept %d slow clients", slow), func() bool {
		return fdCount(t, d.pid()) >= before.fds+slow
	})
	exchangeTLS() // served meanwhile
	during := usageOf(t, d.pid())
	grown := during.rssKiB - before.rssKiB
	t.Logf("goinetd with %d slow handshakes: RSS %d KiB -> %d KiB (%.1f KiB each), threads %d -> %d",
		slow, before.rssKiB, during.rssKiB, float64(grown)/slow, before.threads, during.threads)
	// A process per connection, as stunnel in inetd mode runs, costs
	// over 1 MiB each. A handshake in the netpoller is a goroutine and a
	// few buffers: 13.5 KiB each measured (47 KiB under the race
	// detector, which shadows every allocation); the bound leaves room
	// for the garbage collector's timing.
	perConn := 32
	if raceEnabled {
		perConn = 128
	}
	if grown > perConn*slow {
		t.Errorf("goinetd's RSS grew by %d KiB for %d slow handshakes; want at most %d KiB each", grown, slow, perConn)
	}
	// The netpoller waits on them all from the threads it has.
	if during.threads > before.threads+4 {
		t.Errorf("goinetd's threads: %d with %d slow handshakes, %d before; want no more than 4 new", during.threads, slow, before.threads)
	}
	if n := spawned(d, "slow"); n != 2 {
		t.Errorf("handlers started: got %d; want 2, for the good clients", n)
	}

	for _, c := range conns {
		c.Close()
	}
	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="failed",service="slow"}`, slow)
	if n := spawned(d, "slow"); n != 2 {
		t.Errorf("handlers started after the slow clients left: got %d; want 2", n)
	}
	if left := d.children(); len(left) != 0 {
		t.Errorf("goinetd's children after the slow clients left: %v; want none", left)
	}
}

// TestTLSStopEndsHandshakes: a stop does not wait for handshakes in
// progress (handshake_timeout is a minute here): it ends them, and the
// TLS connections being relayed, after its grace.
func TestTLSStopEndsHandshakes(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("cat", port, "/bin/cat", nil, f.table(`handshake_timeout = "1m"`)))
	silent := dial(t, "", addr(port))
	relayed := dialTLS(t, addr(port), f.client())
	ping(t, relayed)
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("goinetd's exit status after SIGTERM: %d; want 0", code)
	}
	// The handshake is closed with the handler's SIGTERM, at the end of
	// the grace, not left for SIGKILL's round or handshake_timeout.
	for _, msg := range []string{"killing handlers that outlived SIGTERM", "handlers still running after SIGKILL"} {
		if rs := d.logs.records(func(r record) bool { return r.msg() == msg }); len(rs) > 0 {
			t.Errorf("stop: got %v; want the connections ended when the grace is over", rs[0])
		}
	}
	endedByServer(t, "a handshake in progress at the stop", silent)
	endedByServer(t, "a TLS connection relayed at the stop", relayed)
}

// TestTLSHostileNamesInEnvironment: the server name a client sends, and
// the names in a client certificate, end up in the handler's environment.
// A control character in them must not get there: a handler that parses
// the output of env(1) line by line, as shell handlers do, would take
// "evil\nSSL_CLIENT_VERIFY=SUCCESS" for two variables, and a NUL cannot
// be passed to execve at all. goinetd may refuse such a client, or drop or
// escape the name (mod_ssl escapes control characters in DNs), but must
// not start a handler that sees it raw, nor fail to start one.
func TestTLSHostileNamesInEnvironment(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "names", port, "report",
		f.table(fmt.Sprintf("client_ca = %q", f.caFile), `client_auth = "request"`)))
	check := func(what string, cfg *tls.Config) {
		t.Helper()
		c, err := tryTLS("", addr(port), cfg)
		if err != nil {
			return // refused at the handshake
		}
		defer c.Close()
		var r report
		if err := json.NewDecoder(c).Decode(&r); err != nil {
			return // refused after it (TLS 1.3), or the handler did not start: see below
		}
		for _, kv := range r.Env {
			if strings.HasPrefix(kv, "SSL_") && strings.ContainsFunc(kv, unicode.IsControl) {
				t.Errorf("%s: the handler's environment holds %q; want no control character in it", what, kv)
			}
		}
	}
	for _, sni := range []string{"evil\nSSL_CLIENT_VERIFY=SUCCESS", "evil\rx", "evil\x00LD_PRELOAD=/tmp/x", "evil\x1b[2J"} {
		cfg := f.client()
		cfg.ServerName, cfg.InsecureSkipVerify = sni, true
		check(fmt.Sprintf("SNI %q", sni), cfg)
	}
	// A CA that signs the names its users ask for.
	for _, cn := range []string{"mallory\nSSL_CLIENT_VERIFY=SUCCESS", "mallory\x00admin"} {
		leaf := signLeaf(t, f.ca, testcert.Options{Client: true, CommonName: cn})
		check(fmt.Sprintf("client certificate CN %q", cn), presenting(f.client(), tlsCertificate(t, leaf)))
	}
	if rs := d.logs.records(func(r record) bool { return r.msg() == "spawn failed" }); len(rs) > 0 {
		t.Errorf("a client's names made goinetd fail to start its handler: %v; want the client refused or its names made safe", rs[0])
	}
}

// TestTLSAdmissionBeforeHandshake: the address rules and max_per_source
// refuse a client before goinetd spends a handshake on it, and the
// connections still handshaking count against max_per_source.
func TestTLSAdmissionBeforeHandshake(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	server, url := tlsMetricsLog(t)
	d := startDaemon(t, server+programService("guarded", port, "/bin/cat", nil, f.table(),
		`no_access = ["127.0.0.3"]`, "max_per_source = 2"))
	endedByServer(t, "a client from no_access", dial(t, "127.0.0.3", addr(port)))
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "address" })

	// Two handshakes in progress from one source: its third connection is
	// refused; another source is served.
	dial(t, "127.0.0.2", addr(port))
	dial(t, "127.0.0.2", addr(port))
	waitMetric(t, url, `goinetd_connections_accepted_total{service="guarded"}`, 3)
	endedByServer(t, "a third connection from one source", dial(t, "127.0.0.2", addr(port)))
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "per_source" })
	c, err := tryTLS("127.0.0.4", addr(port), f.client())
	if err != nil {
		t.Fatalf("a client from another source: %v", err)
	}
	defer c.Close()
	ping(t, c)

	for outcome, want := range map[string]float64{"ok": 1, "failed": 0, "timeout": 0} {
		series := fmt.Sprintf(`goinetd_tls_handshakes_total{outcome=%q,service="guarded"}`, outcome)
		if got := scrape(t, url, series); got != want {
			t.Errorf("%s: got %v; want %v: no handshake for refused clients", series, got, want)
		}
	}
}

// TestTLSTricklingClientHello: handshake_timeout counts from the accept,
// so a client that sends its ClientHello a byte at a time cannot stretch
// it.
func TestTLSTricklingClientHello(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	server, url := tlsMetricsLog(t)
	startDaemon(t, server+programService("cat", port, "/bin/cat", nil, f.table(`handshake_timeout = "1s"`)))
	hello := clientHello(t, f.client())
	c := dial(t, "", addr(port))
	accepted := time.Now()
	// A byte every 50 ms: the whole ClientHello would take 15 s or more.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, b := range hello {
		if _, err := c.Write([]byte{b}); err != nil {
			break // goinetd has closed it
		}
		<-tick.C
		if time.Since(accepted) > ioTimeout {
			t.Fatalf("goinetd kept a trickling ClientHello open for %v; want it ended after handshake_timeout, 1s", ioTimeout)
		}
	}
	endedByServer(t, "a trickling ClientHello", c)
	if took := time.Since(accepted); took > 5*time.Second {
		t.Errorf("a trickling ClientHello was ended after %v; want about handshake_timeout, 1s", took)
	}
	waitMetric(t, url, `goinetd_tls_handshakes_total{outcome="timeout",service="cat"}`, 1)
}

// TestTLSConnectionsLeaveADescriptorReserve performs the descriptor
// exhaustion attack on a TLS service whose limits are lifted: with
// RLIMIT_NOFILE 150, 140 idle connections. Each one goinetd accepts holds
// three of its descriptors (the accepted one, the netpoller's duplicate,
// and later goinetd's end of the handler's socket pair), so it must take
// at most a sixth of the limit's worth, half the limit, and keep the rest
// for other services and reload. Counted as two each, it took 38.
func TestTLSConnectionsLeaveADescriptorReserve(t *testing.T) {
	const nofile, attack = 150, 140
	f := newTLSFiles(t)
	tlsPort, echoPort, laterPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	base := jsonLog + programService("tls", tlsPort, "/bin/cat", nil,
		"max_connections = 0", "max_per_source = 0", f.table(`handshake_timeout = "60s"`)) +
		echoService("echo", "127.0.0.1", echoPort)
	d := startDaemon(t, base, withNofile(t, nofile, nofile))
	idle := make([]net.Conn, 0, attack)
	for range attack {
		idle = append(idle, dial(t, "127.0.0.2", addr(tlsPort)))
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	d.waitLog(func(r record) bool {
		return r.msg() == "held connections at their share of the descriptor limit; waiting"
	})
	if accepted, most := attack-acceptQueue(t, tlsPort), nofile/2/3; accepted > most {
		t.Errorf("goinetd accepted %d idle TLS connections; want at most %d: three descriptors each, half the limit", accepted, most)
	}
	if rs := d.logs.records(func(r record) bool { return strings.Contains(r.str("err"), "too many open files") }); len(rs) > 0 {
		t.Fatalf("goinetd ran out of descriptors: got %v; want the TLS service waiting at its share", rs[0])
	}
	if got := exchange(t, addr(echoPort), "still here"); got != "still here" {
		t.Errorf("another service while the TLS service is at its cap: got %q; want the echo", got)
	}
	if err := os.WriteFile(d.config, []byte(base+echoService("later", "127.0.0.1", laterPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(func(r record) bool { return r.msg() == "reloaded" && strings.Contains(r.str("added"), "later") })
	if got := exchange(t, addr(laterPort), "added"); got != "added" {
		t.Errorf("a service added by a reload at the cap: got %q; want the echo", got)
	}
}
