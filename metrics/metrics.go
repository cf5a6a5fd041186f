// Package metrics holds goinetd's Prometheus metrics and serves them over
// HTTP.
//
// Every method is safe on a nil *Metrics and then does nothing, so the
// spawner counts unconditionally and a config without [server] metrics
// costs nothing but a nil check.
package metrics

import (
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are goinetd's metrics, in a registry of their own.
type Metrics struct {
	reg *prometheus.Registry

	accepted      *prometheus.CounterVec
	refused       *prometheus.CounterVec
	paused        *prometheus.CounterVec
	spawnFailures *prometheus.CounterVec
	running       *prometheus.GaugeVec
	exits         *prometheus.CounterVec
	duration      *prometheus.HistogramVec

	serviceUp     *prometheus.GaugeVec
	buildInfo     *prometheus.GaugeVec
	udpReplies    *prometheus.CounterVec
	udpReplyBytes *prometheus.CounterVec
	udpUnanswered *prometheus.CounterVec

	tlsHandshakes       *prometheus.CounterVec
	tlsHandshakeSeconds *prometheus.HistogramVec
	tlsBytes            *prometheus.CounterVec

	reloads        *prometheus.CounterVec
	lastReload     prometheus.Gauge
	lastReloadGood prometheus.Gauge

	deniedSources atomic.Pointer[func() int] // DeniedSources's count; nil: 0
	denyEvictions prometheus.Counter
}

// New returns metrics registered with a fresh registry, which also holds
// the Go runtime's and the process's own metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_connections_accepted_total",
			Help: "Connections accepted (a wait-mode service: handlers started; a UDP built-in: datagrams received), before admission.",
		}, []string{"service"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_connections_refused_total",
			Help: "Connections closed without a handler, by reason: address (only_from, no_access), per_source (max_per_source), rate_per_source (rate_limit_per_source), proxy_source (not from proxy_from), proxy_header (a bad PROXY header), fork_backoff (forks are failing), load (the load average is above max_load), rule (a rule with deny = true), sensor (the service is a sensor: the source is now denied), denied (the source touched a sensor or tripped deny_on_rate less than deny_time ago), forward (a forwarder's target refused or did not answer), tls (the TLS handshake failed or timed out).",
		}, []string{"service", "reason"}),
		paused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_accept_pauses_total",
			Help: "Times a service stopped accepting, leaving clients in the backlog, by reason: limit (max_connections), rate (rate_limit).",
		}, []string{"service", "reason"}),
		spawnFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_spawn_failures_total",
			Help: "Handlers that could not be started, by stage: fork (out of processes or memory), chdir (the workdir is gone or closed to the handler's user) or exec.",
		}, []string{"service", "stage"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goinetd_children_running",
			Help: "Handler processes alive now.",
		}, []string{"service"}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_child_exits_total",
			Help: "Handlers reaped, by outcome: success (exit 0), failure (another exit status), signal (killed by a signal), timeout (ended by its timeout).",
		}, []string{"service", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "goinetd_handler_duration_seconds",
			Help:    "How long connections lasted, from spawn to reap (built-ins: from accept to close).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12), // 1 ms to about 70 min
		}, []string{"service"}),
		serviceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goinetd_service_up",
			Help: "Whether a service is listening (1), or is not: its bind failed and is being retried, or it pauses after a resource error (accept failing, forks failing) (0).",
		}, []string{"service"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goinetd_build_info",
			Help: "Always 1; its labels are goinetd's version and the Go version it was built with.",
		}, []string{"version", "goversion"}),
		udpReplies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_udp_replies_total",
			Help: "Datagrams a UDP built-in sent back.",
		}, []string{"service"}),
		udpReplyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_udp_reply_bytes_total",
			Help: "Bytes of the datagrams a UDP built-in sent back, UDP payload only.",
		}, []string{"service"}),
		udpUnanswered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_udp_unanswered_total",
			Help: "Datagrams a UDP built-in that answers did not answer, by reason: source_address (no sender has it), source_port (below 1024), reflector_port (a well-known port of a service that answers datagrams), own_port (a port goinetd serves UDP on), source_budget (udp_reply_rate_per_source or udp_reply_bytes_per_source), service_budget (udp_reply_rate or udp_reply_bytes).",
		}, []string{"service", "reason"}),
		tlsHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_tls_handshakes_total",
			Help: "TLS handshakes, by outcome: ok, failed (refused as tls: a bad or plaintext client, a client certificate that did not verify), timeout (not finished within handshake_timeout).",
		}, []string{"service", "outcome"}),
		tlsHandshakeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "goinetd_tls_handshake_seconds",
			Help:    "How long TLS handshakes took, whatever their outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9), // 0.5 ms to about 33 s
		}, []string{"service"}),
		tlsBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_tls_bytes_total",
			Help: "Plaintext bytes relayed between TLS clients and their handlers, by direction: in (client to handler), out (handler to client); counted when a connection ends.",
		}, []string{"service", "direction"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goinetd_config_reloads_total",
			Help: "Config reloads, by result: success or failure (the config was invalid and the old one kept serving).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "goinetd_config_last_reload_success_timestamp_seconds",
			Help: "When the config last loaded successfully, at startup or on reload, in Unix seconds.",
		}),
		lastReloadGood: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "goinetd_config_last_reload_successful",
			Help: "Whether the last config load succeeded (1) or failed (0).",
		}),
		denyEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "goinetd_deny_evictions_total",
			Help: "Denied sources dropped from the full deny list (sensor, deny_on_rate) before their deny_time ended, the oldest first.",
		}),
	}
	denied := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "goinetd_denied_sources",
		Help: "Sources every service refuses now (reason denied): they touched a sensor, or tripped rate_limit_per_source with deny_on_rate, less than deny_time ago.",
	}, func() float64 {
		if f := m.deniedSources.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	m.reg.MustRegister(m.denyEvictions, denied)
	m.reg.MustRegister(m.accepted, m.refused, m.paused, m.spawnFailures, m.running, m.exits, m.duration,
		m.serviceUp, m.buildInfo, m.udpReplies, m.udpReplyBytes, m.udpUnanswered,
		m.tlsHandshakes, m.tlsHandshakeSeconds, m.tlsBytes,
		m.reloads, m.lastReload, m.lastReloadGood,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Accepted counts a connection of service.
func (m *Metrics) Accepted(service string) {
	if m != nil {
		m.accepted.WithLabelValues(service).Inc()
	}
}

// Refused counts a connection of service closed without a handler.
func (m *Metrics) Refused(service, reason string) {
	if m != nil {
		m.refused.WithLabelValues(service, reason).Inc()
	}
}

// Paused counts a pause in accepting on service.
func (m *Metrics) Paused(service, reason string) {
	if m != nil {
		m.paused.WithLabelValues(service, reason).Inc()
	}
}

// SpawnFailed counts a handler of service that could not be started.
func (m *Metrics) SpawnFailed(service, stage string) {
	if m != nil {
		m.spawnFailures.WithLabelValues(service, stage).Inc()
	}
}

// Started counts a handler of service that is now running.
func (m *Metrics) Started(service string) {
	if m != nil {
		m.running.WithLabelValues(service).Inc()
	}
}

// ExecFailedLate records that a handler of service counted by Started
// could not start after all, at stage (chdir or exec): goinetd started it
// without waiting for its exec, and learnt of the failure when it reaped
// it.
func (m *Metrics) ExecFailedLate(service, stage string) {
	if m != nil {
		m.running.WithLabelValues(service).Dec()
		m.spawnFailures.WithLabelValues(service, stage).Inc()
	}
}

// Exited records a reaped handler of service: its outcome and how long it
// ran.
func (m *Metrics) Exited(service, outcome string, d time.Duration) {
	if m != nil {
		m.running.WithLabelValues(service).Dec()
		m.exits.WithLabelValues(service, outcome).Inc()
		m.duration.WithLabelValues(service).Observe(d.Seconds())
	}
}

// Ended records a built-in service's connection that lasted d.
func (m *Metrics) Ended(service string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(service).Observe(d.Seconds())
	}
}

// The label values of the series Declare makes, as the Help texts above
// name them.
var (
	spawnStages  = []string{"fork", "chdir", "exec"}
	exitOutcomes = []string{"success", "failure", "signal", "timeout"}
	pauseReasons = []string{"limit", "rate"}
)

// Declare makes the series of service exist at 0 before its first event,
// so that rate() and absent() work from the start: connections accepted,
// refused for each of refusals, accept pauses and durations, and for a
// service that starts programs, its spawn failures, running children and
// exits.
func (m *Metrics) Declare(service string, program bool, refusals []string) {
	if m == nil {
		return
	}
	m.accepted.WithLabelValues(service)
	m.duration.WithLabelValues(service)
	for _, r := range refusals {
		m.refused.WithLabelValues(service, r)
	}
	for _, r := range pauseReasons {
		m.paused.WithLabelValues(service, r)
	}
	if !program {
		return
	}
	m.running.WithLabelValues(service)
	for _, st := range spawnStages {
		m.spawnFailures.WithLabelValues(service, st)
	}
	for _, o := range exitOutcomes {
		m.exits.WithLabelValues(service, o)
	}
}

// DeniedSources makes goinetd_denied_sources report count(), read when
// the metrics are.
func (m *Metrics) DeniedSources(count func() int) {
	if m != nil {
		m.deniedSources.Store(&count)
	}
}

// DenyEvicted counts a denied source dropped from the full deny list.
func (m *Metrics) DenyEvicted() {
	if m != nil {
		m.denyEvictions.Inc()
	}
}

// BuildInfo records goinetd's version and the Go version it was built
// with.
func (m *Metrics) BuildInfo(version string) {
	if m != nil {
		m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	}
}

// ServiceUp records whether service is listening.
func (m *Metrics) ServiceUp(service string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.serviceUp.WithLabelValues(service).Set(v)
}

// ServiceRemoved drops every series of a service that is no longer
// configured.
func (m *Metrics) ServiceRemoved(service string) {
	if m != nil {
		for _, v := range []interface {
			DeletePartialMatch(prometheus.Labels) int
		}{m.accepted, m.refused, m.paused, m.spawnFailures, m.running, m.exits, m.duration,
			m.serviceUp, m.udpReplies, m.udpReplyBytes, m.udpUnanswered,
			m.tlsHandshakes, m.tlsHandshakeSeconds, m.tlsBytes} {
			v.DeletePartialMatch(prometheus.Labels{"service": service})
		}
	}
}

// DeclareTLS makes the TLS series of service exist at 0.
func (m *Metrics) DeclareTLS(service string) {
	if m == nil {
		return
	}
	for _, o := range []string{"ok", "failed", "timeout"} {
		m.tlsHandshakes.WithLabelValues(service, o)
	}
	m.tlsHandshakeSeconds.WithLabelValues(service)
	for _, d := range []string{"in", "out"} {
		m.tlsBytes.WithLabelValues(service, d)
	}
}

// TLSHandshake counts a TLS handshake of service, its outcome (ok,
// failed, timeout) and how long it took.
func (m *Metrics) TLSHandshake(service, outcome string, d time.Duration) {
	if m != nil {
		m.tlsHandshakes.WithLabelValues(service, outcome).Inc()
		m.tlsHandshakeSeconds.WithLabelValues(service).Observe(d.Seconds())
	}
}

// TLSBytes counts the plaintext a TLS connection of service relayed: in
// from the client, out from the handler.
func (m *Metrics) TLSBytes(service string, in, out int64) {
	if m != nil {
		m.tlsBytes.WithLabelValues(service, "in").Add(float64(in))
		m.tlsBytes.WithLabelValues(service, "out").Add(float64(out))
	}
}

// Replied counts a reply of size bytes that the UDP built-in service sent.
func (m *Metrics) Replied(service string, size int) {
	if m != nil {
		m.udpReplies.WithLabelValues(service).Inc()
		m.udpReplyBytes.WithLabelValues(service).Add(float64(size))
	}
}

// Unanswered counts a datagram that the UDP built-in service did not
// answer, and why.
func (m *Metrics) Unanswered(service, reason string) {
	if m != nil {
		m.udpUnanswered.WithLabelValues(service, reason).Inc()
	}
}

// Loaded records a config load: at startup or on reload (reload true),
// successful or not.
func (m *Metrics) Loaded(reload, ok bool) {
	if m == nil {
		return
	}
	if reload {
		result := "success"
		if !ok {
			result = "failure"
		}
		m.reloads.WithLabelValues(result).Inc()
	}
	if ok {
		m.lastReload.SetToCurrentTime()
		m.lastReloadGood.Set(1)
	} else {
		m.lastReloadGood.Set(0)
	}
}
