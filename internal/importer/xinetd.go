package importer

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// xattr is one attribute line of an xinetd block: name, operator (=, +=
// or -=) and values.
type xattr struct {
	name, op string
	values   []string
	origin   string // FILE:LINE
}

// xblock is a "service NAME { ... }" or "defaults { ... }" block.
type xblock struct {
	kind, name string // "service" or "defaults"; the service's name
	origin     string
	attrs      []xattr
}

// xinetdReader reads xinetd.conf files and the files their includedir
// and include name.
type xinetdReader struct {
	root   string // prefix of the absolute paths the files name
	blocks []*xblock
	seen   map[string]bool
	// problems are what makes a file unreadable as xinetd.conf.
	problems []string
}

var blockStart = regexp.MustCompile(`^(service\s+(\S+)|defaults)\s*(\{)?$`)

// looksLikeXinetd reports whether data is xinetd.conf rather than
// inetd.conf: it has a service or defaults block or an include line.
func looksLikeXinetd(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if blockStart.MatchString(line) || strings.HasPrefix(line, "includedir ") || strings.HasPrefix(line, "include ") {
			return true
		}
	}
	return false
}

// readFile reads one xinetd file named name (as written; read under root).
func (r *xinetdReader) readFile(name string) {
	if r.seen[name] {
		return
	}
	r.seen[name] = true
	data, err := os.ReadFile(r.under(name))
	if err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v", name, err))
		return
	}
	r.parse(name, data)
}

func (r *xinetdReader) under(name string) string {
	if r.root != "" && filepath.IsAbs(name) {
		return filepath.Join(r.root, name)
	}
	return name
}

// readDir reads the files of an xinetd.d folder as xinetd's includedir
// does: in name order, skipping names with a dot or ending in "~".
func (r *xinetdReader) readDir(dir string) {
	entries, err := os.ReadDir(r.under(dir))
	if err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v", dir, err))
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.Contains(e.Name(), ".") || strings.HasSuffix(e.Name(), "~") {
			continue
		}
		r.readFile(filepath.Join(dir, e.Name()))
	}
}

// relativeTo resolves path, named in file, against file's folder if it is
// relative (xinetd would take it relative to its working folder, "/").
func relativeTo(file, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(file), path)
}

// parse reads the blocks and include lines of one file.
func (r *xinetdReader) parse(file string, data []byte) {
	var cur *xblock
	open := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		origin := fmt.Sprintf("%s:%d", file, n)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case cur == nil:
			if m := blockStart.FindStringSubmatch(line); m != nil {
				cur = &xblock{kind: "defaults", name: m[2], origin: origin}
				if m[2] != "" {
					cur.kind = "service"
				}
				open = m[3] != ""
				continue
			}
			if dir, ok := strings.CutPrefix(line, "includedir "); ok {
				r.readDir(relativeTo(file, strings.TrimSpace(dir)))
				continue
			}
			if f, ok := strings.CutPrefix(line, "include "); ok {
				r.readFile(relativeTo(file, strings.TrimSpace(f)))
				continue
			}
			r.problems = append(r.problems, fmt.Sprintf("%s: %q is outside any service or defaults block", origin, line))
		case !open:
			if line != "{" {
				r.problems = append(r.problems, fmt.Sprintf("%s: want { after %s, got %q", origin, cur.origin, line))
				cur = nil
				continue
			}
			open = true
		case line == "}":
			r.blocks = append(r.blocks, cur)
			cur, open = nil, false
		default:
			a, ok := parseAttr(line, origin)
			if !ok {
				r.problems = append(r.problems, fmt.Sprintf("%s: %q is not an attribute (NAME = VALUES)", origin, line))
				continue
			}
			cur.attrs = append(cur.attrs, a)
		}
	}
	if cur != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: the block has no closing }", cur.origin))
	}
}

var attrLine = regexp.MustCompile(`^([A-Za-z_0-9]+)\s*(\+=|-=|=)\s*(.*)$`)

func parseAttr(line, origin string) (xattr, bool) {
	m := attrLine.FindStringSubmatch(line)
	if m == nil {
		return xattr{}, false
	}
	return xattr{name: m[1], op: m[2], values: strings.Fields(m[3]), origin: origin}, true
}

// listAttrs are the attributes whose values add up with += and shrink
// with -=; the others are replaced.
var listAttrs = []string{"only_from", "no_access", "log_on_success", "log_on_failure", "passenv", "env", "flags"}

