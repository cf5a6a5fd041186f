package main

// TLS terminated by goinetd (issue 20): the handler's environment, SNI,
// client certificates and session resumption, seen by Go's crypto/tls
// client. The other TLS clients are in tls_clients_test.go, hostile ones
// in tls_hostile_test.go, the relay in tls_relay_test.go and certificate
// reloads in tls_reload_test.go. This file also holds the helpers they
// share: certificates, the service's tls key and the client.

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
	"golang.org/x/sys/unix"
)

// testALPN is the protocol the TLS services offer and the clients ask for.
const testALPN = "x-goinetd-test"

// tlsFiles is a CA, and a server certificate it signed for localhost and
// 127.0.0.1, written into the test's temporary folder.
type tlsFiles struct {
	dir       string
	ca        *testcert.CA
	caFile    string
	leaf      *testcert.Leaf
	cert, key string
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir(), ca: newCA(t, "goinetd test CA")}
	var err error
	if f.caFile, err = f.ca.WriteFile(f.dir, "ca"); err != nil {
		t.Fatal(err)
	}
	f.leaf = signLeaf(t, f.ca, testcert.Options{})
	f.cert, f.key = writeLeaf(t, f.leaf, f.dir, "server")
	return f
}

func newCA(t *testing.T, name string) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func signLeaf(t *testing.T, ca *testcert.CA, o testcert.Options) *testcert.Leaf {
	t.Helper()
	leaf, err := ca.Sign(o)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// writeLeaf writes leaf's chain and key into dir as NAME.crt and NAME.key.
func writeLeaf(t *testing.T, leaf *testcert.Leaf, dir, name string) (cert, key string) {
	t.Helper()
	cert, key, err := leaf.WriteFiles(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// tlsCertificate is leaf as a client's tls.Certificate.
func tlsCertificate(t *testing.T, leaf *testcert.Leaf) tls.Certificate {
	t.Helper()
	c, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// table is a service's tls key for f's server certificate, with the extra
// keys of the inline table, such as `client_auth = "require"`.
func (f *tlsFiles) table(extra ...string) string {
	keys := append([]string{fmt.Sprintf("cert = %q", f.cert), fmt.Sprintf("key = %q", f.key)}, extra...)
	return "tls = { " + strings.Join(keys, ", ") + " }"
}

// client is a client config that trusts f's CA and names localhost.
func (f *tlsFiles) client() *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost"}
}

// presenting returns a copy of cfg that sends the client certificate
// cert whenever the server asks for one. Go's client keeps back a
// certificate that none of the CAs the server names has issued; an
// attacker's client does not.
func presenting(cfg *tls.Config, cert tls.Certificate) *tls.Config {
	c := cfg.Clone()
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return c
}

// withVersion returns a copy of cfg limited to the TLS version v.
func withVersion(cfg *tls.Config, v uint16) *tls.Config {
	c := cfg.Clone()
	c.MinVersion, c.MaxVersion = v, v
	return c
}

// tlsVersions are the versions goinetd serves by default, by the name
// SSL_PROTOCOL gives them.
var tlsVersions = []struct {
	name    string
	version uint16
}{{"TLSv1.2", tls.VersionTLS12}, {"TLSv1.3", tls.VersionTLS13}}

// tryTLS connects to address from the loopback address from ("": any)
// and completes the handshake within ioTimeout. It never fails the test:
// refusals and load loops look at the error. The connection's deadline is
// ioTimeout from now.
func tryTLS(from, address string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: ioTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	raw, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	return handshake(raw, cfg)
}

// handshake runs a client handshake with cfg on raw within ioTimeout,
// and closes raw if it fails.
func handshake(raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	raw.SetDeadline(time.Now().Add(ioTimeout))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

// dialTLS is tryTLS that fails the test if the handshake fails. The
// connection is closed at cleanup.
func dialTLS(t *testing.T, address string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tryTLS("", address, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", address, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tlsReport connects over TLS to a "report" helper and returns what it
// saw and the client's view of the connection.
func tlsReport(t *testing.T, address string, cfg *tls.Config) (report, tls.ConnectionState) {
	t.Helper()
	c := dialTLS(t, address, cfg)
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("decode the report over TLS from %s: %v", address, err)
	}
	return r, c.ConnectionState()
}

// ping writes "ping" to c, a connection to an echo, and reads it back,
// leaving c open.
func ping(t *testing.T, c net.Conn) {
	t.Helper()
	io.WriteString(c, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo: got %q, %v; want ping", b, err)
	}
}

// expectTLSRefused checks that goinetd refuses a client with cfg: the
// handshake fails, or (TLS 1.3 decides on the client's certificate after
// the client has finished) the first read fails or ends with no data.
func expectTLSRefused(t *testing.T, address string, cfg *tls.Config) {
	t.Helper()
	c, err := tryTLS("", address, cfg)
	if err != nil {
		return
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	var timeout net.Error
	if len(b) > 0 || errors.As(err, &timeout) && timeout.Timeout() {
		t.Fatalf("client refused by TLS: got %q, %v; want the connection ended with no data", b, err)
	}
}

// tlsRefusals counts the TLS refusals goinetd logged for service.
func tlsRefusals(d *daemon, service string) int {
	return occurrences(d, func(r record) bool {
		return r.msg() == "refused" && r.str("reason") == "tls" && r.str("service") == service
	})
}

// spawned counts the handlers goinetd started for service.
func spawned(d *daemon, service string) int {
	return len(d.logs.records(func(r record) bool { return r.msg() == "spawned" && r.str("service") == service }))
}

// waitTLSRefusals waits until goinetd has logged n TLS refusals for
// service (a refusal held back by the log's rate is counted by a later
// record's "repeated").
func waitTLSRefusals(t *testing.T, d *daemon, service string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d TLS refusals of %s to be logged", n, service), func() bool { return tlsRefusals(d, service) >= n })
	if got := tlsRefusals(d, service); got != n {
		t.Errorf("TLS refusals of %s logged: got %d; want %d", service, got, n)
	}
}

// fingerprint is mod_ssl's SSL_CLIENT_FINGERPRINT of leaf: SHA-256 of
// the DER, in lower-case hex.
func fingerprint(leaf *testcert.Leaf) string {
	sum := sha256.Sum256(leaf.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// vEnd is mod_ssl's form of a certificate's NotAfter, SSL_CLIENT_V_END.
func vEnd(leaf *testcert.Leaf) string {
	return leaf.Cert.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT")
}

func TestTLSHandlerEnvironment(t *testing.T) {
	f := newTLSFiles(t)
	clientLeaf := signLeaf(t, f.ca, testcert.Options{Client: true, CommonName: "client one"})
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "env", port, "report",
		f.table(fmt.Sprintf("client_ca = %q", f.caFile), `client_auth = "request"`,
			fmt.Sprintf("alpn = [%q, \"imap\"]", testALPN))))

	for _, v := range tlsVersions {
		t.Run(v.name+"/client certificate", func(t *testing.T) {
			cfg := presenting(withVersion(f.client(), v.version), tlsCertificate(t, clientLeaf))
			cfg.NextProtos = []string{testALPN}
			r, state := tlsReport(t, addr(port), cfg)
			if state.NegotiatedProtocol != testALPN {
				t.Errorf("client's negotiated protocol: got %q; want %q", state.NegotiatedProtocol, testALPN)
			}
			serial := envValue(r, "SSL_CLIENT_SERIAL")
			if !sameSerial(serial, fmt.Sprintf("%X", clientLeaf.Cert.SerialNumber)) {
				t.Errorf("handler's SSL_CLIENT_SERIAL: got %q; want %X in upper-case hex", serial, clientLeaf.Cert.SerialNumber)
			}
			for name, want := range map[string]string{
				"SSL_PROTOCOL":           v.name,
				"SSL_CIPHER":             tls.CipherSuiteName(state.CipherSuite),
				"SSL_TLS_SNI":            "localhost",
				"SSL_ALPN":               testALPN,
				"SSL_SESSION_RESUMED":    "Initial",
				"SSL_CLIENT_VERIFY":      "SUCCESS",
				"SSL_CLIENT_S_DN":        "CN=client one,O=goinetd tests",
				"SSL_CLIENT_I_DN":        "CN=goinetd test CA,O=goinetd tests",
				"SSL_CLIENT_FINGERPRINT": fingerprint(clientLeaf),
				"SSL_CLIENT_V_END":       vEnd(clientLeaf),
			} {
				if got := envValue(r, name); got != want {
					t.Errorf("handler's %s: got %q; want %q", name, got, want)
				}
			}
		})
		t.Run(v.name+"/no client certificate", func(t *testing.T) {
			r, state := tlsReport(t, addr(port), withVersion(f.client(), v.version))
			for name, want := range map[string]string{
				"SSL_PROTOCOL":      v.name,
				"SSL_CIPHER":        tls.CipherSuiteName(state.CipherSuite),
				"SSL_ALPN":          "", // the client offered none
				"SSL_CLIENT_VERIFY": "NONE",
				"SSL_CLIENT_S_DN":   "",
				"SSL_CLIENT_SERIAL": "",
			} {
				if got := envValue(r, name); got != want {
					t.Errorf("handler's %s: got %q; want %q", name, got, want)
				}
			}
		})
	}
	// An IP address is never sent as SNI: the handler sees none.
	cfg := f.client()
	cfg.ServerName = "127.0.0.1"
	if r, _ := tlsReport(t, addr(port), cfg); envValue(r, "SSL_TLS_SNI") != "" {
		t.Errorf("handler's SSL_TLS_SNI without SNI: got %q; want it empty", envValue(r, "SSL_TLS_SNI"))
	}
	// The handler's environment holds no other TLS secret of goinetd's.
	if r, _ := tlsReport(t, addr(port), f.client()); strings.Contains(strings.Join(r.Env, "\n"), "PRIVATE KEY") {
		t.Errorf("handler's environment holds a private key:\n%s", strings.Join(r.Env, "\n"))
	}
}

// sameSerial reports whether got, a serial in upper-case hex, is want,
// with or without the leading zero that pads it to whole bytes (OpenSSL
// pads, Go's %X does not).
func sameSerial(got, want string) bool {
	return got != "" && strings.ToUpper(got) == got && strings.TrimLeft(got, "0") == strings.TrimLeft(want, "0")
}

func TestTLSMinVersion(t *testing.T) {
	f := newTLSFiles(t)
	v12, v13 := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "default", v12, "report", f.table())+
		helperService(t, "modern", v13, "report", f.table(`min_version = "1.3"`)))
	old := f.client()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	expectTLSRefused(t, addr(v12), old)
	expectTLSRefused(t, addr(v13), withVersion(f.client(), tls.VersionTLS12))
	if r, _ := tlsReport(t, addr(v13), f.client()); envValue(r, "SSL_PROTOCOL") != "TLSv1.3" {
		t.Errorf("min_version 1.3: SSL_PROTOCOL %q; want TLSv1.3", envValue(r, "SSL_PROTOCOL"))
	}
	waitTLSRefusals(t, d, "default", 1)
	waitTLSRefusals(t, d, "modern", 1)
	if n := spawned(d, "default"); n != 0 {
		t.Errorf("handlers started for a TLS 1.1 client: %d; want 0", n)
	}
}

func TestTLSServerNameIndication(t *testing.T) {
	f := newTLSFiles(t)
	a := signLeaf(t, f.ca, testcert.Options{CommonName: "a.test", DNSNames: []string{"a.test"}})
	b := signLeaf(t, f.ca, testcert.Options{CommonName: "b.test", DNSNames: []string{"b.test", "*.b.test"}})
	aCert, aKey := writeLeaf(t, a, f.dir, "a")
	bCert, bKey := writeLeaf(t, b, f.dir, "b")
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "sni", port, "report",
		fmt.Sprintf("tls = { certs = [{ cert = %q, key = %q }, { cert = %q, key = %q }] }", aCert, aKey, bCert, bKey)))

	for _, tc := range []struct {
		sni  string
		want *testcert.Leaf
	}{
		{"a.test", a}, {"b.test", b}, {"www.b.test", b},
		{"unknown.test", a}, // no certificate names it: the first
		{"", a},             // no SNI at all: the first
	} {
		cfg := f.client()
		cfg.ServerName = tc.sni
		// The client checks the chain itself, whatever the name.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, f.ca, tc.sni)
		}
		r, state := tlsReport(t, addr(port), cfg)
		if got := state.PeerCertificates[0]; !got.Equal(tc.want.Cert) {
			t.Errorf("SNI %q: got the certificate of %q; want %q's", tc.sni, got.Subject.CommonName, tc.want.Cert.Subject.CommonName)
		}
		if got := envValue(r, "SSL_TLS_SNI"); got != tc.sni {
			t.Errorf("SNI %q: handler's SSL_TLS_SNI %q; want %q", tc.sni, got, tc.sni)
		}
	}
}

// verifyChain checks the server's chain against ca, and its name against
// sni when a certificate should hold it (the a. and b.test ones).
func verifyChain(cs tls.ConnectionState, ca *testcert.CA, sni string) error {
	opts := x509.VerifyOptions{Roots: ca.Pool(), Intermediates: x509.NewCertPool()}
	if strings.HasSuffix(sni, "a.test") || strings.HasSuffix(sni, "b.test") {
		opts.DNSName = sni
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

func TestTLSClientCertificates(t *testing.T) {
	f := newTLSFiles(t)
	good := tlsCertificate(t, signLeaf(t, f.ca, testcert.Options{Client: true, CommonName: "good"}))
	expired := tlsCertificate(t, signLeaf(t, f.ca, testcert.Options{Client: true, CommonName: "expired", Validity: -time.Hour}))
	other := newCA(t, "another CA")
	stranger := tlsCertificate(t, signLeaf(t, other, testcert.Options{Client: true, CommonName: "good"}))
	require, request, byDefault := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	ca := fmt.Sprintf("client_ca = %q", f.caFile)
	d := startDaemon(t, jsonLog+
		helperService(t, "require", require, "report", f.table(ca, `client_auth = "require"`))+
		helperService(t, "request", request, "report", f.table(ca, `client_auth = "request"`))+
		helperService(t, "default", byDefault, "report", f.table(ca)))
	with := func(cert ...tls.Certificate) *tls.Config {
		if len(cert) == 0 {
			return f.client()
		}
		return presenting(f.client(), cert[0])
	}

	// Required: only a certificate the CA signed, still valid, gets in.
	if r, _ := tlsReport(t, addr(require), with(good)); envValue(r, "SSL_CLIENT_VERIFY") != "SUCCESS" {
		t.Errorf("require, the CA's certificate: SSL_CLIENT_VERIFY %q; want SUCCESS", envValue(r, "SSL_CLIENT_VERIFY"))
	}
	expectTLSRefused(t, addr(require), with())
	expectTLSRefused(t, addr(require), with(stranger))
	expectTLSRefused(t, addr(require), with(expired))
	waitTLSRefusals(t, d, "require", 3)
	if n := spawned(d, "require"); n != 1 {
		t.Errorf("handlers started with client_auth = \"require\": got %d; want 1, for the good certificate", n)
	}

	// client_ca alone requires a certificate: the safe default.
	expectTLSRefused(t, addr(byDefault), with())
	waitTLSRefusals(t, d, "default", 1)
	if r, _ := tlsReport(t, addr(byDefault), with(good)); envValue(r, "SSL_CLIENT_VERIFY") != "SUCCESS" {
		t.Errorf("client_ca alone, the CA's certificate: SSL_CLIENT_VERIFY %q; want SUCCESS", envValue(r, "SSL_CLIENT_VERIFY"))
	}

	// Requested: a client without one is served, and told apart; a bad
	// one is still refused.
	if r, _ := tlsReport(t, addr(request), with()); envValue(r, "SSL_CLIENT_VERIFY") != "NONE" {
		t.Errorf("request, no certificate: SSL_CLIENT_VERIFY %q; want NONE", envValue(r, "SSL_CLIENT_VERIFY"))
	}
	if r, _ := tlsReport(t, addr(request), with(good)); envValue(r, "SSL_CLIENT_VERIFY") != "SUCCESS" {
		t.Errorf("request, the CA's certificate: SSL_CLIENT_VERIFY %q; want SUCCESS", envValue(r, "SSL_CLIENT_VERIFY"))
	}
	expectTLSRefused(t, addr(request), with(stranger))
	waitTLSRefusals(t, d, "request", 1)
	if n := spawned(d, "request"); n != 2 {
		t.Errorf("handlers started with client_auth = \"request\": got %d; want 2", n)
	}
}

func TestTLSSessionResumption(t *testing.T) {
	f := newTLSFiles(t)
	tickets, noTickets := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "tickets", tickets, "report", f.table())+
		helperService(t, "notickets", noTickets, "report", f.table("session_tickets = false")))
	for _, v := range tlsVersions {
		for _, tc := range []struct {
			port   int
			resume bool
		}{{tickets, true}, {noTickets, false}} {
			cfg := withVersion(f.client(), v.version)
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			// The first connection reads the report, and with it (TLS 1.3
			// sends it after the handshake) the ticket.
			r, state := tlsReport(t, addr(tc.port), cfg)
			if state.DidResume || envValue(r, "SSL_SESSION_RESUMED") != "Initial" {
				t.Errorf("%s, port %d, first connection: resumed %v, SSL_SESSION_RESUMED %q; want a full handshake, Initial",
					v.name, tc.port, state.DidResume, envValue(r, "SSL_SESSION_RESUMED"))
			}
			want := map[bool]string{true: "Resumed", false: "Initial"}[tc.resume]
			r, state = tlsReport(t, addr(tc.port), cfg)
			if state.DidResume != tc.resume || envValue(r, "SSL_SESSION_RESUMED") != want {
				t.Errorf("%s, port %d, second connection: resumed %v, SSL_SESSION_RESUMED %q; want %v, %s",
					v.name, tc.port, state.DidResume, envValue(r, "SSL_SESSION_RESUMED"), tc.resume, want)
			}
		}
	}
	// The ticket keys, in goinetd's memory, outlive a reload: its
	// clients' tickets stay good.
	cfg := f.client()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	tlsReport(t, addr(tickets), cfg)
	d.reload(1)
	if _, state := tlsReport(t, addr(tickets), cfg); !state.DidResume {
		t.Errorf("a ticket from before a reload: resumed %v; want true", state.DidResume)
	}
}

// TestTLSBuiltinEcho: a built-in stream service speaks TLS too.
func TestTLSBuiltinEcho(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+fmt.Sprintf("[services.tlsecho]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"echo\"\n%s\n", port, f.table()))
	c := dialTLS(t, addr(port), f.client())
	msg := "echoed over TLS\x00\xff"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Errorf("built-in echo over TLS: got %q, %v; want %q", got, err, msg)
	}
}

