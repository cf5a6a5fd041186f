package config

import (
	"fmt"
	"strings"
)

// closestKey returns the key of known that name, an unknown key, was
// probably meant to be, or "": one at most two edits away, or one of which
// name is an abbreviation (its letters in order, as max_per_src is of
// max_per_source). The nearest wins; ties go to the first in known.
func closestKey(name string, known []string) string {
	best, bestDist := "", 0
	for _, k := range known {
		d := editDistance(name, k)
		if d > 2 && !abbreviates(name, k) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// abbreviates reports whether short, of at least 4 bytes, starts as long
// does and holds its other bytes in order within long.
func abbreviates(short, long string) bool {
	if len(short) < 4 || len(short) >= len(long) || short[0] != long[0] {
		return false
	}
	i := 0
	for j := 0; j < len(long) && i < len(short); j++ {
		if short[i] == long[j] {
			i++
		}
	}
	return i == len(short)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// legacyTerm is what an xinetd or inetd term is called in goinetd.
type legacyTerm struct {
	term   string // the old name
	origin string // "xinetd", "inetd.conf"
	key    string // the goinetd key, if there is one
	note   string // how to write it, or why there is no key
}

func (t legacyTerm) String() string {
	if t.key == "" {
		return fmt.Sprintf("%s's %s", t.origin, t.note)
	}
	s := fmt.Sprintf("%s is %s's name for %s", t.term, t.origin, t.key)
	if t.note != "" {
		s += ": " + t.note
	}
	return s
}

// legacyTerms maps the attribute names of xinetd.conf(5) and the field
// names of inetd.conf(5) that are not goinetd keys to what to write
// instead, for unknown keys in a service table or [defaults]. A term whose
// key is not a key of the table holding it gets the usual suggestion.
// docs/migrating.md has the same mapping as a table.
var legacyTerms = func() map[string]legacyTerm {
	x := func(key, note string) legacyTerm { return legacyTerm{origin: "xinetd", key: key, note: note} }
	none := func(note string) legacyTerm { return legacyTerm{origin: "xinetd", note: note} }
	inetd := func(key, note string) legacyTerm { return legacyTerm{origin: "inetd.conf", key: key, note: note} }
	rlimit := x("rlimits", `a table, e.g. rlimits = { as = "512MiB", cpu = 10, nofile = 1024 }`)
	logs := none("%s has no equivalent: goinetd logs every connection and handler to its standard error (see log_format, connection_log_rate)")
	m := map[string]legacyTerm{
		"passenv":        x("pass_env", "a list of variable names"),
		"instances":      x("max_connections", "at the cap goinetd leaves new clients waiting in the listen backlog, where xinetd refuses them"),
		"per_source":     x("max_per_source", ""),
		"server":         x("program", ""),
		"server_args":    x("args", "a list of strings, the handler's argv[1:]; argv0 sets argv[0]"),
		"bind":           x("address", "an IP address, not a host name"),
		"interface":      x("address", "an IP address, not a host name"),
		"wait":           x("mode", `wait = yes is mode = "wait", wait = no is mode = "nowait"`),
		"cps":            x("rate_limit", `cps = 50 10 is rate_limit = "50/s" with rate_pause = "10s"`),
		"socket_type":    x("protocol", `stream is "tcp" (or "unix" with a path), dgram is "udp"`),
		"disable":        x("disabled", "true or false"),
		"type":           x("builtin", `type = INTERNAL is builtin = "echo" (chargen, daytime, discard, time); UNLISTED needs a port`),
		"id":             none("id has no equivalent: the table name [services.NAME] names the service"),
		"groups":         none("groups has no equivalent: the handler always gets its user's supplementary groups"),
		"flags":          none(`flags have no equivalent key: for IPv4 or IPv6 only, set address = "0.0.0.0" or "::"; SENSOR is sensor = true; the rest do not apply`),
		"rlimit_as":      rlimit,
		"rlimit_cpu":     rlimit,
		"rlimit_data":    rlimit,
		"rlimit_files":   rlimit,
		"rlimit_rss":     rlimit,
		"rlimit_stack":   rlimit,
		"redirect":       none("redirect has no equivalent: run a forwarding program (socat, nc) as the handler"),
		"access_times":   none("access_times has no equivalent: rules are by address only"),
		"banner":         none("banner has no equivalent: let the handler print it"),
		"banner_success": none("banner_success has no equivalent: let the handler print it"),
		"banner_fail":    none("banner_fail has no equivalent"),
		"max_load":       none("max_load has no equivalent"),
		"deny_time":      none("deny_time is per service; goinetd's deny_time is a [server] key, one for the whole server (the deny list of sensor and deny_on_rate); rate_pause is how long rate_limit_per_source refuses a source"),
		"libwrap":        none("libwrap has no equivalent: goinetd does not read hosts.allow and hosts.deny; move their rules to only_from and no_access"),
		"log_type":       logs,
		"log_on_success": logs,
		"log_on_failure": logs,
		"server_type":    none("server_type has no equivalent (RPC and TCPMUX services are not supported)"),
		"nowait":         inetd("mode", `mode = "nowait"`),
		"service_name":   {origin: "inetd.conf", note: `service name is the table name [services.NAME], and port takes it too (port = "echo")`},
		"server_path":    inetd("program", ""),
		"server_program": inetd("program", ""),
		"sock_type":      inetd("protocol", `stream is "tcp", dgram is "udp"`),
		"proto":          inetd("protocol", `"tcp", "udp" or "unix"`),
	}
	for term, hint := range m {
		hint.term = term
		if strings.Contains(hint.note, "%s") {
			hint.note = fmt.Sprintf(hint.note, term)
		}
		m[term] = hint
	}
	return m
}()
