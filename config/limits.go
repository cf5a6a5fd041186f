package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// parseCount accepts an integer of at least least. For a limit, least is
// 0, which lifts it.
func parseCount(v any, dst *int, least int64) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("must be an integer, not %s", describe(v))
	}
	if n < least || n > 1<<31-1 {
		return fmt.Errorf("%d is out of range %d-%d", n, least, 1<<31-1)
	}
	*dst = int(n)
	return nil
}

// parseLoad takes a load average, an integer or a float, 0 or more.
func parseLoad(v any, dst *float64) error {
	var f float64
	switch n := v.(type) {
	case int64:
		f = float64(n)
	case float64:
		f = n
	default:
		return fmt.Errorf("must be a number, a load average such as 8.0 (0: no limit), not %s", describe(v))
	}
	if !(f >= 0 && f <= 1e6) { // also NaN
		return fmt.Errorf("%v is out of range 0-1000000", f)
	}
	*dst = f
	return nil
}

func parsePrefixLength(v any, dst *int) error {
	n, ok := v.(int64)
	if !ok || n < 0 || n > 128 {
		if ok {
			return fmt.Errorf("%d is out of range 0-128", n)
		}
		return fmt.Errorf("must be an integer (0-128), not %s", describe(v))
	}
	*dst = int(n)
	return nil
}

// parsePrefixes accepts addresses and CIDR prefixes, IPv4 or IPv6. An
// IPv4-mapped IPv6 one is stored as IPv4, as clients are matched.
func parsePrefixes(v any, dst *[]netip.Prefix) error {
	var items []string
	if err := parseStrings(v, &items); err != nil {
		return err
	}
	out := make([]netip.Prefix, 0, len(items))
	var bad []error
	for i, s := range items {
		p, err := parsePrefix(s)
		if err != nil {
			bad = append(bad, fmt.Errorf("item %d: %w", i+1, err))
			continue
		}
		out = append(out, p)
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	*dst = out
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR prefix", s)
		}
		a = a.Unmap().WithZone("")
		if err := xinetdWildcard(s, a); err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR prefix", s)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// xinetdWildcard refuses an IPv4 address, written without a prefix length,
// that xinetd reads as a network: one ending in zero bytes (10.0.0.0 is
// 10.0.0.0/8 there) and 0.0.0.0 (everyone). goinetd would read it as one
// host, which a config written for xinetd does not mean; the error asks
// for the prefix either way.
func xinetdWildcard(s string, a netip.Addr) error {
	if !a.Is4() {
		return nil
	}
	b := a.As4()
	zeros := 0
	for i := 3; i >= 0 && b[i] == 0; i-- {
		zeros++
	}
	switch zeros {
	case 0:
		return nil
	case 4:
		return fmt.Errorf("%q is one address here, which no client has, while xinetd reads it as everyone: write \"0.0.0.0/0\" (or leave the list out)", s)
	}
	return fmt.Errorf("%q is one host here, while xinetd reads it as the network %s/%d: write \"%s/%d\" for the network or \"%s/32\" for the host", s, s, 32-8*zeros, s, 32-8*zeros, s)
}

// parseDuration accepts a positive duration such as "10s".
func parseDuration(v any, dst *time.Duration) error { return duration(v, dst, false) }

// parseGrace accepts a duration of zero or more.
func parseGrace(v any, dst *time.Duration) error { return duration(v, dst, true) }

func duration(v any, dst *time.Duration, zero bool) error {
	example, kind := `"10s" or "5m"`, "a positive duration"
	if zero {
		example, kind = `"10s" or "0s"`, "a duration"
	}
	s, err := parseString(v)
	if err != nil {
		return fmt.Errorf("must be a duration like %s, not %s", example, describe(v))
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d == 0 && !zero {
		return fmt.Errorf("%q is not %s like %s", s, kind, example)
	}
	*dst = d
	return nil
}

// parseRate accepts "N/s", "N/m", "N/h" or "N/DURATION" ("5/10s").
func parseRate(v any, dst *Rate) error {
	s, err := parseString(v)
	if err != nil {
		return fmt.Errorf("must be a rate like \"50/s\" or \"600/m\", not %s", describe(v))
	}
	count, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("%q is not a rate like \"50/s\" or \"600/m\"", s)
	}
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		if d, err = time.ParseDuration(per); err != nil || d <= 0 {
			return fmt.Errorf("%q is not a rate like \"50/s\" or \"600/m\"", s)
		}
	}
	*dst = Rate{N: n, Per: d}
	return nil
}