// TestTLSHandlerDescriptors: the handler gets one end of a blocking unix
// socket pair as stdin and stdout, and nothing else: never the client's
// TCP socket, which would let it bypass TLS, nor goinetd's key files.
func TestTLSHandlerDescriptors(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+helperService(t, "fds", port, "report", f.table()))
	r, _ := tlsReport(t, addr(port), f.client())
	fds := slices.Sorted(maps.Keys(r.FDs))
	if !slices.Equal(fds, []string{"0", "1", "2"}) {
		t.Errorf("handler's open fds: got %v; want [0 1 2]", r.FDs)
	}
	// The handler reports its socket's domain itself: by the time the
	// test could look in /proc/net/unix, the handler and its socket are gone.
	if r.FDs["0"] != r.FDs["1"] || !strings.HasPrefix(r.FDs["0"], "socket:[") || r.Domain != unix.AF_UNIX {
		t.Errorf("handler's fds 0 and 1: got %q and %q, domain %d; want the same unix socket (domain %d)",
			r.FDs["0"], r.FDs["1"], r.Domain, unix.AF_UNIX)
	}
	if !r.Blocking {
		t.Errorf("handler's socket is O_NONBLOCK; want blocking")
	}
}

// TestTLSOverUnixSocket: a unix stream service speaks TLS too.
func TestTLSOverUnixSocket(t *testing.T) {
	f := newTLSFiles(t)
	path := filepath.Join(t.TempDir(), "tls.sock")
	startDaemon(t, jsonLog+helperUnixService(t, "unixtls", path, "report", f.table()))
	raw, err := net.DialTimeout("unix", path, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c, err := handshake(raw, f.client())
	if err != nil {
		t.Fatalf("TLS over %s: %v", path, err)
	}
	defer c.Close()
	var r report
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatalf("decode the report: %v", err)
	}
	if got := envValue(r, "SSL_PROTOCOL"); got != "TLSv1.3" {
		t.Errorf("over a unix socket: SSL_PROTOCOL %q; want TLSv1.3", got)
	}
}
