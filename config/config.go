// Package config turns an inetd.toml file into a validated, immutable
// Config.
//
// Load is pure: it reads the file and inspects the programs and folders it
// names, but it binds no socket and starts no process, so `goinetd check`,
// startup, reload and tests all share it. Every problem in a file is
// reported at once, one per line, each naming the file, the line where the
// TOML parser knows it, and the key path:
//
//	inetd.toml:12: services.echo.port: 70000 is out of range 1-65535
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is a loaded and validated inetd.toml. It is never modified after
// Load returns it.
type Config struct {
	// File is the path the config was loaded from, as given to Load.
	File string
	// Dir is the absolute folder holding File; relative paths in the
	// config are resolved against it (in a drop-in file, against its own
	// folder).
	Dir string
	// Includes are the drop-in files read, in order.
	Includes []string
	Server   Server
	Services []*Service // every [services.NAME] table, disabled ones too, sorted by name
	// Warnings are the settings that are valid but risky or probably not
	// meant, in file and line order. `goinetd check` prints them, and
	// startup and reload log them; none stops the config from loading.
	Warnings []*Problem
}

// Enabled returns the services that are not disabled, sorted by name.
func (c *Config) Enabled() []*Service {
	var on []*Service
	for _, s := range c.Services {
		if !s.Disabled {
			on = append(on, s)
		}
	}
	return on
}

// Serves reports whether c has an enabled service called name.
func (c *Config) Serves(name string) bool {
	for _, s := range c.Services {
		if s.Name == name {
			return !s.Disabled
		}
	}
	return false
}

// Server holds the [server] table.
type Server struct {
	LogFormat LogFormat
	// Log is where the log goes. The zero value is standard error;
	// an empty Facility is "daemon".
	Log LogTarget
	// MaxConnections caps live connections across all services; 0 means
	// no cap.
	MaxConnections int
	// ShutdownGrace is how long a stop waits for connections to end
	// before terminating their handlers; 0 leaves them running.
	ShutdownGrace time.Duration
	// Metrics is the host:port of the Prometheus listener; empty: none.
	Metrics string
	// RequireAllServices makes startup fail, serving nothing, if any
	// service cannot be bound; otherwise goinetd serves the others and
	// retries the failed binds.
	RequireAllServices bool
	// DenyTime is how long a source that touched a sensor (or tripped a
	// service's rate_limit_per_source with deny_on_rate) is refused by
	// every service; 0 denies nothing, and a sensor only logs. Unset, it
	// is DefaultDenyTime. xinetd's deny_time is per service; goinetd's
	// deny list is one for the whole server, so the time is too.
	DenyTime time.Duration
}

// Service is one [services.NAME] table with [defaults] applied.
type Service struct {
	Name     string
	Protocol Protocol
	// Address is the local address to bind; the zero Addr means every
	// interface, IPv4 and IPv6. tcp and udp only.
	Address netip.Addr
	Port    uint16 // tcp and udp only
	// PortName is the service name the port was given as, looked up in
	// ServicesFile for Protocol; empty if it was given as a number.
	PortName string
	// FreeBind binds Address even if it is not (yet) on the host
	// (IP_FREEBIND), as for a floating address. tcp and udp only.
	FreeBind bool
	// Path is the absolute path of a unix service's socket, created with
	// SocketMode and owned by SocketUID and SocketGID (-1: goinetd's).
	Path       string
	SocketMode os.FileMode
	SocketUID  int
	SocketGID  int
	Mode       Mode
	// Builtin names an in-process service (see package builtin); when it
	// is set, Program is empty, and the other way round.
	Builtin string
	// Forward makes a tcp or unix service in nowait mode a forwarder: each
	// connection is joined, in goinetd, to a new connection to this target,
	// an IP literal with a port ("192.0.2.1:25", "[2001:db8::1]:25") or the
	// absolute path of a unix socket. When it is set, Program and Builtin
	// are empty. ForwardTimeout bounds the connect to it.
	Forward        string
	ForwardTimeout time.Duration
	// Program is the absolute path of the handler; Args are its argv[1:]
	// and Argv0 its argv[0] if set (see Argv).
	Program string
	Args    []string
	Argv0   string
	// ListenFDs passes a wait-mode service's socket as fd 3, the way
	// systemd socket activation does, instead of as fds 0 and 1.
	ListenFDs bool
	// Workdir is the absolute working directory of the handler.
	Workdir string
	// Env is added to every handler's environment, sorted "KEY=value".
	Env      []string
	Stderr   Stderr
	Disabled bool
	// Sensor makes the service a tripwire: it runs nothing, and every
	// source that connects to it is refused by every service for
	// Server.DenyTime. tcp services in nowait mode only.
	Sensor bool

	// Admission, decided before any child is started.
	Limits

	// Banner is written to each admitted client before its handler starts
	// (or a built-in serves it); BannerRefused to each refused one before
	// its connection is closed. Empty: none. Stream services in nowait
	// mode only; at most MaxBannerBytes each, read at load time.
	Banner        []byte
	BannerRefused []byte

	// What the service may add to goinetd's log.
	LogLimits
	// Replies bounds what a UDP built-in sends back; zero otherwise.
	Replies Replies

	// Sandbox of the child.
	Sandbox

	// Options of the listening socket.
	SocketOptions
}

