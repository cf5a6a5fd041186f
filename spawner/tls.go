package spawner

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// TLS: goinetd does the handshake itself, in a goroutine that waits in
// the netpoller, after the PROXY header and admission and before any
// fork; a client that fails it, or does not finish it within
// handshake_timeout, spawns nothing. The handler then gets one end of a
// connected unix socket pair as its stdin and stdout, and speaks
// plaintext; goinetd relays between the other end and the client, one
// goroutine per direction, passing a half-close through each way.

// Outcomes of a handshake, as metrics name them.
const (
	handshakeOK      = "ok"
	handshakeFailed  = "failed"
	handshakeTimeout = "timeout"
)

// tlsConfigs are the tls.Config of every TLS service prepared so far, by
// name, so that the next one of the same name keeps its session ticket
// keys (see prepareTLS). Guarded by Server.mu, which apply holds.
type tlsConfigs map[string]*tls.Config

// keepOnly forgets the configs of services not in names, gone from the
// config or no longer TLS.
func (c tlsConfigs) keepOnly(names map[string]bool) {
	maps.DeleteFunc(c, func(name string, _ *tls.Config) bool { return !names[name] })
}

var clientAuths = map[config.ClientAuth]tls.ClientAuthType{
	config.ClientAuthNone:    tls.NoClientCert,
	config.ClientAuthRequest: tls.VerifyClientCertIfGiven,
	config.ClientAuthRequire: tls.RequireAndVerifyClientCert,
}

// prepareTLS builds p's tls.Config from its tls table and the files the
// config's load read (config.LoadTLS), so that every reload, even of an
// unchanged config, picks up certificates renewed on disk; connections in
// progress keep theirs. It starts from a clone of the service's previous
// config, if any, so that the session ticket keys crypto/tls made and
// rotates (a new one a day, each valid for a week, in memory only)
// survive reloads.
func (s *Server) prepareTLS(p *service) {
	loaded := p.TLS.Loaded
	c := &tls.Config{}
	if prev := s.tlsConfigs[p.Name]; prev != nil {
		c = prev.Clone()
	}
	c.Certificates = loaded.Certs // the first whose names the client's SNI matches, else the first
	c.ClientCAs = loaded.ClientCAs
	c.ClientAuth = clientAuths[p.TLS.ClientAuth]
	c.MinVersion = p.TLS.MinVersion
	c.NextProtos = p.TLS.ALPN
	c.SessionTicketsDisabled = !p.TLS.SessionTickets
	c.GetConfigForClient = refuseOddServerName
	s.tlsConfigs[p.Name] = c
	p.tls = c
}

// refuseOddServerName fails the handshake of a client whose server name
// (SNI) is not a host name: crypto/tls takes any bytes there, and they
// would reach the handler as SSL_TLS_SNI, where a newline could forge
// another variable for a handler that reads its environment line by line.
// It returns no config, so the service's own serves the client.
func refuseOddServerName(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if hello.ServerName != "" && !hostName(hello.ServerName) {
		return nil, errors.New("the server name (SNI) is not a host name")
	}
	return nil, nil
}

// handshake does the TLS handshake of svc on raw, which was accepted at
// accepted, within handshake_timeout from then, and counts it. A failure
// is logged as a refusal of peer, and raw is left to the caller to close.
func (s *Server) handshake(svc *service, raw net.Conn, accepted time.Time, peer string) (*tls.Conn, error) {
	raw.SetDeadline(accepted.Add(svc.TLS.HandshakeTimeout))
	tc := tls.Server(raw, svc.tls)
	began := time.Now()
	err := tc.Handshake()
	outcome := handshakeOK
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		outcome = handshakeTimeout
	case err != nil:
		outcome = handshakeFailed
	}
	s.metrics.TLSHandshake(svc.Name, outcome, time.Since(began))
	if err != nil {
		s.refused(svc, noConn, peer, refusedTLS, "err", err)
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return tc, nil
}