// parseLogRate accepts a rate like parseRate, whose count is a size
// ("32KiB/s") with bytes, or 0 for no limit ("0", 0 or "0/s").
func parseLogRate(v any, dst *Rate, bytes bool) error {
	example := `"100/s"`
	if bytes {
		example = `"32KiB/s"`
	}
	if n, ok := v.(int64); ok && n == 0 {
		*dst = Rate{}
		return nil
	}
	s, err := parseString(v)
	if err != nil {
		return fmt.Errorf("must be a rate like %s, or 0 for no limit, not %s", example, describe(v))
	}
	if s == "0" {
		*dst = Rate{}
		return nil
	}
	count, per, _ := strings.Cut(s, "/")
	var period Rate
	var n uint64
	if bytes {
		n, err = parseSize(count)
	} else {
		n, err = strconv.ParseUint(count, 10, 64)
	}
	if err != nil || n > 1<<31-1 || parseRate("1/"+per, &period) != nil {
		return fmt.Errorf("%q is not a rate like %s, or 0 for no limit", s, example)
	}
	*dst = Rate{}
	if n > 0 {
		*dst = Rate{N: int(n), Per: period.Per}
	}
	return nil
}

// parseCredential resolves a user, with its primary group and the groups
// the group database lists it in; validate adds the handler's group to
// those (see Credential.Groups). Only root may run handlers as another
// user.
func parseCredential(v any, dst **Credential) error {
	name, u, err := lookupUser(v)
	if err != nil {
		return err
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	c := &Credential{User: name, UID: uint32(uid), GID: uint32(gid)}
	if u.Username == "" {
		*dst = c // no passwd entry: no group lists it
		return nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		return fmt.Errorf("user %q: list its groups: %w", name, err)
	}
	// GroupIds always includes the primary group (getgrouplist's base
	// group): keep it only if the group file lists the user in it, so that
	// a group key replaces the primary group instead of adding to it.
	listed := listedInPrimary(groupFile, u.Username, u.Gid)
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil && (id != u.Gid || listed) {
			c.Groups = append(c.Groups, uint32(g))
		}
	}
	*dst = c
	return nil
}

// groupFile is the group database listedInPrimary reads.
const groupFile = "/etc/group"

// listedInPrimary reports whether the group file at path lists user as a
// member of the group whose id is gid. A file that cannot be read lists
// no one.
func listedInPrimary(path, user, gid string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		// name:password:gid:member,member,...
		f := strings.Split(line, ":")
		if len(f) == 4 && f[2] == gid && slices.Contains(strings.Split(f[3], ","), user) {
			return true
		}
	}
	return false
}

// parseNames accepts a list of environment variable names.
func parseNames(v any, dst *[]string) error {
	var names []string
	if err := parseStrings(v, &names); err != nil {
		return err
	}
	var bad []error
	for _, n := range names {
		switch {
		case n == "" || strings.ContainsAny(n, "=\x00"):
			bad = append(bad, fmt.Errorf("%q is not a valid variable name", n))
		case slices.Contains(ConnectionVariables, n):
			bad = append(bad, fmt.Errorf("%s is set by goinetd for each connection", n))
		case n == "NOTIFY_SOCKET":
			bad = append(bad, fmt.Errorf("NOTIFY_SOCKET is goinetd's own channel to systemd; a handler never gets it"))
		}
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	*dst = names
	return nil
}

func parseNice(v any, dst **int) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("must be an integer (-20 to 19), not %s", describe(v))
	}
	if n < -20 || n > 19 {
		return fmt.Errorf("%d is out of range -20 to 19", n)
	}
	nice := int(n)
	*dst = &nice
	return nil
}

func parseUmask(v any, dst **os.FileMode) error {
	var m os.FileMode
	if err := parseFileMode(v, &m); err != nil {
		return err
	}
	*dst = &m
	return nil
}

// rlimitResources are the resources rlimits accepts, and the unit of each
// ("bytes", "seconds" or a count).
var rlimitResources = map[string]struct {
	resource int
	unit     string
}{
	"as":       {unix.RLIMIT_AS, "bytes"},
	"core":     {unix.RLIMIT_CORE, "bytes"},
	"cpu":      {unix.RLIMIT_CPU, "seconds"},
	"data":     {unix.RLIMIT_DATA, "bytes"},
	"fsize":    {unix.RLIMIT_FSIZE, "bytes"},
	"locks":    {unix.RLIMIT_LOCKS, "count"},
	"memlock":  {unix.RLIMIT_MEMLOCK, "bytes"},
	"msgqueue": {unix.RLIMIT_MSGQUEUE, "bytes"},
	"nofile":   {unix.RLIMIT_NOFILE, "count"},
	"nproc":    {unix.RLIMIT_NPROC, "count"},
	"rss":      {unix.RLIMIT_RSS, "bytes"},
	"stack":    {unix.RLIMIT_STACK, "bytes"},
}

