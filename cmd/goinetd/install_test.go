package main

// Tests of `make install` and `make uninstall`: each runs the real
// Makefile into a temporary DESTDIR, as a packager would, and checks the
// tree it leaves: the layout and modes, the config, the systemd units, the
// man pages, and that the installed goinetd serves its installed config.

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// installTimeout bounds one make run; the build in it is the slow part.
const installTimeout = 5 * time.Minute

// repoRoot is the repository, seen from this package's folder, where
// go test runs.
const repoRoot = "../.."

// installed is what `make install DESTDIR=... PREFIX=/usr` makes, relative
// to DESTDIR, with its mode. The folders above these are made 0755.
var installed = map[string]fs.FileMode{
	"usr/sbin/goinetd":                        0o755,
	"usr/libexec/goinetd/echo":                0o755,
	"usr/libexec/goinetd/lastaccess":          0o755,
	"usr/libexec/goinetd/lastaccess-postgres": 0o755,
	"usr/lib/systemd/system/goinetd.service":  0o644,
	"usr/lib/systemd/system/goinetd.socket":   0o644,
	"usr/share/man/man8/goinetd.8":            0o644,
	"usr/share/man/man5/inetd.toml.5":         0o644,
	"etc/goinetd/inetd.toml":                  0o644,
	"etc/goinetd/goinetd.d":                   fs.ModeDir | 0o755,
	"var/lib/goinetd":                         fs.ModeDir | 0o750,
}

// Paths of the installed tree, relative to DESTDIR.
const (
	installedGoinetd = "usr/sbin/goinetd"
	installedConfig  = "etc/goinetd/inetd.toml"
	installedService = "usr/lib/systemd/system/goinetd.service"
	installedSocket  = "usr/lib/systemd/system/goinetd.socket"
	installedStateDB = "var/lib/goinetd/lastaccess.db"
)

// systemInstallLock is the lock of goinetd's system install, the one in
// the machine's real /: the package tests (package_test.go) hold it
// exclusively while the package is installed; a test that looks at the
// system install holds it shared.
const systemInstallLock = "/run/lock/goinetd-package-test.lock"

// lockSystemInstall takes the lock of goinetd's system install, with how
// unix.LOCK_EX or unix.LOCK_SH, until the test ends; without /run/lock
// nothing can install a package meanwhile, and it takes none.
func lockSystemInstall(t *testing.T, how int) {
	t.Helper()
	f, err := os.OpenFile(systemInstallLock, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		t.Fatalf("lock %s: %v", systemInstallLock, err)
	}
}

