package spawner

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/goinetd/goinetd/config"
)

func rule(from string) config.Rule {
	return config.Rule{From: netip.MustParsePrefix(from)}
}

// linearMatch is the definition the index must agree with: the first rule
// in order that holds a.
func linearMatch(rules []config.Rule, a netip.Addr) int {
	a = a.Unmap().WithZone("")
	for i, r := range rules {
		if r.From.Contains(a) {
			return i
		}
	}
	return -1
}

func TestRulesFirstMatchInOrder(t *testing.T) {
	rules := []config.Rule{
		rule("10.1.2.0/24"), rule("10.0.0.0/8"), rule("10.1.2.3/32"),
		rule("2001:db8::/32"), rule("2001:db8:1::/48"), rule("0.0.0.0/0"),
		rule("10.0.0.0/8"), rule("::/0"),
	}
	rs := newRuleSet(rules)
	for _, s := range []string{"10.1.2.3", "10.9.9.9", "::ffff:10.1.2.3", "192.0.2.1",
		"2001:db8:1::1", "2001:db9::1", "fe80::1%eth0", "::ffff:192.0.2.1"} {
		a := netip.MustParseAddr(s)
		if got, want := rs.match(a), linearMatch(rules, a); got != want {
			t.Errorf("match(%s): got rule %d; want %d", s, got, want)
		}
	}
	if got := newRuleSet(rules[:3]).match(netip.MustParseAddr("::1")); got != -1 {
		t.Errorf("match(::1) among IPv4 rules: got rule %d; want -1", got)
	}
	if newRuleSet(nil) != nil {
		t.Errorf("newRuleSet(nil): got a set; want nil, so that a service without rules pays one nil check")
	}
}

func TestRuleEnvUnsetsAndSets(t *testing.T) {
	base := []string{"A=1", "LANG=C", "PATH=/bin"}
	got := ruleEnv(base, config.Rule{Env: []string{"A=2", "Z="}, Unset: []string{"LANG"}})
	want := []string{"A=2", "PATH=/bin", "Z="}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ruleEnv: got %q; want %q", got, want)
	}
}

// manyRules returns n rules: distinct IPv4 /24s or IPv6 /48s, with a few
// shorter prefixes among them, none holding the benchmark's client.
func manyRules(n int, v6 bool) []config.Rule {
	rules := make([]config.Rule, 0, n)
	for i := range n {
		var p string
		switch {
		case v6 && i%100 == 99:
			p = fmt.Sprintf("2001:db8:%x::/40", i&0xff)
		case v6:
			p = fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)
		case i%100 == 99:
			p = fmt.Sprintf("10.%d.0.0/16", i%256)
		default:
			p = fmt.Sprintf("10.%d.%d.0/24", i>>8&0xff, i&0xff)
		}
		rules = append(rules, rule(p))
	}
	return rules
}

func BenchmarkRuleMatch(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		for _, n := range []int{10, 10000} {
			rules := manyRules(n, v6)
			client := netip.MustParseAddr("192.0.2.1")
			hit := netip.MustParseAddr("10.0.5.7")
			if v6 {
				client = netip.MustParseAddr("2001:db9::1")
				hit = netip.MustParseAddr("2001:db8:0:5::7")
			}
			family := map[bool]string{false: "ipv4", true: "ipv6"}[v6]
			rs := newRuleSet(rules)
			for _, c := range []struct {
				name string
				a    netip.Addr
			}{{"miss", client}, {"hit", hit}} {
				b.Run(fmt.Sprintf("%s/%d/%s/index", family, n, c.name), func(b *testing.B) {
					for b.Loop() {
						rs.match(c.a)
					}
				})
				b.Run(fmt.Sprintf("%s/%d/%s/linear", family, n, c.name), func(b *testing.B) {
					for b.Loop() {
						linearMatch(rules, c.a)
					}
				})
			}
		}
	}
}
