package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// validName is what a service name may be: it appears in logs, metrics and
// LISTEN_FDNAMES.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validate fills in defaults and checks what no single key can check alone,
// for services that came from the files in from. Disabled services are
// checked as written but their programs, folders and ports are not.
func validate(cfg *Config, main *problems, from map[*Service]*where) {
	validateServer(&cfg.Server, main)
	for _, s := range cfg.Services {
		validateService(s, from[s])
	}
	checkConflicts(cfg, from)
}

// validateServer checks the [server] table as a whole.
func validateServer(s *Server, main *problems) {
	if _, set := main.lines["server.syslog_facility"]; set && s.Log.Kind != LogSyslog {
		main.add("server.syslog_facility", `applies only with log = "syslog"`)
	}
	if s.Log.Kind == LogFile {
		dir := filepath.Dir(s.Log.Path)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			main.add("server.log", "%s: its folder %s must exist", s.Log.Path, dir)
		} else if w := writers(fi); w != (writersOf{owner: -1, group: -1}) {
			main.warn("server.log", "the folder %s of the log file can be written by %s, who could replace the log or read it", dir, w)
		}
	}
	if s.Metrics != "" && !isLoopback(s.Metrics) {
		main.warn("server.metrics", "%q is reachable beyond this host: the metrics endpoint is not authenticated; bind it to 127.0.0.1 or [::1], or make sure a firewall keeps it on an admin network", s.Metrics)
	}
}