// merged returns the attributes of service block b with those of the
// defaults blocks applied as xinetd applies them: a service's own value
// replaces the default, except += and -= on a list, which start from it.
// fromDefaults names the attributes whose final value the defaults gave.
func merged(defaults []xattr, b *xblock) (attrs map[string]xattr, fromDefaults map[string]bool) {
	attrs, fromDefaults = map[string]xattr{}, map[string]bool{}
	apply := func(a xattr, isDefault bool) {
		old, had := attrs[a.name]
		switch {
		case a.op == "+=" && had && slices.Contains(listAttrs, a.name):
			a.values = append(slices.Clone(old.values), a.values...)
		case a.op == "-=" && had && slices.Contains(listAttrs, a.name):
			a.values = slices.DeleteFunc(slices.Clone(old.values), func(v string) bool { return slices.Contains(a.values, v) })
		}
		attrs[a.name] = a
		fromDefaults[a.name] = isDefault
	}
	for _, a := range defaults {
		apply(a, true)
	}
	for _, a := range b.attrs {
		apply(a, false)
	}
	return attrs, fromDefaults
}

// defaultsAttrs are the attributes of a defaults block that become
// settings of each service (and of [defaults], where all share them); the
// others are reported once, at the block.
var defaultsAttrs = []string{
	"only_from", "no_access", "instances", "per_source", "cps", "env", "passenv",
	"umask", "nice", "groups", "bind", "interface",
	"rlimit_as", "rlimit_cpu", "rlimit_data", "rlimit_rss", "rlimit_stack", "rlimit_files",
}

// xinetdServices converts the blocks read into services, and returns the
// defaults blocks' attributes that apply to no service as a service
// holding only notConverted items (nil if there are none). The
// attributes of a defaults block that name services (disabled, enabled)
// apply to them.
func xinetdServices(blocks []*xblock) (services []*service, defaultsBlock *service) {
	var defaults []xattr
	var disabledNames, enabledNames []string
	enabledSet := false
	for _, b := range blocks {
		if b.kind != "defaults" {
			continue
		}
		if defaultsBlock == nil {
			defaultsBlock = &service{origin: b.origin, about: []string{"defaults"}}
		}
		for _, a := range b.attrs {
			switch {
			case a.name == "disabled":
				disabledNames = append(disabledNames, a.values...)
			case a.name == "enabled":
				enabledNames, enabledSet = append(enabledNames, a.values...), true
			case slices.Contains(defaultsAttrs, a.name):
				defaults = append(defaults, a)
			default:
				convertXinetdAttrs(defaultsBlock, map[string]xattr{a.name: a}, false, "", "")
			}
		}
	}
	for _, b := range blocks {
		if b.kind != "service" {
			continue
		}
		attrs, fromDefaults := merged(defaults, b)
		s := xinetdService(b, attrs)
		if slices.Contains(disabledNames, b.name) || enabledSet && !slices.Contains(enabledNames, b.name) {
			s.set("disabled", boolean(true), "disabled by the defaults block's disabled or enabled list")
		}
		for i := range s.settings {
			s.settings[i].fromDefaults = fromDefaults[settingAttr[s.settings[i].key]]
		}
		s.finish()
		services = append(services, s)
	}
	if defaultsBlock != nil && len(defaultsBlock.notConverted) == 0 {
		defaultsBlock = nil
	}
	return services, defaultsBlock
}

// settingAttr is the xinetd attribute a key that [defaults] may hold
// comes from.
var settingAttr = map[string]string{
	"only_from": "only_from", "no_access": "no_access", "max_connections": "instances",
	"max_per_source": "per_source", "rate_limit": "cps", "rate_pause": "cps",
	"pass_env": "passenv", "env": "env", "umask": "umask", "nice": "nice",
}

