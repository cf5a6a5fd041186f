package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// handler is the program every spawning server starts per connection.
const handler = "/bin/cat"

// role says what a server is in the comparison.
type role int

const (
	roleSubject  role = iota // goinetd: what is measured
	roleFloor                // the minimal C superserver: what cannot be beaten
	rolePeer                 // another superserver: what goinetd must beat
	roleBaseline             // the reference of the in-process group
	roleOther                // a server given with -server
)

// group is a set of servers compared with each other.
type group string

const (
	groupSpawn group = "spawn /bin/cat per connection"
	groupEcho  group = "in-process echo"
	groupTLS   group = "TLS in front of /bin/cat per connection"
)

// spec is one server the benchmark can run.
type spec struct {
	name  string
	group group
	role  role
	// changes says what its configuration changes from its defaults, and
	// why; the report prints it.
	changes string
	// program is the executable; argv writes any config file into dir and
	// returns the whole command line for port.
	program string
	argv    func(dir string, port int) ([]string, error)
}

// reference reports whether the ratios of s's group are taken to s's
// figures: the peers in the spawn group, the baseline in the echo group.
func (s *spec) reference() bool { return s.role == rolePeer || s.role == roleBaseline }

// paths are where the programs of the servers are.
type paths struct {
	goinetd, floor, xinetd, inetd, tcpserver, tcpsvd, socketActivate string
	stunnel, socat                                                   string // the -tls peers
	self                                                             string // goinetd-bench, which serves -serve-go-echo
}

// allSpecs returns every built-in server spec, in the order they run in
// each round; a program that is not installed has an empty path.
func allSpecs(p paths) []*spec {
	return []*spec{
		{
			name: "goinetd", group: groupSpawn, role: roleSubject, program: p.goinetd,
			changes: "max_connections = 0 and max_per_source = 0: the default limits (256, and 16 per source) lifted, as every server's; no rate_limit; connection_log_rate = 0: its log (one record per connection, level info) goes to a file",
			argv: func(dir string, port int) ([]string, error) {
				return goinetdArgv(p.goinetd, dir, port, fmt.Sprintf("program = %q", handler))
			},
		},
		{
			name: "floor", group: groupSpawn, role: roleFloor, program: p.floor,
			changes: "bench/floor.c: accept4, posix_spawn with the socket on fds 0 and 1, SIGCHLD reaping; listen backlog 4096",
			argv: func(dir string, port int) ([]string, error) {
				return []string{p.floor, strconv.Itoa(port), handler}, nil
			},
		},
		{
			name: "xinetd", group: groupSpawn, role: rolePeer, program: p.xinetd,
			changes: "instances = UNLIMITED (the default too), per_source = UNLIMITED (the default too), " +
				"cps = 0 0 (default 50 10: 50 connections/s, then 10 s off); -dontfork to stay in the foreground; " +
				"its listen backlog is built in (64)",
			argv: func(dir string, port int) ([]string, error) {
				conf, err := writeFile(dir, "xinetd.conf", fmt.Sprintf(`defaults
{
}
service goinetd-bench
{
	type        = UNLISTED
	id          = goinetd-bench
	socket_type = stream
	protocol    = tcp
	wait        = no
	user        = root
	server      = %s
	bind        = 127.0.0.1
	port        = %d
	instances   = UNLIMITED
	per_source  = UNLIMITED
	cps         = 0 0
}
`, handler, port))
				return []string{p.xinetd, "-dontfork", "-f", conf, "-pidfile", filepath.Join(dir, "xinetd.pid")}, err
			},
		},
		{
			name: "openbsd-inetd", group: groupSpawn, role: rolePeer, program: p.inetd,
			changes: "nowait.1000000000 and -R 1000000000 (default 256 spawns a minute, then 10 minutes off); " +
				"-q 4096 listen backlog (default 128); -i to stay in the foreground",
			argv: func(dir string, port int) ([]string, error) {
				conf, err := writeFile(dir, "inetd.conf", fmt.Sprintf(
					"127.0.0.1:%d stream tcp4 nowait.1000000000 root %s %s\n", port, handler, filepath.Base(handler)))
				return []string{p.inetd, "-i", "-q", "4096", "-R", "1000000000", conf}, err
			},
		},
		{
			name: "tcpserver", group: groupSpawn, role: rolePeer, program: p.tcpserver,
			changes: "-c 10000 (default 40 at once), -b 4096 listen backlog (default 20); " +
				"-H -R -l 0: no DNS or ident (RFC 1413) look-up per connection, which goinetd does not do either",
			argv: func(dir string, port int) ([]string, error) {
				return []string{p.tcpserver, "-c", "10000", "-b", "4096", "-H", "-R", "-l", "0",
					"127.0.0.1", strconv.Itoa(port), handler}, nil
			},
		},
		{
			name: "tcpsvd", group: groupSpawn, role: rolePeer, program: p.tcpsvd,
			changes: "-c 10000 (default 30 at once), -b 4096 listen backlog (default 20); -C is unset (no per-host limit); " +
				"-l 0: no DNS look-up of the local host name, which by default its child makes on every connection, " +
				"straight to the resolv.conf server (goinetd makes none)",
			argv: func(dir string, port int) ([]string, error) {
				return []string{p.tcpsvd, "-c", "10000", "-b", "4096", "-l", "0", "127.0.0.1", strconv.Itoa(port), handler}, nil
			},
		},
		{
			name: "systemd-socket-activate", group: groupSpawn, role: rolePeer, program: p.socketActivate,
			changes: "-a --inetd (a child per connection, the socket on fds 0 and 1); it has no limit to raise; " +
				"it logs three lines per connection to stderr, which go to a file",
			argv: func(dir string, port int) ([]string, error) {
				return []string{p.socketActivate, "-l", "127.0.0.1:" + strconv.Itoa(port), "-a", "--inetd", handler}, nil
			},
		},
		{
			name: "goinetd-echo", group: groupEcho, role: roleSubject, program: p.goinetd,
			changes: "builtin = \"echo\", its limits lifted as for goinetd; its log as for goinetd",
			argv: func(dir string, port int) ([]string, error) {
				return goinetdArgv(p.goinetd, dir, port, `builtin = "echo"`)
			},
		},
		{
			name: "go-echo", group: groupEcho, role: roleBaseline, program: p.self,
			changes: "goinetd-bench -serve-go-echo: net.Listen, a goroutine per connection, io.Copy, Close",
			argv: func(dir string, port int) ([]string, error) {
				return []string{p.self, serveGoEchoFlag, "127.0.0.1:" + strconv.Itoa(port)}, nil
			},
		},
	}
}

