package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
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
	// Loaded is what the files held when the config was loaded, so that
	// every load, and so every reload, reads them once; nil for a
	// disabled service.
	Loaded *LoadedTLS
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
			err = unknownTLSKey(k)
		}
		for _, err := range unjoin(err) {
			bad = append(bad, fmt.Errorf("%s: %w", k, err))
		}
	}
	_, hasCert := table["cert"]
	_, hasKey := table["key"]
	_, hasList := table["certs"]
	switch {
	case hasList && (hasCert || hasKey):
		bad = append(bad, errors.New("give either cert and key, or certs = [{ cert = ..., key = ... }, ...], not both: "+
			"move this cert and key into certs"))
	case hasCert && !hasKey:
		bad = append(bad, errors.New(`cert needs its key: add key = "server.key", the private key of the certificate`))
	case hasKey && !hasCert:
		bad = append(bad, errors.New(`key needs its certificate: add cert = "server.crt", the certificate chain of the key`))
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

// unknownTLSKey says that k is not a key of a tls table, and which one
// it probably meant (see closestKey).
func unknownTLSKey(k string) error {
	if guess := closestKey(k, tlsKeys); guess != "" {
		return fmt.Errorf("is not a tls key; did you mean %s?", guess)
	}
	return fmt.Errorf("is not a tls key (want one of %s)", strings.Join(tlsKeys, ", "))
}

func parseCertList(v any, dst *[]CertFiles) error {
	const example = `[{ cert = "a.crt", key = "a.key" }, { cert = "b.crt", key = "b.key" }]`
	list, ok := v.([]any)
	switch {
	case !ok:
		return fmt.Errorf("must be an array like %s, not %s", example, describe(v))
	case len(list) == 0:
		return fmt.Errorf("must hold at least one certificate, like %s", example)
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
				err = errors.New("is not a key of a certificate (want cert and key)")
			}
			if err != nil {
				bad = append(bad, fmt.Errorf("certificate %d: %s: %w", i+1, k, err))
			}
		}
		_, hasCert := table["cert"]
		_, hasKey := table["key"]
		switch {
		case !hasCert && !hasKey:
			bad = append(bad, fmt.Errorf(`certificate %d: needs cert and key, like { cert = "a.crt", key = "a.key" }`, i+1))
			continue
		case !hasKey:
			bad = append(bad, fmt.Errorf(`certificate %d: cert needs its key: add key = "a.key"`, i+1))
			continue
		case !hasCert:
			bad = append(bad, fmt.Errorf(`certificate %d: key needs its certificate: add cert = "a.crt"`, i+1))
			continue
		case c.Cert == "" || c.Key == "":
			continue // reported above
		}
		*dst = append(*dst, c)
	}
	return errors.Join(bad...)
}

// tlsVersions are the values of min_version: TLS 1.0 and 1.1 are not
// offered at all (RFC 8996).
var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

func parseTLSVersion(v any, dst *uint16) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf(`must be a string, "1.2" or "1.3", not %s`, describe(v))
	}
	if version, ok := tlsVersions[s]; ok {
		*dst = version
		return nil
	}
	bare := strings.TrimLeft(strings.ToLower(s), "tlsv ")
	if _, ok := tlsVersions[bare]; ok {
		return fmt.Errorf(`%q is not one of "1.2", "1.3"; did you mean %q?`, s, bare)
	}
	return fmt.Errorf(`%q is not one of "1.2", "1.3": TLS 1.0 and 1.1 are not offered (RFC 8996)`, s)
}

