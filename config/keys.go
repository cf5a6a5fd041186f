package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goinetd/goinetd/builtin"
)

// tableKeys is what one kind of table accepts: a function per key that
// checks the key's TOML value and stores it.
type tableKeys struct {
	set map[string]func(value any) error
}

func serverKeys(s *Server) tableKeys {
	return tableKeys{
		set: map[string]func(any) error{
			"log_format":      func(v any) error { return oneOf(v, &s.LogFormat, LogText, LogJSON) },
			"max_connections": func(v any) error { return parseCount(v, &s.MaxConnections, 0) },
			"shutdown_grace":  func(v any) error { return parseGrace(v, &s.ShutdownGrace) },
			"metrics":         func(v any) error { return parseHostPort(v, &s.Metrics) },

			"require_all_services": func(v any) error { return parseBool(v, &s.RequireAllServices) },

			"log":             func(v any) error { return parseLogTarget(v, &s.Log) },
			"syslog_facility": func(v any) error { return parseFacility(v, &s.Log.Facility) },

			"deny_time": func(v any) error { return parseGrace(v, &s.DenyTime) },
		},
	}
}

func serviceKeys(s *Service) tableKeys {
	return tableKeys{
		set: map[string]func(any) error{
			"protocol":     func(v any) error { return oneOf(v, &s.Protocol, TCP, UDP, Unix) },
			"address":      func(v any) error { return parseAddress(v, &s.Address) },
			"freebind":     func(v any) error { return parseBool(v, &s.FreeBind) },
			"port":         func(v any) error { return parsePort(v, &s.Port, &s.PortName) },
			"path":         func(v any) error { return parsePath(v, &s.Path) },
			"socket_mode":  func(v any) error { return parseFileMode(v, &s.SocketMode) },
			"socket_user":  func(v any) error { return parseUser(v, &s.SocketUID) },
			"socket_group": func(v any) error { return parseGroup(v, &s.SocketGID) },
			"mode":         func(v any) error { return oneOf(v, &s.Mode, NoWait, Wait) },
			"builtin":      func(v any) error { return oneOf(v, &s.Builtin, builtinNames()...) },
			"listen_fds":   func(v any) error { return parseBool(v, &s.ListenFDs) },
			"program":      func(v any) error { return parsePath(v, &s.Program) },
			"forward":      func(v any) error { return parseForward(v, &s.Forward) },

			"forward_timeout": func(v any) error { return parseDuration(v, &s.ForwardTimeout) },

			"only_from":             func(v any) error { return parsePrefixes(v, &s.OnlyFrom) },
			"no_access":             func(v any) error { return parsePrefixes(v, &s.NoAccess) },
			"rules":                 func(v any) error { return parseRules(v, &s.Rules) },
			"max_connections":       func(v any) error { return parseCount(v, &s.MaxConnections, 0) },
			"max_per_source":        func(v any) error { return parseCount(v, &s.MaxPerSource, 0) },
			"source_prefix_v6":      func(v any) error { return parsePrefixLength(v, &s.SourcePrefixV6) },
			"rate_limit":            func(v any) error { return parseRate(v, &s.RateLimit) },
			"rate_limit_per_source": func(v any) error { return parseRate(v, &s.RateLimitPerSource) },
			"rate_pause":            func(v any) error { return parseDuration(v, &s.RatePause) },
			"timeout":               func(v any) error { return parseDuration(v, &s.Timeout) },
			"idle_timeout":          func(v any) error { return parseGrace(v, &s.IdleTimeout) },
			"proxy_protocol":        func(v any) error { return parseBool(v, &s.ProxyProtocol) },
			"proxy_from":            func(v any) error { return parsePrefixes(v, &s.ProxyFrom) },
			"proxy_timeout":         func(v any) error { return parseDuration(v, &s.ProxyTimeout) },

			keyTLS: func(v any) error { return parseTLS(v, &s.TLS) },

			"resolve_peer":    func(v any) error { return parseBool(v, &s.ResolvePeer) },
			"resolve_timeout": func(v any) error { return parseDuration(v, &s.ResolveTimeout) },

			"max_load": func(v any) error { return parseLoad(v, &s.MaxLoad) },

			keySensor:     func(v any) error { return parseBool(v, &s.Sensor) },
			keyDenyOnRate: func(v any) error { return parseBool(v, &s.DenyOnRate) },

			"banner":         func(v any) error { return parseBanner(v, &s.Banner) },
			"banner_refused": func(v any) error { return parseBanner(v, &s.BannerRefused) },

			"udp_reflection":             func(v any) error { return parseBool(v, &s.Replies.Reflection) },
			"udp_reply_rate":             func(v any) error { return parseRateOrZero(v, &s.Replies.Rate) },
			"udp_reply_bytes":            func(v any) error { return parseByteRateOrZero(v, &s.Replies.Bytes) },
			"udp_reply_rate_per_source":  func(v any) error { return parseRateOrZero(v, &s.Replies.RatePerSource) },
			"udp_reply_bytes_per_source": func(v any) error { return parseByteRateOrZero(v, &s.Replies.BytesPerSource) },

			"user": func(v any) error { return parseCredential(v, &s.Credential) },
			"group": func(v any) error {
				var gid int
				err := parseGroup(v, &gid)
				if err == nil {
					s.group = &gid
				}
				return err
			},
			"pass_env": func(v any) error { return parseNames(v, &s.PassEnv) },
			"rlimits":  func(v any) error { return parseRlimits(v, &s.Rlimits) },
			"nice":     func(v any) error { return parseNice(v, &s.Nice) },
			"umask":    func(v any) error { return parseUmask(v, &s.Umask) },
			"chroot":   func(v any) error { return parsePath(v, &s.Chroot) },
			"args":     func(v any) error { return parseStrings(v, &s.Args) },
			"argv0":    func(v any) error { return parseArgv0(v, &s.Argv0) },
			"workdir":  func(v any) error { return parsePath(v, &s.Workdir) },
			"env":      func(v any) error { return parseEnv(v, &s.Env) },
			"stderr":   func(v any) error { return oneOf(v, &s.Stderr, StderrLog, StderrSocket, StderrNull) },
			"disabled": func(v any) error { return parseBool(v, &s.Disabled) },

			"stderr_line_rate":    func(v any) error { return parseLogRate(v, &s.StderrLineRate, false) },
			"stderr_byte_rate":    func(v any) error { return parseLogRate(v, &s.StderrByteRate, true) },
			"connection_log_rate": func(v any) error { return parseLogRate(v, &s.ConnectionLogRate, false) },

			"kill_group_on_exit": func(v any) error { return parseBool(v, &s.KillGroupOnExit) },

			keyTCPNoDelay:        func(v any) error { return parseBool(v, &s.TCPNoDelay) },
			keyKeepAlive:         func(v any) error { return parseBool(v, &s.KeepAlive) },
			keyKeepAliveIdle:     func(v any) error { return parseSeconds(v, &s.KeepAliveIdle, 32767*time.Second) },
			keyKeepAliveInterval: func(v any) error { return parseSeconds(v, &s.KeepAliveInterval, 32767*time.Second) },
			keyKeepAliveCount:    func(v any) error { return parseSmallInt(v, &s.KeepAliveCount, 1, 127) },
			keyBacklog:           func(v any) error { return parseBacklog(v, &s.Backlog) },
			keyDeferAccept:       func(v any) error { return parseSeconds(v, &s.DeferAccept, time.Hour) },
			keyReceiveBuffer:     func(v any) error { return parseByteCount(v, &s.ReceiveBuffer) },
			keySendBuffer:        func(v any) error { return parseByteCount(v, &s.SendBuffer) },
			keyMark:              func(v any) error { return parseMark(v, &s.Mark) },
			keyIPTOS:             func(v any) error { return parseSmallInt(v, &s.IPTOS, 1, 255) },
			keyIPTTL:             func(v any) error { return parseSmallInt(v, &s.IPTTL, 1, 255) },
		},
	}
}