// xinetdService converts one service block with its merged attributes.
func xinetdService(b *xblock, attrs map[string]xattr) *service {
	s := &service{base: b.name, origin: b.origin, about: []string{"service " + b.name}}
	get := func(name string) []string { return attrs[name].values }
	one := func(name string) string {
		if v := get(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if id := one("id"); id != "" {
		s.base = id
		s.about[0] += " (id " + id + ")"
	}
	flags := get("flags")
	types := get("type")

	socketType, proto := one("socket_type"), one("protocol")
	if proto == "" {
		proto = map[string]string{"stream": "tcp", "dgram": "udp"}[socketType]
	}
	switch {
	case slices.Contains(types, "RPC") || slices.Contains(types, "TCPMUX") || slices.Contains(types, "TCPMUXPLUS"):
		s.skip("type %s: goinetd serves no RPC or TCPMUX services", strings.Join(types, " "))
		s.commentedOut = true
	case socketType == "stream" && proto == "tcp", socketType == "dgram" && proto == "udp":
	default:
		s.skip("socket_type %q with protocol %q: goinetd serves stream over tcp and dgram over udp", socketType, proto)
		s.commentedOut = true
	}
	s.set("protocol", str(proto), "")

	switch addr := one("bind") + one("interface"); {
	case addr != "":
		if a, err := netip.ParseAddr(addr); err == nil {
			s.set("address", str(a.String()), "")
		} else {
			unresolved(s, addr)
		}
	case slices.Contains(flags, "IPv6"):
		s.note("flags IPv6: xinetd's IPv6 socket took IPv4 clients too; goinetd binds both families")
	default:
		s.set("address", str("0.0.0.0"), "") // xinetd binds IPv4 only unless flags has IPv6
	}
	if p := one("port"); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			s.set("port", num(n), "")
		} else {
			s.skip("port %q is not a number", p)
		}
	} else {
		s.set("port", str(b.name), "")
	}

	mode := "nowait"
	if one("wait") == "yes" {
		mode = "wait"
	}
	if one("wait") == "" {
		s.skip("wait is missing (xinetd requires it); nowait assumed")
	}
	s.set("mode", str(mode), "")

	if slices.Contains(types, "INTERNAL") {
		if s.setBuiltin(b.name) && proto == "tcp" {
			s.set("mode", str("nowait"), "")
		}
	} else if r := get("redirect"); len(r) > 0 && proto == "tcp" && mode == "nowait" {
		convertRedirect(s, r)
	} else if server := one("server"); server != "" {
		argv := get("server_args")
		if slices.Contains(flags, "NAMEINARGS") {
			s.setProgram(server, argv)
		} else {
			s.setProgram(server, append([]string{filepath.Base(server)}, argv...))
		}
	} else {
		s.skip("no server: an external service needs one")
		s.commentedOut = true
	}
	if disable := one("disable"); strings.EqualFold(disable, "yes") {
		s.set("disabled", boolean(true), "")
	}

	_, isBuiltin := s.get("builtin")
	_, isForward := s.get("forward")
	convertXinetdAttrs(s, attrs, isBuiltin || isForward, proto, mode)
	return s
}

// convertRedirect maps xinetd's redirect = HOST PORT, which makes xinetd
// relay each connection to HOST:PORT itself, to forward. A host name is
// kept but the service commented out: goinetd forwards to addresses only.
func convertRedirect(s *service, v []string) {
	port, err := strconv.Atoi(v[len(v)-1])
	if len(v) != 2 || err != nil || port < 1 || port > 65535 {
		s.skip("redirect %q: want a host and a port, as in redirect = 10.0.0.1 23", strings.Join(v, " "))
		s.commentedOut = true
		return
	}
	a, err := netip.ParseAddr(v[0])
	if err != nil {
		s.set("forward", str(net.JoinHostPort(v[0], v[1])), "")
		s.skip("redirect %s: goinetd forwards to IP addresses, not host names; set forward to the one %s resolves to", v[0], v[0])
		s.commentedOut = true
		return
	}
	s.set("forward", str(netip.AddrPortFrom(a, uint16(port)).String()),
		"xinetd's redirect: goinetd connects to it and moves the bytes itself")
}

// handlerAttrs are the attributes about the handler process, which a
// built-in does not have.
var handlerAttrs = []string{
	"user", "group", "groups", "nice", "umask", "env", "passenv", "server_args",
	"rlimit_as", "rlimit_cpu", "rlimit_data", "rlimit_rss", "rlimit_stack", "rlimit_files",
}

