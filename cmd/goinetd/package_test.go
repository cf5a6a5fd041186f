//go:build packagetest

package main

// Tests of the packages `make deb` and `make rpm` build. They install the
// .deb into this machine's real / and remove it again, so they are built
// only with -tags packagetest, by `make test-packages`, which `make test`
// runs after every other test: nothing else runs while the package is
// installed. A lock (lockSystemInstall) keeps two runs apart, and keeps
// TestInstallLayout, which looks at /etc/goinetd, from running meanwhile.

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The installed paths the tests look at.
const (
	pkgGoinetd  = "/usr/sbin/goinetd"
	pkgHandlers = "/usr/libexec/goinetd"
	pkgConfig   = "/etc/goinetd/inetd.toml"
	pkgDropIns  = "/etc/goinetd/goinetd.d"
	pkgState    = "/var/lib/goinetd"
	pkgInit     = "/etc/init.d/goinetd"
	pkgPidFile  = "/run/goinetd.pid"
	pkgLog      = "/var/log/goinetd.log"
	pkgUser     = "goinetd"
)

// packages builds the .deb and .rpm of every architecture and the
// tarballs with `make deb rpm dist`, which stage the binaries once, and
// returns the packages by format and architecture, e.g. "deb/amd64". It
// builds them once for all the tests.
func packages(t *testing.T) map[string]string {
	t.Helper()
	builtOnce.Do(func() {
		out := runMake(t, "deb", "rpm", "dist")
		distOutput = out
		built = map[string]string{}
		for _, m := range regexp.MustCompile(`created package: (\S+)`).FindAllStringSubmatch(out, -1) {
			path := filepath.Join(repoRoot, m[1])
			var arch string
			if strings.HasSuffix(path, ".deb") {
				arch = fieldOf(t, "dpkg-deb", "-f", path, "Architecture")
				built["deb/"+arch] = path
			} else {
				arch = fieldOf(t, "rpm", "-qp", "--qf", "%{ARCH}", path)
				built["rpm/"+map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[arch]] = path
			}
		}
	})
	for _, want := range []string{"deb/amd64", "deb/arm64", "rpm/amd64", "rpm/arm64"} {
		if built[want] == "" {
			t.Fatalf("make deb rpm: got packages %v; want a %s", built, want)
		}
	}
	return built
}

var (
	builtOnce  sync.Once
	built      map[string]string
	distOutput string // what make said
)

// fieldOf runs a command that prints one value and returns it, trimmed.
func fieldOf(t *testing.T, name string, args ...string) string {
	t.Helper()
	needTool(t, name)
	out, errOut, err := runBounded(t, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut)
	}
	return strings.TrimSpace(out)
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s (make deps installs it): %v", name, err)
	}
}

// TestPackageLintian runs lintian on the .deb of every architecture: it
// must report no error and no warning (packaging/lintian-overrides says
// why the few it overrides are right). lintian leaves its ELF caches
// (mldbm-elf-*) in TMPDIR when it exits, so it gets a folder of the
// test's own.
func TestPackageLintian(t *testing.T) {
	needTool(t, "lintian")
	pkgs := packages(t)
	out, errOut, err := runBounded(t, []string{"TMPDIR=" + t.TempDir()}, "lintian", "--fail-on", "error,warning", pkgs["deb/amd64"], pkgs["deb/arm64"])
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("lintian: got %v and\n%s%s\nwant no error and no warning", err, out, errOut)
	}
}

