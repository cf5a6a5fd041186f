package spawner

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/internal/vfork"
)

// Per-client rules (the rules key): the first rule, in the config's order,
// whose prefix holds the client decides. Matching costs one map look-up
// per distinct prefix length among the rules of the client's family, not
// one test per rule: each (masked) prefix maps to the lowest index of the
// rules written for it, and the lowest index over the client's prefixes
// is the first match. A rule's environment is built, and its exec
// template made, when the service is loaded.

// ruleSet is a service's rules, ready to match.
type ruleSet struct {
	lengths4, lengths6 []int                // the distinct prefix lengths, ascending
	first              map[netip.Prefix]int // a prefix's lowest rule index
	rules              []config.Rule
	handlers           []*handlerEnv // by rule index; nil: the service's own environment
	denies             bool          // some rule has deny = true
}

// handlerEnv is the environment a rule gives the handler, ready to start.
type handlerEnv struct {
	env  []string        // as service.env
	exec *vfork.Template // as service.exec
}

// newRuleSet indexes rules, or returns nil if there are none.
func newRuleSet(rules []config.Rule) *ruleSet {
	if len(rules) == 0 {
		return nil
	}
	rs := &ruleSet{first: make(map[netip.Prefix]int, len(rules)), rules: rules}
	for i, r := range rules {
		p := r.From.Masked()
		if _, seen := rs.first[p]; seen {
			continue
		}
		rs.first[p] = i
		lengths := &rs.lengths6
		if p.Addr().Is4() {
			lengths = &rs.lengths4
		}
		if !slices.Contains(*lengths, p.Bits()) {
			*lengths = append(*lengths, p.Bits())
		}
		rs.denies = rs.denies || r.Deny
	}
	slices.Sort(rs.lengths4)
	slices.Sort(rs.lengths6)
	return rs
}

// match returns the index of the first rule that holds a, or -1.
func (rs *ruleSet) match(a netip.Addr) int {
	a = a.Unmap().WithZone("")
	lengths := rs.lengths6
	if a.Is4() {
		lengths = rs.lengths4
	}
	best := -1
	for _, bits := range lengths {
		p, _ := a.Prefix(bits)
		if i, ok := rs.first[p]; ok && (best < 0 || i < best) {
			if best = i; i == 0 {
				break
			}
		}
	}
	return best
}

// denied reports whether the first rule that holds a refuses it.
func (rs *ruleSet) denied(a netip.Addr) bool {
	if !rs.denies {
		return false
	}
	i := rs.match(a)
	return i >= 0 && rs.rules[i].Deny
}

// handler returns the environment the first rule that holds a gives its
// handler, or nil for the service's own.
func (rs *ruleSet) handler(a netip.Addr) *handlerEnv {
	if rs.handlers == nil {
		return nil
	}
	if i := rs.match(a); i >= 0 {
		return rs.handlers[i]
	}
	return nil
}

// prepareRules builds, for each rule of p that changes the environment,
// the handler's environment (p.env, which holds env and pass_env, less the
// rule's unset, plus its env) and its exec template. Rules that end with
// the same environment share one.
func (s *Server) prepareRules(p *service) error {
	rs := p.rules
	if rs == nil {
		return nil
	}
	byEnv := map[string]*handlerEnv{}
	for i, r := range rs.rules {
		if len(r.Env) == 0 && len(r.Unset) == 0 {
			continue
		}
		env := ruleEnv(p.env, r)
		key := strings.Join(env, "\x00")
		h := byEnv[key]
		if h == nil {
			h = &handlerEnv{env: env}
			var err error
			if h.exec, err = s.execTemplate(p, env); err != nil {
				return err
			}
			byEnv[key] = h
		}
		if rs.handlers == nil {
			rs.handlers = make([]*handlerEnv, len(rs.rules))
		}
		rs.handlers[i] = h
	}
	return nil
}

// ruleEnv returns base, a sorted "KEY=value" list, less r.Unset and with
// r.Env set, sorted.
func ruleEnv(base []string, r config.Rule) []string {
	env := make([]string, 0, len(base)+len(r.Env))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(r.Unset, k) || slices.ContainsFunc(r.Env, func(set string) bool {
			return strings.HasPrefix(set, k+"=")
		}) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, r.Env...)
	slices.Sort(env)
	return env
}