// convertXinetdAttrs converts the attributes that do not make the service
// what it is: users, rules, limits, environment, logs and the rest.
func convertXinetdAttrs(s *service, attrs map[string]xattr, isBuiltin bool, proto, mode string) {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(attrs[a].origin, attrs[b].origin) })
	perClient := proto == "tcp" && mode == "nowait"
	rlimits := map[string]value{}
	env := map[string]value{}
	banners := map[string]string{} // banner, banner_success, banner_fail: their files
	var inGoinetd []string         // attributes that do not apply to a built-in
	sensor := false                // flags has SENSOR
	for _, name := range names {
		a := attrs[name]
		v := a.values
		one := ""
		if len(v) > 0 {
			one = v[0]
		}
		if isBuiltin && slices.Contains(handlerAttrs, name) {
			if name != "user" || one != "root" {
				inGoinetd = append(inGoinetd, name)
			}
			continue
		}
		switch name {
		case "id", "type", "socket_type", "protocol", "wait", "server", "server_args", "port", "bind", "interface", "disable", "disabled", "enabled":
			// Converted above.
		case "flags":
			for _, f := range v {
				switch f {
				case "NAMEINARGS", "IPv4", "IPv6", "NOLIBWRAP":
				case "REUSE":
					s.note("flags REUSE: goinetd always binds with SO_REUSEADDR")
				case "SENSOR":
					if perClient {
						sensor = true
					} else {
						s.skip("flags SENSOR: goinetd's sensors are tcp services in nowait mode only (a udp source can be forged, which would deny an innocent address; in wait mode the handler accepts)")
					}
				case "NODELAY", "KEEPALIVE":
					key := map[string]string{"NODELAY": "tcp_nodelay", "KEEPALIVE": "keepalive"}[f]
					switch {
					case isBuiltin:
						s.note("flags %s: goinetd's built-ins set TCP_NODELAY and keepalive on their connections already", f)
					case proto == "tcp":
						s.set(key, boolean(true), "")
					default:
						s.note("flags %s: applies to tcp only, as in xinetd", f)
					}
				default:
					s.skip("flags %s: no equivalent in goinetd", f)
				}
			}
		case "user", "group":
			s.set(name, str(one), "")
		case "groups":
			if strings.EqualFold(one, "yes") {
				continue
			}
			s.note("groups = %s: goinetd gives the handler its user's supplementary groups, where xinetd gave none", one)
		case "only_from", "no_access":
			key := name
			prefixes, bad := xinetdAddresses(v)
			for _, b := range bad {
				s.skip("%s %s: %s", name, b.entry, b.why)
			}
			switch {
			case !perClient && proto == "tcp":
				s.skip("%s: xinetd checked it at the first connection only; goinetd cannot in tcp wait mode, where the handler accepts (firewall the port instead)", name)
			case name == "only_from" && len(v) == 0:
				s.set("disabled", boolean(true), "xinetd's empty only_from admits no one")
			case name == "only_from" && len(prefixes) == 0:
				s.set("disabled", boolean(true), "none of only_from could be converted, and without it the service would admit everyone: write the addresses, then enable it")
			case name == "no_access" && len(bad) > 0:
				s.set("disabled", boolean(true), "part of no_access could not be converted, and without it the service would admit clients xinetd refused: write the addresses, then enable it")
				fallthrough
			case len(prefixes) > 0:
				s.set(key, list(prefixes), "")
			}
		case "instances":
			n, ok := countOrUnlimited(one)
			if !ok {
				s.skip("instances %q is not a number or UNLIMITED", one)
				continue
			}
			why := "xinetd's instances: at the cap xinetd refused new clients; goinetd leaves them waiting in the listen backlog"
			if n == 0 {
				why = "xinetd's instances = UNLIMITED: no cap, where goinetd's default is 256"
			}
			s.set("max_connections", num(n), why)
		case "per_source":
			n, ok := countOrUnlimited(one)
			switch {
			case !ok:
				s.skip("per_source %q is not a number or UNLIMITED", one)
			case !perClient:
				s.skip("per_source: goinetd limits sources only for tcp services in nowait mode")
			default:
				s.set("max_per_source", num(n), "")
			}
		case "cps":
			n, err1 := strconv.Atoi(one)
			var pause int
			var err2 error
			if len(v) > 1 {
				pause, err2 = strconv.Atoi(v[1])
			}
			if err1 != nil || err2 != nil || n < 1 || len(v) != 2 || pause < 1 {
				s.skip("cps %q: want a rate and a pause in seconds, as in cps = 50 10", strings.Join(v, " "))
				continue
			}
			s.set("rate_limit", str(fmt.Sprintf("%d/s", n)), fmt.Sprintf(
				"xinetd's cps %d %d: past %d connections a second xinetd closed the socket for %d s; goinetd stops accepting for rate_pause, clients wait in the backlog", n, pause, n, pause))
			s.set("rate_pause", str(fmt.Sprintf("%ds", pause)), "")
		case "env":
			for _, kv := range v {
				k, val, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					s.skip("env %q is not NAME=value", kv)
					continue
				}
				env[k] = str(val)
			}
		case "passenv":
			if len(v) > 0 {
				s.set("pass_env", list(v), "")
			}
		case "nice":
			n, err := strconv.Atoi(one)
			if err != nil {
				s.skip("nice %q is not a number", one)
				continue
			}
			s.set("nice", num(n), "")
		case "umask":
			if _, err := strconv.ParseUint(one, 8, 12); err != nil {
				s.skip("umask %q is not an octal mode", one)
				continue
			}
			s.set("umask", str(one), "")
		case "rlimit_as", "rlimit_cpu", "rlimit_data", "rlimit_rss", "rlimit_stack", "rlimit_files":
			res := strings.TrimPrefix(name, "rlimit_")
			if res == "files" {
				res = "nofile"
			}
			val, ok := rlimitValue(one)
			if !ok {
				s.skip("%s %q: want a number, with K or M, or UNLIMITED", name, one)
				continue
			}
			rlimits[res] = val
		case "log_type", "log_on_success", "log_on_failure":
			s.skip("%s %s: goinetd logs each connection (peer, pid, exit status, duration) and the handler's stderr to its own stderr; see log_format in inetd.toml(5)", name, strings.Join(v, " "))
		case "access_times":
			s.skip("access_times %s: goinetd's rules are by address only; stop the service from cron or a systemd timer instead", strings.Join(v, " "))
		case "redirect":
			if _, ok := s.get("forward"); !ok {
				s.skip("redirect %s: goinetd forwards tcp services in nowait mode only", strings.Join(v, " "))
			}
		case "banner", "banner_success", "banner_fail":
			banners[name] = one
		case "max_load":
			f, err := strconv.ParseFloat(one, 64)
			switch {
			case err != nil || f < 0:
				s.skip("max_load %q is not a load average", one)
			case proto != "tcp" || mode != "nowait":
				s.skip("max_load %s: goinetd sheds load for tcp services in nowait mode only (it refuses the connections it accepts)", one)
			default:
				s.set("max_load", decimal(f), "")
			}
		case "deny_time":
			// xinetd's deny_time is per service, in minutes; goinetd's deny
			// list is one for the server, and so is its time.
			switch d := strings.ToUpper(one); d {
			case "FOREVER":
				s.skip("deny_time FOREVER: goinetd's deny_time is one for the whole server, and never forever: set a long [server] deny_time, such as \"24h\"")
			case "NEVER":
				s.skip("deny_time NEVER: goinetd's deny_time is one for the whole server: set [server] deny_time = \"0s\" for sensors that only log")
			default:
				if n, err := strconv.Atoi(one); err == nil && n >= 0 {
					s.skip("deny_time %d (minutes): goinetd's deny_time is one for the whole server: set [server] deny_time = \"%dm\" (default \"10m\")", n, n)
				} else {
					s.skip("deny_time %q is not a number of minutes, FOREVER or NEVER", one)
				}
			}
		case "libwrap":
			s.skip("libwrap %s: goinetd does not read hosts.allow and hosts.deny; move their rules to only_from and no_access", one)
		default:
			s.skip("%s %s: no equivalent in goinetd", name, strings.Join(v, " "))
		}
	}
	if len(inGoinetd) > 0 {
		what := "a built-in runs"
		if _, ok := s.get("forward"); ok {
			what = "a forwarder runs"
		}
		s.note("%s inside goinetd, where these do not apply: %s", what, strings.Join(inGoinetd, ", "))
	}
	convertXinetdBanners(s, banners, proto == "tcp" && mode == "nowait")
	if sensor {
		// A sensor runs nothing: xinetd did not start its server either.
		for _, key := range []string{"program", "argv0", "args", "builtin"} {
			s.del(key)
		}
		s.note("flags SENSOR: a sensor runs nothing, so its server, server_args, env and rlimits are dropped")
		s.set("sensor", boolean(true), "refuses, and denies its source everywhere for [server] deny_time; it runs nothing")
		return
	}
	if len(env) > 0 {
		s.set("env", table(env), "")
	}
	if len(rlimits) > 0 {
		s.set("rlimits", table(rlimits), "")
	}
}

