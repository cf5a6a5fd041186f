package importer

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Options adjust an import.
type Options struct {
	// Root, if set, is prefixed to every absolute path read (the paths
	// given and those xinetd's include and includedir lines name), to
	// import a tree unpacked elsewhere (a package, a backup, a test);
	// comments still show the paths as written.
	Root string
}

// Item is one thing that could not be converted.
type Item struct {
	Origin string // FILE:LINE of its service
	What   string
}

// String is the item in one line for a summary: its origin and the first
// clause of what it says.
func (i Item) String() string {
	short, _, _ := strings.Cut(i.What, ": ")
	return i.Origin + ": " + short
}

// Result is an imported config.
type Result struct {
	// TOML is the inetd.toml text.
	TOML []byte
	// Services counts the services written, commented-out ones included.
	Services int
	// NotConverted lists every "# not converted:" comment of TOML.
	NotConverted []Item
}

// Import converts the inetd.conf and xinetd files at paths into one
// inetd.toml. A path is an inetd.conf, an xinetd.conf (whose include and
// includedir lines are followed), an xinetd.d service file, or a folder of
// them; the format is told from the content. It returns an error, and no
// Result, if a path cannot be read or an xinetd file is malformed; what it
// can read but not convert is in the Result.
func Import(paths []string, opt Options) (*Result, error) {
	if len(paths) == 0 {
		return nil, errors.New("no file to import")
	}
	var services []*service
	x := &xinetdReader{root: opt.Root, seen: map[string]bool{}}
	var problems []string
	for _, path := range paths {
		fi, err := os.Stat(x.under(path))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if fi.IsDir() {
			x.readDir(path)
			continue
		}
		data, err := os.ReadFile(x.under(path))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if looksLikeXinetd(data) {
			x.seen[path] = true
			x.parse(path, data)
			continue
		}
		services = append(services, mergeFamilies(parseInetd(path, data))...)
	}
	problems = append(problems, x.problems...)
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	xservices, xdefaults := xinetdServices(x.blocks)
	services = append(services, xservices...)
	nameServices(services)
	defaults := hoistDefaults(services)

	r := &Result{Services: len(services)}
	all := services
	if xdefaults != nil {
		all = append([]*service{xdefaults}, services...)
	}
	for _, s := range all {
		for _, what := range s.notConverted {
			r.NotConverted = append(r.NotConverted, Item{s.origin, what})
		}
	}
	r.TOML = render(paths, len(xservices) > 0, xdefaults, defaults, services)
	return r, nil
}

// Summary says how many services were written to where, and lists what
// was not converted, one item a line.
func (r *Result) Summary(where string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "goinetd import: %d services written to %s; %d items not converted", r.Services, where, len(r.NotConverted))
	if len(r.NotConverted) == 0 {
		return b.String() + "\n"
	}
	b.WriteString(" (each is a \"# not converted:\" comment in the file):\n")
	for _, item := range r.NotConverted {
		fmt.Fprintf(&b, "  %s\n", item)
	}
	return b.String()
}