// runMake runs make in the repository with args and returns its output,
// failing the test if it fails or outlasts installTimeout.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("needs make: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-C", repoRoot, "--no-print-directory"}, args...)...)
	// A `make test` that runs this test must not pass its own variables
	// (command-line assignments travel in MAKEFLAGS) or jobserver on.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR"}, name)
	})
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("make %s: still running after %v; output:\n%s", strings.Join(args, " "), installTimeout, out)
	}
	if err != nil {
		t.Fatalf("make %s: %v; output:\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// makeInstall runs `make install` into a fresh DESTDIR with PREFIX=/usr and
// returns the DESTDIR.
func makeInstall(t *testing.T) string {
	t.Helper()
	dest := t.TempDir()
	runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	return dest
}

// installedUser is the user the installed config runs its handlers as,
// in an install into a DESTDIR (a system install as root makes and names
// the user goinetd instead).
const installedUser = "nobody"

// enabled returns the installed config text with every service enabled,
// as an operator enables one by deleting its `disabled = true`.
func enabled(text string) string {
	return regexp.MustCompile(`(?m)^disabled = true\n`).ReplaceAllString(text, "")
}

// runBounded runs a command with a deadline and returns its standard output
// and standard error.
func runBounded(t *testing.T, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stagedConfig writes a copy of the installed config whose absolute paths
// point into dest, as if dest were /, with every `port = N` replaced as
// ports says, and returns the copy's path.
func stagedConfig(t *testing.T, dest string, ports map[string]int, edit func(string) string) string {
	t.Helper()
	text := readText(t, filepath.Join(dest, installedConfig))
	text = regexp.MustCompile(`"(/(usr|var|etc)/)`).ReplaceAllString(text, `"`+dest+`${1}`)
	// Every port is moved: the installed ones may be in use on this host.
	text = regexp.MustCompile(`(?m)^port = (\d+)$`).ReplaceAllStringFunc(text, func(m string) string {
		if p, ok := ports[strings.TrimPrefix(m, "port = ")]; ok {
			return fmt.Sprintf("port = %d", p)
		}
		return fmt.Sprintf("port = %d", freePort(t, "127.0.0.1"))
	})
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dest, "etc/goinetd/staged.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInstallLayout proves that `make install` puts every file where the
// GNU layout says, with its mode, and nothing else.
func TestInstallLayout(t *testing.T) {
	dest := makeInstall(t)
	want := maps.Clone(installed)
	for rel := range installed {
		for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
			if _, ok := want[dir]; !ok {
				want[dir] = fs.ModeDir | 0o755
			}
		}
	}
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dest, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dest {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, path)
		got[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range slices.Sorted(maps.Keys(got)) {
		if mode, ok := want[rel]; !ok {
			t.Errorf("make install made %s (%v); want nothing there", rel, got[rel])
		} else if got[rel] != mode {
			t.Errorf("%s: got mode %v; want %v", rel, got[rel], mode)
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[rel]; !ok {
			t.Errorf("make install did not make %s", rel)
		}
	}
	out, _, err := runBounded(t, nil, filepath.Join(dest, installedGoinetd), "-version")
	if err != nil || !strings.HasPrefix(out, "goinetd ") {
		t.Errorf("installed goinetd -version: got %q, %v; want \"goinetd VERSION\"", out, err)
	}

	// Statically linked: no program interpreter, so it runs on any Linux.
	if f, err := elf.Open(filepath.Join(dest, installedGoinetd)); err != nil {
		t.Error(err)
	} else {
		if interp := f.Section(".interp"); interp != nil {
			t.Errorf("installed goinetd: got an .interp section (dynamically linked); want a static binary")
		}
		f.Close()
	}

	// Without -c, the installed goinetd takes the installed config path
	// (SYSCONFDIR is /etc: DESTDIR only stages the files).
	t.Chdir(t.TempDir())
	lockSystemInstall(t, unix.LOCK_SH) // no package comes or goes meanwhile
	out, errOut, _ := runBounded(t, nil, filepath.Join(dest, installedGoinetd), "check")
	if _, err := os.Stat("/etc/goinetd/inetd.toml"); err == nil {
		if !strings.HasPrefix(out, "/etc/goinetd/inetd.toml: ") {
			t.Errorf("installed goinetd check: got %q, %q; want the check of /etc/goinetd/inetd.toml", out, errOut)
		}
	} else if !strings.Contains(errOut, "none at /etc/goinetd/inetd.toml or inetd.toml") {
		t.Errorf("installed goinetd check: got stderr %q; want it to name /etc/goinetd/inetd.toml", errOut)
	}
}

// TestInstalledConfig proves that the installed config is one for a system
// install (handlers by their libexec path, on loopback and unprivileged
// ports, lastaccess's records in the state folder, the drop-in folder
// included), that it serves nothing until the operator enables a service
// (each disabled, run as an unprivileged user, with its limits set), and
// that `goinetd check` accepts it, and a drop-in, once its paths point
// into DESTDIR.
func TestInstalledConfig(t *testing.T) {
	dest := makeInstall(t)
	text := readText(t, filepath.Join(dest, installedConfig))
	for _, want := range []string{
		`program = "/usr/libexec/goinetd/echo"`,
		`program = "/usr/libexec/goinetd/lastaccess"`,
		`args = ["-db", "/var/lib/goinetd/lastaccess.db"]`,
		`workdir = "/var/lib/goinetd"`,
		`include = ["goinetd.d/*.toml"]`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("installed config lacks %s; it is:\n%s", want, text)
		}
	}
	tables := strings.Split(text, "\n[services.")[1:]
	if len(tables) != 2 {
		t.Errorf("installed config: got %d service tables; want echo and lastaccess", len(tables))
	}
	for _, table := range tables {
		name, _, _ := strings.Cut(table, "]")
		for _, want := range []string{"disabled = true", `user = "` + installedUser + `"`, "max_connections = ", "max_per_source = ", "timeout = "} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want)).MatchString(table) {
				t.Errorf("installed config, [services.%s]: lacks %s", name, want)
			}
		}
	}
	needRoot(t)
	for _, m := range regexp.MustCompile(`(?m)^(\w+) = (.*)$`).FindAllStringSubmatch(text, -1) {
		switch key, value := m[1], m[2]; key {
		case "address":
			if value != `"127.0.0.1"` {
				t.Errorf("installed config: got address = %s; want the loopback address", value)
			}
		case "port":
			var port int
			if _, err := fmt.Sscan(value, &port); err != nil || port < 1024 {
				t.Errorf("installed config: got port = %s; want an unprivileged port", value)
			}
		}
	}

	dropIn := filepath.Join(dest, "etc/goinetd/goinetd.d/daytime.toml")
	if err := os.WriteFile(dropIn, []byte("[services.daytime]\naddress = \"127.0.0.1\"\nport = 17013\nbuiltin = \"daytime\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	staged := stagedConfig(t, dest, nil, nil)
	out, errOut, err := runBounded(t, nil, filepath.Join(dest, installedGoinetd), "check", "-config", staged)
	if err != nil {
		t.Fatalf("goinetd check of the installed config: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"ok, 3 services (1 enabled)", // the drop-in's; the installed ones wait for the operator
		"included " + dropIn,
		"echo: disabled",
		"lastaccess: disabled",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("goinetd check: got\n%s\nwant it to mention %s", out, want)
		}
	}
	if errOut != "" {
		t.Errorf("goinetd check: got stderr %q; want no warning", errOut)
	}
	staged = stagedConfig(t, dest, nil, enabled)
	out, errOut, err = runBounded(t, nil, filepath.Join(dest, installedGoinetd), "check", "-config", staged)
	if err != nil {
		t.Fatalf("goinetd check of the installed config, enabled: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"ok, 3 services (3 enabled)",
		filepath.Join(dest, "usr/libexec/goinetd/echo"),
		filepath.Join(dest, "usr/libexec/goinetd/lastaccess") + " -db " + filepath.Join(dest, installedStateDB),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("goinetd check, services enabled: got\n%s\nwant it to mention %s", out, want)
		}
	}
}

// TestInstalledTreeServes runs the installed goinetd on the installed
// config (paths into DESTDIR, free ports): it serves nothing until the
// services are enabled; then its echo and lastaccess handlers answer from
// libexec, as the unprivileged user, and lastaccess keeps its records in
// the state folder, which a system install gives to that user.
func TestInstalledTreeServes(t *testing.T) {
	needRoot(t)
	dest := openDir(t) // the handlers, not root, must reach into it
	runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	who, err := user.Lookup(installedUser)
	if err != nil {
		t.Skipf("needs the user %s: %v", installedUser, err)
	}
	uid, _ := strconv.Atoi(who.Uid)
	gid, _ := strconv.Atoi(who.Gid)
	if err := os.Chown(filepath.Join(dest, "var/lib/goinetd"), uid, gid); err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{"17007": freePort(t, "127.0.0.1"), "17008": freePort(t, "127.0.0.1")}
	jsonLog := func(s string) string { return strings.Replace(s, `log_format = "text"`, `log_format = "json"`, 1) }
	staged := stagedConfig(t, dest, ports, jsonLog)
	d := launchFile(t, staged, func(cmd *exec.Cmd) {
		cmd.Path = filepath.Join(dest, installedGoinetd)
		cmd.Args[0] = cmd.Path
	})
	if r := d.waitLog(func(r record) bool { return r.msg() == "serving" }); r.str("services") != "0" {
		t.Errorf("installed config as installed: got %s services served; want 0", r.str("services"))
	}
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", addr(p), ioTimeout); err == nil {
			c.Close()
			t.Errorf("installed config as installed: port %d accepts; want nothing served", p)
		}
	}

	text := readText(t, staged)
	if err := os.WriteFile(staged, []byte(enabled(text)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := d.reload(1); r.msg() != "reloaded" {
		t.Fatalf("reload with the services enabled: got %v", r)
	}
	// A held echo connection: its handler runs as the unprivileged user.
	c := dial(t, "", addr(ports["17007"]))
	buf := make([]byte, 10)
	if _, err := c.Write([]byte("installed\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "installed\n" {
		t.Errorf("installed echo: got %q, %v; want %q", buf, err, "installed\n")
	}
	kids := d.children()
	if len(kids) != 1 {
		t.Errorf("goinetd's children while an echo connection is held: got %v; want its handler", kids)
	}
	for _, pid := range kids {
		if got := strings.Fields(procStatus(t, pid, "Uid")); got[0] != who.Uid || got[1] != who.Uid {
			t.Errorf("installed echo handler %d: got uids %v; want %s's, %s", pid, got, installedUser, who.Uid)
		}
	}
	c.Close()
	if got := exchange(t, addr(ports["17008"]), ""); !strings.HasPrefix(got, "Welcome, 127.0.0.1.\n") {
		t.Errorf("installed lastaccess: got %q; want a welcome", got)
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "lastaccess" })
	// A fresh install's records are a folder, one file per address, made
	// by the unprivileged user.
	record := filepath.Join(dest, installedStateDB, "127.0.0.1")
	if db := readText(t, record); !strings.HasPrefix(db, "127.0.0.1|") {
		t.Errorf("%s/127.0.0.1: got %q; want a record of 127.0.0.1", installedStateDB, db)
	}
	if fi, err := os.Stat(record); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("%s: got %v, %v; want it made by %s", record, fi, err, installedUser)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("installed goinetd exited %d after SIGTERM; want 0", code)
	}
}

// TestInstalledSocketUnitActivates runs the installed goinetd as the
// installed goinetd.socket would have systemd run it: the socket passed as
// fd 3 under the unit's FileDescriptorName, by systemd-socket-activate,
// which binds it and execs goinetd when the first client connects. goinetd
// serves that client on the passed socket instead of binding its own.
func TestInstalledSocketUnitActivates(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skipf("needs systemd-socket-activate (Debian's systemd package): %v", err)
	}
	needRoot(t)
	dest := openDir(t) // the handler, not root, must reach into it
	runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	socket := unitSettings(t, filepath.Join(dest, installedSocket))
	names, listen := socket["FileDescriptorName"], socket["ListenStream"]
	if len(names) != 1 || len(listen) != 1 {
		t.Fatalf("goinetd.socket: got FileDescriptorName=%q, ListenStream=%q; want one of each", names, listen)
	}
	_, unitPort, _ := strings.Cut(listen[0], ":")
	port := freePort(t, "127.0.0.1")
	staged := stagedConfig(t, dest, map[string]int{unitPort: port}, func(s string) string {
		return enabled(strings.Replace(s, `log_format = "text"`, `log_format = "json"`, 1))
	})
	d := launchFile(t, staged, func(cmd *exec.Cmd) {
		cmd.Path = activate
		cmd.Args = append([]string{activate, "--listen=" + addr(port), "--fdname=" + names[0],
			filepath.Join(dest, installedGoinetd)}, cmd.Args[1:]...)
	})
	// systemd-socket-activate says so on stderr once it listens.
	waitFor(t, "systemd-socket-activate to listen", func() bool {
		return strings.Contains(d.logs.String(), "Listening on "+addr(port))
	})
	if got := exchange(t, addr(port), "activated\n"); got != "activated\n" {
		t.Errorf("%s over the passed socket: got %q; want %q", names[0], got, "activated\n")
	}
	d.waitLog(func(r record) bool {
		return r.msg() == "listening" && r.str("service") == names[0] && r.str("socket") == "passed by systemd"
	})
}

// unitSettings returns the settings of a unit file, key by key, in order,
// without comments.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	s := bufio.NewScanner(strings.NewReader(readText(t, path)))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "[") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not a setting", path, line)
			continue
		}
		settings[key] = append(settings[key], value)
	}
	return settings
}

