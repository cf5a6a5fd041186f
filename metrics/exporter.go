package metrics

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// The metrics server's bounds. A scraper makes one short request every
// few seconds; anything else that holds a connection is cut off, so that
// the endpoint can never take the descriptors goinetd's services need.
const (
	// MaxConnections is how many connections the endpoint serves at
	// once; more wait in the listen backlog, unaccepted, holding no
	// descriptor of goinetd's.
	MaxConnections = 16
	// IdleTimeout closes a kept-alive connection that sends no new
	// request. A request must arrive within readTimeout and its response
	// be written within writeTimeout.
	IdleTimeout  = 5 * time.Second
	readTimeout  = 5 * time.Second
	writeTimeout = 10 * time.Second
)

// Exporter serves Metrics at /metrics on the address [server] metrics
// names, and moves when a reload changes it.
type Exporter struct {
	m    *Metrics
	log  *slog.Logger
	addr string
	srv  *http.Server
}

// NewExporter returns an Exporter of m that serves nothing yet.
func NewExporter(m *Metrics, log *slog.Logger) *Exporter {
	return &Exporter{m: m, log: log}
}

// Serve starts serving on addr, after stopping the server on another
// address; an empty addr only stops it, and the current addr changes
// nothing. It fails, serving nothing, if addr cannot be bound.
func (e *Exporter) Serve(addr string) error {
	if addr == e.addr {
		return nil
	}
	e.Close()
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", e.m.Handler())
	e.addr, e.srv = addr, &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       IdleTimeout,
		// net/http's own messages (accept errors, panics) as records of
		// goinetd's log, in its format.
		ErrorLog: slog.NewLogLogger(e.log.With("metrics", ln.Addr().String()).Handler(), slog.LevelWarn),
	}
	go e.srv.Serve(netutil.LimitListener(ln, MaxConnections))
	e.log.Info("serving metrics", "address", ln.Addr().String())
	return nil
}

// Close stops serving.
func (e *Exporter) Close() {
	if e.srv != nil {
		e.srv.Close()
		e.addr, e.srv = "", nil
	}
}