// mergeFamilies makes one service of a tcp (or udp) line and a tcp6 (or
// udp6) line of the same service that differ in nothing else, so that it
// binds both families on one port.
func mergeFamilies(list []*service) []*service {
	var out []*service
	for _, s := range list {
		if s.family != "" && !s.commentedOut {
			if i := slices.IndexFunc(out, func(o *service) bool { return sameButFamily(o, s) }); i >= 0 {
				o := out[i]
				o.del("address")
				o.family = ""
				o.about = append(o.about, s.about...)
				o.note("the %s line at %s is merged in: goinetd binds IPv4 and IPv6 on one port", map[string]string{"4": "IPv4", "6": "IPv6"}[s.family], s.origin)
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func sameButFamily(a, b *service) bool {
	if a.family == "" || a.family == b.family || a.commentedOut || a.base != b.base {
		return false
	}
	strip := func(s *service) []setting {
		return slices.DeleteFunc(slices.Clone(s.settings), func(st setting) bool { return st.key == "address" })
	}
	return slices.Equal(strip(a), strip(b)) && slices.Equal(a.notes, b.notes) && slices.Equal(a.notConverted, b.notConverted)
}

// validName is what config accepts as a service name.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var invalidNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// nameServices gives each service a unique table name: the name it
// wants, made valid, then with its protocol, then a number, appended.
func nameServices(services []*service) {
	taken := map[string]bool{}
	for _, s := range services {
		base := invalidNameChars.ReplaceAllString(s.base, "-")
		if !validName.MatchString(base) {
			base = "service-" + strings.TrimLeft(base, "-_.")
		}
		name := base
		if p, ok := s.get("protocol"); ok && taken[name] {
			name = base + "-" + strings.Trim(string(p), `"`)
			if s.family == "6" {
				name += "6"
			}
		}
		for n := 2; taken[name]; n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		taken[name] = true
		s.name = name
	}
}

// hoistDefaults moves to [defaults] each setting that xinetd's defaults
// gave, where every service (but those written commented out) has that
// key: with the default's value, or its own; and returns them. A key some
// service lacks (it does not apply there) stays in each service that has
// it, since [defaults] would give it to that one too.
func hoistDefaults(services []*service) []setting {
	var live []*service
	for _, s := range services {
		if !s.commentedOut {
			live = append(live, s)
		}
	}
	var hoisted []setting
	for _, key := range keyOrder {
		var dflt *setting
		all := len(live) > 0
		for _, s := range live {
			i := slices.IndexFunc(s.settings, func(o setting) bool { return o.key == key })
			if i < 0 {
				all = false
				break
			}
			st := s.settings[i]
			if st.fromDefaults {
				if dflt != nil && dflt.val != st.val {
					all = false
					break
				}
				dflt = &st
			}
		}
		if all && dflt != nil {
			hoisted = append(hoisted, *dflt)
		}
	}
	for _, st := range hoisted {
		for _, s := range live {
			if v, _ := s.get(st.key); v == st.val {
				s.del(st.key)
			}
		}
	}
	return hoisted
}

// keyOrder is the order keys are written in; every key the importer
// writes is here, and is a key of config's service tables.
var keyOrder = []string{
	"disabled", "protocol", "address", "port", "path", "mode", "sensor", "builtin", "udp_reflection",
	"program", "argv0", "args", "user", "group", "stderr", "env", "pass_env",
	"only_from", "no_access", "max_connections", "max_per_source", "rate_limit", "rate_pause",
	"nice", "umask", "rlimits", "tcp_nodelay", "keepalive",
}

// render writes the inetd.toml text.
func render(paths []string, xinetd bool, xdefaults *service, defaults []setting, services []*service) []byte {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	line("# inetd.toml written by `goinetd import` from:")
	for _, p := range paths {
		line("#   " + comment(p))
	}
	header := "Check it with `goinetd check -c FILE` on the host that will run it. " +
		"goinetd's own limits apply to these services too, where inetd and xinetd had none: at most 256 live " +
		"connections a service (max_connections; past it clients wait in the backlog), 16 a client address " +
		"for tcp services in nowait mode (max_per_source; past it refused), and a log record per connection. "
	if xinetd {
		header += "An xinetd service without flags = IPv6 binds IPv4 only, as under xinetd (address = \"0.0.0.0\"). "
	}
	for _, l := range wrap("# ", "# ", header+"See docs/migrating.md for what differs.") {
		line(l)
	}
	if len(services) == 0 {
		line("")
		line("# No service: the input has no service line or block (comments are not converted).")
	}
	if xdefaults != nil || len(defaults) > 0 {
		line("")
		if xdefaults != nil {
			line("# " + comment(xdefaults.origin) + ": defaults")
			for _, n := range xdefaults.notConverted {
				for _, l := range wrap("# not converted: ", "#   ", n) {
					line(l)
				}
			}
		}
	}
	if len(defaults) > 0 {
		line("# What xinetd's defaults gave every service.")
		line("[defaults]")
		writeSettings(&b, defaults, "")
	}
	for _, s := range services {
		line("")
		line("# " + comment(s.origin) + ": " + comment(s.about[0]))
		for _, a := range s.about[1:] {
			line("#   " + comment(a))
		}
		for _, n := range s.notes {
			for _, l := range wrap("# ", "# ", n) {
				line(l)
			}
		}
		for _, n := range s.notConverted {
			for _, l := range wrap("# not converted: ", "#   ", n) {
				line(l)
			}
		}
		prefix := ""
		if s.commentedOut {
			prefix = "# "
		}
		line(prefix + tableHeader(s.name))
		writeSettings(&b, s.settings, prefix)
	}
	return []byte(b.String())
}

func writeSettings(b *strings.Builder, settings []setting, prefix string) {
	sorted := slices.Clone(settings)
	slices.SortStableFunc(sorted, func(x, y setting) int {
		return slices.Index(keyOrder, x.key) - slices.Index(keyOrder, y.key)
	})
	for _, st := range sorted {
		if st.why != "" {
			for _, l := range wrap(prefix+"# ", prefix+"# ", st.why) {
				b.WriteString(l + "\n")
			}
		}
		b.WriteString(prefix + st.key + " = " + string(st.val) + "\n")
	}
}