// TestInstalledUnits proves that the installed units run, check and reload
// the installed goinetd on the installed config, give it time for its
// graceful stop, keep the capabilities its handlers' sandbox needs, and
// pass a socket named after a service of the installed config on that
// service's address; and that systemd-analyze verify finds nothing wrong
// with them.
func TestInstalledUnits(t *testing.T) {
	dest := makeInstall(t)
	service := unitSettings(t, filepath.Join(dest, installedService))
	check := "/usr/sbin/goinetd check -config /etc/goinetd/inetd.toml"
	for key, want := range map[string][]string{
		"Type":         {"notify"},
		"ExecStartPre": {check},
		"ExecStart":    {"/usr/sbin/goinetd -config /etc/goinetd/inetd.toml"},
		"ExecReload":   {check, "/bin/kill -HUP $MAINPID"},
		"KillMode":     {"mixed"},
	} {
		if got := service[key]; !slices.Equal(got, want) {
			t.Errorf("goinetd.service: got %s=%q; want %q", key, got, want)
		}
	}
	// systemd must not kill handlers that the default shutdown_grace (10s)
	// and goinetd's SIGKILL 2s after it would end.
	if stop, err := time.ParseDuration(strings.Join(service["TimeoutStopSec"], "")); err != nil || stop <= 12*time.Second {
		t.Errorf("goinetd.service: got TimeoutStopSec=%q; want more than shutdown_grace's 10s + 2s", service["TimeoutStopSec"])
	}
	caps := strings.Fields(strings.Join(service["CapabilityBoundingSet"], " "))
	for _, c := range []string{"CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT", "CAP_SYS_RESOURCE",
		"CAP_SYS_NICE", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL"} {
		if !slices.Contains(caps, c) {
			t.Errorf("goinetd.service: CapabilityBoundingSet=%s lacks %s", strings.Join(caps, " "), c)
		}
	}

	socket := unitSettings(t, filepath.Join(dest, installedSocket))
	names, listen := socket["FileDescriptorName"], socket["ListenStream"]
	if len(names) != 1 || len(listen) == 0 {
		t.Fatalf("goinetd.socket: got FileDescriptorName=%q, ListenStream=%q; want one name and its sockets", names, listen)
	}
	// The name must be a service of the installed config, and the sockets
	// that service's address and port.
	config := readText(t, filepath.Join(dest, installedConfig))
	table := regexp.MustCompile(`(?ms)^\[services\.` + regexp.QuoteMeta(names[0]) + `\]\n(.*?)(^\[|\z)`).FindStringSubmatch(config)
	if table == nil {
		t.Fatalf("goinetd.socket: FileDescriptorName=%s is not a service of the installed config:\n%s", names[0], config)
	}
	address := regexp.MustCompile(`(?m)^address = "(.*)"$`).FindStringSubmatch(table[1])
	port := regexp.MustCompile(`(?m)^port = (\d+)$`).FindStringSubmatch(table[1])
	if address == nil || port == nil || !slices.Equal(listen, []string{address[1] + ":" + port[1]}) {
		t.Errorf("goinetd.socket: got ListenStream=%q; want the address and port of [services.%s]:\n%s", listen, names[0], table[1])
	}

	verifyUnits(t)
}

