package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// validName is what a service name may be: it appears in logs, metrics and
// LISTEN_FDNAMES.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validate fills in defaults and checks what no single key can check alone.
// Disabled services are checked as written but their programs, folders and
// ports are not.
func validate(cfg *Config, ps *problems) {
	for _, s := range cfg.Services {
		validateService(cfg, s, ps)
	}
	checkConflicts(cfg, ps)
}

func validateService(cfg *Config, s *Service, ps *problems) {
	// A problem with a value is reported where the value is written: in
	// the service's table, or in [defaults] if it inherits it.
	key := func(name string) string {
		own := toml.Key{"services", s.Name, name}.String()
		dflt := toml.Key{"defaults", name}.String()
		if _, ok := ps.lines[own]; !ok && ps.lines[dflt] > 0 {
			return dflt
		}
		return own
	}
	set := func(name string) bool { return ps.defined(s.Name, name) }
	// own reports a key set in the service's own table, not inherited.
	own := func(name string) bool {
		_, ok := ps.lines[toml.Key{"services", s.Name, name}.String()]
		return ok
	}
	notFor := func(what string, names ...string) {
		for _, name := range names {
			if own(name) {
				ps.add(key(name), "does not apply to %s", what)
			}
		}
	}

	if !validName.MatchString(s.Name) {
		ps.add(toml.Key{"services", s.Name}.String(),
			"a service name may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit")
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
		if s.Port == 0 && !set("port") {
			ps.add(key("port"), "missing: a %s service needs a port", s.Protocol)
		}
		notFor("a "+string(s.Protocol)+" service (it is for unix sockets)", "path", "socket_mode", "socket_user", "socket_group")
		if s.Protocol == UDP && s.Mode == NoWait && s.Builtin == "" {
			ps.add(key("mode"), "%q does not work for udp: the handler receives the datagram itself, "+
				"so udp services run in \"wait\" mode", s.Mode)
		}
	case Unix:
		notFor("a unix service (it has a path)", "port", "address")
		checkSocketPath(cfg, s, key("path"), set("path"), ps)
	}
	if s.SocketMode == 0 && !set("socket_mode") {
		s.SocketMode = DefaultSocketMode
	}

	switch {
	case s.Builtin != "" && s.Program != "":
		ps.add(key("builtin"), "a service runs a program or a builtin, not both")
	case s.Builtin != "":
		notFor("a builtin service", "args", "workdir", "env", "stderr", "listen_fds")
		if s.Mode == Wait && s.Protocol != UDP {
			ps.add(key("mode"), "a builtin %s service serves each connection in goinetd: it runs in \"nowait\" mode", s.Protocol)
		}
	case s.Program == "":
		if !set("program") && !set("builtin") {
			ps.add(key("program"), "missing: a service needs a program to run (or a builtin)")
		}
	}
	if s.ListenFDs && s.Mode != Wait {
		ps.add(key("listen_fds"), "needs mode = \"wait\": the handler gets the listening socket")
	}
	if s.Stderr == StderrSocket && s.Mode == Wait {
		ps.add(key("stderr"), "\"socket\" does not apply in wait mode: the handler gets the listening socket, not a connection")
	}

	validateLimits(s, key, set, own, ps)
	validateSandbox(cfg, s, key, own, ps)
}

// validateLimits checks where admission keys apply. A client of a unix
// socket has no address, and in TCP wait mode the handler accepts
// connections itself; an address rule that cannot be enforced is an error
// even when inherited from [defaults], since ignoring it would open the
// service to everyone.
func validateLimits(s *Service, key func(string) string, set, own func(string) bool, ps *problems) {
	if s.SourcePrefixV6 == 0 && !set("source_prefix_v6") {
		s.SourcePrefixV6 = 64
	}
	if s.RatePause == 0 {
		s.RatePause = DefaultRatePause
	}
	perClient := []string{"only_from", "no_access", "max_per_source", "rate_limit_per_source", "source_prefix_v6"}
	var where string
	switch {
	case s.Protocol == Unix:
		where = "a unix service: its clients have no address"
	case s.Protocol == TCP && s.Mode == Wait:
		where = "wait mode: the handler accepts connections itself"
	case s.Protocol == UDP:
		perClient, where = []string{"max_per_source"}, "a udp service: a datagram is not a connection"
	}
	if where != "" {
		for _, name := range perClient {
			switch {
			case own(name):
				ps.add(key(name), "does not apply to %s", where)
			case set(name):
				ps.add(toml.Key{"services", s.Name}.String(), "%s from [defaults] does not apply to %s", name, where)
			}
		}
	}
	if own("rate_pause") && !set("rate_limit") && !set("rate_limit_per_source") {
		ps.add(key("rate_pause"), "applies only with rate_limit or rate_limit_per_source")
	}
}

