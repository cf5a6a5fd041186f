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
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

	// goinetd's own user, named while goinetd runs in another group: the
	// handler would switch to the user's primary group, which needs root.
	if err := os.WriteFile(path, []byte(programService("own", 7001, "/bin/true", nil, `user = "nobody"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	argv[slices.Index(argv, "--regid=65534")] = "--regid=100"
	_, stderr, err = runBounded(t, nil, argv[0], append(argv[1:], path)...)
	wantLine := path + `:7: services.own.user: user "nobody": its primary group is 65534, not goinetd's (100): running a handler in another group` +
		tail + "; set group to goinetd's\n"
	if !errors.As(err, &exit) || stderr != wantLine {
		t.Errorf("check as nobody in group 100 of user = nobody: got %v, %q; want exit status 1 and %q", err, stderr, wantLine)
	}
}

// startWithDropIns starts goinetd on a config that serves echo on a port
// and includes conf.d/*.toml, with that folder empty; it returns the
// daemon, the drop-in folder and echo's address.
func startWithDropIns(t *testing.T) (*daemon, string, string) {
	t.Helper()
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, "include = [\"conf.d/*.toml\"]\n"+jsonLog+echoService("echo", "127.0.0.1", port),
		func(c *exec.Cmd) {
			dir := filepath.Dir(c.Args[2])
			if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
				t.Fatal(err)
			}
		})
	return d, filepath.Join(d.dir, "conf.d"), addr(port)
}

// reloadFails sends SIGHUP, waits for the reload to fail, and returns its
// problems.
func reloadFails(t *testing.T, d *daemon) []string {
	t.Helper()
	if r := d.reload(1); !strings.HasPrefix(r.msg(), "reload failed") {
		t.Fatalf("reload: got %q; want it to fail", r.msg())
	}
	var problems []string
	for _, r := range d.logs.records(func(r record) bool { return r.msg() == "reload: config problem" }) {
		problems = append(problems, r.str("problem"))
	}
	return problems
}

// TestReloadWithAFIFODropInFailsAndSIGTERMStillStops: a FIFO in the
// drop-in folder once blocked the reload, and SIGTERM with it.
func TestReloadWithAFIFODropInFailsAndSIGTERMStillStops(t *testing.T) {
	d, dropins, echo := startWithDropIns(t)
	fifo := filepath.Join(dropins, "x.toml")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{fifo + ": is not a regular file (a FIFO)"}
	if got := reloadFails(t, d); !slices.Equal(got, want) {
		t.Errorf("reload problems: got %q; want %q", got, want)
	}
	if got := exchange(t, echo, "still serving"); got != "still serving" {
		t.Errorf("echo after the failed reload: got %q", got)
	}
	start := time.Now()
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit status after SIGTERM: got %d; want 0", code)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))
}

// TestReloadRefusesADropInOthersCanWrite: a drop-in anyone can write,
// which would run its handler as root, is refused by the reload, which
// names it and the fix; goinetd keeps the config it serves.
func TestReloadRefusesADropInOthersCanWrite(t *testing.T) {
	needRoot(t)
	d, dropins, echo := startWithDropIns(t)
	file := filepath.Join(dropins, "x.toml")
	port := freePort(t, "127.0.0.1")
	if err := os.WriteFile(file, []byte(programService("evil", port, "/usr/bin/id", nil)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o666); err != nil {
		t.Fatal(err)
	}
	want := []string{file + ": file is writable by others (mode 0666), who could change what goinetd runs: chmod go-w " + file}
	if got := reloadFails(t, d); !slices.Equal(got, want) {
		t.Errorf("reload problems: got %q; want %q", got, want)
	}
	if got := exchange(t, echo, "still serving"); got != "still serving" {
		t.Errorf("echo after the failed reload: got %q", got)
	}
}

// TestDeepNestingIsRefusedFastByCheckAndReload performs the attack of a
// drop-in of nested inline tables: 80 KB of them ran goinetd out of
// memory on reload. check and reload refuse it at once, and goinetd goes
// on serving.
func TestDeepNestingIsRefusedFastByCheckAndReload(t *testing.T) {
	d, dropins, echo := startWithDropIns(t)
	depth := 80 << 10 / 8
	file := filepath.Join(dropins, "x.toml")
	nested := "[services.x]\nport = 7\nbuiltin = \"echo\"\nenv = " +
		strings.Repeat("{ a = ", depth) + "1" + strings.Repeat(" }", depth) + "\n"
	if err := os.WriteFile(file, []byte(nested), 0o644); err != nil {
		t.Fatal(err)
	}
	want := file + ":4: arrays and tables nest more than 8 deep here; goinetd's keys need at most 3, so the file is not parsed"

	start := time.Now()
	_, stderr, err := runBounded(t, nil, filepath.Join(bin, "goinetd"), "check", "-config", d.config)
	if took := time.Since(start); took > time.Second {
		t.Errorf("check took %v; want well under a second", took)
	}
	if err == nil || stderr != want+"\n" {
		t.Errorf("check: got %v, stderr %q; want exit status 1 and %q", err, stderr, want)
	}

	start = time.Now()
	if got := reloadFails(t, d); !slices.Equal(got, []string{want}) {
		t.Errorf("reload problems: got %q; want %q", got, []string{want})
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("reload took %v; want well under a second", took)
	}
	if got := exchange(t, echo, "still serving"); got != "still serving" {
		t.Errorf("echo after the failed reload: got %q", got)
	}
}