// Limits says which connections a service admits. The zero value admits
// every connection.
type Limits struct {
	// OnlyFrom, if not empty, lists the client addresses admitted;
	// NoAccess lists those refused, and wins. IPv4-mapped IPv6 clients
	// match IPv4 prefixes.
	OnlyFrom []netip.Prefix
	NoAccess []netip.Prefix
	// Rules are the service's per-client rules, in order: the first whose
	// From holds the client decides (after OnlyFrom and NoAccess admit it).
	Rules []Rule
	// MaxConnections caps the service's live connections; 0 means no cap.
	// Unset, it is DefaultMaxConnections.
	MaxConnections int
	// MaxPerSource caps live connections from one source; 0 means no cap.
	// Unset, it is DefaultMaxPerSource where it applies (tcp, nowait).
	MaxPerSource int
	// SourcePrefixV6 is how many leading bits of an IPv6 client address
	// make its source (default 64: one host owns a /64).
	SourcePrefixV6 int
	// RateLimit pauses the service for RatePause when more connections
	// come than it allows; RateLimitPerSource does so for one source.
	RateLimit          Rate
	RateLimitPerSource Rate
	RatePause          time.Duration
	// Timeout ends a connection that lasts longer; 0 means never.
	Timeout time.Duration
	// IdleTimeout ends a built-in's stream connection after that long
	// without a byte read or written; 0 means never. Unset, it is
	// DefaultIdleTimeout. Handlers' traffic never passes through goinetd,
	// so it applies only to built-ins.
	IdleTimeout time.Duration

	// ProxyProtocol makes the service read a PROXY protocol header (v1 or
	// v2) first, from the balancers in ProxyFrom only, within
	// ProxyTimeout; the client it names is then the peer for everything.
	ProxyProtocol bool
	ProxyFrom     []netip.Prefix
	ProxyTimeout  time.Duration

	// TLS, if not nil, makes goinetd do a TLS handshake with each client
	// (after the PROXY header, if any) and give the handler the
	// plaintext. Stream services in nowait mode only.
	TLS *TLS

	// ResolvePeer passes the client's forward-confirmed host name to the
	// handler as TCPREMOTEHOST and REMOTE_HOST, looked up for at most
	// ResolveTimeout (DefaultResolveTimeout unless set); without a name in
	// time the handler starts without it. TCP services that run a program
	// in nowait mode only.
	ResolvePeer    bool
	ResolveTimeout time.Duration

	// MaxLoad refuses connections while the host's 1-minute load average
	// is above it; 0 means no limit (the default). Stream services in
	// nowait mode only.
	MaxLoad float64

	// DenyOnRate sends a source that trips RateLimitPerSource to the deny
	// list, as a sensor does, for Server.DenyTime. tcp services only.
	DenyOnRate bool
}

// LogLimits bound the records one service adds to goinetd's log, so that
// clients and handlers cannot flood it; a zero Rate is no bound. What a
// bound holds back is counted, and the count logged once per period.
type LogLimits struct {
	// StderrLineRate and StderrByteRate bound the lines of the handlers'
	// stderr that are logged. When both are set, the bytes are counted
	// over the line rate's period.
	StderrLineRate Rate
	StderrByteRate Rate
	// ConnectionLogRate bounds the records written per connection
	// ("connection ended", and a handler's timeout).
	ConnectionLogRate Rate
}

