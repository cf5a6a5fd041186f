package spawner

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/time/rate"
)

// Admission: every decision is made before a child is started.
//
//   - Address rules (only_from, no_access), then the first per-client rule
//     that holds the client if it denies (rules.go), and a source's rate
//     limit refuse a connection: it is closed at once, without a child.
//   - A source on the deny list (denylist.go) is refused by every service.
//     A sensor refuses every connection and puts its source on the list;
//     so does a source's rate limit with deny_on_rate.
//   - A source over max_per_source is refused the same way.
//   - A service at max_connections, or goinetd at [server]
//     max_connections, stops accepting: new clients wait in the kernel's
//     backlog instead of being refused, and accepting resumes the moment a
//     child is reaped. A refusal would make clients retry and fail; a full
//     backlog is the same back-pressure a busy server gives, and a client
//     that gives up loses nothing.
//   - A service past its rate_limit stops accepting for rate_pause, then
//     resumes by itself.
//   - Connections whose descriptor goinetd keeps open itself (built-in
//     streams, forwarded connections with their target's and their splice
//     pipes, and PROXY protocol connections until their header is read)
//     share heldShare of goinetd's descriptor limit. Past it, the services
//     that hold them stop accepting too, so that the rest stays in
//     reserve: accept, spawn, the log, metrics and reload keep working,
//     and every other service keeps serving.
//
// A connection's slot is taken before its child is forked and freed when
// the child is reaped (or a built-in's connection ends), under the pid
// table's lock, so the counts are always those of live children.

// Reasons a connection is refused, as logs and metrics name them.
const (
	refusedAddress       = "address"
	refusedPerSource     = "per_source"
	refusedRatePerSource = "rate_per_source"
	refusedProxySource   = "proxy_source" // a PROXY header from outside proxy_from
	refusedProxyHeader   = "proxy_header" // a missing, malformed or slow PROXY header
	refusedForkBackoff   = "fork_backoff" // forks are failing: see noWaitLoop
	refusedLoad          = "load"         // the load average is above max_load: see load.go
	refusedRule          = "rule"         // a rule with deny = true: see rules.go
	refusedSensor        = "sensor"       // the service is a sensor: the source is now denied
	refusedDenied        = "denied"       // the source is on the deny list: see denylist.go
	refusedForward       = "forward"      // a forwarder's target refused or did not answer: see forward.go
	refusedTLS           = "tls"          // the TLS handshake failed or timed out: see tls.go
)

// refusalReasons are every reason a connection can be refused.
var refusalReasons = []string{refusedAddress, refusedPerSource, refusedRatePerSource,
	refusedProxySource, refusedProxyHeader, refusedForkBackoff, refusedLoad, refusedRule,
	refusedSensor, refusedDenied, refusedForward, refusedTLS}

// errPerSource refuses a connection whose source is at max_per_source.
var errPerSource = errors.New("source at max_per_source")

// gate is the admission state of one prepared service.
type gate struct {
	limits  config.Limits
	sources *sourceRates // rate_limit_per_source, or nil
	rules   *ruleSet     // the rules key, or nil
	deny    *denyList    // the Server's
	sensor  bool

	mu   sync.Mutex    // guards rate, which resume replaces
	rate *rate.Limiter // rate_limit, or nil

	refusals map[string]*limitedLog // by reason
	paused   limitedLog
}

func newGate(l config.Limits, deny *denyList, sensor bool) *gate {
	g := &gate{limits: l, deny: deny, sensor: sensor, refusals: map[string]*limitedLog{
		refusedAddress: {}, refusedPerSource: {}, refusedRatePerSource: {},
		refusedProxySource: {}, refusedProxyHeader: {}, refusedForkBackoff: {},
		refusedLoad: {},
		refusedRule: {}, refusedSensor: {}, refusedDenied: {}, refusedForward: {}, refusedTLS: {},
	}, rules: newRuleSet(l.Rules)}
	if l.RateLimit.N > 0 {
		g.rate = newLimiter(l.RateLimit)
	}
	if l.RateLimitPerSource.N > 0 {
		g.sources = newSourceRates(l.RateLimitPerSource, l.RatePause, l.SourcePrefixV6, maxSources)
	}
	return g
}

// newLimiter allows r.N events per r.Per, all N at once after a quiet
// period.
func newLimiter(r config.Rate) *rate.Limiter {
	return rate.NewLimiter(rate.Every(r.Per/time.Duration(r.N)), r.N)
}

// source is the key a client address is counted under: the address
// itself for IPv4, its SourcePrefixV6 network for IPv6.
func (g *gate) source(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := a.BitLen()
	if a.Is6() {
		bits = g.limits.SourcePrefixV6
	}
	p, _ := a.Prefix(bits)
	return p
}

// refuse returns why a connection from a must be refused, or "" to go on:
// the deny list, an address rule, a denying rule, a sensor, or its
// source's rate limit. A sensor, and a source past its rate with
// deny_on_rate, put the source on the deny list.
func (g *gate) refuse(a netip.Addr, now time.Time) string {
	a = a.Unmap().WithZone("")
	if !g.sensor && g.deny.has(a, now) {
		return refusedDenied
	}
	for _, p := range g.limits.NoAccess {
		if p.Contains(a) {
			return refusedAddress
		}
	}
	if len(g.limits.OnlyFrom) > 0 {
		allowed := false
		for _, p := range g.limits.OnlyFrom {
			if p.Contains(a) {
				allowed = true
				break
			}
		}
		if !allowed {
			return refusedAddress
		}
	}
	if g.rules != nil && g.rules.denied(a) {
		return refusedRule
	}
	if g.sensor {
		g.deny.add(g.source(a), now)
		return refusedSensor
	}
	if g.sources != nil && !g.sources.allow(g.source(a), now) {
		if g.limits.DenyOnRate {
			g.deny.add(g.source(a), now)
		}
		return refusedRatePerSource
	}
	return ""
}