// RlimitResource returns the RLIMIT_ constant of the resource rlimits
// calls name, and whether there is one.
func RlimitResource(name string) (resource int, ok bool) {
	r, ok := rlimitResources[name]
	return r.resource, ok
}

// parseRlimits accepts a table of resource = value: an integer, or
// "unlimited", a size ("512MiB", "64k") for byte resources, or a duration
// ("10s") for cpu. The list is sorted by name.
func parseRlimits(v any, dst *[]Rlimit) error {
	table, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("must be a table like { nofile = 1024, as = \"512MiB\" }, not %s", describe(v))
	}
	var out []Rlimit
	var bad []error
	for _, name := range sortedKeys(table) {
		r, ok := rlimitResources[name]
		if !ok {
			bad = append(bad, fmt.Errorf("%q is not a resource (want one of %s)", name, strings.Join(sortedKeys(rlimitResources), ", ")))
			continue
		}
		value, err := rlimitValue(table[name], r.unit)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", name, err))
			continue
		}
		out = append(out, Rlimit{Name: name, Resource: r.resource, Value: value})
	}
	if len(bad) > 0 {
		return errors.Join(bad...) // one problem each
	}
	*dst = out
	return nil
}

func rlimitValue(v any, unit string) (uint64, error) {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("%d is negative", v)
		}
		return uint64(v), nil
	case string:
		if v == "unlimited" || v == "infinity" {
			return unix.RLIM_INFINITY, nil
		}
		switch unit {
		case "bytes":
			return parseSize(v)
		case "seconds":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				return 0, fmt.Errorf("%q is not a duration of at least 1s", v)
			}
			return uint64(d / time.Second), nil
		}
		return 0, fmt.Errorf("%q is not a count or \"unlimited\"", v)
	}
	return 0, fmt.Errorf("must be an integer or a string, not %s", describe(v))
}

// parseSize accepts a byte size with an optional unit: k, M, G, T (powers
// of 1024, with or without "iB" or "B").
func parseSize(s string) (uint64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i")
	n, err := strconv.ParseUint(num, 10, 64)
	shift, ok := map[string]uint{"": 0, "k": 10, "K": 10, "M": 20, "G": 30, "T": 40}[unit]
	if err != nil || !ok || n > (1<<63)>>shift {
		return 0, fmt.Errorf("%q is not a size like \"512MiB\", \"64k\" or \"unlimited\"", s)
	}
	return n << shift, nil
}

// parseRules accepts an array of rule tables: from (an address or CIDR
// prefix, required), env (a table of strings), unset (variable names) and
// deny (a boolean; a denying rule takes neither env nor unset).
func parseRules(v any, dst *[]Rule) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be an array of tables like { from = \"10.0.0.0/8\", env = { TRUSTED = \"1\" } }, not %s", describe(v))
	}
	out := make([]Rule, 0, len(list))
	var bad []error
	for i, item := range list {
		r, err := parseRule(item)
		if err != nil {
			bad = append(bad, fmt.Errorf("rule %d: %w", i+1, err))
			continue
		}
		out = append(out, r)
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	*dst = out
	return nil
}

// ruleKeys are the keys of a rule table.
var ruleKeys = []string{"from", "env", "unset", "deny"}

func parseRule(v any) (Rule, error) {
	var r Rule
	table, ok := v.(map[string]any)
	if !ok {
		return r, fmt.Errorf("must be a table like { from = \"10.0.0.0/8\", deny = true }, not %s", describe(v))
	}
	var bad []error
	for _, k := range sortedKeys(table) {
		var err error
		switch k {
		case "from":
			var s string
			if s, err = parseString(table[k]); err == nil {
				r.From, err = parsePrefix(s)
			}
		case "env":
			err = parseEnv(table[k], &r.Env)
		case "unset":
			err = parseNames(table[k], &r.Unset)
		case "deny":
			err = parseBool(table[k], &r.Deny)
		case "banner":
			err = errors.New("a rule has no banner: a refused client gets the service's banner_refused, if any")
		default:
			bad = append(bad, fmt.Errorf("%q is not a rule key (want one of %s)", k, strings.Join(ruleKeys, ", ")))
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", k, err))
		}
	}
	switch {
	case len(bad) > 0:
	case !r.From.IsValid():
		bad = append(bad, errors.New("from is missing: the address or CIDR prefix the rule is for"))
	case r.Deny && (len(r.Env) > 0 || len(r.Unset) > 0):
		bad = append(bad, errors.New("a rule with deny = true starts no handler: env and unset do not apply"))
	}
	return r, errors.Join(bad...)
}