func oneOf[T ~string](v any, dst *T, allowed ...T) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	if !slices.Contains(allowed, T(s)) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = fmt.Sprintf("%q", a)
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
	}
	*dst = T(s)
	return nil
}

func parseString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %s", describe(v))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%q contains a NUL byte", s)
	}
	return s, nil
}

func parseStrings(v any, dst *[]string) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be an array of strings, not %s", describe(v))
	}
	out := make([]string, len(list))
	for i, item := range list {
		s, err := parseString(item)
		if err != nil {
			return fmt.Errorf("item %d: %w", i+1, err)
		}
		out[i] = s
	}
	*dst = out
	return nil
}

func parsePath(v any, dst *string) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	*dst = s
	return nil
}

// parseBanner takes a banner's text, or "@/path/to/file" to read it from
// that file now (at load time, so check reads it too); either way at most
// MaxBannerBytes.
func parseBanner(v any, dst *[]byte) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	b := []byte(s)
	if path, ok := strings.CutPrefix(s, "@"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: a banner file must be an absolute path, like \"@/etc/goinetd/banner.txt\"", s)
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("cannot read the banner file: %w", err)
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, MaxBannerBytes+1))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(b) > MaxBannerBytes {
		return fmt.Errorf("is longer than %d bytes: goinetd writes a banner without waiting, so it must fit a socket's send buffer", MaxBannerBytes)
	}
	*dst = b
	return nil
}