// TestPackageFileLists proves that the .rpm installs what the .deb does,
// for each architecture, apart from what only Debian has (the sysvinit
// script, lintian's overrides, its changelog) and the units' folder, which
// is /usr/lib/systemd/system on rpm distributions; and that the arm64
// packages carry arm64 binaries, statically linked.
func TestPackageFileLists(t *testing.T) {
	needTool(t, "dpkg-deb")
	needTool(t, "rpm")
	pkgs := packages(t)
	debOnly := []string{pkgInit, "/usr/share/lintian/overrides/goinetd", "/usr/share/doc/goinetd/changelog.Debian.gz"}
	for _, arch := range []string{"amd64", "arm64"} {
		deb, rpm := debFiles(t, pkgs["deb/"+arch]), strings.Fields(fieldOf(t, "rpm", "-qlp", pkgs["rpm/"+arch]))
		var want []string
		for _, f := range deb {
			if !slices.Contains(debOnly, f) {
				want = append(want, strings.Replace(f, "/lib/systemd/", "/usr/lib/systemd/", 1))
			}
		}
		slices.Sort(want)
		slices.Sort(rpm)
		if !slices.Equal(rpm, want) {
			t.Errorf("%s: rpm -qlp lists\n%s\nwant the .deb's\n%s", pkgs["rpm/"+arch], strings.Join(rpm, "\n"), strings.Join(want, "\n"))
		}
		if got := fieldOf(t, "rpm", "-qcp", pkgs["rpm/"+arch]); got != pkgConfig {
			t.Errorf("%s: rpm -qcp: got %q; want the config %s", pkgs["rpm/"+arch], got, pkgConfig)
		}
		scripts := fieldOf(t, "rpm", "-qp", "--scripts", pkgs["rpm/"+arch])
		if !strings.Contains(scripts, "useradd -r -g goinetd") {
			t.Errorf("%s: its scripts do not create the user goinetd:\n%s", pkgs["rpm/"+arch], scripts)
		}
	}

	// The arm64 binaries, cross-built, are arm64 and static.
	root := t.TempDir()
	fieldOf(t, "dpkg-deb", "-x", pkgs["deb/arm64"], root)
	for _, bin := range []string{pkgGoinetd, pkgHandlers + "/echo", pkgHandlers + "/lastaccess", pkgHandlers + "/lastaccess-postgres"} {
		f, err := elf.Open(filepath.Join(root, bin))
		if err != nil {
			t.Errorf("arm64 package: %v", err)
			continue
		}
		if f.Machine != elf.EM_AARCH64 || f.Section(".interp") != nil {
			t.Errorf("arm64 package, %s: got machine %v, program interpreter %v; want a static EM_AARCH64 binary",
				bin, f.Machine, f.Section(".interp") != nil)
		}
		f.Close()
	}
}

// debFiles lists what a .deb installs: its files, and the folders that
// are the package's own (named goinetd), as rpm lists them.
func debFiles(t *testing.T, deb string) []string {
	t.Helper()
	var files []string
	for _, line := range strings.Split(fieldOf(t, "dpkg-deb", "-c", deb), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 {
			continue
		}
		path := strings.TrimSuffix(strings.TrimPrefix(fields[5], "."), "/")
		if !strings.HasPrefix(fields[0], "d") || strings.Contains(filepath.Base(path), "goinetd") {
			files = append(files, path)
		}
	}
	return files
}

