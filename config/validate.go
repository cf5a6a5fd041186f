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
	if !validName.MatchString(s.Name) {
		ps.add(toml.Key{"services", s.Name}.String(),
			"a service name may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit")
	}
	if s.Protocol == "" {
		s.Protocol = TCP
	}
	if s.Mode == "" {
		s.Mode = NoWait
	}
	if s.Stderr == "" {
		s.Stderr = StderrLog
	}
	if s.Protocol != TCP {
		ps.add(key("protocol"), "%q is not supported yet", s.Protocol)
	}
	if s.Mode != NoWait {
		ps.add(key("mode"), "%q is not supported yet", s.Mode)
	}
	if s.Port == 0 && !ps.defined(s.Name, "port") {
		ps.add(key("port"), "missing: a %s service needs a port", s.Protocol)
	}

	if s.Program == "" {
		if !ps.defined(s.Name, "program") {
			ps.add(key("program"), "missing: a service needs a program to run")
		}
	} else {
		s.Program = resolve(cfg.Dir, s.Program)
		if !s.Disabled {
			if err := checkExecutable(s.Program); err != nil {
				ps.add(key("program"), "%v", err)
			}
		}
	}
	if s.Workdir == "" {
		s.Workdir = cfg.Dir
	} else {
		s.Workdir = resolve(cfg.Dir, s.Workdir)
		if !s.Disabled {
			if err := checkDir(s.Workdir); err != nil {
				ps.add(key("workdir"), "%v", err)
			}
		}
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
			if a.Protocol == b.Protocol && a.Port == b.Port && a.Port != 0 && overlaps(a.Address, b.Address) {
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
