package spawner

import (
	"slices"
	"syscall"
	"testing"

	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/internal/trampoline"
	"golang.org/x/sys/unix"
)

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
			trampoline: []string{trampoline.Name, "-nice", "3", "-cred", "65534:65534:65534", "-dir", "/w", "--", "/bin/h", "h", "a"}},
		{name: "listen-fds", listenFDs: true,
			trampoline: []string{trampoline.Name, "-dir", "/w", "-listen-pid", "--", "/bin/h", "h", "a"}},
		{name: "chroot-rlimit", sandbox: config.Sandbox{Chroot: "/srv", Rlimits: []config.Rlimit{{Name: "core", Resource: unix.RLIMIT_CORE}}},
			trampoline: []string{trampoline.Name, "-rlimit", "core=0", "-chroot", "/srv", "-dir", "/w", "--", "/bin/h", "h", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &config.Service{Name: tc.name, Program: "/bin/h", Args: []string{"a"}, Workdir: "/w", ListenFDs: tc.listenFDs, Sandbox: tc.sandbox}
			for _, newSession := range []bool{true, false} {
				s.newSession = newSession
				p := &service{Service: svc, path: svc.Program, dir: svc.Workdir, argv: []string{"h", "a"}}
				s.sandbox(p)
				if p.sys.Setsid != newSession || p.sys.Setpgid == newSession {
					t.Errorf("with a terminal %v: Setsid %v, Setpgid %v; want a session of its own only then",
						newSession, p.sys.Setsid, p.sys.Setpgid)
				}
			}
			p := &service{Service: svc, path: svc.Program, dir: svc.Workdir, argv: []string{"h", "a"}}
			s.sandbox(p)
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