// TestPackageInstallRunRemove installs the .deb of this machine's
// architecture into the real / with dpkg, as an admin would: it checks
// what the package put where, that it enabled and started nothing, that
// the installed config passes `goinetd check` and serves nothing; then
// enables two services in a drop-in, runs the installed goinetd directly
// (no systemd runs here) and through the installed sysvinit script (start,
// status, reload, restart, stop), connects to both services and checks that their
// handlers run as the user the package created, and keep their state in
// its folder. Then `dpkg -r` keeps the config and the state, and
// `dpkg -P` leaves nothing behind: no file, folder, link or process.
func TestPackageInstallRunRemove(t *testing.T) {
	needRoot(t)
	needTool(t, "dpkg")
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("packages are built for amd64 and arm64, not this %s", runtime.GOARCH)
	}
	lockSystemInstall(t, unix.LOCK_EX)
	hadUser := userExists(pkgUser)
	preparePackageHost(t)
	deb := packages(t)["deb/"+runtime.GOARCH]
	installed := debFiles(t, deb)
	t.Cleanup(func() { cleanupPackage(t, hadUser) })

	markInstalling(t, true)
	dpkg(t, "-i", deb)

	// What the package put in place, and what it did not do.
	for _, f := range installed {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("after dpkg -i: %v; want the package's %s", err, f)
		}
	}
	if got := fieldOf(t, "dpkg-query", "-W", "-f", "${Conffiles}", "goinetd"); !strings.Contains(got, pkgConfig+" ") || !strings.Contains(got, pkgInit+" ") {
		t.Errorf("dpkg-query: got conffiles %q; want %s and %s", got, pkgConfig, pkgInit)
	}
	who, err := user.Lookup(pkgUser)
	if err != nil {
		t.Fatalf("after dpkg -i: %v; want the system user %s", err, pkgUser)
	}
	uid, _ := strconv.Atoi(who.Uid)
	if uid >= 1000 || who.HomeDir != pkgState {
		t.Errorf("user %s: got uid %d, home %s; want a system user (uid below 1000) at home in %s", pkgUser, uid, who.HomeDir, pkgState)
	}
	if fi, err := os.Stat(pkgState); err != nil || fi.Mode() != fs.ModeDir|0o750 || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("after dpkg -i, %s: got %v, %v; want a folder of mode 0750 that %s owns", pkgState, fi, err, pkgUser)
	}
	if enabled, _ := filepath.Glob("/etc/rc[2-5].d/S*goinetd"); len(enabled) > 0 {
		t.Errorf("after dpkg -i: got %v; want goinetd not enabled at boot", enabled)
	}
	if enabled, _ := filepath.Glob("/etc/systemd/system/*.wants/goinetd.*"); len(enabled) > 0 {
		t.Errorf("after dpkg -i: got %v; want no unit of goinetd enabled", enabled)
	}
	if procs := goinetdProcesses(); len(procs) > 0 {
		t.Errorf("after dpkg -i: got goinetd processes %v; want none started", procs)
	}
	version := strings.TrimSuffix(fieldOf(t, "dpkg-query", "-W", "-f", "${Version}", "goinetd"), "-1")
	if got := fieldOf(t, pkgGoinetd, "-version"); got != "goinetd "+version {
		t.Errorf("%s -version: got %q; want the package's version, %q", pkgGoinetd, got, "goinetd "+version)
	}

	// The installed config, found without -c, serves nothing.
	out, errOut, err := runBounded(t, nil, pkgGoinetd, "check")
	if err != nil || !strings.HasPrefix(out, pkgConfig+": ") || !strings.Contains(out, "ok, 2 services (0 enabled)") || errOut != "" {
		t.Errorf("goinetd check: got %v,\n%s%s\nwant %s: ok, 2 services (0 enabled), and no warning", err, out, errOut, pkgConfig)
	}

	// A drop-in enables echo and lastaccess, as the installed config's
	// own services are: as the package's user, lastaccess in its folder.
	echoPort, lastPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	dropIn := filepath.Join(pkgDropIns, "package-test.toml")
	writeConfig(t, dropIn, fmt.Sprintf(`[services.echo-test]
address = "127.0.0.1"
port = %d
program = "%s/echo"
user = "%s"

[services.lastaccess-test]
address = "127.0.0.1"
port = %d
program = "%s/lastaccess"
args = ["-db", "%s/lastaccess.db"]
workdir = "%s"
user = "%s"
`, echoPort, pkgHandlers, pkgUser, lastPort, pkgHandlers, pkgState, pkgState, pkgUser))
	out, errOut, err = runBounded(t, nil, pkgGoinetd, "check")
	if err != nil || !strings.Contains(out, "ok, 4 services (2 enabled)") || errOut != "" {
		t.Errorf("goinetd check with the drop-in: got %v,\n%s%s\nwant ok, 4 services (2 enabled), and no warning", err, out, errOut)
	}

	t.Run("direct", func(t *testing.T) {
		d := launchFile(t, pkgConfig, func(cmd *exec.Cmd) {
			cmd.Path = pkgGoinetd
			cmd.Args[0] = pkgGoinetd
		})
		waitFor(t, "the installed goinetd to serve", func() bool { return strings.Contains(d.logs.String(), "msg=serving") })
		c := dial(t, "", addr(echoPort))
		if _, err := io.WriteString(c, "packaged\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len("packaged\n"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "packaged\n" {
			t.Errorf("installed echo: got %q, %v; want %q", buf, err, "packaged\n")
		}
		kids := d.children()
		if len(kids) != 1 {
			t.Errorf("the installed goinetd's children while an echo connection is held: got %v; want its handler", kids)
		}
		for _, pid := range kids {
			if got := strings.Fields(procStatus(t, pid, "Uid")); got[0] != who.Uid || got[1] != who.Uid {
				t.Errorf("installed echo handler %d: got uids %v; want %s's, %s", pid, got, pkgUser, who.Uid)
			}
		}
		c.Close()
		if got := exchange(t, addr(lastPort), ""); !strings.HasPrefix(got, "Welcome, 127.0.0.1.\n") {
			t.Errorf("installed lastaccess: got %q; want a welcome", got)
		}
		record := filepath.Join(pkgState, "lastaccess.db", "127.0.0.1")
		waitFor(t, "lastaccess's record", func() bool { _, err := os.Stat(record); return err == nil })
		if fi, err := os.Stat(record); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
			t.Errorf("%s: got %v, %v; want it made by %s", record, fi, err, pkgUser)
		}
		if code := d.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("installed goinetd exited %d after SIGTERM; want 0", code)
		}
	})

	t.Run("sysvinit", func(t *testing.T) {
		needTool(t, "start-stop-daemon")
		initScript(t, "start", 0)
		waitFor(t, "goinetd started by "+pkgInit+" to accept", func() bool {
			c, err := net.DialTimeout("tcp", addr(echoPort), ioTimeout)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		pid, err := strconv.Atoi(strings.TrimSpace(readText(t, pkgPidFile)))
		if err != nil {
			t.Fatalf("%s: %v", pkgPidFile, err)
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != pkgGoinetd {
			t.Errorf("%s: got pid %d running %q; want %s", pkgPidFile, pid, exe, pkgGoinetd)
		}
		if out := initScript(t, "status", 0); !strings.Contains(out, "goinetd is running") {
			t.Errorf("%s status: got %q; want it to say goinetd is running", pkgInit, out)
		}
		initScript(t, "start", 0) // already running: nothing to do
		if got := exchange(t, addr(echoPort), "sysvinit\n"); got != "sysvinit\n" {
			t.Errorf("echo of the goinetd %s started: got %q; want %q", pkgInit, got, "sysvinit\n")
		}
		initScript(t, "reload", 0)
		waitFor(t, "goinetd to log its reload in "+pkgLog, func() bool {
			b, _ := os.ReadFile(pkgLog)
			return strings.Contains(string(b), "msg=reloaded")
		})
		// A config with a problem fails the reload, and goinetd serves on.
		writeConfig(t, filepath.Join(pkgDropIns, "broken.toml"), "[services.broken]\nport = \"none\"\n")
		initScript(t, "reload", 1)
		os.Remove(filepath.Join(pkgDropIns, "broken.toml"))
		if got := exchange(t, addr(echoPort), "still\n"); got != "still\n" {
			t.Errorf("echo after a failed reload: got %q; want %q", got, "still\n")
		}
		// restart: a new goinetd, the old one gone.
		initScript(t, "restart", 0)
		reap(t, pid)
		if pid, err = strconv.Atoi(strings.TrimSpace(readText(t, pkgPidFile))); err != nil {
			t.Fatalf("%s after restart: %v", pkgPidFile, err)
		}
		waitFor(t, "the restarted goinetd to accept", func() bool {
			c, err := net.DialTimeout("tcp", addr(echoPort), ioTimeout)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		initScript(t, "stop", 0)
		reap(t, pid)
		if out := initScript(t, "status", 3); !strings.Contains(out, "goinetd is not running") {
			t.Errorf("%s status after stop: got %q; want it to say goinetd is not running", pkgInit, out)
		}
		if _, err := os.Stat(pkgPidFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after %s stop, %s: got %v; want it removed", pkgInit, pkgPidFile, err)
		}
		initScript(t, "stop", 0) // not running: nothing to do
		if b, _ := os.ReadFile(pkgLog); !strings.Contains(string(b), "msg=serving") {
			t.Errorf("%s: got\n%s\nwant goinetd's log", pkgLog, b)
		}
	})
	if procs := goinetdProcesses(); len(procs) > 0 {
		t.Errorf("after both goinetds stopped: got processes %v; want none", procs)
	}

	// dpkg -r keeps the config, the admin's drop-in, the state and the user.
	dpkg(t, "-r", "goinetd")
	if got := fieldOf(t, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "goinetd"); got != "rc" {
		t.Errorf("after dpkg -r: got status %q; want rc (removed, config kept)", got)
	}
	for _, gone := range []string{pkgGoinetd, pkgHandlers, "/lib/systemd/system/goinetd.service"} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg -r, %s: got %v; want it removed", gone, err)
		}
	}
	for _, kept := range []string{pkgConfig, pkgInit, dropIn, filepath.Join(pkgState, "lastaccess.db")} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("after dpkg -r: %v; want it kept", err)
		}
	}

	// The admin removes the drop-in, then purges: nothing is left.
	if err := os.Remove(dropIn); err != nil {
		t.Fatal(err)
	}
	dpkg(t, "-P", "goinetd")
	markInstalling(t, false)
	checkNothingLeft(t, installed)
	if !userExists(pkgUser) {
		t.Errorf("after dpkg -P: the user %s is gone; want it kept (packaging/deb/postrm says why)", pkgUser)
	}
}