// convertXinetdBanners maps xinetd's banner files: banner_success, written
// to admitted clients, becomes banner; banner_fail, written to refused
// ones, becomes banner_refused; banner, written to every client, becomes
// both where the other does not say otherwise. xinetd wrote banner and
// then banner_success (or banner_fail); goinetd writes one, so that pair
// is reported and the more specific file kept. goinetd writes banners for
// stream services in nowait mode (applies) only.
func convertXinetdBanners(s *service, files map[string]string, applies bool) {
	if len(files) == 0 {
		return
	}
	if !applies {
		for _, name := range []string{"banner", "banner_success", "banner_fail"} {
			if f, ok := files[name]; ok {
				s.skip("%s %s: goinetd writes banners for tcp services in nowait mode only (in wait mode the handler accepts): have the handler print it", name, f)
			}
		}
		return
	}
	why := "read when goinetd loads the config: it must exist then, and hold at most 4 KiB"
	for _, m := range []struct{ key, specific string }{{"banner", "banner_success"}, {"banner_refused", "banner_fail"}} {
		f, specific := files[m.specific]
		if all, ok := files["banner"]; ok && specific {
			s.note("banner %s and %s %s: xinetd wrote both, goinetd writes one (%s's)", all, m.specific, f, m.specific)
		} else if !specific {
			f = all
		}
		if f == "" {
			continue
		}
		if !strings.HasPrefix(f, "/") {
			s.skip("%s %s: not an absolute path", m.specific, f)
			continue
		}
		s.set(m.key, str("@"+f), why)
		why = ""
	}
}

