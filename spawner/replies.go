package spawner

import (
	"hash/maphash"
	"log/slog"
	"math/bits"
	"net/netip"
	"time"

	"github.com/goinetd/goinetd/builtin"
	"github.com/goinetd/goinetd/config"
)

// Which datagrams of a UDP built-in are answered.
//
// A UDP source can be forged, so every reply may go to a victim of the
// sender's choosing (reflection), be larger than the request
// (amplification), or land on a server that answers it back (a loop). A
// datagram is answered only if
//
//   - builtin.RefuseSource accepts its source: not a port below 1024, not
//     a well-known port of a service that answers datagrams itself, not an
//     address no sender has;
//   - its source port is not one goinetd serves UDP on, on any address
//     (ownPorts): a datagram "from" one of goinetd's own services, the same
//     one included, would start a loop inside goinetd. The address is not
//     compared: a wildcard bind is reachable at every local address, and
//     another host running the same config serves the same ports;
//   - the reply fits the budgets of its source and of its service
//     (udp_reply_*): a loop with a server on any other port dies at its
//     first dropped reply, and what goinetd sends to a victim is bounded.
//
// The rest are dropped, counted in goinetd_udp_unanswered_total and logged
// at a bounded rate.

// Why a datagram of a UDP built-in is not answered, besides the reasons of
// builtin.RefuseSource.
const (
	unansweredOwnPort       = "own_port"
	unansweredSourceBudget  = "source_budget"
	unansweredServiceBudget = "service_budget"
)

// refuseReplyTo returns why no UDP built-in may answer a datagram from
// peer, whatever it holds, or "" if one may, within its budgets.
func (s *Server) refuseReplyTo(peer netip.AddrPort) string {
	if reason := builtin.RefuseSource(peer); reason != "" {
		return reason
	}
	if s.udpPorts.Load().has(peer.Port()) {
		return unansweredOwnPort
	}
	return ""
}

// ownPorts is the set of ports goinetd serves UDP on.
type ownPorts [65536 / 64]uint64

// udpPortsOf returns the UDP ports of listeners.
func udpPortsOf(listeners map[string]*listener) *ownPorts {
	var p ownPorts
	for _, l := range listeners {
		if l.bound.Protocol == config.UDP {
			p[l.bound.Port/64] |= 1 << (l.bound.Port % 64)
		}
	}
	return &p
}

func (p *ownPorts) has(port uint16) bool { return p != nil && p[port/64]&(1<<(port%64)) != 0 }

// replyGate holds the reply budgets of one prepared UDP built-in. It
// belongs to the service's packet loop, the only goroutine that uses it:
// it has no lock.
type replyGate struct {
	service replyBudget // udp_reply_rate and udp_reply_bytes
	limits  replyLimits
	sources *sourceBudgets // nil if both per-source budgets are lifted

	logs map[string]*limitedLog // by reason
}

func newReplyGate(r config.Replies) *replyGate {
	g := &replyGate{
		limits: replyLimits{
			rate: newLimit(r.Rate), bytes: newLimit(r.Bytes),
			rateSource: newLimit(r.RatePerSource), bytesSource: newLimit(r.BytesPerSource),
		},
		logs: make(map[string]*limitedLog),
	}
	for _, reason := range []string{builtin.RefusedSourceAddress, builtin.RefusedSourcePort, builtin.RefusedReflectorPort,
		unansweredOwnPort, unansweredSourceBudget, unansweredServiceBudget} {
		g.logs[reason] = &limitedLog{}
	}
	if g.limits.rateSource.n > 0 || g.limits.bytesSource.n > 0 {
		g.sources = &sourceBudgets{seed: maphash.MakeSeed()}
	}
	return g
}

// replyLimits are the budgets of a replyGate, as limits.
type replyLimits struct{ rate, bytes, rateSource, bytesSource limit }

// spend charges a reply of size bytes to source (a client's address as
// the service's admission counts it: see gate.source) and to the service,
// if it fits all four budgets, and returns "". Otherwise it charges
// nothing and returns the reason, with the key of the budget it exceeds.
// A reply larger than a bytes budget's burst never fits.
func (g *replyGate) spend(source netip.Prefix, size int, now time.Time) (reason, key string) {
	t := sinceOrigin(now)
	var src *replyBudget
	if g.sources != nil {
		src = g.sources.budget(source, t)
		if ok, which := src.fits(g.limits.rateSource, g.limits.bytesSource, size, t); !ok {
			return unansweredSourceBudget, [...]string{"udp_reply_rate_per_source", "udp_reply_bytes_per_source"}[which]
		}
	}
	if ok, which := g.service.fits(g.limits.rate, g.limits.bytes, size, t); !ok {
		return unansweredServiceBudget, [...]string{"udp_reply_rate", "udp_reply_bytes"}[which]
	}
	if src != nil {
		src.spend(g.limits.rateSource, g.limits.bytesSource, size, t)
	}
	g.service.spend(g.limits.rate, g.limits.bytes, size, t)
	return "", ""
}