// verifyUnits installs into a temporary prefix, without DESTDIR, so that
// the units name binaries and man pages that exist, and runs
// systemd-analyze verify on them.
func verifyUnits(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Logf("systemd-analyze verify skipped: needs systemd-analyze (Debian's systemd package): %v", err)
		return
	}
	root := t.TempDir()
	runMake(t, "install", "PREFIX="+root+"/usr", "SYSCONFDIR="+root+"/etc", "LOCALSTATEDIR="+root+"/var")
	units := filepath.Join(root, "usr/lib/systemd/system")
	args := []string{"verify", filepath.Join(units, "goinetd.service"), filepath.Join(units, "goinetd.socket")}
	if _, err := exec.LookPath("man"); err != nil {
		args = append(args[:1], append([]string{"--man=no"}, args[1:]...)...)
	}
	out, errOut, err := runBounded(t, []string{"MANPATH=" + filepath.Join(root, "usr/share/man")}, "systemd-analyze", args...)
	report := strings.TrimSpace(out + errOut)
	var ours []string
	for _, line := range strings.Split(report, "\n") {
		if strings.Contains(line, "goinetd") {
			ours = append(ours, line)
		}
	}
	switch {
	case len(ours) > 0:
		t.Errorf("systemd-analyze %s:\n%s", strings.Join(args, " "), strings.Join(ours, "\n"))
	case err != nil:
		// Nothing about goinetd's units: the host's own units are at fault.
		t.Logf("systemd-analyze verify failed on this host's units, not goinetd's (%v):\n%s", err, report)
	}
}

