package spawner

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

func TestInstructionsEncoding(t *testing.T) {
	nice, umask := -5, 0o027
	in := &instructions{
		rlimits: []config.Rlimit{
			{Name: "as", Resource: unix.RLIMIT_AS, Value: 512 << 20},
			{Name: "core", Resource: unix.RLIMIT_CORE, Value: 0},
			{Name: "nofile", Resource: unix.RLIMIT_NOFILE, Value: unix.RLIM_INFINITY},
		},
		nice:      &nice,
		umask:     &umask,
		chroot:    "/srv/root",
		cred:      &syscall.Credential{Uid: 65534, Gid: 0, Groups: []uint32{65534, 100}},
		dir:       "/data",
		listenPID: true,
		program:   "/bin/handler",
		argv:      []string{"handler", "--", "-x"},
	}
	want := []string{
		"-rlimit", "as=536870912", "-rlimit", "core=0", "-rlimit", "nofile=unlimited",
		"-nice", "-5", "-umask", "0027", "-chroot", "/srv/root", "-cred", "65534:0:65534,100",
		"-dir", "/data", "-listen-pid", "--", "/bin/handler", "handler", "--", "-x",
	}
	got := in.args()
	if !slices.Equal(got, want) {
		t.Fatalf("args:\ngot  %q\nwant %q", got, want)
	}
	back, err := parseInstructions(got)
	if err != nil {
		t.Fatalf("parse %q: %v", got, err)
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("parse(args(in)):\ngot  %+v\nwant %+v", back, in)
	}

	// The least a trampoline can be told: no groups, only the program.
	in = &instructions{cred: &syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{}}, program: "/p", argv: []string{"p"}}
	got = in.args()
	if want := []string{"-cred", "1:2:", "--", "/p", "p"}; !slices.Equal(got, want) {
		t.Fatalf("args: got %q; want %q", got, want)
	}
	if back, err := parseInstructions(got); err != nil || !reflect.DeepEqual(back, in) {
		t.Errorf("parse(%q): got %+v, %v; want %+v", got, back, err, in)
	}
}

func TestBadInstructionsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"/bin/true", "true"},                        // no --
		{"-nice", "5", "/bin/true", "true"},          // no --
		{"--", "/bin/true"},                          // no argv[0]
		{"-rlimit", "bogus=1", "--", "/p", "p"},      // unknown resource
		{"-rlimit", "nofile", "--", "/p", "p"},       // no value
		{"-rlimit", "nofile=-1", "--", "/p", "p"},    // negative
		{"-nice", "20", "--", "/p", "p"},             // out of range
		{"-umask", "0999", "--", "/p", "p"},          // not octal
		{"-umask", "01000", "--", "/p", "p"},         // too large
		{"-chroot", "srv", "--", "/p", "p"},          // relative
		{"-dir", "data", "--", "/p", "p"},            // relative
		{"-cred", "65534:65534", "--", "/p", "p"},    // no groups part
		{"-cred", "nobody:0:", "--", "/p", "p"},      // not numeric
		{"-cred", "1:2:3,x", "--", "/p", "p"},        // bad group
		{"-listen-pid=maybe", "--", "/p", "p"},       // not a bool
		{"-unknown", "--", "/p", "p"},                // no such instruction
		{"-dir", "/", "extra", "--", "/p", "p"},      // stray argument
		{"-rlimit", "nofile=1", "-nice", "--", "/p"}, // -nice takes "--"
	} {
		if in, err := parseInstructions(args); err == nil {
			t.Errorf("parseInstructions(%q) = %+v; want an error", args, in)
		}
	}
}

// TestTrampolineKnowsEveryConfigRlimit loads a config with every resource
// rlimits accepts (as the README lists them), and checks that each limit
// config resolves reaches the trampoline unchanged through its -rlimit
// argument.
func TestTrampolineKnowsEveryConfigRlimit(t *testing.T) {
	names := []string{"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nofile", "nproc", "rss", "stack"}
	var limits []string
	for i, name := range names {
		value := strconv.Itoa(i)
		if i%2 == 1 {
			value = `"unlimited"`
		}
		limits = append(limits, name+" = "+value)
	}
	path := filepath.Join(t.TempDir(), "inetd.toml")
	toml := fmt.Sprintf("[services.x]\nport = 7\nprogram = \"/bin/sh\"\nrlimits = { %s }\n", strings.Join(limits, ", "))
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Services[0].Rlimits
	if len(got) != len(names) {
		t.Fatalf("config resolved %d rlimits; want %d", len(got), len(names))
	}
	for _, r := range got {
		back, err := parseRlimit(rlimitArg(r))
		if err != nil || back != r {
			t.Errorf("rlimit %+v reaches the trampoline as %+v (%v)", r, back, err)
		}
	}
}

