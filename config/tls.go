package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// TLS is a service's tls table: goinetd does the TLS handshake itself,
// and the handler speaks plaintext on a socket pair that goinetd relays
// to the client (spawner/tls.go).
type TLS struct {
	// Certs are the certificate chains and their keys; a client's server
	// name (SNI) picks one, the first if none matches. Paths are resolved
	// against the config file's folder.
	Certs []CertFiles
	// ClientCA, if set, is a PEM file of the CAs whose client certificates
	// are accepted.
	ClientCA   string
	ClientAuth ClientAuth
	MinVersion uint16 // tls.VersionTLS12 or tls.VersionTLS13
	ALPN       []string
	// HandshakeTimeout bounds a client's handshake, from its accept.
	HandshakeTimeout time.Duration
	// SessionTickets lets clients resume a session with a ticket.
	SessionTickets bool
}

// CertFiles is one certificate chain (PEM, leaf first) and its key.
type CertFiles struct {
	Cert, Key string
}

// ClientAuth is whether a TLS service asks clients for a certificate.
type ClientAuth string

const (
	ClientAuthNone    ClientAuth = "none"    // never asks
	ClientAuthRequest ClientAuth = "request" // asks; a client without one is served, one with a bad one is refused
	ClientAuthRequire ClientAuth = "require" // refuses a client without a certificate that client_ca signed
)

// DefaultHandshakeTimeout is how long a TLS handshake may take, unless
// handshake_timeout says otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// ExpiryWarning is how close to its end a certificate makes check warn.
const ExpiryWarning = 14 * 24 * time.Hour

// tlsKeys are the keys of a tls table.
var tlsKeys = []string{"cert", "key", "certs", "client_ca", "client_auth", "min_version", "alpn", "handshake_timeout", "session_tickets"}

// parseTLS reads a tls table. Defaults are filled in by validateTLS.
func parseTLS(v any, dst **TLS) error {
	table, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf(`must be a table like { cert = "/etc/goinetd/tls/server.crt", key = "/etc/goinetd/tls/server.key" }, not %s`, describe(v))
	}
	t := &TLS{SessionTickets: true}
	var pair CertFiles
	var bad []error
	for _, k := range sortedKeys(table) {
		var err error
		v := table[k]
		switch k {
		case "cert":
			err = parsePath(v, &pair.Cert)
		case "key":
			err = parsePath(v, &pair.Key)
		case "certs":
			err = parseCertList(v, &t.Certs)
		case "client_ca":
			err = parsePath(v, &t.ClientCA)
		case "client_auth":
			err = oneOf(v, &t.ClientAuth, ClientAuthNone, ClientAuthRequest, ClientAuthRequire)
		case "min_version":
			err = parseTLSVersion(v, &t.MinVersion)
		case "alpn":
			err = parseALPN(v, &t.ALPN)
		case "handshake_timeout":
			err = parseDuration(v, &t.HandshakeTimeout)
		case "session_tickets":
			err = parseBool(v, &t.SessionTickets)
		default:
			err = fmt.Errorf("is not a tls key (want one of %s)", strings.Join(tlsKeys, ", "))
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", k, err))
		}
	}
	_, hasCert := table["cert"]
	_, hasKey := table["key"]
	_, hasList := table["certs"]
	switch {
	case hasList && (hasCert || hasKey):
		bad = append(bad, errors.New("give either cert and key, or certs = [{ cert = ..., key = ... }, ...], not both"))
	case hasCert != hasKey:
		bad = append(bad, errors.New(`cert and key go together: cert = "server.crt", key = "server.key"`))
	case hasCert:
		t.Certs = []CertFiles{pair}
	case !hasList:
		bad = append(bad, errors.New(`needs a certificate: cert = "server.crt", key = "server.key"`))
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	*dst = t
	return nil
}

func parseCertList(v any, dst *[]CertFiles) error {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return fmt.Errorf(`must be a non-empty array like [{ cert = "a.crt", key = "a.key" }, { cert = "b.crt", key = "b.key" }], not %s`, describe(v))
	}
	var bad []error
	for i, item := range list {
		table, ok := item.(map[string]any)
		if !ok {
			bad = append(bad, fmt.Errorf(`certificate %d: must be a table like { cert = "a.crt", key = "a.key" }, not %s`, i+1, describe(item)))
			continue
		}
		var c CertFiles
		for _, k := range sortedKeys(table) {
			var err error
			switch k {
			case "cert":
				err = parsePath(table[k], &c.Cert)
			case "key":
				err = parsePath(table[k], &c.Key)
			default:
				err = errors.New("is not a key of a certificate (want cert or key)")
			}
			if err != nil {
				bad = append(bad, fmt.Errorf("certificate %d: %s: %w", i+1, k, err))
			}
		}
		if c.Cert == "" || c.Key == "" {
			bad = append(bad, fmt.Errorf(`certificate %d: needs both cert and key`, i+1))
			continue
		}
		*dst = append(*dst, c)
	}
	return errors.Join(bad...)
}

func parseTLSVersion(v any, dst *uint16) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	switch s {
	case "1.2":
		*dst = tls.VersionTLS12
	case "1.3":
		*dst = tls.VersionTLS13
	default:
		return fmt.Errorf(`%q is not one of "1.2", "1.3" (older versions are not offered)`, s)
	}
	return nil
}

