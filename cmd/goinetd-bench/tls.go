package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

// The TLS comparison (-tls): goinetd terminating TLS in front of
// /bin/cat, beside stunnel and socat doing the same, with one certificate
// and one client for all.

// tlsFiles are the certificate chain and key every TLS server of a run
// serves (ECDSA P-256, made afresh by the run in its temporary folder),
// and the CA its client trusts.
type tlsFiles struct {
	cert, key string
	roots     *x509.CertPool
}

// makeTLSFiles makes a CA and a server certificate for localhost and
// 127.0.0.1 that it signs, and writes the certificate and key into dir.
func makeTLSFiles(dir string) (tlsFiles, error) {
	ca, err := testcert.NewCA("goinetd-bench CA")
	if err != nil {
		return tlsFiles{}, fmt.Errorf("make a CA: %w", err)
	}
	leaf, err := ca.Sign(testcert.Options{})
	if err != nil {
		return tlsFiles{}, fmt.Errorf("make a server certificate: %w", err)
	}
	cert, key, err := leaf.WriteFiles(dir, "server")
	if err != nil {
		return tlsFiles{}, fmt.Errorf("write the server certificate: %w", err)
	}
	return tlsFiles{cert: cert, key: key, roots: ca.Pool()}, nil
}

// The kinds of TLS handshake the closed loop measures; a result's
// Handshake, "" for plain TCP.
const (
	handshakeFull    = "full"
	handshakeResumed = "resumed"
)

// tlsClientConfig is what every TLS connection of the bench offers: TLS
// 1.3 only (so resumption is by ticket, for every server), verifying the
// server's certificate as a real client does, and an ECDHE key exchange
// on P-256 only. socat 1.7.4 knows no other (it sets prime256v1 and has
// no option to change it); Go's default would also offer X25519 and
// X25519MLKEM768, which a Go server picks first: every server makes the
// same key exchange instead.
func tlsClientConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		RootCAs:          roots,
		ServerName:       "localhost",
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.CurveP256},
	}
}

// tlsClient makes the TLS connections of the closed loop: each one a full
// handshake, or, with resume, a resumption of the session its worker's
// previous connection got (TLS 1.3 tickets, one session cache a worker).
type tlsClient struct {
	conf   *tls.Config
	resume bool

	mu     sync.Mutex
	caches map[int]tls.ClientSessionCache // by worker
}

func newTLSClient(roots *x509.CertPool, handshake string) *tlsClient {
	return &tlsClient{conf: tlsClientConfig(roots), resume: handshake == handshakeResumed, caches: make(map[int]tls.ClientSessionCache)}
}

// workerConfig is worker i's TLS config: with resume, its own session
// cache, kept from one closedLoop to the next.
func (c *tlsClient) workerConfig(i int) *tls.Config {
	conf := c.conf.Clone()
	if c.resume {
		c.mu.Lock()
		if c.caches[i] == nil {
			c.caches[i] = tls.NewLRUClientSessionCache(1)
		}
		conf.ClientSessionCache = c.caches[i]
		c.mu.Unlock()
	}
	return conf
}

func (c *tlsClient) worker(i int) func(ctx context.Context, addr string, deadline time.Time) (string, bool) {
	conf := c.workerConfig(i)
	var d net.Dialer
	buf := make([]byte, payloadSize+1)
	return func(ctx context.Context, addr string, deadline time.Time) (string, bool) {
		tc, kind := dialTLS(ctx, &d, conf, addr, deadline)
		if kind != "" {
			return kind, false
		}
		defer tc.Close()
		// A TLS 1.3 ticket comes after the handshake: reading the echo
		// reads it into the worker's session cache.
		return echoAndEnd(tc, buf), tc.ConnectionState().DidResume
	}
}

// dialTLS connects to addr and makes the TLS handshake, all before
// deadline, which stays set on the connection. It returns the connection,
// or "" and the kind of failure (see errorKind): "connect: ..." or
// "handshake: ...".
func dialTLS(ctx context.Context, d *net.Dialer, conf *tls.Config, addr string, deadline time.Time) (*tls.Conn, string) {
	d.Deadline = deadline
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, errorKind("connect", err)
	}
	raw.SetDeadline(deadline)
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, errorKind("handshake", err)
	}
	return tc, ""
}

// describeTLS names what a connection negotiated, for the report: "TLS
// 1.3, TLS_AES_128_GCM_SHA256, X25519".
func describeTLS(st tls.ConnectionState) string {
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID)
}

// bulkChunk is how much the bulk transfer writes, and reads, at once.
const bulkChunk = 256 << 10

// bulkTransfer makes one TLS connection to addr, then writes size bytes
// while it reads them back at the same time, half-closes and reads EOF,
// all before deadline. It returns the time from the end of the handshake
// to EOF, what the connection negotiated, and "" or the kind of failure.
func bulkTransfer(ctx context.Context, roots *x509.CertPool, addr string, size int64, deadline time.Time) (time.Duration, string, string) {
	var d net.Dialer
	tc, kind := dialTLS(ctx, &d, tlsClientConfig(roots), addr, deadline)
	if kind != "" {
		return 0, "", kind
	}
	defer tc.Close()
	negotiated := describeTLS(tc.ConnectionState())
	start := time.Now()
	wrote := make(chan string, 1)
	go func() {
		chunk := make([]byte, bulkChunk)
		for i := range chunk {
			chunk[i] = payload[i%payloadSize]
		}
		for left := size; left > 0; left -= int64(len(chunk)) {
			if _, err := tc.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				wrote <- errorKind("bulk: write", err)
				return
			}
		}
		if err := tc.CloseWrite(); err != nil {
			wrote <- errorKind("bulk: half-close", err)
			return
		}
		wrote <- ""
	}()
	got, rerr := io.CopyBuffer(io.Discard, onlyReader{tc}, make([]byte, bulkChunk))
	elapsed := time.Since(start)
	if rerr != nil {
		// The writer may be blocked on a full socket: unblock it.
		tc.SetDeadline(time.Now())
	}
	werr := <-wrote
	switch {
	case werr != "":
		return 0, negotiated, werr
	case rerr != nil:
		return 0, negotiated, errorKind("bulk: read", rerr)
	case got != size:
		return 0, negotiated, fmt.Sprintf("bulk: read %d bytes back of %d", got, size)
	}
	return elapsed, negotiated, ""
}

// onlyReader hides every method but Read, so that io.CopyBuffer uses the
// buffer it is given (io.Discard's ReadFrom reads 8 KiB at a time).
type onlyReader struct{ io.Reader }