func parseBool(v any, dst *bool) error {
	b, ok := v.(bool)
	if !ok {
		return fmt.Errorf("must be true or false, not %s", describe(v))
	}
	*dst = b
	return nil
}

// parsePort accepts a port number, or a service name of /etc/services
// that validate resolves once the protocol is known.
func parsePort(v any, dst *uint16, name *string) error {
	if s, ok := v.(string); ok {
		if n, err := strconv.Atoi(s); err == nil {
			return fmt.Errorf("%q is a number in quotes: write port = %d", s, n)
		}
		if !validPortName.MatchString(s) {
			return fmt.Errorf("%q is neither a port number nor a service name of %s", s, ServicesFile)
		}
		*dst, *name = 0, s
		return nil
	}
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("must be a port number or a service name of %s, not %s", ServicesFile, describe(v))
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("%d is out of range 1-65535", n)
	}
	*dst, *name = uint16(n), ""
	return nil
}

// parseArgv0 accepts the handler's argv[0]: any string but the empty one.
func parseArgv0(v any, dst *string) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	if s == "" {
		return fmt.Errorf("must not be empty: leave argv0 out for the program's base name")
	}
	*dst = s
	return nil
}

// parseHostPort accepts "host:port" with an IP literal or a host name and
// a port number.
func parseHostPort(v any, dst *string) error {
	s, err := parseString(v)
	if err != nil {
		return fmt.Errorf("must be an address like \"127.0.0.1:9102\", not %s", describe(v))
	}
	_, port, err := net.SplitHostPort(s)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		if i := strings.LastIndexByte(s, ':'); i > 0 {
			if a, err := netip.ParseAddr(s[:i]); err == nil && a.Is6() {
				return fmt.Errorf("%q is not an address like \"127.0.0.1:9102\": an IPv6 address goes in brackets, %q", s, "["+s[:i]+"]"+s[i:])
			}
		}
		return fmt.Errorf("%q is not an address like \"127.0.0.1:9102\"", s)
	}
	*dst = s
	return nil
}

// addressHint says what is wrong with s, which is not an IP address, if it
// is a near miss: an address with brackets or a port, or a host name.
func addressHint(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return fmt.Sprintf(": the port goes in \"port\" (address = %q, port = %d)", ap.Addr().String(), ap.Port())
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if _, err := netip.ParseAddr(inner); err == nil {
				return fmt.Sprintf(": drop the brackets (%q)", inner)
			}
		}
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		host, port := s[:i], s[i+1:]
		if _, err := netip.ParseAddr(host); err == nil {
			if n, err := strconv.Atoi(port); err == nil && n > 0 && n <= 65535 {
				return fmt.Sprintf(": the port goes in \"port\" (address = %q, port = %d)", host, n)
			}
		}
	}
	return " (host names are not resolved; give the address)"
}

// parseAddress accepts an IPv4 or IPv6 address; an IPv4-mapped IPv6 address
// becomes plain IPv4.
func parseAddress(v any, dst *netip.Addr) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address%s", s, addressHint(s))
	}
	*dst = a.Unmap()
	return nil
}