// tlsSession is a client's TLS connection after its handshake, the
// socket pair its handler speaks through, and what the relay between them
// counts. Its child (child.relay) points to it, so that the reaper hands
// it the handler's exit, which the relay logs when it ends.
type tlsSession struct {
	conn      *tls.Conn
	state     tls.ConnectionState
	handlerFD int           // the handler's end, blocking: its stdin and stdout
	plain     *net.UnixConn // goinetd's end
	drain     time.Duration // what the client has, once the handler is reaped, to take its last output

	in, out     atomic.Int64  // bytes, client to handler and handler to client
	handlerExit exit          // set by the reaper before it closes reaped
	reaped      chan struct{} // closed when the handler has been reaped
}

// handlerReaped is called by the reaper when the session's handler has
// been reaped: nothing will read what the client sends from now on, and
// what the handler wrote must reach the client within drain, or the relay
// ends anyway. Without this bound a client that never reads would keep
// the relay, its descriptors and its slot forever.
func (t *tlsSession) handlerReaped() {
	t.conn.SetReadDeadline(time.Now())
	end := time.Now().Add(t.drain)
	t.conn.SetWriteDeadline(end)
	t.plain.SetReadDeadline(end) // a process the handler left may still hold its end
}

// newTLSSession makes the socket pair for the client's connection tc, of
// a service whose handshake_timeout is drain.
func newTLSSession(tc *tls.Conn, drain time.Duration) (*tlsSession, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	f := os.NewFile(uintptr(fds[1]), "tls-plain")
	c, err := net.FileConn(f) // a non-blocking duplicate, in the netpoller
	f.Close()
	if err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	return &tlsSession{conn: tc, state: tc.ConnectionState(), handlerFD: fds[0], plain: c.(*net.UnixConn),
		drain: drain, reaped: make(chan struct{})}, nil
}

// spawnTLS serves a connection accepted, and counted, on a TLS service
// that runs a program, in a goroutine of its own: the PROXY header if the
// service reads one, admission, the handshake, then the handler and the
// relay, until both directions have ended. It owns fd.
func (s *Server) spawnTLS(svc *service, counted slot, fd int, sa unix.Sockaddr) {
	accepted := time.Now()
	unhold := s.children.heldUntilReturn(&counted)
	defer func() {
		if unhold != nil {
			unhold()
		}
	}()
	f := os.NewFile(uintptr(fd), "tls") // closes fd; fd still names the connection for its addresses
	defer f.Close()
	s.metrics.Accepted(svc.Name)
	client, via := addrPort(sa), netip.AddrPort{}
	if svc.ProxyProtocol {
		var ok bool
		if client, via, ok = s.proxiedClient(svc, counted, fd, sa); !ok {
			return
		}
	}
	sl, perSource, refused := s.admitCounted(svc, counted, fd, client)
	if refused != "" {
		return
	}
	peer := "unix"
	if client.IsValid() {
		peer = client.String()
	}
	raw, err := net.FileConn(f)
	if err != nil {
		s.children.release(sl)
		svc.execFailed.log(s.log, slog.LevelError, "spawn failed", "service", svc.Name, "peer", peer, "stage", "tls", "err", err)
		return
	}
	defer raw.Close()
	defer s.holdConn(raw)()
	tc, err := s.handshake(svc, raw, accepted, peer)
	if err != nil {
		s.children.release(sl)
		return
	}
	t, err := newTLSSession(tc, svc.TLS.HandshakeTimeout)
	if err != nil {
		s.children.release(sl)
		svc.execFailed.log(s.log, slog.LevelError, "spawn failed", "service", svc.Name, "peer", peer, "stage", "tls", "err", err)
		return
	}
	defer t.plain.Close()
	err = s.startHandler(svc, sl, perSource, fd, sa, client, via, t, waitExec) // frees sl if it fails
	unix.Close(t.handlerFD)
	if err != nil {
		return
	}
	t.relayUntilDone()
	raw.Close()
	t.plain.Close()
	unhold()
	unhold = nil
	<-t.reaped
	s.metrics.TLSBytes(svc.Name, t.in.Load(), t.out.Load())
	s.children.logExit(t.handlerExit)
	s.children.release(t.handlerExit.slot) // the reaper left it to the relay
}

