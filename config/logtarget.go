package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// LogTarget is where goinetd's own log goes: the [server] log key.
type LogTarget struct {
	Kind LogKind
	// Path is the syslog socket (LogSyslog) or the log file (LogFile).
	Path string
	// Facility is the syslog facility, one of SyslogFacilities.
	Facility string
}

// String is the target as the log key writes it, with its facility.
func (t LogTarget) String() string {
	switch t.Kind {
	case LogSyslog:
		facility := t.Facility
		if facility == "" {
			facility = "daemon"
		}
		return "syslog:" + t.Path + " (" + facility + ")"
	case LogFile:
		return "file:" + t.Path
	}
	return "stderr"
}

// LogKind names a kind of log target.
type LogKind string

// The log targets.
const (
	LogStderr LogKind = "stderr"
	LogSyslog LogKind = "syslog"
	LogFile   LogKind = "file"
)

// DefaultSyslogSocket is the local syslog socket of log = "syslog".
const DefaultSyslogSocket = "/dev/log"

// SyslogFacilities are the facilities syslog_facility accepts, in the
// order of their codes.
var SyslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "", "", "", "",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// parseLogTarget accepts "stderr", "syslog", "syslog:SOCKET" or
// "file:PATH", the paths absolute.
func parseLogTarget(v any, dst *LogTarget) error {
	s, err := parseString(v)
	if err != nil {
		return fmt.Errorf(`must be "stderr", "syslog", "syslog:/path/to/socket" or "file:/path/to/log", not %s`, describe(v))
	}
	kind, path, _ := strings.Cut(s, ":")
	switch {
	case s == string(LogStderr):
		dst.Kind, dst.Path = LogStderr, ""
	case s == string(LogSyslog):
		dst.Kind, dst.Path = LogSyslog, DefaultSyslogSocket
	case kind == string(LogSyslog) || kind == string(LogFile):
		if !filepath.IsAbs(path) {
			return fmt.Errorf("%q: the path after %s: must be absolute", s, kind)
		}
		dst.Kind, dst.Path = LogKind(kind), filepath.Clean(path)
	default:
		return fmt.Errorf(`%q is not "stderr", "syslog", "syslog:/path/to/socket" or "file:/path/to/log"`, s)
	}
	return nil
}

// parseFacility accepts a syslog facility name.
func parseFacility(v any, dst *string) error {
	s, err := parseString(v)
	if err == nil && s != "" && slices.Contains(SyslogFacilities, s) {
		*dst = s
		return nil
	}
	names := slices.DeleteFunc(slices.Clone(SyslogFacilities), func(n string) bool { return n == "" })
	return fmt.Errorf("must be a syslog facility (%s), not %s", strings.Join(names, ", "), describe(v))
}
