package metrics

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
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
	e.addr, e.srv = addr, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go e.srv.Serve(ln)
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