// relayUntilDone copies between the client and the handler, one
// goroutine per direction, until both directions have ended: each ends at
// its source's end of stream or error, and passes it on (the client's
// close_notify, or its connection's end, becomes EOF on the handler's
// stdin; the handler's end of output becomes close_notify), or at the
// deadlines handlerReaped sets.
func (t *tlsSession) relayUntilDone() {
	toHandler := make(chan struct{})
	go func() {
		defer close(toHandler)
		copyCounting(t.plain, t.conn, &t.in)
		t.plain.CloseWrite()
	}()
	if err := copyCounting(t.conn, t.plain, &t.out); err == nil {
		t.conn.CloseWrite() // close_notify
		if tcp, ok := t.conn.NetConn().(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
	} else {
		t.conn.SetReadDeadline(time.Now()) // the client is gone, or the handler: stop both ways
	}
	<-toHandler
}

// relayBuffers hold one TLS record's plaintext at most, so that each
// write to the client is one record.
var relayBuffers = sync.Pool{New: func() any { return new([16 << 10]byte) }}

// copyCounting copies from src to dst until src's end of stream (a nil
// error) or an error of either, adding what it wrote to n.
func copyCounting(dst io.Writer, src io.Reader, n *atomic.Int64) error {
	buf := relayBuffers.Get().(*[16 << 10]byte)
	defer relayBuffers.Put(buf)
	for {
		r, err := src.Read(buf[:])
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n.Add(int64(w))
			if werr != nil {
				return werr
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// tlsEnv adds to env what the handler knows of the TLS session, with
// mod_ssl's names and values: the protocol, the cipher suite (its IANA
// name), the server name the client asked for, the ALPN protocol, whether
// the session was resumed, and the client's certificate. A client
// certificate that did not verify never gets this far, so
// SSL_CLIENT_VERIFY is SUCCESS or NONE.
func tlsEnv(env []string, st tls.ConnectionState) []string {
	protocol := "TLSv1.2"
	if st.Version == tls.VersionTLS13 {
		protocol = "TLSv1.3"
	}
	resumed := "Initial"
	if st.DidResume {
		resumed = "Resumed"
	}
	env = append(env, "SSL_PROTOCOL="+protocol, "SSL_CIPHER="+tls.CipherSuiteName(st.CipherSuite),
		"SSL_SESSION_RESUMED="+resumed)
	if st.ServerName != "" {
		env = append(env, "SSL_TLS_SNI="+st.ServerName)
	}
	if st.NegotiatedProtocol != "" {
		env = append(env, "SSL_ALPN="+st.NegotiatedProtocol)
	}
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return append(env, "SSL_CLIENT_VERIFY=NONE")
	}
	c := st.PeerCertificates[0]
	sum := sha256.Sum256(c.Raw)
	return append(env,
		"SSL_CLIENT_VERIFY=SUCCESS",
		"SSL_CLIENT_S_DN="+envSafe(c.Subject.String()),
		"SSL_CLIENT_I_DN="+envSafe(c.Issuer.String()),
		"SSL_CLIENT_SERIAL="+strings.ToUpper(c.SerialNumber.Text(16)),
		"SSL_CLIENT_FINGERPRINT="+hex.EncodeToString(sum[:]),
		"SSL_CLIENT_V_END="+c.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT"),
	)
}

// envSafe escapes the control characters a certificate's names may hold
// as \xNN: NUL, which an environment variable cannot hold, and the rest,
// which could forge a variable for a handler that reads its environment
// line by line. A certificate that client_ca signed can still name its
// holder anything printable: handlers compare the whole DN.
func envSafe(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; isControl(rune(c)) {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
