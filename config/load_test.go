package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newService is a service as Load returns it when the file sets only its
// port and program: every other field holds its default, the default
// limits of a tcp nowait service included. dir is the config file's
// folder.
func newService(name string, port uint16, program, dir string) *Service {
	return &Service{
		Name:       name,
		Protocol:   TCP,
		Port:       port,
		Mode:       NoWait,
		Program:    program,
		Workdir:    dir,
		Stderr:     StderrLog,
		SocketMode: DefaultSocketMode,
		SocketUID:  -1,
		SocketGID:  -1,
		Limits: Limits{MaxConnections: DefaultMaxConnections, MaxPerSource: DefaultMaxPerSource,
			SourcePrefixV6: 64, RatePause: DefaultRatePause, ProxyTimeout: DefaultProxyTimeout,
			ResolveTimeout: DefaultResolveTimeout},
		LogLimits: LogLimits{DefaultStderrLineRate, DefaultStderrByteRate, DefaultConnectionLogRate},
		Sandbox:   Sandbox{KillGroupOnExit: program != ""}, // the nowait default
	}
}

// with applies edits to s and returns it, to state a service as a change
// from newService.
func with(s *Service, edit func(*Service)) *Service {
	edit(s)
	return s
}

func TestLoadGood(t *testing.T) {
	dir, err := filepath.Abs("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr
	sh := func(name string, port uint16) *Service { return newService(name, port, "/bin/sh", dir) }
	tests := []struct {
		file     string
		server   Server
		services []*Service
	}{
		{
			file:     "minimal.toml",
			server:   Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{sh("echo", 7)},
		},
		{
			file:   "empty.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
		},
		{
			file:   "log-json.toml",
			server: Server{LogFormat: LogJSON, ShutdownGrace: DefaultShutdownGrace},
		},
		{
			file:   "limits.toml",
			server: Server{LogFormat: LogText, MaxConnections: 500, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(sh("guarded", 7), func(s *Service) {
					nice, umask := 5, os.FileMode(0o027)
					s.Limits = Limits{
						OnlyFrom: []netip.Prefix{
							netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
							netip.MustParsePrefix("10.0.0.0/8"),
						},
						NoAccess:           []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
						MaxConnections:     10,
						MaxPerSource:       2,
						SourcePrefixV6:     48,
						RateLimit:          Rate{N: 50, Per: time.Second},
						RateLimitPerSource: Rate{N: 5, Per: 10 * time.Second},
						RatePause:          30 * time.Second,
						Timeout:            5 * time.Minute,
						ProxyTimeout:       DefaultProxyTimeout,
						ResolveTimeout:     DefaultResolveTimeout,
					}
					s.Sandbox = Sandbox{
						PassEnv: []string{"TZ", "LANG"},
						Rlimits: []Rlimit{
							{"as", unix.RLIMIT_AS, 512 << 20}, {"core", unix.RLIMIT_CORE, 0},
							{"cpu", unix.RLIMIT_CPU, 10}, {"nofile", unix.RLIMIT_NOFILE, 1024},
							{"nproc", unix.RLIMIT_NPROC, unix.RLIM_INFINITY},
						},
						Nice: &nice, Umask: &umask,
						KillGroupOnExit: true,
					}
				}),
			},
		},
		{
			file:   "kill-group.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(sh("ends-children", 8), func(s *Service) { s.Mode, s.KillGroupOnExit, s.MaxPerSource = Wait, true, 0 }),
				with(sh("lets-children-live", 7), func(s *Service) { s.KillGroupOnExit = false }),
			},
		},
		{
			file:   "socket-kinds.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				// max_per_source applies only to tcp nowait, idle_timeout
				// only to built-in streams.
				with(newService("chargen", 19, "", ""), func(s *Service) {
					s.Protocol, s.Mode, s.Builtin, s.MaxPerSource = UDP, Wait, "chargen", 0
					s.Address = netip.MustParseAddr("127.0.0.1")
					s.Replies = Replies{Reflection: true,
						Rate: DefaultReplyRate, Bytes: DefaultReplyBytes,
						RatePerSource: DefaultReplyRatePerSource, BytesPerSource: DefaultReplyBytesPerSource}
				}),
				with(newService("daytime", 13, "", ""), func(s *Service) {
					s.Builtin, s.IdleTimeout = "daytime", DefaultIdleTimeout
				}),
				with(newService("local", 0, "/bin/sh", dir), func(s *Service) {
					s.Protocol, s.Mode, s.KillGroupOnExit, s.MaxPerSource = Unix, Wait, false, 0
					s.Path, s.SocketMode = "/tmp/goinetd-test-local.sock", 0o600
				}),
				with(sh("proxy", 8080), func(s *Service) { s.Mode, s.ListenFDs, s.KillGroupOnExit, s.MaxPerSource = Wait, true, false, 0 }),
				with(sh("tftp", 69), func(s *Service) { s.Protocol, s.Mode, s.KillGroupOnExit, s.MaxPerSource = UDP, Wait, false, 0 }),
			},
		},
		{
			file:   "forward.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				// A forwarder runs nothing: no workdir, no sandbox.
				with(newService("local-api", 0, "", ""), func(s *Service) {
					s.Protocol, s.MaxPerSource = Unix, 0
					s.Path = "/tmp/goinetd-test-api.sock"
					s.Forward, s.ForwardTimeout = "/tmp/goinetd-test-backend.sock", DefaultForwardTimeout
				}),
				with(newService("smtp-relay", 2525, "", ""), func(s *Service) {
					s.Forward, s.ForwardTimeout, s.Timeout = "127.0.0.1:25", 2*time.Second, time.Hour
					s.OnlyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}),
				with(newService("web6", 8080, "", ""), func(s *Service) {
					s.Forward, s.ForwardTimeout = "[::1]:80", DefaultForwardTimeout
				}),
			},
		},
		{
			file:   "defaults-inherited.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(sh("inherits", 7), func(s *Service) {
					s.Address = addr("127.0.0.1")
					s.Args = []string{"-c", "cat"}
					s.Workdir = "/"
					s.Env = []string{"LANG=C", "TZ=UTC"}
					s.Stderr = StderrNull
				}),
				with(newService("overrides", 9, "/bin/cat", dir), func(s *Service) {
					s.Address = addr("::1")
					s.Args = []string{"-u", "-"}
					s.Workdir = "/tmp"
					s.Env = []string{"APP_DEBUG=1", "LANG=C", "TZ=Europe/Paris"}
					s.Stderr = StderrSocket
				}),
			},
		},
		{
			// 0 lifts a default limit, in [defaults] too, and a lifted
			// max_per_source is no error where it does not apply.
			file:   "limits-lifted.toml",
			server: Server{LogFormat: LogText, MaxConnections: 0, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(newService("echo", 7, "", ""), func(s *Service) {
					s.Builtin, s.MaxConnections, s.MaxPerSource = "echo", 0, 0
				}),
				with(newService("local", 0, "/bin/sh", dir), func(s *Service) {
					s.Protocol, s.Path, s.MaxConnections, s.MaxPerSource = Unix, "/tmp/goinetd-test-lifted.sock", 0, 0
				}),
				with(sh("own", 9), func(s *Service) {
					s.MaxConnections, s.MaxPerSource = 5, 2
				}),
				with(newService("slow-echo", 17, "", ""), func(s *Service) {
					s.Builtin, s.MaxConnections, s.MaxPerSource, s.IdleTimeout = "echo", 0, 0, 5*time.Minute
				}),
			},
		},
		{
			file:   "env-path.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{with(sh("echo", 7), func(s *Service) {
				s.Env = []string{"ALPHA=first", "EMPTY=", "PATH=/opt/echo/bin:/usr/bin", "ZED=last"}
			})},
		},
		{
			file:   "args-order.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{with(sh("echo", 7), func(s *Service) {
				s.Args = []string{"-c", "exec cat", "zz", "aa", "", "-c"}
			})},
		},
		{
			file:   "disabled.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				sh("echo", 7),
				with(newService("old-echo", 7, "/nonexistent/prog", "/nonexistent/dir"), func(s *Service) {
					s.Disabled = true
				}),
			},
		},
		{
			file:     "sorted-by-name.toml",
			server:   Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{sh("alpha", 1), sh("mike", 2), sh("zulu", 3)},
		},
		{
			file:   "ipv4-mapped.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{with(sh("echo", 7), func(s *Service) {
				s.Address = addr("127.0.0.1")
			})},
		},
		{
			file:   "ipv4-and-ipv6-same-port-ok.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(sh("any4", 9), func(s *Service) { s.Address = addr("0.0.0.0") }),
				with(sh("any4-13", 13), func(s *Service) { s.Address = addr("0.0.0.0") }),
				with(sh("any6-13", 13), func(s *Service) { s.Address = addr("::") }),
				with(sh("loopback6", 9), func(s *Service) { s.Address = addr("::1") }),
				with(sh("v4", 7), func(s *Service) { s.Address = addr("127.0.0.1") }),
				with(sh("v6", 7), func(s *Service) { s.Address = addr("::1") }),
			},
		},
		{
			file:   "distinct-ipv4-same-port-ok.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(sh("lo1", 7), func(s *Service) { s.Address = addr("127.0.0.1") }),
				with(sh("lo2", 7), func(s *Service) { s.Address = addr("127.0.0.2") }),
			},
		},
		{
			file:   "inline-and-dotted.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{
				with(sh("dotted", 9), func(s *Service) { s.Stderr = StderrSocket }),
				with(sh("inline", 7), func(s *Service) { s.Env = []string{"A=1"} }),
			},
		},
		{
			file:   "full-service.toml",
			server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
			services: []*Service{with(sh("daytime", 13), func(s *Service) {
				s.Address = addr("192.0.2.1")
				s.Args = []string{"-c", "date"}
				s.Workdir = "/"
				s.Env = []string{"TZ=UTC"}
			})},
		},
	}
	tests = append(tests, struct {
		file     string
		server   Server
		services []*Service
	}{
		file:   "log-limits.toml",
		server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace},
		services: []*Service{
			with(sh("loud", 9), func(s *Service) {
				s.LogLimits = LogLimits{ConnectionLogRate: Rate{N: 1000, Per: time.Second}}
			}),
			with(sh("quiet", 7), func(s *Service) {
				s.LogLimits = LogLimits{StderrLineRate: Rate{N: 20, Per: time.Minute}, StderrByteRate: Rate{N: 1 << 20, Per: time.Hour}}
			}),
		},
	})
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("got %d files in testdata/good; want %d, one per test case", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".toml"), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata/good", tt.file)
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			want := &Config{File: path, Dir: dir, Server: tt.server, Services: tt.services}
			checkConfig(t, cfg, want)
		})
	}
}

