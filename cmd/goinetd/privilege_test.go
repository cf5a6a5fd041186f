package main

// Attacks on goinetd's privilege: the trampoline run by someone else, and
// a config that cannot be served by the user who checks it.

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// asNobody returns the command line that runs argv as nobody (uid and gid
// 65534, no supplementary groups), or skips the test if it cannot.
func asNobody(t *testing.T, argv ...string) []string {
	t.Helper()
	needRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run a command as nobody")
	}
	return append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}, argv...)
}

// TestTrampolineWithFileCapabilitiesRefuses performs the attack of a copy
// of goinetd given cap_setuid and cap_setgid: nobody runs it as the
// trampoline and asks it for uid 0. It must refuse, not print 0.
func TestTrampolineWithFileCapabilitiesRefuses(t *testing.T) {
	argvPrefix := asNobody(t)
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip("needs setcap (libcap2-bin) to give a copy of goinetd file capabilities")
	}
	dir := openDir(t)
	// The copy is named for the trampoline, so argv[0] makes it one.
	trampoline := filepath.Join(dir, "goinetd-exec")
	data, err := os.ReadFile(filepath.Join(bin, "goinetd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trampoline, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(setcap, "cap_setuid,cap_setgid+ep", trampoline).CombinedOutput(); err != nil {
		t.Skipf("setcap on %s (the file system may not support file capabilities): %v: %s", dir, err, out)
	}

	argv := append(argvPrefix, trampoline, "-cred", "0:0:", "--", "/usr/bin/id", "id", "-u")
	stdout, stderr, err := runBounded(t, nil, argv[0], argv[1:]...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 127 || stdout != "" {
		t.Fatalf("nobody running a goinetd-exec with cap_setuid, asking for uid 0: got stdout %q, %v; want nothing on stdout and exit status 127 (stderr %q)",
			stdout, err, stderr)
	}
	if want := "goinetd-exec: refused: started with raised privilege"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr: got %q; want it to start with %q", stderr, want)
	}
}

// TestTrampolineNotStartedByGoinetdRefuses runs the trampoline from a
// process that is not goinetd, as a launcher that lets its user choose
// argv[0] would (a sudo rule for goinetd, a symlink named goinetd-exec).
func TestTrampolineNotStartedByGoinetdRefuses(t *testing.T) {
	dir := t.TempDir()
	trampoline := filepath.Join(dir, "goinetd-exec")
	if err := os.Symlink(filepath.Join(bin, "goinetd"), trampoline); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runBounded(t, nil, trampoline, "--", "/usr/bin/id", "id", "-u")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 127 || stdout != "" {
		t.Fatalf("goinetd-exec started by the test: got stdout %q, %v; want nothing on stdout and exit status 127 (stderr %q)",
			stdout, err, stderr)
	}
	if want := "goinetd-exec: refused: the parent process is not goinetd"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr: got %q; want it to start with %q", stderr, want)
	}
}

// TestSandboxGroupReplacesThePrimaryGroup runs a handler as a user whose
// primary group is its own (www-data, 33:33) in another group (nogroup).
// Its supplementary groups must be what initgroups(user, group) gives:
// the groups /etc/group lists the user in, plus the new group; never the
// user's own primary group that the group key replaced.
func TestSandboxGroupReplacesThePrimaryGroup(t *testing.T) {
	needRoot(t)
	u, err := user.Lookup("www-data")
	if err != nil {
		t.Skip("needs a user www-data")
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skip("needs a group nogroup")
	}
	gid, _ := strconv.Atoi(g.Gid)
	want := []int{gid}
	for _, id := range listedGroups(t, u.Username) {
		if !slices.Contains(want, id) {
			want = append(want, id)
		}
	}
	slices.Sort(want)

	probePath := filepath.Join(openDir(t), "probe")
	buildProbe(t, probePath)
	directPort, trampolinePort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	sandbox := []string{`user = "www-data"`, `group = "nogroup"`, `workdir = "/"`}
	startDaemon(t, jsonLog+
		programService("direct", directPort, probePath, nil, sandbox...)+
		programService("trampoline", trampolinePort, probePath, nil, append(sandbox, `umask = "0022"`)...))
	for _, port := range []int{directPort, trampolinePort} {
		r := probe(t, addr(port))
		slices.Sort(r.Groups)
		if uid := strconv.Itoa(r.UID); uid != u.Uid || r.GID != gid || !slices.Equal(r.Groups, want) {
			t.Errorf("handler on port %d: got uid %d, gid %d, groups %v; want uid %s, gid %d, groups %v (initgroups(www-data, nogroup))",
				port, r.UID, r.GID, r.Groups, u.Uid, gid, want)
		}
	}
}

// listedGroups returns the ids of the groups /etc/group lists name in.
func listedGroups(t *testing.T, name string) []int {
	t.Helper()
	var ids []int
	for _, line := range strings.Split(readText(t, "/etc/group"), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 4 && slices.Contains(strings.Split(f[3], ","), name) {
			id, _ := strconv.Atoi(f[2])
			ids = append(ids, id)
		}
	}
	return ids
}

// TestCheckAsNonRootRefusesWhatNeedsRoot checks, as nobody, a config that
// only root can serve: a group other than goinetd's (even one it is in), a
// chroot, a negative nice value. Each connection would fail; check must say so at once.
func TestCheckAsNonRootRefusesWhatNeedsRoot(t *testing.T) {
	argv := asNobody(t, filepath.Join(bin, "goinetd"), "check", "-config")
	// nobody in the group users (100) as well: setgroups needs root even
	// for a group goinetd is in.
	argv[slices.Index(argv, "--clear-groups")] = "--groups=100"
	dir := openDir(t)
	path := filepath.Join(dir, "inetd.toml")
	config := programService("grouped", 7001, "/bin/true", nil, `group = 100`) +
		programService("chrooted", 7002, "/bin/true", nil, `chroot = "/"`) +
		programService("niced", 7003, "/bin/true", nil, `nice = -5`) +
		programService("fine", 7004, "/bin/true", nil, `nice = 5`, `umask = "0077"`)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runBounded(t, nil, argv[0], append(argv[1:], path)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("check as nobody: got %v, stdout %q; want exit status 1 (stderr %q)", err, stdout, stderr)
	}
	const tail = " needs root, and goinetd runs as uid 65534: this config can only be served by goinetd running as root"
	want := []string{
		path + `:7: services.grouped.group: group "100": running a handler in another group` + tail,
		path + `:14: services.chrooted.chroot: chroot` + tail,
		path + `:21: services.niced.nice: a negative nice value` + tail,
	}
	if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("check as nobody:\ngot  %q\nwant %q", got, want)
	}
}