func parseALPN(v any, dst *[]string) error {
	var protos []string
	if err := parseStrings(v, &protos); err != nil {
		return err
	}
	for _, p := range protos {
		if p == "" || len(p) > 255 {
			return fmt.Errorf("%q: a protocol name has 1 to 255 bytes", p)
		}
	}
	*dst = protos
	return nil
}

// validateTLS fills in a tls table's defaults, resolves its paths, checks
// that it applies to the service, and loads its files (LoadTLS).
func validateTLS(s *Service, w *where) {
	t := s.TLS
	if t == nil {
		return
	}
	var why string
	switch {
	case s.Protocol == UDP:
		why = "udp: a datagram service has no stream for TLS (DTLS is not supported)"
	case s.Mode == Wait:
		why = "wait mode: the handler accepts the connections itself, so goinetd never holds one to do the handshake on"
	case s.Forward != "":
		why = "a forwarding service: it passes bytes through unchanged"
	case s.Sensor:
		why = "a sensor: it runs nothing"
	}
	if why != "" {
		w.add(keyTLS, "does not apply to %s", why)
		return
	}
	for _, name := range []string{keyBanner, keyBannerRefused} {
		if w.set(name) {
			w.add(name, "does not apply with tls: a banner is plaintext, written before the handshake")
		}
	}
	if t.ClientAuth == "" {
		t.ClientAuth = ClientAuthNone
		if t.ClientCA != "" {
			t.ClientAuth = ClientAuthRequire
		}
	}
	if t.ClientAuth != ClientAuthNone && t.ClientCA == "" {
		w.add(keyTLS, "client_auth = %q needs client_ca: the file of the CAs that sign client certificates", t.ClientAuth)
	}
	if t.MinVersion == 0 {
		t.MinVersion = tls.VersionTLS12
	}
	if t.HandshakeTimeout == 0 {
		t.HandshakeTimeout = DefaultHandshakeTimeout
	}
	for i := range t.Certs {
		t.Certs[i].Cert = resolve(w.dir, t.Certs[i].Cert)
		t.Certs[i].Key = resolve(w.dir, t.Certs[i].Key)
	}
	if t.ClientCA != "" {
		t.ClientCA = resolve(w.dir, t.ClientCA)
	}
	loaded, err := LoadTLS(t, time.Now())
	if err != nil {
		w.add(keyTLS, "%v", err)
		return
	}
	for _, warning := range loaded.Warnings {
		w.warn(keyTLS, "%s", warning)
	}
}

// LoadedTLS is what a tls table's files hold, loaded and checked.
type LoadedTLS struct {
	Certs     []tls.Certificate // in the order of TLS.Certs, each with its Leaf
	ClientCAs *x509.CertPool    // nil without client_ca
	Warnings  []string          // certificates that expire within ExpiryWarning
}

// LoadTLS reads and checks the certificates and keys of t, and its
// client CAs, as of now: each chain must parse, match its key, and be
// valid now. It is the one check of these files: check, start and every
// reload call it. The error lists every problem.
func LoadTLS(t *TLS, now time.Time) (*LoadedTLS, error) {
	l := &LoadedTLS{}
	var bad []error
	for _, files := range t.Certs {
		c, err := loadPair(files, now)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		l.Certs = append(l.Certs, c)
		if fi, err := os.Stat(files.Key); err == nil && fi.Mode().Perm()&0o004 != 0 {
			l.Warnings = append(l.Warnings, fmt.Sprintf("the key %s is readable by every user: chmod o-r it", files.Key))
		}
		if left := c.Leaf.NotAfter.Sub(now); left < ExpiryWarning {
			l.Warnings = append(l.Warnings, fmt.Sprintf("the certificate in %s expires on %s, in %s: renew it and reload",
				files.Cert, c.Leaf.NotAfter.UTC().Format(time.DateOnly), left.Round(time.Hour)))
		}
	}
	if t.ClientCA != "" {
		pool, err := loadPool(t.ClientCA)
		if err != nil {
			bad = append(bad, err)
		}
		l.ClientCAs = pool
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	return l, nil
}

// loadPair loads one certificate chain and its key.
func loadPair(files CertFiles, now time.Time) (tls.Certificate, error) {
	certPEM, err := readSmallFile(files.Cert)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert %w", err)
	}
	keyPEM, err := readSmallFile(files.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert %s, key %s: %w", files.Cert, files.Key, err)
	}
	switch leaf := c.Leaf; {
	case now.After(leaf.NotAfter):
		return tls.Certificate{}, fmt.Errorf("the certificate in %s expired on %s: renew it", files.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return tls.Certificate{}, fmt.Errorf("the certificate in %s is not valid before %s: check the clock, or the certificate", files.Cert, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// loadPool loads a PEM file of CA certificates.
func loadPool(path string) (*x509.CertPool, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("client_ca %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client_ca %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("client_ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// maxTLSFile bounds a certificate, key or CA file: a chain of a few
// certificates is a few KiB; a CA bundle under 1 MiB.
const maxTLSFile = 4 << 20

// readSmallFile reads a regular file of at most maxTLSFile bytes, saying
// which file in its error.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0) // a FIFO must not block a reload
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, statError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", path)
	case fi.Size() > maxTLSFile:
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxTLSFile>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTLSFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}