// checkNothingLeft fails the test for any file, folder, link or process
// of the package left on the machine.
func checkNothingLeft(t *testing.T, installed []string) {
	t.Helper()
	if out, _, err := runBounded(t, nil, "dpkg-query", "-W", "goinetd"); err == nil {
		t.Errorf("after dpkg -P: dpkg-query -W goinetd: got %q; want no such package", out)
	}
	var left []string
	for _, f := range append(installed, pkgState, pkgLog, pkgPidFile, "/etc/goinetd") {
		if _, err := os.Lstat(f); !errors.Is(err, fs.ErrNotExist) {
			left = append(left, f)
		}
	}
	links, _ := filepath.Glob("/etc/rc?.d/[SK][0-9][0-9]goinetd")
	left = append(left, links...)
	if len(left) > 0 {
		t.Errorf("after dpkg -P: got %v; want nothing of goinetd left", left)
	}
	if procs := goinetdProcesses(); len(procs) > 0 {
		t.Errorf("after dpkg -P: got goinetd processes %v; want none", procs)
	}
}

// preparePackageHost makes sure the test can install the package here: a
// package a killed run of this test left is purged; any other goinetd on
// the machine, installed by dpkg or by `make install`, is the admin's, and
// the test skips rather than touch it.
func preparePackageHost(t *testing.T) {
	t.Helper()
	_, _, err := runBounded(t, nil, "dpkg-query", "-W", "goinetd")
	switch {
	case err == nil && markedInstalling(t):
		t.Logf("purging the goinetd package an earlier run of this test left")
		dpkg(t, "-P", "goinetd")
		markInstalling(t, false)
	case err == nil:
		t.Skipf("a goinetd package is installed on this machine; the test would replace it (dpkg -P goinetd to let it run)")
	}
	for _, f := range []string{pkgGoinetd, "/etc/goinetd", pkgState, pkgInit} {
		if _, err := os.Lstat(f); err == nil {
			t.Skipf("%s exists: a goinetd installed otherwise (make install?) is on this machine; the test would take it over", f)
		}
	}
}

