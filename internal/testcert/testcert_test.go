package testcert

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestLeafVerifiesAgainstItsCA(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{}, {Client: true, CommonName: "client"}} {
		leaf, err := ca.Sign(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.TLSCertificate(); err != nil {
			t.Fatalf("key pair: %v", err)
		}
		usage := x509.ExtKeyUsageServerAuth
		if o.Client {
			usage = x509.ExtKeyUsageClientAuth
		}
		opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}
		if !o.Client {
			opts.DNSName = "localhost"
		}
		if _, err := leaf.Cert.Verify(opts); err != nil {
			t.Errorf("%+v: verify: got %v; want nil", o, err)
		}
	}
}

func TestExpiredLeaf(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Sign(Options{Validity: -time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Cert.NotAfter.Before(time.Now()) {
		t.Errorf("NotAfter %v; want before now", leaf.Cert.NotAfter)
	}
}