// isLoopback reports whether hostPort, a valid "host:port", names a
// loopback address or localhost.
func isLoopback(hostPort string) bool {
	host, _, _ := net.SplitHostPort(hostPort)
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// where tells in which file, and under which key, a service's settings
// are written: its own table, in its own file, or [defaults] in the main
// file. A problem with a value is reported where the value is written.
type where struct {
	svc  *Service
	file *problems // of the file that holds the service
	main *problems // of the main file, which holds [defaults]
	dir  string    // the folder of the service's file
}

func (w *where) ownKey(name string) string {
	return toml.Key{"services", w.svc.Name, name}.String()
}

// own reports whether name is set in the service's own table.
func (w *where) own(name string) bool {
	_, ok := w.file.lines[w.ownKey(name)]
	return ok
}

// set reports whether name is set for the service, in its table or in
// [defaults], even if the value was bad.
func (w *where) set(name string) bool {
	_, dflt := w.main.lines[toml.Key{"defaults", name}.String()]
	return w.own(name) || dflt
}

// add records a problem with the service's setting name.
func (w *where) add(name, format string, args ...any) {
	if !w.own(name) && w.main.lines[toml.Key{"defaults", name}.String()] > 0 {
		w.main.add(toml.Key{"defaults", name}.String(), format, args...)
		return
	}
	w.file.add(w.ownKey(name), format, args...)
}

// warn records a warning about the service's setting name, where add
// would record a problem with it.
func (w *where) warn(name, format string, args ...any) {
	if !w.own(name) && w.main.lines[toml.Key{"defaults", name}.String()] > 0 {
		w.main.warn(toml.Key{"defaults", name}.String(), format, args...)
		return
	}
	w.file.warn(w.ownKey(name), format, args...)
}

// addTable records a problem with the service as a whole.
func (w *where) addTable(format string, args ...any) {
	w.file.add(toml.Key{"services", w.svc.Name}.String(), format, args...)
}

func validateService(s *Service, w *where) {
	notFor := func(what string, names ...string) {
		for _, name := range names {
			if w.own(name) {
				w.add(name, "does not apply to %s", what)
			}
		}
	}

	if !validName.MatchString(s.Name) {
		w.addTable("a service name may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit")
	}
	if s.Protocol == "" {
		s.Protocol = TCP
	}
	if s.Stderr == "" {
		s.Stderr = StderrLog
	}
	if s.Mode == "" {
		s.Mode = NoWait
		if s.Protocol == UDP {
			s.Mode = Wait
		}
	}

	switch s.Protocol {
	case TCP, UDP:
		if s.PortName != "" {
			port, err := lookupPort(ServicesFile, s.PortName, s.Protocol)
			if err != nil {
				w.add(keyPort, "%v", err)
			}
			s.Port = port
		}
		if s.Port == 0 && !w.set(keyPort) {
			w.add(keyPort, "missing: a %s service needs a port", s.Protocol)
		}
		notFor("a "+string(s.Protocol)+" service (it is for unix sockets)", keySocketPath, keySocketMode, keySocketUser, keySocketGroup)
		if s.Protocol == UDP && s.Mode == NoWait && s.Builtin == "" {
			w.add(keyMode, "%q does not work for udp: the handler receives the datagram itself, "+
				"so udp services run in \"wait\" mode", s.Mode)
		}
	case Unix:
		notFor("a unix service (it has a path)", keyPort, keyAddress, keyFreebind)
		checkSocketPath(s, w)
	}
	if s.SocketMode == 0 && !w.set(keySocketMode) {
		s.SocketMode = DefaultSocketMode
	}

	switch {
	case s.Sensor:
		validateSensor(s, w, notFor)
	case s.Forward != "":
		notFor("a forwarding service", keyArgs, keyArgv0, keyWorkdir, keyEnv, keyStderr, keyStderrLineRate, keyStderrByteRate, keyListenFDs)
	case s.Builtin != "" && s.Program != "":
		w.add(keyBuiltin, "a service runs a program or a builtin, not both")
	case s.Builtin != "":
		notFor("a builtin service", keyArgs, keyArgv0, keyWorkdir, keyEnv, keyStderr, keyStderrLineRate, keyStderrByteRate, keyListenFDs)
		if s.Mode == Wait && s.Protocol != UDP {
			w.add(keyMode, "a builtin %s service serves each connection in goinetd: it runs in \"nowait\" mode", s.Protocol)
		}
	case s.Program == "":
		if !w.set(keyProgram) && !w.set(keyBuiltin) && !w.set(keyForward) {
			w.add(keyProgram, "missing: a service needs a program to run (or a builtin, or forward)")
		}
	}
	if s.ListenFDs && s.Mode != Wait {
		w.add(keyListenFDs, "needs mode = \"wait\": the handler gets the listening socket")
	}
	if s.Stderr == StderrSocket && s.Mode == Wait {
		w.add(keyStderr, "\"socket\" does not apply in wait mode: the handler gets the listening socket, not a connection")
	}

	validateForward(s, w)
	validateBanners(s, w)
	validateTLS(s, w)
	validateLimits(s, w)
	validateDenyOnRate(s, w)
	validateLogLimits(s, w)
	validateReplies(s, w)
	validateSandbox(s, w)
	validateSocketOptions(s, w)
}

// validateSensor checks a sensor: a tcp service in nowait mode that runs
// nothing. Not udp: a datagram's source can be forged, and a forged
// source would make goinetd deny an innocent address. Not unix: its peer
// has no address to deny.
func validateSensor(s *Service, w *where, notFor func(string, ...string)) {
	if s.Protocol != TCP || s.Mode != NoWait {
		w.add(keySensor, "applies only to tcp services in nowait mode: a udp datagram's source can be forged, "+
			"which would make goinetd deny an innocent address, and a unix peer has no address")
	}
	if s.Program != "" || s.Builtin != "" {
		w.add(keySensor, "a sensor runs nothing: remove program and builtin")
	}
	notFor("a sensor (it runs nothing)", keyArgs, keyArgv0, keyWorkdir, keyEnv, keyListenFDs, keyProxyProtocol, keyRules)
}

// validateDenyOnRate checks that deny_on_rate applies: it needs a
// rate_limit_per_source to trip, and not on udp, whose sources can be
// forged to have an innocent address denied.
func validateDenyOnRate(s *Service, w *where) {
	if !s.DenyOnRate {
		return
	}
	switch {
	case s.Protocol != TCP:
		if w.own(keyDenyOnRate) {
			w.add(keyDenyOnRate, "applies only to tcp services: a udp datagram's source can be forged, "+
				"which would make goinetd deny an innocent address, and a unix peer has no address")
		}
		s.DenyOnRate = false
	case s.RateLimitPerSource.N == 0:
		if w.own(keyDenyOnRate) {
			w.add(keyDenyOnRate, "applies only with rate_limit_per_source: the rate whose excess sends a source to the deny list")
		}
		s.DenyOnRate = false
	}
}

// validateBanners checks that banners apply: goinetd writes them on a
// connection it accepts, so a service must be a stream one in nowait
// mode. A udp service has no connection to write to (a banner would be an
// unsolicited datagram to a source that may be forged), and in wait mode
// the handler accepts the connections itself. A banner inherited from
// [defaults] is dropped where it does not apply.
func validateBanners(s *Service, w *where) {
	var why string
	switch {
	case s.Protocol == UDP:
		why = "a udp service: a datagram is not a connection, and a banner would be sent to a source that may be forged"
	case s.Mode == Wait:
		why = "wait mode: the handler accepts connections itself, so goinetd never holds one to write to"
	default:
		return
	}
	for _, name := range []string{keyBanner, keyBannerRefused} {
		if w.own(name) {
			w.add(name, "does not apply to %s", why)
		}
	}
	s.Banner, s.BannerRefused = nil, nil
}

// validateLogLimits fills in the default log limits, which only an
// explicit 0 lifts, and checks that the stderr ones apply.
func validateLogLimits(s *Service, w *where) {
	for _, d := range []struct {
		key   string
		rate  *Rate
		value Rate
	}{
		{keyStderrLineRate, &s.StderrLineRate, DefaultStderrLineRate},
		{keyStderrByteRate, &s.StderrByteRate, DefaultStderrByteRate},
		{keyConnectionLogRate, &s.ConnectionLogRate, DefaultConnectionLogRate},
	} {
		if !w.set(d.key) {
			*d.rate = d.value
		}
	}
	if s.Builtin == "" && s.Forward == "" && s.Stderr != StderrLog {
		for _, name := range []string{keyStderrLineRate, keyStderrByteRate} {
			if w.own(name) {
				w.add(name, "applies only with stderr = \"log\": goinetd does not read the handlers' stderr otherwise")
			}
		}
	}
}

// warnUnreachableRules warns of each rule that an earlier one hides: the
// first rule that holds a client decides, so a rule whose prefix lies
// inside an earlier rule's is never used. It indexes each prefix's first
// rule, then looks each rule's prefix up at the shorter lengths in use.
func warnUnreachableRules(s *Service, w *where) {
	first := make(map[netip.Prefix]int, len(s.Rules))
	var lengths [129]bool
	for i, r := range s.Rules {
		j := 0
		for bits := 0; bits <= r.From.Bits(); bits++ {
			if !lengths[bits] {
				continue
			}
			p, _ := r.From.Addr().Prefix(bits)
			if k, ok := first[p]; ok && (j == 0 || k+1 < j) {
				j = k + 1
			}
		}
		if j > 0 {
			w.warn(keyRules, "rule %d (%s) is never used: rule %d (%s) comes first and holds every address it does (the first match decides: put narrower prefixes first)",
				i+1, r.From, j, s.Rules[j-1].From)
			continue
		}
		first[r.From.Masked()] = i
		lengths[r.From.Bits()] = true
	}
}

// validateRuleEnv rejects rules that change the environment of a service
// that has no per-connection handler: deny still applies there.
func validateRuleEnv(s *Service, w *where) {
	var where string
	switch {
	case s.Builtin != "":
		where = "a builtin service: it starts no handler"
	case s.Forward != "":
		where = "a forwarding service: it starts no handler"
	case s.Protocol == UDP:
		where = "a udp service: its handler serves every sender"
	default:
		return
	}
	for i, r := range s.Rules {
		if len(r.Env) > 0 || len(r.Unset) > 0 {
			w.add(keyRules, "rule %d: env and unset do not apply to %s (deny does)", i+1, where)
		}
	}
}

// validateLimits checks where admission keys apply. A client of a unix
// socket has no address, and in TCP wait mode the handler accepts
// connections itself; an address rule that cannot be enforced is an error
// even when inherited from [defaults], since ignoring it would open the
// service to everyone.
func validateLimits(s *Service, w *where) {
	if s.SourcePrefixV6 == 0 && !w.set(keySourcePrefixV6) {
		s.SourcePrefixV6 = 64
	}
	if s.RatePause == 0 {
		s.RatePause = DefaultRatePause
	}
	if !w.set(keyMaxConnections) {
		s.MaxConnections = DefaultMaxConnections
	}
	perClient := []string{keyOnlyFrom, keyNoAccess, keyRules, keyMaxPerSource, keyRateLimitPerSource, keySourcePrefixV6}
	var where string
	switch {
	case s.Protocol == Unix:
		where = "a unix service: its clients have no address"
	case s.Protocol == TCP && s.Mode == Wait:
		where = "wait mode: the handler accepts connections itself"
	case s.Protocol == UDP:
		perClient, where = []string{keyMaxPerSource}, "a udp service: a datagram is not a connection"
	}
	if where != "" {
		for _, name := range perClient {
			switch {
			case w.own(name):
				w.add(name, "does not apply to %s", where)
			case name == keyMaxPerSource && s.MaxPerSource == 0:
				// Lifted in [defaults]: nothing is left unenforced.
			case w.set(name):
				w.addTable("%s from [defaults] does not apply to %s", name, where)
			}
		}
	} else if !w.set(keyMaxPerSource) {
		s.MaxPerSource = DefaultMaxPerSource
	}
	validateRuleEnv(s, w)
	warnUnreachableRules(s, w)
	switch {
	case s.Forward != "":
		if w.own(keyIdleTimeout) {
			w.add(keyIdleTimeout, "does not apply to a forwarding service, whose bytes the kernel moves without goinetd seeing each read (use timeout)")
		}
		s.IdleTimeout = 0
	case s.Builtin == "":
		if w.own(keyIdleTimeout) {
			w.add(keyIdleTimeout, "applies only to builtin services: a handler's traffic does not pass through goinetd (use timeout)")
		}
		s.IdleTimeout = 0
	case s.Protocol == UDP:
		if w.own(keyIdleTimeout) {
			w.add(keyIdleTimeout, "does not apply to a udp service: a datagram is not a connection")
		}
		s.IdleTimeout = 0
	case !w.set(keyIdleTimeout):
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.ProxyTimeout == 0 {
		s.ProxyTimeout = DefaultProxyTimeout
	}
	switch {
	case s.ProxyProtocol && (s.Protocol != TCP || s.Mode == Wait):
		w.add(keyProxyProtocol, "applies only to tcp services in nowait mode: goinetd reads the header before the handler starts")
	case s.ProxyProtocol && len(s.ProxyFrom) == 0:
		w.add(keyProxyProtocol, "needs proxy_from: the balancers trusted to send a header (anyone else's connection is refused)")
	case !s.ProxyProtocol && !w.set(keyProxyProtocol):
		for _, name := range []string{keyProxyFrom, keyProxyTimeout} {
			if w.own(name) {
				w.add(name, "applies only with proxy_protocol = true")
			}
		}
	}
	if s.ResolveTimeout == 0 {
		s.ResolveTimeout = DefaultResolveTimeout
	}
	switch {
	case s.ResolvePeer && (s.Protocol != TCP || s.Mode == Wait || s.Builtin != ""):
		if w.own(keyResolvePeer) { // from [defaults], it applies where it can
			w.add(keyResolvePeer, "applies only to tcp services that run a program in nowait mode: the name is passed in the handler's environment")
		}
		s.ResolvePeer = false
	case !s.ResolvePeer && !w.set(keyResolvePeer) && w.own(keyResolveTimeout):
		w.add(keyResolveTimeout, "applies only with resolve_peer = true")
	}
	if s.MaxLoad > 0 && (s.Protocol == UDP || s.Mode == Wait) {
		// goinetd refuses a connection it accepted; in wait mode the
		// handler accepts, and a datagram is not a connection.
		if w.own(keyMaxLoad) {
			w.add(keyMaxLoad, "applies only to tcp and unix services in nowait mode: goinetd refuses the connections it accepts")
		}
		s.MaxLoad = 0
	}
	if w.own(keyRatePause) && !w.set(keyRateLimit) && !w.set(keyRateLimitPerSource) {
		w.add(keyRatePause, "applies only with rate_limit or rate_limit_per_source")
	}
}

// validateSandbox checks the handler's user, limits and root, and resolves
// the program and working directory (inside the root, if there is one).
func validateSandbox(s *Service, w *where) {
	if s.Builtin != "" || s.Forward != "" {
		// A built-in or a forwarder runs in goinetd: none of this applies.
		// Keys inherited from [defaults] are ignored for it; its own are
		// errors.
		what := "a builtin service"
		if s.Forward != "" {
			what = "a forwarding service"
		}
		for _, name := range []string{keyUser, keyGroup, keyPassEnv, keyRlimits, keyNice, keyUmask, keyChroot, keyKillGroupOnExit} {
			if w.own(name) {
				w.add(name, "does not apply to %s", what)
			}
		}
		s.Sandbox = Sandbox{}
		return
	}
	if !w.set(keyKillGroupOnExit) {
		// As systemd ends a per-connection unit's whole cgroup; a wait-mode
		// handler is a server that may fork on purpose.
		s.KillGroupOnExit = s.Mode == NoWait
	}
	if s.Credential != nil && s.group == nil && os.Geteuid() != 0 && s.Credential.GID != uint32(os.Getegid()) {
		// goinetd's own user, named while goinetd runs in another group
		// (as under sg): switching to the user's primary group needs root.
		w.add(keyUser, "user %q: its primary group is %d, not goinetd's (%d): %v; set group to goinetd's",
			s.Credential.User, s.Credential.GID, os.Getegid(), needsRoot("running a handler in another group"))
	}
	if s.Credential != nil || s.group != nil {
		c := Credential{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
		if s.Credential != nil {
			c = *s.Credential
			c.Groups = slices.Clone(c.Groups)
		}
		if s.group != nil {
			c.GID = uint32(*s.group)
		}
		if c.User != "" && !slices.Contains(c.Groups, c.GID) {
			c.Groups = append([]uint32{c.GID}, c.Groups...)
		}
		s.Credential = &c
		s.group = nil
	}
	if os.Geteuid() != 0 {
		if s.Chroot != "" {
			w.add(keyChroot, "%v", needsRoot(keyChroot))
		}
		if s.Nice != nil && *s.Nice < 0 {
			w.add(keyNice, "%v", needsRoot("a negative nice value"))
		}
	}

	root, rootOK := "/", true
	if s.Chroot != "" {
		s.Chroot = resolve(w.dir, s.Chroot)
		root = s.Chroot
		if !s.Disabled {
			if err := checkDir(s.Chroot); err != nil {
				w.add(keyChroot, "%v", err)
				rootOK = false
			}
		}
	}
	if s.Program != "" && rootOK {
		if s.Chroot != "" && !filepath.IsAbs(s.Program) {
			w.add(keyProgram, "with chroot, the program is a path inside the new root and must be absolute")
		} else {
			s.Program = resolve(w.dir, s.Program)
			if !s.Disabled {
				if err := checkExecutable(filepath.Join(root, s.Program)); err != nil {
					w.add(keyProgram, "%v", err)
				}
			}
		}
	}
	switch {
	case s.Workdir == "" && s.Chroot != "":
		s.Workdir = "/"
	case s.Workdir == "":
		s.Workdir = w.dir
	case s.Chroot != "" && !filepath.IsAbs(s.Workdir):
		w.add(keyWorkdir, "with chroot, the workdir is a path inside the new root and must be absolute")
	default:
		s.Workdir = resolve(w.dir, s.Workdir)
		if !s.Disabled && rootOK {
			if err := checkDir(filepath.Join(root, s.Workdir)); err != nil {
				w.add(keyWorkdir, "%v", err)
			}
		}
	}
	if c := s.Credential; c != nil && !s.Disabled && rootOK {
		who := fmt.Sprintf("user %q", c.User)
		if c.User == "" {
			who = "the handler"
		}
		if err := AccessDenied(root, s.Workdir, c, MaySearch); err != nil {
			w.warn(workdirKey(w), "%s cannot enter %s, so no connection will start: %v; set workdir to a folder it can enter, or allow it (chmod o+x)", who, s.Workdir, err)
		}
		if s.Program != "" {
			if err := AccessDenied(root, s.Program, c, MayExec); err != nil {
				w.warn(keyProgram, "%s cannot run %s: %v", who, s.Program, err)
			}
		}
	}
}

// workdirKey is the key a problem with the handler's working folder is
// reported under: workdir if it is set, else user, which made the default
// folder a problem.
func workdirKey(w *where) string {
	if w.set(keyWorkdir) {
		return keyWorkdir
	}
	return keyUser
}

// checkSocketPath resolves a unix service's path and checks that a socket
// can be made there.
func checkSocketPath(s *Service, w *where) {
	if s.Path == "" {
		if !w.set(keySocketPath) {
			w.add(keySocketPath, "missing: a unix service needs a path")
		}
		return
	}
	s.Path = resolve(w.dir, s.Path)
	if len(s.Path) > MaxSocketPath {
		w.add(keySocketPath, "%s is %d bytes long; a socket path has at most %d", s.Path, len(s.Path), MaxSocketPath)
		return
	}
	if s.Disabled {
		return
	}
	if err := checkDir(filepath.Dir(s.Path)); err != nil {
		w.add(keySocketPath, "folder %v", err)
	} else if who := writableByOthers(filepath.Dir(s.Path)); who != "" {
		w.warn(keySocketPath, "%s: they can replace the socket with their own, and its clients would talk to them; "+
			"put it in a folder only root can write, such as /run/goinetd", who)
	}
	if fi, err := os.Lstat(s.Path); err == nil && fi.Mode().Type() != fs.ModeSocket {
		w.add(keySocketPath, "%s exists and is not a socket; goinetd replaces only a stale socket", s.Path)
	}
}

func resolve(dir, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, path)
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", path, statError(err))
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case unix.Access(path, unix.X_OK) != nil || fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

func checkDir(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", path, statError(err))
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	}
	return nil
}

// writableByOthers says who, other than root and goinetd's own user, can
// write dir or a folder above it (and so rename dir away), for the
// nearest such folder: "folder F is owned by uid N", "... is writable by
// group N" or "... is writable by every user"; or "" if nobody can. A
// sticky folder owned by root protects its entries from the users who can
// write it. Where dir's path goes through a symlink, the folders of the
// symlink and those of its target are checked.
func writableByOthers(dir string) string {
	if who := writableFolder(dir); who != "" {
		return who
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		return writableFolder(real)
	}
	return ""
}

// writableFolder is writableByOthers for the folders named in dir's
// path, symlinks skipped.
func writableFolder(dir string) string {
	for {
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
			switch w := writers(fi); {
			case w.owner >= 0:
				return fmt.Sprintf("folder %s is owned by uid %d", dir, w.owner)
			case w.others:
				return fmt.Sprintf("folder %s is writable by every user", dir)
			case w.group >= 0:
				return fmt.Sprintf("folder %s is writable by group %d", dir, w.group)
			}
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// statError drops the path from an os.Stat error, which the caller names.
func statError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkConflicts reports enabled services that would bind the same port
// on overlapping addresses. Services are sorted by name, so the later name
// is the one reported.
func checkConflicts(cfg *Config, from map[*Service]*where) {
	// Only services on one path, or one protocol and port, can collide:
	// group them so that the check is linear in the services.
	type place struct {
		protocol Protocol
		port     uint16
		path     string
	}
	seen := make(map[place][]*Service)
	for _, b := range cfg.Enabled() {
		var at place
		switch {
		case b.Protocol == Unix && b.Path != "":
			at = place{protocol: Unix, path: b.Path}
		case b.Protocol != Unix && b.Port != 0:
			at = place{protocol: b.Protocol, port: b.Port}
		default:
			continue
		}
		for _, a := range seen[at] {
			if b.Protocol == Unix {
				from[b].file.add(toml.Key{"services", b.Name, keySocketPath}.String(), "%s is already used by %s",
					b.Path, from[a].name(a))
				break
			}
			if overlaps(a.Address, b.Address) {
				from[b].file.add(toml.Key{"services", b.Name, keyPort}.String(), "%d is already used by %s",
					b.Port, from[a].name(a))
				break
			}
		}
		seen[at] = append(seen[at], b)
	}
}

// name names svc for a message about another service: its key, and its
// file if it is not the main one.
func (w *where) name(svc *Service) string {
	key := toml.Key{"services", svc.Name}.String()
	if w.file != w.main {
		return key + " in " + w.file.file
	}
	return key
}

// overlaps reports whether binding both addresses on one port would
// collide. The zero Addr is every interface of both families; 0.0.0.0 is
// every IPv4 interface and :: every IPv6 one.
func overlaps(a, b netip.Addr) bool {
	switch {
	case !a.IsValid() || !b.IsValid():
		return true
	case a.Is4() != b.Is4():
		return false
	default:
		return a == b || a.IsUnspecified() || b.IsUnspecified()
	}
}
