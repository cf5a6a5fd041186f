package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

// tlsFiles makes certificates for a test in its own temporary folder.
// Golden files cannot hold them: a private key is never committed.
type tlsFiles struct {
	t   *testing.T
	dir string
	ca  *testcert.CA
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	ca, err := testcert.NewCA("config test CA")
	if err != nil {
		t.Fatal(err)
	}
	return &tlsFiles{t: t, dir: t.TempDir(), ca: ca}
}

// pair writes a certificate signed by the CA, shaped by o, and its key as
// NAME.crt and NAME.key in the folder, and returns their paths.
func (f *tlsFiles) pair(name string, o testcert.Options) (cert, key string) {
	f.t.Helper()
	leaf, err := f.ca.Sign(o)
	if err != nil {
		f.t.Fatal(err)
	}
	cert, key, err = leaf.WriteFiles(f.dir, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return cert, key
}

// write writes text as the file name in the folder and returns its path.
func (f *tlsFiles) write(name, text string, mode os.FileMode) string {
	f.t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		f.t.Fatal(err)
	}
	return path
}

// tlsService is a config of one service, named s, whose tls table (on line
// 4) is tls.
func tlsService(tls string) string {
	return "[services.s]\nport = 7\nprogram = \"/bin/cat\"\ntls = " + tls + "\n"
}