// validateSandbox checks the handler's user, limits and root, and resolves
// the program and working directory (inside the root, if there is one).
func validateSandbox(cfg *Config, s *Service, key func(string) string, own func(string) bool, ps *problems) {
	if s.Builtin != "" {
		// A built-in runs in goinetd: none of this applies. Keys inherited
		// from [defaults] are ignored for it; its own are errors.
		for _, name := range []string{"user", "group", "pass_env", "rlimits", "nice", "umask", "chroot"} {
			if own(name) {
				ps.add(key(name), "does not apply to a builtin service")
			}
		}
		s.Sandbox = Sandbox{}
		return
	}
	if s.group != nil {
		c := Credential{UID: uint32(os.Geteuid()), GID: uint32(*s.group)}
		if s.Credential != nil {
			c = *s.Credential
			c.GID = uint32(*s.group)
		}
		s.Credential = &c
		s.group = nil
	}

	root, rootOK := "/", true
	if s.Chroot != "" {
		s.Chroot = resolve(cfg.Dir, s.Chroot)
		root = s.Chroot
		if !s.Disabled {
			if err := checkDir(s.Chroot); err != nil {
				ps.add(key("chroot"), "%v", err)
				rootOK = false
			}
		}
	}
	if s.Program != "" && rootOK {
		if s.Chroot != "" && !filepath.IsAbs(s.Program) {
			ps.add(key("program"), "with chroot, the program is a path inside the new root and must be absolute")
		} else {
			s.Program = resolve(cfg.Dir, s.Program)
			if !s.Disabled {
				if err := checkExecutable(filepath.Join(root, s.Program)); err != nil {
					ps.add(key("program"), "%v", err)
				}
			}
		}
	}
	switch {
	case s.Workdir == "" && s.Chroot != "":
		s.Workdir = "/"
	case s.Workdir == "":
		s.Workdir = cfg.Dir
	case s.Chroot != "" && !filepath.IsAbs(s.Workdir):
		ps.add(key("workdir"), "with chroot, the workdir is a path inside the new root and must be absolute")
	default:
		s.Workdir = resolve(cfg.Dir, s.Workdir)
		if !s.Disabled && rootOK {
			if err := checkDir(filepath.Join(root, s.Workdir)); err != nil {
				ps.add(key("workdir"), "%v", err)
			}
		}
	}
}

// checkSocketPath resolves a unix service's path and checks that a socket
// can be made there.
func checkSocketPath(cfg *Config, s *Service, key string, set bool, ps *problems) {
	if s.Path == "" {
		if !set {
			ps.add(key, "missing: a unix service needs a path")
		}
		return
	}
	s.Path = resolve(cfg.Dir, s.Path)
	if len(s.Path) > MaxSocketPath {
		ps.add(key, "%s is %d bytes long; a socket path has at most %d", s.Path, len(s.Path), MaxSocketPath)
		return
	}
	if s.Disabled {
		return
	}
	if err := checkDir(filepath.Dir(s.Path)); err != nil {
		ps.add(key, "folder %v", err)
	}
	if fi, err := os.Lstat(s.Path); err == nil && fi.Mode().Type() != fs.ModeSocket {
		ps.add(key, "%s exists and is not a socket; goinetd replaces only a stale socket", s.Path)
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
func checkConflicts(cfg *Config, ps *problems) {
	on := cfg.Enabled()
	for i, b := range on {
		for _, a := range on[:i] {
			if a.Protocol != b.Protocol {
				continue
			}
			if b.Protocol == Unix && a.Path == b.Path && a.Path != "" {
				ps.add(toml.Key{"services", b.Name, "path"}.String(), "%s is already used by %s",
					b.Path, toml.Key{"services", a.Name}.String())
				break
			}
			if b.Protocol != Unix && a.Port == b.Port && a.Port != 0 && overlaps(a.Address, b.Address) {
				ps.add(toml.Key{"services", b.Name, "port"}.String(), "%d is already used by %s",
					b.Port, toml.Key{"services", a.Name}.String())
				break
			}
		}
	}
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