func TestPassEnv(t *testing.T) {
	goinetd := map[string]string{
		"TZ": "Europe/Paris", "LANG": "fr_FR.UTF-8", "PATH": "/opt/bin", "EMPTY": "",
		"REMOTE_ADDR": "192.0.2.1", "LISTEN_PID": "1", "NOTIFY_SOCKET": "/run/systemd/notify", "SECRET": "x",
	}
	lookup := func(name string) (string, bool) { v, ok := goinetd[name]; return v, ok }
	base := baseEnv([]string{"LANG=C", "Z=1"})
	got := passEnv(base, []string{"LANG=C", "Z=1"},
		[]string{"TZ", "NOT_SET", "LANG", "PATH", "EMPTY", "REMOTE_ADDR", "LISTEN_PID", "NOTIFY_SOCKET", "TZ"}, lookup)
	want := []string{"EMPTY=", "LANG=C", "PATH=/opt/bin", "TZ=Europe/Paris", "Z=1"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if want := baseEnv([]string{"LANG=C", "Z=1"}); !slices.Equal(base, want) {
		t.Errorf("passEnv changed its input: %q; want %q", base, want)
	}
	if got := passEnv(base, nil, nil, lookup); !slices.Equal(got, base) {
		t.Errorf("no pass_env: got %q; want %q", got, base)
	}
}

// TestSandboxChoosesHowToStart checks which services pay for the
// trampoline, and what ForkExec is asked to do for the others.
func TestSandboxChoosesHowToStart(t *testing.T) {
	s := &Server{self: "/proc/self/exe"}
	nice := 3
	cred := &config.Credential{User: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534}}
	for _, tc := range []struct {
		name       string
		sandbox    config.Sandbox
		listenFDs  bool
		trampoline []string // its argv; nil: the program is execed directly
	}{
		{name: "plain"},
		{name: "user", sandbox: config.Sandbox{Credential: cred}},
		{name: "chroot", sandbox: config.Sandbox{Chroot: "/srv", Credential: cred}},
		{name: "nice", sandbox: config.Sandbox{Nice: &nice, Credential: cred},
			trampoline: []string{TrampolineName, "-nice", "3", "-cred", "65534:65534:65534", "-dir", "/w", "--", "/bin/h", "h", "a"}},
		{name: "listen-fds", listenFDs: true,
			trampoline: []string{TrampolineName, "-dir", "/w", "-listen-pid", "--", "/bin/h", "h", "a"}},
		{name: "chroot-rlimit", sandbox: config.Sandbox{Chroot: "/srv", Rlimits: []config.Rlimit{{Name: "core", Resource: unix.RLIMIT_CORE}}},
			trampoline: []string{TrampolineName, "-rlimit", "core=0", "-chroot", "/srv", "-dir", "/w", "--", "/bin/h", "h", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &config.Service{Name: tc.name, Program: "/bin/h", Args: []string{"a"}, Workdir: "/w", ListenFDs: tc.listenFDs, Sandbox: tc.sandbox}
			p := &service{Service: svc, path: svc.Program, dir: svc.Workdir, argv: []string{"h", "a"}}
			s.sandbox(p)
			if !p.sys.Setsid || p.sys.Setpgid {
				t.Errorf("Setsid %v, Setpgid %v; want a session of its own: true, false", p.sys.Setsid, p.sys.Setpgid)
			}
			if tc.trampoline == nil {
				if p.path != "/bin/h" || !slices.Equal(p.argv, []string{"h", "a"}) {
					t.Errorf("execs %s %q; want /bin/h [h a]", p.path, p.argv)
				}
				if got := p.sys.Credential != nil; got != (tc.sandbox.Credential != nil) {
					t.Errorf("ForkExec switches credentials: %v; want %v", got, !got)
				}
				if p.sys.Chroot != tc.sandbox.Chroot {
					t.Errorf("ForkExec chroots to %q; want %q", p.sys.Chroot, tc.sandbox.Chroot)
				}
				if p.dir != "/w" {
					t.Errorf("ForkExec's workdir %q; want /w", p.dir)
				}
				return
			}
			if p.path != s.self || !slices.Equal(p.argv, tc.trampoline) {
				t.Errorf("execs %s %q; want %s %q", p.path, p.argv, s.self, tc.trampoline)
			}
			if p.sys.Credential != nil || p.sys.Chroot != "" {
				t.Errorf("ForkExec sets credential %+v, chroot %q; want the trampoline to do both", p.sys.Credential, p.sys.Chroot)
			}
			// ForkExec must not change to a workdir inside the root
			// before the trampoline has entered the root.
			if want := map[bool]string{true: "", false: "/w"}[tc.sandbox.Chroot != ""]; p.dir != want || svc.Workdir != "/w" {
				t.Errorf("ForkExec's workdir %q (config's %q); want %q (and the config unchanged)", p.dir, svc.Workdir, want)
			}
		})
	}
}

func TestCredential(t *testing.T) {
	nobody := &config.Credential{User: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534}}
	for _, tc := range []struct {
		name       string
		c          *config.Credential
		euid, egid int
		want       *syscall.Credential
	}{
		{"none", nil, 0, 0, nil},
		{"root to nobody", nobody, 0, 0, &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}},
		{"root to root", &config.Credential{User: "root"}, 0, 0, &syscall.Credential{}},
		// Not root: its own user is all it may be asked for.
		{"nobody as itself", nobody, 65534, 65534, nil},
		{"nobody to another group", nobody, 65534, 100, &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}},
	} {
		got := credential(tc.c, tc.euid, tc.egid)
		if (got == nil) != (tc.want == nil) || got != nil && (got.Uid != tc.want.Uid || got.Gid != tc.want.Gid || !slices.Equal(got.Groups, tc.want.Groups)) {
			t.Errorf("%s: got %+v; want %+v", tc.name, got, tc.want)
		}
	}
}