// Rate is N events per Per; the zero Rate means no limit.
type Rate struct {
	N   int
	Per time.Duration
}

func (r Rate) String() string {
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.N)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.N)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.N)
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// Rule is one per-client rule (tcpserver's tcprules): a client in From
// is refused if Deny, else its handler's environment loses Unset and gets
// Env. A rule with neither admits the client unchanged, and so hides the
// rules after it from that client.
type Rule struct {
	From  netip.Prefix // IPv4-mapped prefixes are stored as IPv4
	Env   []string     // "KEY=value", sorted; never a connection variable
	Unset []string     // variable names; never a connection variable
	Deny  bool
}

// Sandbox is what a service's handler runs with. The zero value runs it
// as goinetd's user, with goinetd's limits, nice value and umask.
type Sandbox struct {
	// Credential, if not nil, is the user the handler runs as.
	Credential *Credential
	// PassEnv names variables of goinetd's own environment that reach
	// the handler; nothing else does.
	PassEnv []string
	// Rlimits are set, soft and hard, before the program starts.
	Rlimits []Rlimit
	// Nice and Umask, if not nil, are applied before the program starts.
	Nice  *int
	Umask *os.FileMode
	// Chroot, if not empty, is the root the handler runs in; Program and
	// Workdir are then paths inside it.
	Chroot string
	// KillGroupOnExit makes goinetd SIGKILL the handler's process group
	// when the handler exits, so that nothing it started outlives its
	// connection. Default: on in nowait mode, off in wait mode.
	KillGroupOnExit bool

	group *int // the group key, merged into Credential by validate
}

// Credential is a resolved user and group.
type Credential struct {
	User string // as written in the config
	UID  uint32
	GID  uint32
	// Groups are the supplementary groups, as initgroups(3) sets them for
	// User and GID: the groups /etc/group lists User in, plus GID. The
	// passwd entry's primary group is not among them unless it is GID or
	// /etc/group lists User in it. Without a user key, none.
	Groups []uint32
}

// Rlimit is one resource limit.
type Rlimit struct {
	Name     string // as in the config: "nofile", "as", ...
	Resource int    // the RLIMIT_ constant
	Value    uint64 // unix.RLIM_INFINITY for "unlimited"
}

// ListenAddress is the host:port the service binds, in the form net.Listen
// takes, or the socket path of a unix service.
func (s *Service) ListenAddress() string {
	if s.Protocol == Unix {
		return s.Path
	}
	host := ""
	if s.Address.IsValid() {
		host = s.Address.String()
	}
	return joinHostPort(host, s.Port)
}

// Summary is a one-line description of the service for `goinetd check` and
// the startup log.
func (s *Service) Summary() string {
	if s.Disabled {
		return fmt.Sprintf("%s: disabled", s.Name)
	}
	if s.Builtin != "" {
		return fmt.Sprintf("%s: %s %s%s%s builtin %s", s.Name, s.Protocol, s.ListenAddress(), s.portName(), s.tlsName(), s.Builtin)
	}
	if s.Forward != "" {
		return fmt.Sprintf("%s: %s %s%s forward %s", s.Name, s.Protocol, s.ListenAddress(), s.portName(), s.Forward)
	}
	argv := append([]string{s.Program}, s.Args...)
	fds := ""
	if s.ListenFDs {
		fds = " listen_fds"
	}
	if argv0 := s.Argv()[0]; argv0 != filepath.Base(s.Program) {
		fds += " argv0=" + argv0
	}
	return fmt.Sprintf("%s: %s %s%s%s %s%s stderr=%s: %s", s.Name, s.Protocol, s.ListenAddress(), s.portName(), s.tlsName(),
		s.Mode, fds, s.Stderr, strings.Join(argv, " "))
}

// tlsName says that the service does TLS, if it does.
func (s *Service) tlsName() string {
	if s.TLS == nil {
		return ""
	}
	return " tls"
}

// portName says which service name the port was looked up as, if any.
func (s *Service) portName() string {
	if s.PortName == "" || s.Protocol == Unix {
		return ""
	}
	return fmt.Sprintf(" (port %q)", s.PortName)
}

// Argv is the handler's argv: Argv0, or Program's base name if Argv0 is
// empty, then Args.
func (s *Service) Argv() []string {
	argv0 := s.Argv0
	if argv0 == "" {
		argv0 = filepath.Base(s.Program)
	}
	return append([]string{argv0}, s.Args...)
}

