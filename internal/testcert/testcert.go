// Package testcert makes throwaway certificates for goinetd's tests and
// benchmarks: a CA, and server and client certificates it signs, with
// ECDSA P-256 keys made afresh on every call. No private key is ever
// committed; these live in a test's temporary folder.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that signs leaf certificates.
type CA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
}

// NewCA makes a self-signed CA named name, valid from an hour ago for a
// year.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"goinetd tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, CertPEM: pemBlock("CERTIFICATE", der)}, nil
}

// Leaf is a certificate signed by a CA, and its key, in PEM.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte // the leaf, then its CA
	KeyPEM  []byte
}

// Options shape a leaf certificate. The zero value is a server
// certificate for "localhost" and 127.0.0.1, valid from an hour ago for
// 90 days.
type Options struct {
	CommonName string        // default "localhost"
	DNSNames   []string      // default ["localhost"] for a server
	Client     bool          // a client certificate (ExtKeyUsageClientAuth) instead
	NotBefore  time.Time     // default an hour ago
	Validity   time.Duration // default 90 days; negative: expired that long ago
}

// Sign makes a leaf certificate signed by ca.
func (ca *CA) Sign(o Options) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if o.CommonName == "" {
		o.CommonName = "localhost"
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.Validity == 0 {
		o.Validity = 90 * 24 * time.Hour
	}
	notAfter := o.NotBefore.Add(o.Validity)
	if o.Validity < 0 {
		o.NotBefore = time.Now().Add(o.Validity - 24*time.Hour)
		notAfter = time.Now().Add(o.Validity)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"goinetd tests"}},
		NotBefore:    o.NotBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if o.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = o.DNSNames
		if tmpl.DNSNames == nil {
			tmpl.DNSNames = []string{"localhost"}
		}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{
		Cert:    cert,
		CertPEM: append(pemBlock("CERTIFICATE", der), ca.CertPEM...),
		KeyPEM:  pemBlock("PRIVATE KEY", keyDER),
	}, nil
}

// WriteFiles writes the leaf's certificate chain and key into dir as
// NAME.crt and NAME.key (mode 0600) and returns their paths.
func (l *Leaf) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, l.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// TLSCertificate returns the leaf as a tls.Certificate, for a Go client or
// server.
func (l *Leaf) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(l.CertPEM, l.KeyPEM)
}

// Pool returns a pool that holds only ca, for a client that trusts it.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteFile writes the CA's certificate into dir as NAME.pem and returns
// its path.
func (ca *CA) WriteFile(dir, name string) (string, error) {
	path := filepath.Join(dir, name+".pem")
	return path, os.WriteFile(path, ca.CertPEM, 0o644)
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// serial returns a random 128-bit serial number, as RFC 5280 asks (at most
// 20 octets, positive).
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("testcert: no randomness: %v", err))
	}
	return n.Add(n, big.NewInt(1))
}
