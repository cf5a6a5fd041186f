package trampoline

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
	in := &Instructions{
		Rlimits: []config.Rlimit{
			{Name: "as", Resource: unix.RLIMIT_AS, Value: 512 << 20},
			{Name: "core", Resource: unix.RLIMIT_CORE, Value: 0},
			{Name: "nofile", Resource: unix.RLIMIT_NOFILE, Value: unix.RLIM_INFINITY},
		},
		Nice:      &nice,
		Umask:     &umask,
		Chroot:    "/srv/root",
		Cred:      &syscall.Credential{Uid: 65534, Gid: 0, Groups: []uint32{65534, 100}},
		Dir:       "/data",
		ListenPID: true,
		Program:   "/bin/handler",
		Argv:      []string{"handler", "--", "-x"},
	}
	want := []string{
		"-rlimit", "as=536870912", "-rlimit", "core=0", "-rlimit", "nofile=unlimited",
		"-nice", "-5", "-umask", "0027", "-chroot", "/srv/root", "-cred", "65534:0:65534,100",
		"-dir", "/data", "-listen-pid", "--", "/bin/handler", "handler", "--", "-x",
	}
	got := in.Args()
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
	in = &Instructions{Cred: &syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{}}, Program: "/p", Argv: []string{"p"}}
	got = in.Args()
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
// rlimits accepts (as inetd.toml(5) lists them), and checks that each limit
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