func countOrUnlimited(s string) (int, bool) {
	if strings.EqualFold(s, "UNLIMITED") {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// rlimitValue converts an xinetd limit (a number, with K or M for
// kilobytes and megabytes, or UNLIMITED) to rlimits' form.
func rlimitValue(s string) (value, bool) {
	if strings.EqualFold(s, "UNLIMITED") {
		return str("unlimited"), true
	}
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1024, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1024*1024, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return "", false
	}
	return num(n * mult), true
}

// badAddress is an only_from or no_access entry goinetd cannot take.
type badAddress struct{ entry, why string }

// xinetdAddresses converts xinetd's address forms to CIDR prefixes: an
// address, a prefix, "0.0.0.0" for everyone, an IPv4 address ending in
// zeros for a network (10.0.0.0 is 10.0.0.0/8), and a factorized address
// (10.0.{1,2}.0 is two /24s). Host and domain names are refused: goinetd
// matches addresses only.
func xinetdAddresses(entries []string) (prefixes []string, bad []badAddress) {
	for _, e := range entries {
		if strings.Contains(e, "{") {
			expanded, ok := expandFactorized(e)
			if !ok {
				bad = append(bad, badAddress{e, "not a factorized address like 10.0.{1,2}"})
				continue
			}
			p, b := xinetdAddresses(expanded)
			prefixes, bad = append(prefixes, p...), append(bad, b...)
			continue
		}
		if strings.Contains(e, "/") {
			if p, err := netip.ParsePrefix(e); err == nil {
				prefixes = append(prefixes, p.Masked().String())
				continue
			}
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			bad = append(bad, badAddress{e, "goinetd matches IP addresses and prefixes, not host or domain names: write the addresses"})
			continue
		}
		if !a.Is4() {
			prefixes = append(prefixes, a.String())
			continue
		}
		b := a.As4()
		bits := 32
		for i := 3; i >= 0 && b[i] == 0; i-- {
			bits -= 8
		}
		if bits == 32 {
			prefixes = append(prefixes, a.String())
			continue
		}
		prefixes = append(prefixes, netip.PrefixFrom(a, bits).String())
	}
	return prefixes, bad
}

// expandFactorized expands "a.b.{c,d}" into "a.b.c.0" and "a.b.d.0"
// (each then read with its trailing zeros as a network).
func expandFactorized(e string) ([]string, bool) {
	open, end := strings.IndexByte(e, '{'), strings.IndexByte(e, '}')
	if open < 0 || end < open || end != len(e)-1 {
		return nil, false
	}
	head := e[:open]
	var out []string
	for _, part := range strings.Split(e[open+1:end], ",") {
		addr := head + strings.TrimSpace(part)
		for strings.Count(addr, ".") < 3 {
			addr += ".0"
		}
		out = append(out, addr)
	}
	return out, true
}
