package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/goinetd/goinetd/builtin"
)

// Replies bounds what a UDP built-in sends back. A UDP source can be
// forged, so each reply may go to a victim of the sender's choosing.
type Replies struct {
	// Reflection is the operator's consent to serve a built-in that makes
	// a good reflector (builtin.Reflector: echo, chargen) over UDP.
	Reflection bool
	// Rate and Bytes bound the replies of the service, RatePerSource and
	// BytesPerSource those to one source (an address, or for IPv6 its
	// source_prefix_v6 network): replies, and bytes of replies, per
	// period, all of them at once after a quiet period. The zero Rate
	// means no bound.
	Rate, Bytes, RatePerSource, BytesPerSource Rate
}

// The reply budget of a UDP built-in unless its keys say otherwise. A
// client of a UDP built-in sends a datagram now and then; a source that
// gets more is a forged one, or a loop.
var (
	DefaultReplyRatePerSource  = Rate{N: 10, Per: time.Second}
	DefaultReplyBytesPerSource = Rate{N: 8 << 10, Per: time.Second}
	DefaultReplyRate           = Rate{N: 500, Per: time.Second}
	DefaultReplyBytes          = Rate{N: 256 << 10, Per: time.Second}
)

// replyKeys are the keys of Replies, each with its field and default; the
// opt-in, udp_reflection, is not among them.
func replyKeys(r *Replies) []struct {
	name  string
	field *Rate
	dflt  Rate
} {
	return []struct {
		name  string
		field *Rate
		dflt  Rate
	}{
		{keyUDPReplyRate, &r.Rate, DefaultReplyRate},
		{keyUDPReplyBytes, &r.Bytes, DefaultReplyBytes},
		{keyUDPReplyRatePerSource, &r.RatePerSource, DefaultReplyRatePerSource},
		{keyUDPReplyBytesPerSource, &r.BytesPerSource, DefaultReplyBytesPerSource},
	}
}

// parseRateOrZero is parseRate that also takes 0 (or "0"): no limit.
func parseRateOrZero(v any, dst *Rate) error {
	if v == int64(0) || v == "0" {
		*dst = Rate{}
		return nil
	}
	if s, ok := v.(string); !ok || parseRate(s, dst) != nil {
		return fmt.Errorf("must be a rate like \"10/s\" or \"600/m\", or 0 for no limit, not %s", describe(v))
	}
	return nil
}

// parseByteRateOrZero accepts a size per period, "8KiB/s" (sizes as in
// rlimits, periods as in a rate), or 0 (or "0"): no limit.
func parseByteRateOrZero(v any, dst *Rate) error {
	if v == int64(0) || v == "0" {
		*dst = Rate{}
		return nil
	}
	bad := fmt.Errorf("must be bytes per period like \"8KiB/s\" or \"1MiB/m\", or 0 for no limit, not %s", describe(v))
	s, ok := v.(string)
	if !ok {
		return bad
	}
	size, per, _ := strings.Cut(s, "/")
	n, err := parseSize(size)
	var period Rate
	if err != nil || n < 1 || n > 1<<31-1 || parseRate("1/"+per, &period) != nil {
		return bad
	}
	*dst = Rate{N: int(n), Per: period.Per}
	return nil
}

// validateReplies fills in the reply budget of a UDP built-in, requires
// the operator's consent for a reflector, and warns about one that answers
// beyond loopback. The keys are errors on any other service, and ignored
// there when inherited from [defaults].
func validateReplies(s *Service, w *where) {
	names := []string{keyUDPReflection}
	for _, k := range replyKeys(&s.Replies) {
		names = append(names, k.name)
		if !w.set(k.name) {
			*k.field = k.dflt
		}
	}
	if s.Protocol != UDP || s.Builtin == "" {
		for _, name := range names {
			if w.own(name) {
				w.add(name, "applies only to udp built-ins")
			}
		}
		s.Replies = Replies{}
		return
	}
	switch {
	case w.set(keyUDPReflection) && !w.own(keyUDPReflection):
		w.add(keyUDPReflection, "must be set in each service's own table: it accepts a risk for that service alone")
	case builtin.Reflector(s.Builtin) && !s.Replies.Reflection:
		what := "sends back whatever a datagram holds"
		if s.Builtin == "chargen" {
			what = "answers an empty datagram with up to 512 bytes"
		}
		w.add(keyBuiltin, "%q over udp %s, to whatever source the datagram names, and a source can be forged: "+
			"anyone can make it flood a victim (reflection and amplification) or bounce datagrams off another server; "+
			"set udp_reflection = true to serve it anyway, or serve it over tcp", s.Builtin, what)
	case s.Replies.Reflection && !builtin.Reflector(s.Builtin):
		w.add(keyUDPReflection, "does not apply to %q, whose reply is small and fixed: it needs no consent", s.Builtin)
	}
	if !s.Disabled && builtin.Answers(s.Builtin) && !s.Address.IsLoopback() {
		w.warn(keyAddress, "a udp built-in answers whatever source a datagram names, and sources can be forged: "+
			"beyond loopback, anyone can make it send its replies to a victim (within its udp_reply_ budgets); "+
			"bind it to 127.0.0.1 or ::1, or keep it behind a firewall")
	}
}