// cleanupPackage stops any goinetd the test left running, purges the
// package if the test left it installed, removes what a failed purge left,
// and the user the package created, if the machine had none before.
func cleanupPackage(t *testing.T, hadUser bool) {
	if _, err := os.Stat(pkgPidFile); err == nil {
		runBounded(t, nil, pkgInit, "stop")
	}
	for _, pid := range goinetdProcesses() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
	if _, _, err := runBounded(t, nil, "dpkg-query", "-W", "goinetd"); err == nil {
		os.Remove(filepath.Join(pkgDropIns, "package-test.toml"))
		os.Remove(filepath.Join(pkgDropIns, "broken.toml"))
		if _, errOut, err := runBounded(t, []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", "-P", "goinetd"); err != nil {
			t.Errorf("cleanup: dpkg -P goinetd: %v\n%s", err, errOut)
		}
	}
	markInstalling(t, false)
	// preparePackageHost saw none of these: what a failed purge left is the
	// test's own.
	for _, f := range []string{"/etc/goinetd", pkgState, pkgLog, pkgPidFile} {
		os.RemoveAll(f)
	}
	if !hadUser && userExists(pkgUser) {
		if _, errOut, err := runBounded(t, nil, "userdel", pkgUser); err != nil {
			t.Errorf("cleanup: userdel %s: %v\n%s", pkgUser, err, errOut)
		}
		if _, err := user.LookupGroup(pkgUser); err == nil {
			runBounded(t, nil, "groupdel", pkgUser)
		}
	}
}