func parseALPN(v any, dst *[]string) error {
	var protos []string
	if err := parseStrings(v, &protos); err != nil {
		return err
	}
	for i, p := range protos {
		if p == "" || len(p) > 255 {
			return fmt.Errorf(`item %d: %q is not a protocol name: it has 1 to 255 bytes, like "h2" or "imap"`, i+1, p)
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
		w.add(keyTLS, "%sdoes not apply to %s", inheritedBy(w, keyTLS), why)
		return
	}
	for _, name := range []string{keyBanner, keyBannerRefused} {
		if w.set(name) {
			w.add(name, "%sdoes not apply with tls: a banner is plaintext, written before the handshake", inheritedBy(w, name))
		}
	}
	if t.ClientAuth == "" {
		t.ClientAuth = ClientAuthNone
		if t.ClientCA != "" {
			t.ClientAuth = ClientAuthRequire
		}
	}
	switch {
	case t.ClientAuth != ClientAuthNone && t.ClientCA == "":
		w.add(keyTLS, "client_auth = %q needs client_ca: the file of the CAs that sign client certificates", t.ClientAuth)
	case t.ClientAuth == ClientAuthNone && t.ClientCA != "":
		w.add(keyTLS, `client_auth = "none" asks no client for a certificate, so client_ca would be unused: `+
			`remove client_ca, or set client_auth = "request" or "require"`)
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
	if s.Disabled {
		return // its files are not read, as its program is not looked for
	}
	loaded, err := LoadTLS(t, time.Now())
	if err != nil {
		for _, err := range unjoin(err) {
			w.add(keyTLS, "%v", err)
		}
		return
	}
	for _, warning := range loaded.Warnings {
		w.warn(keyTLS, "%s", warning)
	}
	t.Loaded = loaded
}

// inheritedBy names the service that inherits name from [defaults], for
// a problem reported there, or is "" if the service sets name itself.
func inheritedBy(w *where, name string) string {
	if w.own(name) {
		return ""
	}
	return fmt.Sprintf("services.%s inherits it, but it ", w.svc.Name)
}

// unjoin returns the errors that errors.Join joined into err, or err
// alone, so that each is a problem of its own, on a line of its own.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
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
			bad = append(bad, unjoin(err)...)
			continue
		}
		l.Certs = append(l.Certs, c)
		if fi, err := os.Stat(files.Key); err == nil && fi.Mode().Perm()&0o004 != 0 {
			l.Warnings = append(l.Warnings, fmt.Sprintf("the private key %s is readable by every user (mode %04o): "+
				"chmod 600 it, owned by root", files.Key, fi.Mode().Perm()))
		}
		if eku := c.Leaf.ExtKeyUsage; len(eku) > 0 && !slices.Contains(eku, x509.ExtKeyUsageServerAuth) && !slices.Contains(eku, x509.ExtKeyUsageAny) {
			l.Warnings = append(l.Warnings, fmt.Sprintf("the certificate in %s is not for TLS servers: "+
				"its extended key usage lacks serverAuth, so clients will refuse it", files.Cert))
		}
		if left := c.Leaf.NotAfter.Sub(now); left < ExpiryWarning {
			l.Warnings = append(l.Warnings, fmt.Sprintf("the certificate in %s expires on %s, in %s: renew it and reload goinetd",
				files.Cert, c.Leaf.NotAfter.UTC().Format(time.RFC3339), roughly(left)))
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
	certPEM, certErr := readSmallFile(files.Cert)
	if certErr != nil {
		certErr = fmt.Errorf("cert %w", certErr)
	}
	keyPEM, keyErr := readSmallFile(files.Key)
	if keyErr != nil {
		keyErr = fmt.Errorf("key %w", keyErr)
	}
	if certErr != nil || keyErr != nil {
		return tls.Certificate{}, errors.Join(certErr, keyErr)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return tls.Certificate{}, fmt.Errorf("key %s is not the key of the certificate in %s (%w): "+
				"give the private key the certificate was made for", files.Key, files.Cert, err)
		}
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

// roughly says how long d is, in days if it is two or more, else in hours
// and minutes.
func roughly(d time.Duration) string {
	if days := d / (24 * time.Hour); days >= 2 {
		return fmt.Sprintf("%d days", days)
	}
	return d.Round(time.Minute).String()
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
		return nil, fmt.Errorf("client_ca %s holds no PEM certificate (-----BEGIN CERTIFICATE-----): "+
			"give the file of the CA certificates that sign client certificates", path)
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
