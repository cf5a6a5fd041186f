package spawner

import (
	"net/netip"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
)

func TestGateSourceGroupsIPv6ByPrefix(t *testing.T) {
	for _, c := range []struct {
		bits       int
		addr, want string
	}{
		{64, "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{64, "2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{48, "2001:db8:1:2::1", "2001:db8:1::/48"},
		{128, "2001:db8::5", "2001:db8::5/128"},
		{64, "::ffff:192.0.2.7", "192.0.2.7/32"},
		{64, "192.0.2.7", "192.0.2.7/32"},
	} {
		g := newGate(config.Limits{SourcePrefixV6: c.bits}, newDenyList(8, nil), false)
		if got := g.source(netip.MustParseAddr(c.addr)); got.String() != c.want {
			t.Errorf("source of %s with /%d: got %s; want %s", c.addr, c.bits, got, c.want)
		}
	}
}

func TestGateAddressRules(t *testing.T) {
	g := newGate(config.Limits{
		OnlyFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		NoAccess: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
	}, newDenyList(8, nil), false)
	now := time.Now()
	for addr, want := range map[string]string{
		"10.2.3.4":         "",
		"::ffff:10.2.3.4":  "",
		"10.1.2.3":         refusedAddress, // no_access wins
		"::ffff:10.1.2.3":  refusedAddress,
		"192.0.2.1":        refusedAddress,
		"2001:db8::1":      "",
		"2001:db9::1":      refusedAddress,
		"fe80::1%eth0":     refusedAddress,
		"2001:db8::1%eth0": "",
	} {
		if got := g.refuse(netip.MustParseAddr(addr), now); got != want {
			t.Errorf("refuse(%s): got %q; want %q", addr, got, want)
		}
	}
}

func TestSourceRatesPauseAndHeal(t *testing.T) {
	r := newSourceRates(config.Rate{N: 2, Per: time.Minute}, 10*time.Second, 64, maxSources)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	t0 := time.Now()
	steps := []struct {
		at   time.Duration
		src  netip.Prefix
		want bool
	}{
		{0, a, true}, {0, a, true},
		{time.Second, a, false}, // past the rate: paused for 10 s
		{time.Second, b, true},  // another source is not
		{5 * time.Second, a, false},
		{11 * time.Second, a, true}, // healed, with its full rate again
		{11 * time.Second, a, true},
		{12 * time.Second, a, false},
	}
	for i, s := range steps {
		if got := r.allow(s.src, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: allow(%s) at +%v: got %v; want %v", i, s.src, s.at, got, s.want)
		}
	}
}