// TestInstalledManPages proves that both installed man pages render
// without a warning from groff and man, and that goinetd(8) documents
// every command-line flag of the installed goinetd. TestManPageAndDocsNameEveryKey
// checks inetd.toml(5)'s keys.
func TestInstalledManPages(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skipf("needs groff to render the man pages (apt-get install groff-base): %v", err)
	}
	dest := makeInstall(t)
	pages := []string{
		filepath.Join(dest, "usr/share/man/man8/goinetd.8"),
		filepath.Join(dest, "usr/share/man/man5/inetd.toml.5"),
	}
	_, manErr := exec.LookPath("man")
	for _, page := range pages {
		if _, errOut, err := runBounded(t, nil, "groff", "-man", "-Tutf8", "-ww", "-z", page); err != nil || errOut != "" {
			t.Errorf("groff -man -Tutf8 -ww -z %s: got %v and\n%s\nwant no warning", page, err, errOut)
		}
		if manErr != nil {
			continue
		}
		if _, errOut, err := runBounded(t, []string{"MANWIDTH=80"}, "man", "--warnings", "-E", "UTF-8", "-l", page); err != nil || errOut != "" {
			t.Errorf("man --warnings -E UTF-8 -l %s: got %v and\n%s\nwant no warning", page, err, errOut)
		}
	}
	if manErr != nil {
		t.Logf("man --warnings skipped: %v", manErr)
	}

	// Every flag goinetd's usage lists is in goinetd(8), as roff spells it.
	goinetd8 := strings.ReplaceAll(readText(t, pages[0]), `\-`, "-")
	usage, _, _ := runBounded(t, nil, filepath.Join(dest, installedGoinetd), "-h")
	flags := regexp.MustCompile(`(?m)^\s+(-[a-z-]+)`).FindAllStringSubmatch(usage, -1)
	if len(flags) == 0 {
		t.Errorf("goinetd -h lists no flags:\n%s", usage)
	}
	for _, f := range append(flags, []string{"", "check"}, []string{"", "help"}) {
		if !strings.Contains(goinetd8, ".B "+f[1]) && !strings.Contains(goinetd8, ".BI "+f[1]) &&
			!strings.Contains(goinetd8, ".RB [ "+f[1]) {
			t.Errorf("goinetd.8 does not document %s", f[1])
		}
	}

}