// pause reports how long the service must stop accepting because it is
// past its rate limit, or 0. It takes a token for the connection about to
// be accepted.
func (g *gate) pause() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rate == nil || g.rate.Allow() {
		return 0
	}
	return g.limits.RatePause
}

// resume ends a pause: as with xinetd's cps, the pause is the whole
// penalty, and the service starts again with its full rate.
func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rate = newLimiter(g.limits.RateLimit)
}

// admit decides whether a connection of svc from peer (invalid for a unix
// peer) is served. If so it returns the connection's slot and the live
// count for its source; otherwise it logs the refusal and returns its
// reason. While svc or goinetd is full it waits, and returns "closed" if
// done is closed meanwhile.
func (s *Server) admit(svc *service, peer netip.AddrPort, done <-chan struct{}) (sl slot, perSource int, refused string) {
	var source netip.Prefix
	if peer.IsValid() {
		if reason := svc.refuse(peer.Addr(), time.Now()); reason != "" {
			s.refused(svc, noConn, peer.String(), reason)
			return slot{}, 0, reason
		}
		if svc.MaxPerSource > 0 {
			source = svc.source(peer.Addr())
		}
	}
	for {
		n, wait, err := s.children.take(svc, source)
		switch {
		case err != nil:
			s.refused(svc, noConn, peer.String(), refusedPerSource)
			return slot{}, 0, refusedPerSource
		case wait == nil:
			return slot{svc.Name, source, svc.heldFDs}, n, ""
		}
		select {
		case <-wait:
		case <-done:
			return slot{}, 0, "closed"
		}
	}
}

// admitCounted is admit for the connection fd, already counted against
// the limits by acceptCounted: it applies the address rules and per-source
// limits, and max_load, and on a refusal frees the count.
func (s *Server) admitCounted(svc *service, sl slot, fd int, peer netip.AddrPort) (_ slot, perSource int, refused string) {
	if svc.MaxLoad > 0 && hostLoad.over(svc.MaxLoad, time.Now()) {
		s.children.release(sl)
		name := "unix"
		if peer.IsValid() {
			name = peer.String()
		}
		s.refused(svc, fd, name, refusedLoad, "load", hostLoad.last(), "max_load", svc.MaxLoad)
		return slot{}, 0, refusedLoad
	}
	if !peer.IsValid() {
		return sl, 0, ""
	}
	if reason := svc.refuse(peer.Addr(), time.Now()); reason != "" {
		s.children.release(sl)
		s.refused(svc, fd, peer.String(), reason)
		return slot{}, 0, reason
	}
	if svc.MaxPerSource == 0 {
		return sl, 0, ""
	}
	withSource := slot{sl.service, svc.source(peer.Addr()), sl.held}
	n, err := s.children.addSource(svc, withSource)
	if err != nil {
		s.children.release(sl)
		s.refused(svc, fd, peer.String(), refusedPerSource)
		return slot{}, 0, refusedPerSource
	}
	return withSource, n, ""
}

// noConn is the descriptor of a refusal that has no connection to write
// to (a datagram, or a refusal decided before accept).
const noConn = -1

// refused logs a refusal of the connection fd (or noConn) at a bounded
// rate, with any attributes given, and writes svc's banner_refused to fd:
// every refusal of a connection comes here, and its caller closes fd.
func (s *Server) refused(svc *service, fd int, peer, reason string, attrs ...any) {
	if fd != noConn && svc.BannerRefused != nil {
		writeBanner(fd, svc.BannerRefused)
	}
	s.metrics.Refused(svc.Name, reason)
	svc.refusals[reason].log(s.log, slog.LevelInfo, "refused",
		append([]any{"service", svc.Name, "peer", peer, "reason", reason}, attrs...)...)
}

// trustedBalancer reports whether a is one of svc's proxy_from.
func (g *gate) trustedBalancer(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range g.limits.ProxyFrom {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// waitForRoom blocks while svc or goinetd is at max_connections, or svc is
// paused by its rate limit, so that new clients wait in the backlog. It
// returns false if l is closed meanwhile.
func (s *Server) waitForRoom(l *listener, svc *service) bool {
	counted := false
	for {
		if wait := s.children.room(svc); wait != nil {
			if !counted {
				s.metrics.Paused(svc.Name, "limit")
				counted = true
				if svc.heldFDs > 0 && s.children.heldFull() {
					s.heldFull.log(s.log, slog.LevelWarn, "held connections at their share of the descriptor limit; waiting",
						"service", svc.Name, "limit", s.children.maxHeld.Load())
				}
			}
			select {
			case <-wait:
				continue
			case <-l.done:
				return false
			}
		}
		if d := svc.pause(); d > 0 {
			s.metrics.Paused(svc.Name, "rate")
			svc.paused.log(s.log, slog.LevelWarn, "rate limit reached; pausing", "service", svc.Name,
				"rate_limit", svc.RateLimit.String(), "pause", d)
			t := time.NewTimer(d)
			select {
			case <-t.C:
				svc.resume()
			case <-l.done:
				t.Stop()
				return false
			}
			continue
		}
		return true
	}
}