// TestTLSFileProblems checks that each problem with a tls table's files is
// an error that names the config file, the line of tls, the file at fault
// and what is wrong with it.
func TestTLSFileProblems(t *testing.T) {
	f := newTLSFiles(t)
	good, goodKey := f.pair("good", testcert.Options{})
	_, otherKey := f.pair("other", testcert.Options{})
	expired, expiredKey := f.pair("expired", testcert.Options{Validity: -time.Hour})
	future, futureKey := f.pair("future", testcert.Options{NotBefore: time.Now().Add(48 * time.Hour)})
	noCA := f.write("not-a-ca.pem", "just text\n", 0o644)
	keyAsCA := f.write("key-as-ca.pem", string(mustRead(t, goodKey)), 0o600)
	missing := filepath.Join(f.dir, "missing.crt")
	expiredOn := readLeaf(t, expired).NotAfter.UTC().Format(time.RFC3339)
	validFrom := readLeaf(t, future).NotBefore.UTC().Format(time.RFC3339)

	for _, tc := range []struct {
		name string
		tls  string
		want []string // each problem's message, after "services.s.tls: "
	}{
		{"missing cert", `{ cert = "` + missing + `", key = "` + goodKey + `" }`,
			[]string{"cert " + missing + ": no such file or directory"}},
		{"cert and key missing", `{ cert = "missing.crt", key = "missing.key" }`,
			[]string{"cert " + missing + ": no such file or directory",
				"key " + filepath.Join(f.dir, "missing.key") + ": no such file or directory"}},
		{"key of another certificate", `{ cert = "` + good + `", key = "` + otherKey + `" }`,
			[]string{"key " + otherKey + " is not the key of the certificate in " + good +
				" (tls: private key does not match public key): give the private key the certificate was made for"}},
		{"cert and key switched", `{ cert = "` + goodKey + `", key = "` + good + `" }`,
			[]string{"cert " + goodKey + ", key " + good + ": tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"}},
		{"a folder", `{ cert = "` + f.dir + `", key = "` + goodKey + `" }`,
			[]string{"cert " + f.dir + " is not a regular file"}},
		{"expired", `{ cert = "` + expired + `", key = "` + expiredKey + `" }`,
			[]string{"the certificate in " + expired + " expired on " + expiredOn + ": renew it"}},
		{"not yet valid", `{ cert = "` + future + `", key = "` + futureKey + `" }`,
			[]string{"the certificate in " + future + " is not valid before " + validFrom + ": check the clock, or the certificate"}},
		{"client_ca without a certificate", `{ cert = "` + good + `", key = "` + goodKey + `", client_ca = "` + noCA + `" }`,
			[]string{"client_ca " + noCA + " holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the file of the CA certificates that sign client certificates"}},
		{"client_ca holding a key", `{ cert = "` + good + `", key = "` + goodKey + `", client_ca = "` + keyAsCA + `" }`,
			[]string{"client_ca " + keyAsCA + " holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the file of the CA certificates that sign client certificates"}},
		{"two bad certificates at once", `{ certs = [{ cert = "` + expired + `", key = "` + expiredKey + `" }, { cert = "` + good + `", key = "` + goodKey + `" }, { cert = "` + good + `", key = "` + otherKey + `" }] }`,
			[]string{"the certificate in " + expired + " expired on " + expiredOn + ": renew it",
				"key " + otherKey + " is not the key of the certificate in " + good +
					" (tls: private key does not match public key): give the private key the certificate was made for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := f.write(strings.ReplaceAll(tc.name, " ", "-")+".toml", tlsService(tc.tls), 0o644)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("got a config with %d services; want an error", len(cfg.Services))
			}
			var want []string
			for _, msg := range tc.want {
				want = append(want, path+":4: services.s.tls: "+msg)
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("got error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
			checkProblems(t, err, path, false)
		})
	}
}

// TestTLSWarnings checks the warnings check prints about a tls table's
// files, which do not make the config invalid: a key others can read, a
// certificate near its end. A key of mode 0600 and a certificate with
// weeks left make none.
func TestTLSWarnings(t *testing.T) {
	f := newTLSFiles(t)
	good, goodKey := f.pair("good", testcert.Options{})
	soon, soonKey := f.pair("soon", testcert.Options{Validity: 5 * 24 * time.Hour})
	hours, hoursKey := f.pair("hours", testcert.Options{Validity: 7 * time.Hour})
	open, openKey := f.pair("open", testcert.Options{})
	clientOnly, clientOnlyKey := f.pair("client-only", testcert.Options{Client: true})
	if err := os.Chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	soonEnd := readLeaf(t, soon).NotAfter.UTC().Format(time.RFC3339)
	hoursEnd := readLeaf(t, hours).NotAfter.UTC().Format(time.RFC3339)

	for _, tc := range []struct {
		name string
		tls  string
		want []string
	}{
		{"good", `{ cert = "` + good + `", key = "` + goodKey + `" }`, nil},
		{"key readable by every user", `{ cert = "` + open + `", key = "` + openKey + `" }`,
			[]string{"the private key " + openKey + " is readable by every user (mode 0644): chmod 600 it, owned by root"}},
		{"expires within 14 days", `{ cert = "` + soon + `", key = "` + soonKey + `" }`,
			[]string{"the certificate in " + soon + " expires on " + soonEnd + ", in 4 days: renew it and reload goinetd"}},
		{"expires within hours", `{ cert = "` + hours + `", key = "` + hoursKey + `" }`,
			[]string{"the certificate in " + hours + " expires on " + hoursEnd + ", in 6h0m0s: renew it and reload goinetd"}},
		{"a client certificate", `{ cert = "` + clientOnly + `", key = "` + clientOnlyKey + `" }`,
			[]string{"the certificate in " + clientOnly + " is not for TLS servers: its extended key usage lacks serverAuth, so clients will refuse it"}},
		{"each certificate", `{ certs = [{ cert = "` + soon + `", key = "` + soonKey + `" }, { cert = "` + open + `", key = "` + openKey + `" }] }`,
			[]string{"the certificate in " + soon + " expires on " + soonEnd + ", in 4 days: renew it and reload goinetd",
				"the private key " + openKey + " is readable by every user (mode 0644): chmod 600 it, owned by root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := f.write(strings.ReplaceAll(tc.name, " ", "-")+".toml", tlsService(tc.tls), 0o644)
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("got error:\n%v\nwant the config to load", err)
			}
			var got, want []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			for _, msg := range tc.want {
				want = append(want, path+":4: services.s.tls: "+msg)
			}
			// "in 6h0m0s" may have become "in 5h59m0s" since the certificate was made.
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w && strings.ReplaceAll(g, "5h59m0s", "6h0m0s") != w {
				t.Errorf("got warnings:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

// TestTLSDefaults checks the values a tls table gets when it leaves keys
// out, and that client_ca alone makes client_auth "require".
func TestTLSDefaults(t *testing.T) {
	f := newTLSFiles(t)
	cert, key := f.pair("server", testcert.Options{})
	ca, err := f.ca.WriteFile(f.dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tls  string
		want TLS
	}{
		{`{ cert = "` + cert + `", key = "` + key + `" }`,
			TLS{Certs: []CertFiles{{cert, key}}, ClientAuth: ClientAuthNone, MinVersion: tls.VersionTLS12,
				HandshakeTimeout: DefaultHandshakeTimeout, SessionTickets: true}},
		{`{ cert = "` + cert + `", key = "` + key + `", client_ca = "` + ca + `" }`,
			TLS{Certs: []CertFiles{{cert, key}}, ClientCA: ca, ClientAuth: ClientAuthRequire, MinVersion: tls.VersionTLS12,
				HandshakeTimeout: DefaultHandshakeTimeout, SessionTickets: true}},
		{`{ cert = "` + cert + `", key = "` + key + `", client_ca = "` + ca + `", client_auth = "request", min_version = "1.3", alpn = ["h2", "http/1.1"], handshake_timeout = "3s", session_tickets = false }`,
			TLS{Certs: []CertFiles{{cert, key}}, ClientCA: ca, ClientAuth: ClientAuthRequest, MinVersion: tls.VersionTLS13,
				ALPN: []string{"h2", "http/1.1"}, HandshakeTimeout: 3 * time.Second}},
	} {
		cfg, err := Parse([]byte(tlsService(tc.tls)), "x.toml", f.dir)
		if err != nil {
			t.Fatalf("tls = %s: got error %v; want none", tc.tls, err)
		}
		got := cfg.Services[0].TLS
		if got == nil || !equalTLS(*got, tc.want) {
			t.Errorf("tls = %s:\ngot  %+v\nwant %+v", tc.tls, got, tc.want)
		}
	}
}

func equalTLS(a, b TLS) bool {
	return strings.Join(a.ALPN, ",") == strings.Join(b.ALPN, ",") && len(a.Certs) == len(b.Certs) &&
		(len(a.Certs) == 0 || a.Certs[0] == b.Certs[0]) &&
		a.ClientCA == b.ClientCA && a.ClientAuth == b.ClientAuth && a.MinVersion == b.MinVersion &&
		a.HandshakeTimeout == b.HandshakeTimeout && a.SessionTickets == b.SessionTickets
}

// TestTLSRelativePaths checks that a tls table's relative paths resolve
// against the folder of the file that holds the service: the main file's,
// or a drop-in's own. And that services inheriting tls from [defaults]
// get a table each, which validation fills in for each.
func TestTLSRelativePaths(t *testing.T) {
	f := newTLSFiles(t)
	etc := filepath.Join(f.dir, "etc")
	dropins := filepath.Join(etc, "goinetd.d")
	for _, d := range []string{filepath.Join(etc, "tls"), filepath.Join(dropins, "tls")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.pair("etc/tls/main", testcert.Options{})
	f.pair("etc/goinetd.d/tls/dropin", testcert.Options{})
	ca, err := f.ca.WriteFile(etc, "ca")
	if err != nil {
		t.Fatal(err)
	}
	f.write("etc/inetd.toml", `include = ["goinetd.d/*.toml"]

[defaults]
tls = { cert = "tls/main.crt", key = "tls/main.key" }

[services.main]
port = 7
program = "/bin/cat"
tls = { cert = "tls/main.crt", key = "./tls/main.key", client_ca = "ca.pem" }

[services.inherits]
port = 8
program = "/bin/cat"

[services.inherits-too]
port = 9
program = "/bin/cat"
`, 0o644)
	f.write("etc/goinetd.d/dropin.toml", `[services.dropin]
port = 10
program = "/bin/cat"
tls = { certs = [{ cert = "tls/dropin.crt", key = "tls/dropin.key" }] }
`, 0o644)
	cfg, err := Load(filepath.Join(etc, "inetd.toml"))
	if err != nil {
		t.Fatalf("got error:\n%v\nwant none", err)
	}
	want := map[string]CertFiles{
		"main":         {filepath.Join(etc, "tls/main.crt"), filepath.Join(etc, "tls/main.key")},
		"inherits":     {filepath.Join(etc, "tls/main.crt"), filepath.Join(etc, "tls/main.key")},
		"inherits-too": {filepath.Join(etc, "tls/main.crt"), filepath.Join(etc, "tls/main.key")},
		"dropin":       {filepath.Join(dropins, "tls/dropin.crt"), filepath.Join(dropins, "tls/dropin.key")},
	}
	seen := make(map[*TLS]string)
	for _, s := range cfg.Services {
		if s.TLS == nil || len(s.TLS.Certs) != 1 || s.TLS.Certs[0] != want[s.Name] {
			t.Errorf("service %s: got tls %+v; want certs [%v]", s.Name, s.TLS, want[s.Name])
			continue
		}
		if other, ok := seen[s.TLS]; ok {
			t.Errorf("services %s and %s share one tls table; want a copy each", other, s.Name)
		}
		seen[s.TLS] = s.Name
	}
	for _, s := range cfg.Services {
		if s.Name == "main" && s.TLS != nil && s.TLS.ClientCA != ca {
			t.Errorf("service main: got client_ca %q; want %q", s.TLS.ClientCA, ca)
		}
	}
}

// TestTLSDisabledServiceFilesNotRead checks that a disabled service's tls
// files are not read, as its program is not looked for, so that a
// shipped example can name files that are not there yet; its keys are
// still checked.
func TestTLSDisabledServiceFilesNotRead(t *testing.T) {
	cfg, err := Parse([]byte("[services.s]\nport = 7\nprogram = \"/bin/cat\"\ndisabled = true\n"+
		"tls = { cert = \"/nonexistent/server.crt\", key = \"/nonexistent/server.key\" }\n"), "x.toml", "/")
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("got warnings %v; want none", cfg.Warnings)
	}
	_, err = Parse([]byte("[services.s]\nport = 7\nprogram = \"/bin/cat\"\ndisabled = true\n"+
		"tls = { cert = \"/nonexistent/server.crt\", key = \"/nonexistent/server.key\", min_version = \"1.1\" }\n"), "x.toml", "/")
	if want := `x.toml:5: services.s.tls: min_version: "1.1" is not one of "1.2", "1.3": TLS 1.0 and 1.1 are not offered (RFC 8996)`; err == nil || err.Error() != want {
		t.Errorf("got error %v; want %q", err, want)
	}
}

// TestLoadTLSIsTheOneCheck checks LoadTLS as the spawner calls it, at
// start and at every reload: it loads a good table's chains with their
// leaves and its CAs, and refuses one whose certificate has expired since
// check passed it.
func TestLoadTLSIsTheOneCheck(t *testing.T) {
	f := newTLSFiles(t)
	cert, key := f.pair("server", testcert.Options{Validity: 30 * 24 * time.Hour})
	ca, err := f.ca.WriteFile(f.dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	table := &TLS{Certs: []CertFiles{{cert, key}}, ClientCA: ca}
	l, err := LoadTLS(table, time.Now())
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	if len(l.Certs) != 1 || l.Certs[0].Leaf == nil || l.Certs[0].Leaf.Subject.CommonName != "localhost" {
		t.Errorf("got certificates %+v; want the one for localhost, with its leaf", l.Certs)
	}
	if l.ClientCAs == nil || len(l.Warnings) != 0 {
		t.Errorf("got client CAs %v, warnings %q; want a pool, no warning", l.ClientCAs, l.Warnings)
	}
	later := time.Now().Add(31 * 24 * time.Hour)
	if _, err := LoadTLS(table, later); err == nil || !strings.Contains(err.Error(), "the certificate in "+cert+" expired on ") {
		t.Errorf("a month later: got error %v; want the certificate expired", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readLeaf returns the leaf certificate of certFile, whose key is beside
// it.
func readLeaf(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(mustRead(t, certFile), mustRead(t, strings.TrimSuffix(certFile, ".crt")+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}
