package importer

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goinetd/goinetd/builtin"
)

// service is one service of the output, in goinetd's terms, with the
// comments that explain it.
type service struct {
	base   string   // the name it wants: inetd's service, xinetd's id
	name   string   // its table name, unique; set by nameServices
	origin string   // FILE:LINE of its definition
	about  []string // what it was, for the comment above it
	// settings are its keys in the order they are written.
	settings []setting
	// notes are comments on the service as a whole.
	notes []string
	// notConverted are what could not be carried over, each a
	// "# not converted:" comment and an item of the summary.
	notConverted []string
	// commentedOut writes the whole table as comments: it could not be
	// converted, or would be unsafe to serve as written.
	commentedOut bool
	// family is "4" or "6" when the service binds one IP family only
	// because inetd.conf said tcp/tcp6 (a candidate for merging).
	family string
}

// setting is one key of a service.
type setting struct {
	key string
	val value
	why string // the comment above it, if any
	// fromDefaults marks a value that xinetd's defaults {} gave.
	fromDefaults bool
}

func (s *service) set(key string, v value, why string) {
	for i := range s.settings {
		if s.settings[i].key == key {
			s.settings[i] = setting{key: key, val: v, why: why}
			return
		}
	}
	s.settings = append(s.settings, setting{key: key, val: v, why: why})
}

func (s *service) get(key string) (value, bool) {
	for _, st := range s.settings {
		if st.key == key {
			return st.val, true
		}
	}
	return "", false
}

func (s *service) del(key string) {
	s.settings = slices.DeleteFunc(s.settings, func(st setting) bool { return st.key == key })
}

func (s *service) skip(format string, args ...any) {
	s.notConverted = append(s.notConverted, fmt.Sprintf(format, args...))
}

func (s *service) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// The notes on semantics that several conversions share.
const (
	whyStderr = `inetd and xinetd give the handler the connection as its stderr too, ` +
		`so its error messages reach the client, as before (goinetd's default is "log")`
	whyTCPD = "hosts.allow and hosts.deny rules for %s: tcpd is unwrapped, and goinetd does not read them; " +
		"move them to only_from and no_access"
	whyUDPReflector = "UDP %s: it answers whatever source a datagram names, and a source can be forged: " +
		"anyone can make it flood a victim (reflection). goinetd serves it only with udp_reflection = true; " +
		"the service is left commented out: serve it over tcp, or uncomment it and accept the risk"
)

// tcpdNames are the wrappers that are unwrapped: their first argument is
// the real daemon.
var tcpdNames = []string{"tcpd"}

// tcpdDaemonDir is where tcpd looks for a daemon named without a path
// (REAL_DAEMON_DIR of Debian's tcp-wrappers).
const tcpdDaemonDir = "/usr/sbin"

// setProgram sets program, argv0 and args from the server path and its
// argv (argv[0] first, if any). tcpd is unwrapped: it runs the daemon its
// argv[0] names (relative to tcpdDaemonDir), with the same argv.
func (s *service) setProgram(program string, argv []string) {
	if slices.Contains(tcpdNames, filepath.Base(program)) && len(argv) > 0 && !slices.Contains(tcpdNames, filepath.Base(argv[0])) {
		real := argv[0]
		if !filepath.IsAbs(real) {
			real = filepath.Join(tcpdDaemonDir, real)
		}
		s.skip(whyTCPD, filepath.Base(real))
		program = real
	}
	s.set("program", str(program), "")
	if len(argv) == 0 {
		return
	}
	if argv[0] != filepath.Base(program) {
		s.set("argv0", str(argv[0]), "")
	}
	if len(argv) > 1 {
		s.set("args", list(argv[1:]), "")
	}
}

// setBuiltin makes s the built-in name, or reports that goinetd has none
// by that name.
func (s *service) setBuiltin(name string) bool {
	if !builtin.Valid(name) {
		s.skip("%q is an internal service goinetd does not have (it has %s)", name, strings.Join(builtin.Names(), ", "))
		s.commentedOut = true
		return false
	}
	s.set("builtin", str(name), "")
	return true
}

// finish applies the rules that depend on the whole service: stderr to
// the socket, and the UDP reflectors left commented out.
func (s *service) finish() {
	proto, _ := s.get("protocol")
	mode, _ := s.get("mode")
	b, isBuiltin := s.get("builtin")
	if isBuiltin && proto == str("udp") && (b == str("echo") || b == str("chargen")) {
		s.skip(whyUDPReflector, strings.Trim(string(b), `"`))
		s.set("udp_reflection", boolean(true), "")
		s.commentedOut = true
	}
	_, isSensor := s.get("sensor")
	_, isForward := s.get("forward")
	if !isBuiltin && !isSensor && !isForward && mode == str("nowait") && !s.commentedOut {
		s.set("stderr", str("socket"), whyStderr)
	}
}