// dpkg runs dpkg with args, failing the test if it fails.
func dpkg(t *testing.T, args ...string) {
	t.Helper()
	out, errOut, err := runBounded(t, []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", args...)
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
}

// initScript runs the installed sysvinit script with action, fails the
// test unless it exits with want, and returns its output.
func initScript(t *testing.T, action string, want int) string {
	t.Helper()
	out, errOut, err := runBounded(t, nil, pkgInit, action)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", pkgInit, action, err)
	}
	if code != want {
		t.Errorf("%s %s: got exit %d and\n%s%s\nwant exit %d", pkgInit, action, code, out, errOut, want)
	}
	return out + errOut
}

// goinetdProcesses returns the pids of the processes running the
// installed goinetd or one of its handlers (deleted or not).
func goinetdProcesses() []int {
	var pids []int
	links, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, l := range links {
		exe, err := os.Readlink(l)
		if err != nil || !(strings.HasPrefix(exe, pkgGoinetd) || strings.HasPrefix(exe, pkgHandlers+"/")) {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(l, "/")[2]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func userExists(name string) bool {
	_, err := user.Lookup(name)
	return err == nil
}

// writeConfig writes a config file as root writes one: mode 0644.
func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// installingMark is the content of the lock file while this test has the
// package installed: a run killed meanwhile leaves it, and the next run
// knows the installed package is its own to purge.
const installingMark = "installing goinetd's package\n"

func markInstalling(t *testing.T, on bool) {
	t.Helper()
	text := ""
	if on {
		text = installingMark
	}
	if err := os.WriteFile(systemInstallLock, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func markedInstalling(t *testing.T) bool {
	b, _ := os.ReadFile(systemInstallLock)
	return string(b) == installingMark
}

// openrcRoot is where `make openrc-tools` unpacks Debian's OpenRC, unused
// by this machine's init: the OpenRC test runs the script with it.
const openrcRoot = repoRoot + "/bin/tools/openrc"

// TestOpenRCScript runs the OpenRC script `make install-openrc` installs,
// directly, with OpenRC's openrc-run and supervise-daemon, against the
// goinetd the tests built: start, status, a connection, reload, stop,
// status. This machine does not run OpenRC, so the test runs it in a
// mount namespace of its own, which lays Debian's openrc package (unpacked
// by `make openrc-tools`, not installed) over /usr/lib and /usr/sbin, gives
// OpenRC a /run of its own, and mounts the script's folder on /etc/init.d.
func TestOpenRCScript(t *testing.T) {
	needRoot(t)
	needTool(t, "unshare")
	if _, err := os.Stat(openrcRoot + "/sbin/openrc-run"); err != nil {
		t.Skipf("needs Debian's openrc unpacked in bin/tools/openrc (make openrc-tools): %v", err)
	}
	orc, err := filepath.Abs(openrcRoot)
	if err != nil {
		t.Fatal(err)
	}
	dest := openDir(t)
	runMake(t, "install-openrc", "DESTDIR="+dest, "PREFIX=/usr")
	script := readText(t, filepath.Join(dest, "etc/init.d/goinetd"))
	if !strings.Contains(script, `command="/usr/sbin/goinetd"`) {
		t.Errorf("installed OpenRC script: lacks command=\"/usr/sbin/goinetd\":\n%s", script)
	}
	port := freePort(t, "127.0.0.1")
	config, log := filepath.Join(dest, "inetd.toml"), filepath.Join(dest, "goinetd.log")
	writeConfig(t, config, fmt.Sprintf("[services.echo]\naddress = \"127.0.0.1\"\nport = %d\nprogram = %q\n",
		port, filepath.Join(bin, "echo")))
	script = strings.NewReplacer("/usr/sbin/goinetd", filepath.Join(bin, "goinetd"),
		"/etc/goinetd/inetd.toml", config, "/var/log/goinetd.log", log).Replace(script)
	initDir := filepath.Join(dest, "init.d")
	if err := os.Mkdir(initDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(initDir, "goinetd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	// The driver runs each action and prints its exit status; between
	// "status" and "reload" it waits for the test to connect.
	driver := `set -u
mount -t overlay overlay -o lowerdir="$ORC/lib:/usr/lib" /usr/lib &&
mount -t overlay overlay -o lowerdir="$ORC/sbin:/usr/sbin" /usr/sbin &&
mount -t tmpfs tmpfs /run &&
mkdir -p /run/openrc/started /run/openrc/starting /run/openrc/stopping /run/openrc/inactive \
	/run/openrc/wasinactive /run/openrc/failed /run/openrc/hotplugged /run/openrc/daemons \
	/run/openrc/options /run/openrc/exclusive /run/openrc/scheduled /run/openrc/tmp &&
touch /run/openrc/softlevel &&
mount --bind "$INITDIR" /etc/init.d || exit 1
act() { out=$(/etc/init.d/goinetd --nodeps "$1" 2>&1); status=$?; echo "$out" | grep -v insserv.conf; echo "== $1 $status"; }
act start; act status; echo "== waiting"; read -r _
act reload; act status; act stop; act status
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", driver)
	cmd.Env = append(os.Environ(), "ORC="+orc, "INITDIR="+initDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines := newLogLines()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go lines.read(stdout)
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("the OpenRC driver: %v\n%s", err, lines)
		}
	}()
	waitFor(t, "the OpenRC script to start goinetd", func() bool { return strings.Contains(lines.String(), "== waiting") })
	// supervise-daemon, daemonized, is now this process's child (the tests
	// run as a subreaper): collect it when the stop ends it, or OpenRC
	// waits for it to be gone until the retry's timeout.
	supervisor := childNamed("supervise-daemon")
	if supervisor == 0 {
		t.Fatalf("no supervise-daemon among this test's children; the OpenRC script said\n%s", lines)
	}
	reaped := make(chan struct{})
	go func() {
		var ws unix.WaitStatus
		unix.Wait4(supervisor, &ws, 0, nil)
		close(reaped)
	}()
	t.Cleanup(func() {
		select {
		case <-reaped:
		default: // the stop failed: supervise-daemon ends goinetd on SIGTERM
			unix.Kill(supervisor, unix.SIGTERM)
			<-reaped
		}
	})
	waitFor(t, "goinetd under OpenRC to accept", func() bool {
		c, err := net.DialTimeout("tcp", addr(port), ioTimeout)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if got := exchange(t, addr(port), "openrc\n"); got != "openrc\n" {
		t.Errorf("echo of the goinetd OpenRC started: got %q; want %q", got, "openrc\n")
	}
	io.WriteString(stdin, "go\n")
	waitFor(t, "the OpenRC script to stop goinetd", func() bool { return strings.Count(lines.String(), "== status") == 3 })
	out := lines.String()
	for _, want := range []string{"== start 0", "status: started", "== status 0", "== reload 0", "== stop 0", "status: stopped", "== status 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("the OpenRC script: got\n%s\nwant it to say %q", out, want)
		}
	}
	select {
	case <-reaped:
	case <-time.After(waitTimeout):
		t.Fatalf("supervise-daemon still runs %v after the OpenRC script's stop; it said\n%s", waitTimeout, lines)
	}
	waitFor(t, "goinetd under OpenRC to log its reload and stop", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "msg=reloaded") && strings.Contains(string(b), "msg=stopped")
	})
}

// childNamed returns the pid of a child of this process whose command
// name is name (as /proc/PID/comm, truncated to 15 bytes, says), or 0.
func childNamed(name string) int {
	kids, _ := childrenOf(os.Getpid())
	for _, pid := range kids {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == name[:min(len(name), 15)] {
			return pid
		}
	}
	return 0
}

// TestDist checks the tarballs of `make dist`: SHA256SUMS matches
// them; each binary tarball holds goinetd, the handlers, the man pages, the
// units, the init scripts and the docs; and the source tarball builds
// offline (no module proxy, an empty module cache) into a goinetd that
// prints the tarball's version.
func TestDist(t *testing.T) {
	needTool(t, "sha256sum")
	packages(t)
	out := distOutput
	dist := filepath.Join(repoRoot, "dist")
	sums := readText(t, filepath.Join(dist, "SHA256SUMS"))
	cmd := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	cmd.Dir = dist
	if got, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check SHA256SUMS: %v\n%s", err, got)
	}
	tarballs := regexp.MustCompile(`(?m)^[0-9a-f]{64}  (goinetd-(\S+?)(-linux-(amd64|arm64))?\.tar\.gz)$`).FindAllStringSubmatch(sums, -1)
	if len(tarballs) != 3 {
		t.Fatalf("SHA256SUMS: got\n%s\nwant the source tarball and one for amd64 and arm64; make dist said\n%s", sums, out)
	}
	version := tarballs[0][2]
	for _, tb := range tarballs {
		list := strings.Fields(fieldOf(t, "tar", "-tzf", filepath.Join(dist, tb[1])))
		top := strings.TrimSuffix(tb[1], ".tar.gz") + "/"
		var want []string
		if tb[4] == "" {
			want = []string{"VERSION", "go.mod", "Makefile", "vendor/modules.txt", "packaging/nfpm.yaml", "cmd/goinetd/main.go"}
		} else {
			want = []string{"goinetd", "handlers/echo", "handlers/lastaccess", "man/goinetd.8", "man/inetd.toml.5",
				"examples/goinetd.service", "examples/goinetd.socket", "examples/goinetd.init", "examples/goinetd.openrc",
				"examples/inetd.toml", "README.md", "SECURITY.md"}
		}
		for _, w := range want {
			if !slices.Contains(list, top+w) {
				t.Errorf("%s: lacks %s", tb[1], top+w)
			}
		}
	}

	src := t.TempDir()
	fieldOf(t, "tar", "-xzf", filepath.Join(dist, "goinetd-"+version+".tar.gz"), "-C", src)
	tree := filepath.Join(src, "goinetd-"+version)
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "make", "-C", tree, "--no-print-directory", "build")
	build.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GOFLAGS"}, name)
	}), "GOPROXY=off", "GOMODCACHE="+t.TempDir(), "GOTOOLCHAIN=local")
	if got, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build in the source tarball, offline: %v\n%s", err, got)
	}
	if got := fieldOf(t, filepath.Join(tree, "bin/goinetd"), "-version"); got != "goinetd "+version {
		t.Errorf("goinetd built from the source tarball: -version says %q; want %q", got, "goinetd "+version)
	}
}

// reap waits for a goinetd the init script started, and stopped, to exit.
// Daemonized, it became this process's child (the tests run as a
// subreaper): collect it.
func reap(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("goinetd %d to exit", pid), func() bool {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		return procState(pid) == ""
	})
}