// checkConfig compares got with want field by field, so that a failure
// names the service that differs.
func checkConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if want.Server.DenyTime == 0 {
		want.Server.DenyTime = DefaultDenyTime // no case here sets deny_time
	}
	if got.File != want.File {
		t.Errorf("got File %q; want %q", got.File, want.File)
	}
	if got.Dir != want.Dir {
		t.Errorf("got Dir %q; want %q", got.Dir, want.Dir)
	}
	if got.Server != want.Server {
		t.Errorf("got Server %+v; want %+v", got.Server, want.Server)
	}
	if len(got.Services) != len(want.Services) {
		t.Errorf("got %d services %s; want %d %s", len(got.Services), names(got.Services),
			len(want.Services), names(want.Services))
		return
	}
	for i := range got.Services {
		if !reflect.DeepEqual(got.Services[i], want.Services[i]) {
			t.Errorf("service %d:\ngot  %s\nwant %s", i, dump(got.Services[i]), dump(want.Services[i]))
		}
	}
}

func names(services []*Service) []string {
	var n []string
	for _, s := range services {
		n = append(n, s.Name)
	}
	return n
}

// dump prints a service with nil and empty slices told apart.
func dump(s *Service) string {
	slice := func(v []string) string {
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("{Name:%q Protocol:%s Address:%s Port:%d Mode:%s Program:%q Args:%s Workdir:%q Env:%s Stderr:%s Disabled:%v}",
		s.Name, s.Protocol, s.Address, s.Port, s.Mode, s.Program, slice(s.Args), s.Workdir, slice(s.Env), s.Stderr, s.Disabled)
}

func TestEnabled(t *testing.T) {
	cfg, err := Load("testdata/good/disabled.toml")
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	if got, want := names(cfg.Enabled()), []string{"echo"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got Enabled() %q; want %q", got, want)
	}
	if got, want := names(cfg.Services), []string{"echo", "old-echo"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got Services %q; want %q", got, want)
	}
	if got := (&Config{}).Enabled(); len(got) != 0 {
		t.Errorf("got Enabled() %q of an empty Config; want none", names(got))
	}
}

// TestServicesShareNoSlices guards clone: two services that inherit args
// and env from [defaults] must not share their backing arrays.
func TestServicesShareNoSlices(t *testing.T) {
	data := []byte(`
[defaults]
program = "/bin/sh"
args = ["-c", "cat"]
env = { A = "1" }

[services.a]
port = 1

[services.b]
port = 2
`)
	cfg, err := Parse(data, "x.toml", "/")
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	a, b := cfg.Services[0], cfg.Services[1]
	if &a.Args[0] == &b.Args[0] {
		t.Errorf("got services a and b sharing Args; want a copy each")
	}
	if &a.Env[0] == &b.Env[0] {
		t.Errorf("got services a and b sharing Env; want a copy each")
	}
}

func TestLoadSocketOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root may give a socket to another user")
	}
	cfg, err := Parse([]byte("[services.local]\nprotocol = \"unix\"\npath = \"/tmp/x.sock\"\n"+
		"socket_user = \"nobody\"\nsocket_group = 0\nprogram = \"/bin/sh\"\n"), "x.toml", "/")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Services[0]; s.SocketUID != 65534 || s.SocketGID != 0 {
		t.Errorf("got socket owner %d:%d; want 65534:0 (nobody, root)", s.SocketUID, s.SocketGID)
	}
}

func TestLoadCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root may run handlers as another user")
	}
	cfg, err := Parse([]byte("[services.a]\nport = 7\nprogram = \"/bin/sh\"\nuser = \"nobody\"\n\n"+
		"[services.b]\nport = 8\nprogram = \"/bin/sh\"\nuser = \"nobody\"\ngroup = \"root\"\n\n"+
		"[services.c]\nport = 9\nprogram = \"/bin/sh\"\ngroup = 65534\n"), "x.toml", "/")
	if err != nil {
		t.Fatal(err)
	}
	want := []Credential{
		{User: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534}},
		{User: "nobody", UID: 65534, GID: 0, Groups: []uint32{0}},
		{UID: 0, GID: 65534},
	}
	for i, s := range cfg.Services {
		if s.Credential == nil || !reflect.DeepEqual(*s.Credential, want[i]) {
			t.Errorf("service %s: got credential %+v; want %+v", s.Name, s.Credential, want[i])
		}
	}
}

func TestLoadRelativePaths(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "bin", "var/echo"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	handler := filepath.Join(root, "bin", "handler")
	if err := os.WriteFile(handler, []byte("#!/bin/sh\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(root, "etc", "local-handler")
	if err := os.WriteFile(local, []byte("#!/bin/sh\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "etc", "inetd.toml")
	data := `
[services.up]
port = 7
program = "../bin/handler"
workdir = "../var/echo"
args = ["../not/resolved"]

[services.here]
port = 9
program = "local-handler"
workdir = "."

[services.dot]
port = 11
program = "./local-handler"
`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	etc := filepath.Join(root, "etc")
	want := &Config{File: path, Dir: etc, Server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace}, Services: []*Service{
		newService("dot", 11, local, etc),
		newService("here", 9, local, etc),
		with(newService("up", 7, handler, filepath.Join(root, "var", "echo")), func(s *Service) {
			s.Args = []string{"../not/resolved"}
		}),
	}}
	checkConfig(t, cfg, want)
}

// TestLoadRelativeConfigPath checks that File keeps the path as given and
// Dir is absolute.
func TestLoadRelativeConfigPath(t *testing.T) {
	const path = "testdata/good/minimal.toml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	if cfg.File != path {
		t.Errorf("got File %q; want %q", cfg.File, path)
	}
	if !filepath.IsAbs(cfg.Dir) || filepath.Base(cfg.Dir) != "good" {
		t.Errorf("got Dir %q; want the absolute path of testdata/good", cfg.Dir)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-inetd.toml")
	cfg, err := Load(path)
	if cfg != nil {
		t.Errorf("got Config %+v; want nil", cfg)
	}
	if err == nil {
		t.Fatal("got nil error; want one")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("got error %q; want it to name %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got error %v; want one that is fs.ErrNotExist", err)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load(dir)
	if cfg != nil || err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("got (%v, %v); want nil and an error naming %s", cfg, err, dir)
	}
}

func TestPortConflicts(t *testing.T) {
	// The rule behind wildcard-overlaps-specific.toml and
	// ipv4-and-ipv6-same-port-ok.toml, address by address.
	tests := []struct {
		a, b     string // "" is no address: every interface
		conflict bool
	}{
		{"", "", true},
		{"", "127.0.0.1", true},
		{"", "::1", true},
		{"", "0.0.0.0", true},
		{"", "::", true},
		{"0.0.0.0", "127.0.0.1", true},
		{"0.0.0.0", "0.0.0.0", true},
		{"0.0.0.0", "::1", false},
		{"0.0.0.0", "::", false},
		{"::", "::1", true},
		{"::", "127.0.0.1", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"127.0.0.1", "::1", false},
		{"::1", "::1", true},
		{"::1", "::2", false},
	}
	for _, tt := range tests {
		service := func(name, addr string) string {
			s := fmt.Sprintf("[services.%s]\nport = 7\nprogram = \"/bin/sh\"\n", name)
			if addr != "" {
				s += fmt.Sprintf("address = %q\n", addr)
			}
			return s
		}
		data := service("a", tt.a) + service("b", tt.b)
		_, err := Parse([]byte(data), "x.toml", "/")
		if got := err != nil; got != tt.conflict {
			t.Errorf("addresses %q and %q on one port: got conflict %v (%v); want %v", tt.a, tt.b, got, err, tt.conflict)
			continue
		}
		if tt.conflict && !strings.Contains(err.Error(), "services.b.port: 7 is already used by services.a") {
			t.Errorf("addresses %q and %q: got error %q; want services.b.port: 7 is already used by services.a", tt.a, tt.b, err)
		}
	}
}

func TestListenAddressAndSummary(t *testing.T) {
	tests := []struct {
		addr    string // "" is the zero Addr
		port    uint16
		args    []string
		disable bool
		listen  string
		summary string
	}{
		{"", 80, nil, false, ":80", "echo: tcp :80 nowait stderr=log: /bin/sh"},
		{"0.0.0.0", 80, nil, false, "0.0.0.0:80", "echo: tcp 0.0.0.0:80 nowait stderr=log: /bin/sh"},
		{"127.0.0.1", 7, []string{"-c", "cat"}, false, "127.0.0.1:7",
			"echo: tcp 127.0.0.1:7 nowait stderr=log: /bin/sh -c cat"},
		{"::1", 80, nil, false, "[::1]:80", "echo: tcp [::1]:80 nowait stderr=log: /bin/sh"},
		{"::", 65535, nil, false, "[::]:65535", "echo: tcp [::]:65535 nowait stderr=log: /bin/sh"},
		{"fe80::1%eth0", 80, nil, false, "[fe80::1%eth0]:80", "echo: tcp [fe80::1%eth0]:80 nowait stderr=log: /bin/sh"},
		{"::1", 80, []string{"-c", "cat"}, true, "[::1]:80", "echo: disabled"},
	}
	for _, tt := range tests {
		s := newService("echo", tt.port, "/bin/sh", "/")
		if tt.addr != "" {
			s.Address = netip.MustParseAddr(tt.addr)
		}
		s.Args = tt.args
		s.Disabled = tt.disable
		if got := s.ListenAddress(); got != tt.listen {
			t.Errorf("address %q port %d: got ListenAddress() %q; want %q", tt.addr, tt.port, got, tt.listen)
		}
		if got := s.Summary(); got != tt.summary {
			t.Errorf("address %q port %d: got Summary() %q; want %q", tt.addr, tt.port, got, tt.summary)
		}
	}
}

func TestSummaryOfLoadedConfig(t *testing.T) {
	cfg, err := Load("testdata/good/defaults-inherited.toml")
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	var got []string
	for _, s := range cfg.Services {
		got = append(got, s.Summary())
	}
	want := []string{
		"inherits: tcp 127.0.0.1:7 nowait stderr=null: /bin/sh -c cat",
		"overrides: tcp [::1]:9 nowait stderr=socket: /bin/cat -u -",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got summaries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("inetd.toml", "include = [\"conf.d/*.toml\", \"none/*.toml\"]\n[defaults]\nenv = { FROM = \"main\" }\n"+
		"[services.main]\nport = 7\nprogram = \"/bin/sh\"\n")
	write("conf.d/b.toml", "[services.b]\nport = 9\nprogram = \"handler\"\n")
	write("conf.d/a.toml", "[services.a]\nport = 8\nprogram = \"/bin/sh\"\n")
	write("conf.d/handler", "#!/bin/sh\n")
	cfg, err := Load(filepath.Join(dir, "inetd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
		if !slices.Equal(s.Env, []string{"FROM=main"}) {
			t.Errorf("service %s: got env %q; want [defaults] of the main file applied", s.Name, s.Env)
		}
	}
	if !slices.Equal(names, []string{"a", "b", "main"}) {
		t.Errorf("got services %q; want a, b and main, sorted", names)
	}
	if want := []string{filepath.Join(dir, "conf.d/a.toml"), filepath.Join(dir, "conf.d/b.toml")}; !slices.Equal(cfg.Includes, want) {
		t.Errorf("got includes %q; want %q", cfg.Includes, want)
	}
	if got, want := cfg.Services[1].Program, filepath.Join(dir, "conf.d/handler"); got != want {
		t.Errorf("drop-in's relative program: got %s; want %s, resolved against its own folder", got, want)
	}

	// A service defined in two files names both.
	write("conf.d/c.toml", "[services.main]\nport = 10\nprogram = \"/bin/sh\"\n")
	_, err = Load(filepath.Join(dir, "inetd.toml"))
	want := filepath.Join(dir, "conf.d/c.toml") + ":1: services.main: is also defined in " + filepath.Join(dir, "inetd.toml")
	if err == nil || err.Error() != want {
		t.Errorf("got error %v; want %q", err, want)
	}
}
