package spawner

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

func TestTLSEnvNamesTheSessionAndTheClient(t *testing.T) {
	ca, err := testcert.NewCA("Test CA")
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	leaf, err := ca.Sign(testcert.Options{Client: true, CommonName: "alice", NotBefore: notBefore, Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.Cert.Raw)
	st := tls.ConnectionState{
		Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "imap.example",
		NegotiatedProtocol: "imap", DidResume: true,
		PeerCertificates: []*x509.Certificate{leaf.Cert}, VerifiedChains: [][]*x509.Certificate{{leaf.Cert, ca.Cert}},
	}
	got := tlsEnv(nil, st)
	want := []string{
		"SSL_PROTOCOL=TLSv1.3", "SSL_CIPHER=TLS_AES_128_GCM_SHA256", "SSL_SESSION_RESUMED=Resumed",
		"SSL_TLS_SNI=imap.example", "SSL_ALPN=imap", "SSL_CLIENT_VERIFY=SUCCESS",
		"SSL_CLIENT_S_DN=CN=alice,O=goinetd tests", "SSL_CLIENT_I_DN=CN=Test CA,O=goinetd tests",
		"SSL_CLIENT_SERIAL=" + strings.ToUpper(leaf.Cert.SerialNumber.Text(16)),
		"SSL_CLIENT_FINGERPRINT=" + hex.EncodeToString(sum[:]),
		"SSL_CLIENT_V_END=Dec  7 04:00:00 2027 GMT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	plain := tlsEnv(nil, tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256})
	want = []string{"SSL_PROTOCOL=TLSv1.2", "SSL_CIPHER=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"SSL_SESSION_RESUMED=Initial", "SSL_CLIENT_VERIFY=NONE"}
	if !slices.Equal(plain, want) {
		t.Errorf("without SNI, ALPN or a client certificate: got %q; want %q", plain, want)
	}
}

func TestEnvSafeEscapesControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"CN=alice,O=goinetd tests":              "CN=alice,O=goinetd tests",
		"CN=mallory\nSSL_CLIENT_VERIFY=SUCCESS": `CN=mallory\x0aSSL_CLIENT_VERIFY=SUCCESS`,
		"a\x00b\rc\x1b[2J\x7f":                  `a\x00b\x0dc\x1b[2J\x7f`,
		"CN=Zoë":                                "CN=Zoë",
	} {
		if got := envSafe(in); got != want {
			t.Errorf("envSafe(%q): got %q; want %q", in, got, want)
		}
	}
}