// goinetdArgv writes goinetd's config into dir, one service on port with
// the bench's lifted limits and the given lines, and returns its command
// line.
func goinetdArgv(goinetd, dir string, port int, lines ...string) ([]string, error) {
	conf, err := writeFile(dir, "inetd.toml", fmt.Sprintf(
		"[services.bench]\naddress = \"127.0.0.1\"\nport = %d\n%s\nmax_connections = 0\nmax_per_source = 0\nconnection_log_rate = 0\n",
		port, strings.Join(lines, "\n")))
	return []string{goinetd, "-config", conf}, err
}

// tlsSpecs returns the servers of the TLS comparison, in the order they
// run in each round: each serves f's certificate on a loopback port and
// runs /bin/cat per connection with the plaintext on its stdin and stdout.
func tlsSpecs(p paths, f tlsFiles) []*spec {
	return []*spec{
		{
			name: "goinetd", group: groupTLS, role: roleSubject, program: p.goinetd,
			changes: "tls = { cert, key }; its limits and log as in the plain comparison (max_connections = 0, max_per_source = 0, connection_log_rate = 0)",
			argv: func(dir string, port int) ([]string, error) {
				return goinetdArgv(p.goinetd, dir, port, fmt.Sprintf("program = %q", handler),
					fmt.Sprintf("tls = { cert = %q, key = %q }", f.cert, f.key))
			},
		},
		{
			name: "stunnel", group: groupTLS, role: rolePeer, program: p.stunnel,
			changes: "a service with accept and exec = /bin/cat (its inetd-like mode: a thread and a /bin/cat per connection); " +
				"foreground = yes (and its log on stderr, to a file), no pid file; syslog = no: by default it also logs to syslog, " +
				"which with no syslog daemon (as here) glibc writes to the console, a serial line that cost it milliseconds a connection; " +
				"everything else (session cache, tickets, log level notice) at its defaults",
			argv: func(dir string, port int) ([]string, error) {
				conf, err := writeFile(dir, "stunnel.conf", fmt.Sprintf(
					"foreground = yes\nsyslog = no\npid =\n\n[bench]\naccept = 127.0.0.1:%d\nexec = %s\nexecArgs = %s\ncert = %s\nkey = %s\n",
					port, handler, filepath.Base(handler), f.cert, f.key))
				return []string{p.stunnel, conf}, err
			},
		},
		{
			name: "socat", group: groupTLS, role: rolePeer, program: p.socat,
			changes: "OPENSSL-LISTEN with fork (a socat process per connection, which makes the handshake and relays) and EXEC:/bin/cat; " +
				"verify=0 (no client certificate); backlog=4096 (default 5); nodelay (TCP_NODELAY, which goinetd and stunnel set by default: " +
				"without it, its small TLS records wait for the client's delayed ACK, and it serves about 20 connections a second at 1 client)",
			argv: func(dir string, port int) ([]string, error) {
				return []string{p.socat, fmt.Sprintf("OPENSSL-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=4096,nodelay,cert=%s,key=%s,verify=0", port, f.cert, f.key),
					"EXEC:" + handler}, nil
			},
		},
	}
}

// customSpec is a server given on the command line as NAME=COMMAND, where
// COMMAND is split on spaces and every "{port}" in it is replaced by the
// port (no shell is involved).
func customSpec(arg string) (*spec, error) {
	name, command, ok := strings.Cut(arg, "=")
	fields := strings.Fields(command)
	if !ok || name == "" || len(fields) == 0 {
		return nil, fmt.Errorf("-server %q: want NAME=COMMAND [ARG...] with {port} where the port goes", arg)
	}
	if !strings.Contains(command, "{port}") {
		return nil, fmt.Errorf("-server %q: the command has no {port}", arg)
	}
	return &spec{
		name: name, group: groupSpawn, role: roleOther, program: fields[0],
		changes: "as given: " + command,
		argv: func(dir string, port int) ([]string, error) {
			argv := make([]string, len(fields))
			for i, f := range fields {
				argv[i] = strings.ReplaceAll(f, "{port}", strconv.Itoa(port))
			}
			return argv, nil
		},
	}, nil
}

// findProgram returns the first of candidates that is an executable file,
// a bare name being looked up in PATH and then in the sbin folders root's
// PATH has; or "" if none is.
func findProgram(candidates ...string) string {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if !strings.Contains(c, "/") {
			if p, err := exec.LookPath(c); err == nil {
				return p
			}
			for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
				if executable(filepath.Join(dir, c)) {
					return filepath.Join(dir, c)
				}
			}
			continue
		}
		if executable(c) {
			if abs, err := filepath.Abs(c); err == nil {
				return abs
			}
			return c
		}
	}
	return ""
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func writeFile(dir, name, content string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