// manTags returns the words of the tags of a page's .TP entries.
func manTags(page string) []string {
	var tags []string
	lines := strings.Split(page, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if lines[i] != ".TP" {
			continue
		}
		tag := strings.NewReplacer(`"`, " ", ",", " ", `\-`, "-").Replace(lines[i+1])
		tags = append(tags, strings.Fields(tag)...)
	}
	return tags
}

// TestReinstallKeepsConfig proves that `make install` run again refreshes
// what it owns and leaves the operator's config and state folder alone.
func TestReinstallKeepsConfig(t *testing.T) {
	dest := makeInstall(t)
	config := filepath.Join(dest, installedConfig)
	changed := "# the operator's own\n" + readText(t, config)
	if err := os.WriteFile(config, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(config, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dest, "var/lib/goinetd")
	if err := os.Chmod(state, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dest, "usr/libexec/goinetd/echo")); err != nil {
		t.Fatal(err)
	}

	out := runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	if !strings.Contains(out, "keeping the existing "+config) {
		t.Errorf("second make install: got output\n%s\nwant it to say it keeps %s", out, config)
	}
	if got := readText(t, config); got != changed {
		t.Errorf("second make install: config is now\n%s\nwant the operator's\n%s", got, changed)
	}
	for path, want := range map[string]fs.FileMode{
		config: 0o600,              // the operator's
		state:  fs.ModeDir | 0o770, // the operator's
		filepath.Join(dest, "usr/libexec/goinetd/echo"): 0o755, // restored
	} {
		if fi, err := os.Stat(path); err != nil {
			t.Errorf("after a second make install: %v", err)
		} else if fi.Mode() != want {
			t.Errorf("after a second make install, %s: got mode %v; want %v", path, fi.Mode(), want)
		}
	}
}

// TestUninstallKeepsConfig proves that `make uninstall` removes the
// binaries, units and man pages, keeps the config, drop-ins and state, and
// can run twice.
func TestUninstallKeepsConfig(t *testing.T) {
	dest := makeInstall(t)
	kept := []string{
		installedConfig,
		"etc/goinetd/goinetd.d/site.toml",
		"var/lib/goinetd/lastaccess.db",
	}
	for _, rel := range kept[1:] {
		if err := os.WriteFile(filepath.Join(dest, rel), []byte("# the operator's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		runMake(t, "uninstall", "DESTDIR="+dest, "PREFIX=/usr")
	}
	// Everything under usr/ is the program's, and goes; the handlers'
	// folder goes too, once empty.
	removed := []string{"usr/libexec/goinetd"}
	for rel, mode := range installed {
		if mode.IsRegular() && strings.HasPrefix(rel, "usr/") {
			removed = append(removed, rel)
		}
	}
	for _, rel := range removed {
		if _, err := os.Lstat(filepath.Join(dest, rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after make uninstall, %s: got %v; want it removed", rel, err)
		}
	}
	for _, rel := range kept {
		if _, err := os.Stat(filepath.Join(dest, rel)); err != nil {
			t.Errorf("after make uninstall: %v; want %s kept", err, rel)
		}
	}
}