// Protocol is a service's socket type.
type Protocol string

// The protocols a service can declare.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	Unix Protocol = "unix"
)

// Mode says how connections are handed to the handler.
type Mode string

// The modes of a service.
const (
	// NoWait starts a child per accepted connection.
	NoWait Mode = "nowait"
	// Wait hands the listening socket itself to one child at a time.
	Wait Mode = "wait"
)

// Stderr says where a handler's standard error goes.
type Stderr string

// The destinations of a handler's standard error.
const (
	// StderrLog sends each line to goinetd's log, tagged with service and pid.
	StderrLog Stderr = "log"
	// StderrSocket sends it to the client, like stdout.
	StderrSocket Stderr = "socket"
	// StderrNull discards it.
	StderrNull Stderr = "null"
)

// LogFormat is the format of goinetd's own log on its standard error.
type LogFormat string

// The log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// ConnectionVariables are the environment variables goinetd sets for each
// connection; a service's env may not set them.
var ConnectionVariables = []string{
	"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT",
	"REMOTE_ADDR", "REMOTE_PORT",
	"UNIXREMOTEPID", "UNIXREMOTEEUID", "UNIXREMOTEEGID",
	"PROXYREMOTEIP", "PROXYREMOTEPORT", "TCPCONCURRENCY",
	"TCPREMOTEHOST", "REMOTE_HOST",
	"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
	"SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI", "SSL_ALPN", "SSL_SESSION_RESUMED",
	"SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN", "SSL_CLIENT_SERIAL",
	"SSL_CLIENT_FINGERPRINT", "SSL_CLIENT_V_END",
}

// DefaultSocketMode is the permission of a unix service's socket unless
// socket_mode says otherwise: anyone may connect, as with systemd.
const DefaultSocketMode os.FileMode = 0o666

// DefaultShutdownGrace is how long a stop waits for connections to end
// unless shutdown_grace says otherwise.
const DefaultShutdownGrace = 10 * time.Second

// MaxBannerBytes bounds banner and banner_refused: goinetd writes them
// without waiting (MSG_DONTWAIT), and a fresh connection's send buffer
// always has room for this much.
const MaxBannerBytes = 4096

// DefaultDenyTime is how long a source that touched a sensor is refused
// unless deny_time says otherwise.
const DefaultDenyTime = 10 * time.Minute

// DefaultProxyTimeout is how long a PROXY protocol header may take to
// arrive unless proxy_timeout says otherwise.
const DefaultProxyTimeout = 3 * time.Second

// DefaultResolveTimeout is how long resolve_peer may look up a client's
// name unless resolve_timeout says otherwise.
const DefaultResolveTimeout = 2 * time.Second

// DefaultForwardTimeout is how long a forwarder's connect to its target
// may take unless forward_timeout says otherwise.
const DefaultForwardTimeout = 5 * time.Second

// DefaultRatePause is how long a rate limit pauses a service or a source
// unless rate_pause says otherwise.
const DefaultRatePause = 10 * time.Second

// The log limits of a service unless stderr_line_rate, stderr_byte_rate
// and connection_log_rate say otherwise.
var (
	DefaultStderrLineRate    = Rate{N: 100, Per: time.Second}
	DefaultStderrByteRate    = Rate{N: 32 << 10, Per: time.Second}
	DefaultConnectionLogRate = Rate{N: 100, Per: time.Second}
)

// MaxStderrRecord is the longest text of one stderr record; the rest of a
// longer line is dropped, and the record marked truncated.
const MaxStderrRecord = 4 << 10

// The default limits of a service, each lifted by the value 0 ("0s"); see
// inetd.toml(5) and SECURITY.md for why these values.
const (
	// DefaultMaxConnections is a service's max_connections unless set:
	// past it, clients wait in the listen backlog.
	DefaultMaxConnections = 256
	// DefaultMaxPerSource is a tcp nowait service's max_per_source unless
	// set: past it, a source's connections are refused.
	DefaultMaxPerSource = 16
	// DefaultIdleTimeout is a built-in stream service's idle_timeout
	// unless set.
	DefaultIdleTimeout = 60 * time.Second
)

// MaxSocketPath is the longest unix socket path the kernel accepts.
const MaxSocketPath = 107

// DefaultPath is the PATH every handler starts with unless its service's
// env sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func joinHostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}