// limit is a config.Rate as the generic cell rate algorithm sees it: each
// unit costs per/n of time, and a budget may owe at most per (n units at
// once). n == 0 means no limit.
type limit struct{ n, per uint64 }

func newLimit(r config.Rate) limit {
	if r.N <= 0 || r.Per <= 0 {
		return limit{}
	}
	return limit{uint64(r.N), uint64(r.Per)}
}

// after returns when a budget that is owed until tat (the moment it is
// whole again, GCRA's theoretical arrival time) is owed until once units
// are spent at now, and whether that fits.
func (l limit) after(tat, now time.Duration, units int) (time.Duration, bool) {
	if l.n == 0 {
		return tat, true
	}
	owed := uint64(max(tat-now, 0)) // at most per: only what fits is spent
	hi, lo := bits.Mul64(uint64(units), l.per)
	if hi >= l.n {
		return tat, false // units*per/n does not fit in 64 bits, nor in per
	}
	cost, _ := bits.Div64(hi, lo, l.n)
	if owed > l.per || cost > l.per-owed {
		return tat, false
	}
	return now + time.Duration(owed+cost), true
}

// replyBudget is what a source or a service is owed on its two limits,
// replies and bytes: when each is whole again, in time since clockOrigin.
type replyBudget struct{ replies, bytes time.Duration }

// fits reports whether one reply of size bytes fits, and if not which
// limit it exceeds: 0 for replies, 1 for bytes.
func (b *replyBudget) fits(replies, bytes limit, size int, now time.Duration) (bool, int) {
	if _, ok := replies.after(b.replies, now, 1); !ok {
		return false, 0
	}
	if _, ok := bytes.after(b.bytes, now, size); !ok {
		return false, 1
	}
	return true, 0
}

// spend charges one reply of size bytes, which fits.
func (b *replyBudget) spend(replies, bytes limit, size int, now time.Duration) {
	b.replies, _ = replies.after(b.replies, now, 1)
	b.bytes, _ = bytes.after(b.bytes, now, size)
}

// whole reports whether nothing is owed at now: forgetting b loses nothing.
func (b *replyBudget) whole(now time.Duration) bool { return b.replies <= now && b.bytes <= now }

// The per-source table is fixed: sourceSets sets of sourceWays entries, a
// source's set chosen by a keyed hash, so that a flood of forged addresses
// costs no memory and a sender cannot aim at a given source's set.
const (
	sourceSets = 1024
	sourceWays = 4
)

// sourceBudgets is the per-source budget of one service, in a table of
// fixed size: about 200 KiB, pointer-free.
type sourceBudgets struct {
	seed maphash.Seed
	sets [sourceSets][sourceWays]sourceEntry
}

type sourceEntry struct {
	key    [16]byte // the source's address (IPv4 as IPv4-mapped), masked to its prefix
	inUse  bool
	used   time.Duration // last looked up, for eviction
	budget replyBudget
}

// budget returns source's budget, making room for a new source if need
// be. A new source takes an entry that is free or whole (which forgets
// nothing); if every entry of its set is owed something, it takes the
// least recently used one and inherits what that source owed. So a table
// under pressure never hands out a budget that was not there: a flood of
// new sources cannot buy a source a fresh budget, only share one.
func (t *sourceBudgets) budget(source netip.Prefix, now time.Duration) *replyBudget {
	key := source.Addr().As16()
	set := &t.sets[maphash.Bytes(t.seed, key[:])%sourceSets]
	for i := range set {
		if e := &set[i]; e.inUse && e.key == key {
			e.used = now
			return &e.budget
		}
	}
	oldest := &set[0]
	for i := range set {
		e := &set[i]
		if !e.inUse || e.budget.whole(now) {
			*e = sourceEntry{key: key, inUse: true, used: now}
			return &e.budget
		}
		if e.used < oldest.used {
			oldest = e
		}
	}
	oldest.key, oldest.used = key, now
	return &oldest.budget
}

// unanswered counts and logs, at a bounded rate, a datagram from peer that
// svc does not answer. attrs name the budget exceeded, if any.
func (s *Server) unanswered(svc *service, peer netip.AddrPort, reason string, attrs ...any) {
	s.metrics.Unanswered(svc.Name, reason)
	svc.replies.logs[reason].log(s.log, slog.LevelInfo, "datagram not answered",
		append([]any{"service", svc.Name, "peer", peer.String(), "reason", reason}, attrs...)...)
}