// parseEnv merges a table of strings into dst, a sorted list of
// "KEY=value"; a key already in dst (from [defaults]) takes the new value.
func parseEnv(v any, dst *[]string) error {
	table, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("must be a table of strings, not %s", describe(v))
	}
	merged := make(map[string]string, len(*dst)+len(table))
	for _, kv := range *dst {
		k, val, _ := strings.Cut(kv, "=")
		merged[k] = val
	}
	var bad []error
	for _, k := range sortedKeys(table) {
		val, err := parseString(table[k])
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			bad = append(bad, fmt.Errorf("%q is not a valid variable name", k))
		case slices.Contains(ConnectionVariables, k):
			bad = append(bad, fmt.Errorf("%s is set by goinetd for each connection", k))
		case err != nil:
			bad = append(bad, fmt.Errorf("%s: %w", k, err))
		default:
			merged[k] = val
		}
	}
	if len(bad) > 0 {
		return errors.Join(bad...) // one problem each
	}
	env := make([]string, 0, len(merged))
	for _, k := range sortedKeys(merged) {
		env = append(env, k+"="+merged[k])
	}
	*dst = env
	return nil
}

// parseFileMode accepts permission bits as a TOML integer (0o660) or an
// octal string ("0660").
func parseFileMode(v any, dst *os.FileMode) error {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case string:
		var err error
		if n, err = strconv.ParseInt(v, 8, 64); err != nil {
			return fmt.Errorf("%q is not an octal mode like \"0660\"", v)
		}
	default:
		return fmt.Errorf("must be an octal mode like \"0660\" or 0o660, not %s", describe(v))
	}
	if n < 0 || n > 0o777 {
		return fmt.Errorf("%#o is not a permission mode (0 to 0777)", n)
	}
	*dst = os.FileMode(n)
	return nil
}

// parseUser resolves a user name or numeric uid on this host.
func parseUser(v any, uid *int) error {
	_, u, err := lookupUser(v)
	if err != nil {
		return err
	}
	*uid, _ = strconv.Atoi(u.Uid)
	return nil
}

// lookupUser resolves a user name or numeric uid on this host. Only root
// may name a user other than goinetd's own.
func lookupUser(v any) (string, *user.User, error) {
	name, err := idName(v)
	if err != nil {
		return "", nil, err
	}
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			id, isNumber := v.(int64)
			if !isNumber || id > math.MaxUint32-1 {
				return "", nil, fmt.Errorf("no user %q on this host (a uid with no passwd entry is given as a number, such as 4242)", name)
			}
			// A uid with no passwd entry, as systemd's User= takes it: its
			// group is the same number unless group says otherwise.
			u = &user.User{Uid: name, Gid: name}
		}
	}
	if euid := os.Geteuid(); euid != 0 && u.Uid != strconv.Itoa(euid) {
		return "", nil, fmt.Errorf("user %q: %w", name, needsRoot("running a handler as another user"))
	}
	return name, u, nil
}

// parseGroup resolves a group name or numeric gid on this host.
func parseGroup(v any, gid *int) error {
	name, err := idName(v)
	if err != nil {
		return err
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if g, err = user.LookupGroupId(name); err != nil {
			return fmt.Errorf("no group %q on this host", name)
		}
	}
	id, _ := strconv.Atoi(g.Gid)
	// Even a group goinetd is in needs root: the handler's groups are set
	// with setgroups, which only root may call.
	if os.Geteuid() != 0 && id != os.Getegid() {
		return fmt.Errorf("group %q: %w", name, needsRoot("running a handler in another group"))
	}
	*gid = id
	return nil
}

// needsRoot is the error for a setting that only root can honour, asked
// of a goinetd that is not root. Its message says that the config needs
// root to be served, as `goinetd check` may be run by another user than
// the one who serves the config.
func needsRoot(what string) error {
	return fmt.Errorf("%s needs root, and goinetd runs as uid %d: this config can only be served by goinetd running as root", what, os.Geteuid())
}

// idName accepts a user or group as a name or a non-negative number.
func idName(v any) (string, error) {
	switch v := v.(type) {
	case string:
		if v == "" {
			return "", fmt.Errorf("must not be empty")
		}
		return v, nil
	case int64:
		if v < 0 {
			return "", fmt.Errorf("%d is not a valid id", v)
		}
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("must be a name or a number, not %s", describe(v))
}

func builtinNames() []string { return builtin.Names() }

// ServiceKeys are the keys of a service table and of [defaults], sorted.
func ServiceKeys() []string { return sortedKeys(serviceKeys(&Service{}).set) }
