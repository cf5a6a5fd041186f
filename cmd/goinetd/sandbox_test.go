package main

// The handler sandbox: user and group, pass_env, rlimits, nice, umask and
// chroot, each checked from inside real handlers over real connections.
// Handlers are real programs (id, env, cat, sh) and, where a static one is
// needed (inside a chroot) or a listen_fds one must run as another user, a
// small probe built for the test.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// needRoot skips the test unless it runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can run handlers as another user or chroot them")
	}
}

// hasCapability reports whether this process, and so the goinetd it
// starts, has capability c (unix.CAP_*) in its effective set. A container's
// root may lack some.
func hasCapability(t *testing.T, c int) bool {
	t.Helper()
	caps, err := strconv.ParseUint(procStatus(t, os.Getpid(), "CapEff"), 16, 64)
	if err != nil {
		t.Fatalf("CapEff: %v", err)
	}
	return caps&(1<<c) != 0
}

// programService is a service table on 127.0.0.1:port running program
// with args, plus any extra TOML lines.
func programService(name string, port int, program string, args []string, extra ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`
[services.%s]
address = "127.0.0.1"
port = %d
program = %q
args = [%s]
%s
`, name, port, program, strings.Join(quoted, ", "), strings.Join(extra, "\n"))
}

// openDir makes a folder that every user may enter and read, removed when
// the test ends: a handler running as nobody cannot reach into the test's
// own temporary folders.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "goinetd-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// probeSource is a handler that reports, as one JSON probeReport, what its
// sandbox gave it: on stdout, or, with the argument "listen-fds", on a
// connection it accepts on fd 3. It is built static, so it runs in a bare
// chroot.
const probeSource = `package main

import (
	"encoding/json"
	"os"
	"syscall"
)

func main() {
	// The descriptors it inherited: those open and not close-on-exec, as
	// the Go runtime's own are. Listed first, before it opens any.
	var fds []int
	for fd := 0; fd < 1024; fd++ {
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && flags&syscall.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	out := os.Stdout
	if len(os.Args) > 1 && os.Args[1] == "listen-fds" {
		fd, _, err := syscall.Accept(3)
		if err != nil {
			os.Stderr.WriteString("accept on fd 3: " + err.Error() + "\n")
			os.Exit(1)
		}
		out = os.NewFile(uintptr(fd), "connection")
	}
	cwd, _ := os.Getwd()
	groups, _ := syscall.Getgroups()
	umask := syscall.Umask(0)
	var root []string
	entries, _ := os.ReadDir("/")
	for _, e := range entries {
		root = append(root, e.Name())
	}
	json.NewEncoder(out).Encode(map[string]any{
		"pid": os.Getpid(), "ppid": os.Getppid(), "uid": os.Getuid(), "gid": os.Getgid(),
		"groups": groups, "umask": umask, "fds": fds, "cwd": cwd, "root": root, "argv": os.Args, "env": os.Environ(),
	})
}
`

// probeReport is what the probe reports.
type probeReport struct {
	PID    int      `json:"pid"`
	PPID   int      `json:"ppid"`
	UID    int      `json:"uid"`
	GID    int      `json:"gid"`
	Groups []int    `json:"groups"`
	Umask  int      `json:"umask"`
	FDs    []int    `json:"fds"` // inherited descriptors
	Cwd    string   `json:"cwd"`
	Root   []string `json:"root"` // the names in "/"
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
}

// buildProbe builds the probe, statically linked, at path.
func buildProbe(t *testing.T, path string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "probe.go")
	if err := os.WriteFile(src, []byte(probeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", path, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}
}

// probe connects to a probe handler at address and decodes its report.
func probe(t *testing.T, address string) probeReport {
	t.Helper()
	var r probeReport
	if err := json.NewDecoder(dial(t, "", address)).Decode(&r); err != nil {
		t.Fatalf("decode the probe's report from %s: %v", address, err)
	}
	return r
}

func TestSandboxUserAndGroup(t *testing.T) {
	needRoot(t)
	userPort, groupPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+
		programService("asuser", userPort, "/usr/bin/id", nil, `user = "nobody"`, `workdir = "/"`)+
		programService("asgroup", groupPort, "/usr/bin/id", nil, `user = "nobody"`, `group = "root"`, `workdir = "/"`))

	if got, want := exchange(t, addr(userPort), ""), "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"; got != want {
		t.Errorf("id as user nobody: got %q; want %q", got, want)
	}
	// GNU id lists the effective group first, then the supplementary
	// groups, as initgroups(nobody, root) sets them: root alone, as
	// /etc/group lists nobody in no group.
	if got, want := exchange(t, addr(groupPort), ""), "uid=65534(nobody) gid=0(root) groups=0(root)\n"; got != want {
		t.Errorf("id as user nobody, group root: got %q; want %q", got, want)
	}
}

func TestSandboxPassEnv(t *testing.T) {
	directPort, trampolinePort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	passEnv := []string{
		`pass_env = ["TZ", "NOT_SET", "LANG", "PATH"]`,
		`env = { LANG = "C" }`,
	}
	startDaemon(t, jsonLog+
		programService("direct", directPort, "/usr/bin/env", nil, passEnv...)+
		// umask makes the handler start through the trampoline, which
		// must pass the environment on unchanged.
		programService("trampoline", trampolinePort, "/usr/bin/env", nil, append(passEnv, `umask = "0022"`)...),
		func(c *exec.Cmd) {
			c.Env = append(c.Env, "TZ=Europe/Paris", "SECRET=x", "LANG=fr_FR.UTF-8",
				"PATH=/opt/goinetd-test/bin:/usr/bin:/bin", "REMOTE_ADDR=203.0.113.9")
		})

	for _, port := range []int{directPort, trampolinePort} {
		var got []string
		for _, kv := range strings.Split(strings.TrimSuffix(exchange(t, addr(port), ""), "\n"), "\n") {
			if name, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{
				"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT", "REMOTE_PORT", "TCPCONCURRENCY",
			}, name) {
				got = append(got, kv)
			}
		}
		slices.Sort(got)
		// LANG: the config's env wins. PATH: goinetd's replaces the
		// default. REMOTE_ADDR: goinetd's own value never replaces the
		// client's (config refuses it in pass_env). SECRET, NOT_SET and
		// GOINETD_TEST_LEAK: not passed.
		want := []string{"LANG=C", "PATH=/opt/goinetd-test/bin:/usr/bin:/bin", "REMOTE_ADDR=127.0.0.1", "TZ=Europe/Paris"}
		if !slices.Equal(got, want) {
			t.Errorf("environment of the handler on port %d, besides the connection's:\ngot  %q\nwant %q", port, got, want)
		}
	}
}

// procSelf is what /bin/cat shows of its own process: /proc/self/status,
// /proc/self/limits and /proc/self/stat, in that order.
type procSelf struct {
	status map[string]string    // "Umask" -> "0027"
	limits map[string][2]string // "Max open files" -> soft, hard
	nice   string
}

func parseProcSelf(t *testing.T, out string) procSelf {
	t.Helper()
	p := procSelf{status: map[string]string{}, limits: map[string][2]string{}}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	i := 0
	for ; i < len(lines) && !strings.HasPrefix(lines[i], "Limit "); i++ {
		if k, v, ok := strings.Cut(lines[i], ":"); ok {
			p.status[k] = strings.TrimSpace(v)
		}
	}
	// The kernel prints each limit as "%-25s %-20s %-20s %-10s".
	for i++; i < len(lines)-1; i++ {
		if f := strings.Fields(lines[i][min(26, len(lines[i])):]); len(f) >= 2 {
			p.limits[strings.TrimSpace(lines[i][:min(26, len(lines[i]))])] = [2]string{f[0], f[1]}
		}
	}
	// The last line is /proc/self/stat; the nice value is its 19th field,
	// counting the state, the first after the command name, as the 3rd.
	stat := lines[len(lines)-1]
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(fields) < 17 || len(p.limits) == 0 {
		t.Fatalf("cannot parse /proc/self/status, limits and stat from:\n%s", out)
	}
	p.nice = fields[16]
	return p
}

func TestSandboxLimitsNiceUmaskThenUser(t *testing.T) {
	needRoot(t)
	// Values only root can set prove that the limits and the nice value
	// are set before the switch to nobody, where the container lets root
	// set them at all.
	nice := 5
	if hasCapability(t, unix.CAP_SYS_NICE) {
		nice = -5 // below 0: only with CAP_SYS_NICE
	} else {
		t.Log("no CAP_SYS_NICE: testing a positive nice value")
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := uint64(1000)
	if hasCapability(t, unix.CAP_SYS_RESOURCE) && lim.Max < nrOpen(t) {
		nofile = lim.Max + 1 // above goinetd's own hard limit: only with CAP_SYS_RESOURCE
	} else {
		t.Log("no CAP_SYS_RESOURCE: testing a lower nofile limit")
	}
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("limited", port, "/bin/cat",
		[]string{"/proc/self/status", "/proc/self/limits", "/proc/self/stat"},
		`user = "nobody"`,
		`workdir = "/"`,
		fmt.Sprintf(`rlimits = { nofile = %d, core = 0, as = "512MiB", cpu = "10s", nproc = 64, fsize = "1MiB", stack = "unlimited" }`, nofile),
		fmt.Sprintf("nice = %d", nice),
		`umask = "0027"`))

	p := parseProcSelf(t, exchange(t, addr(port), ""))
	for field, want := range map[string]string{
		"Uid":    "65534\t65534\t65534\t65534",
		"Gid":    "65534\t65534\t65534\t65534",
		"Groups": "65534",
		"Umask":  "0027",
		"PPid":   strconv.Itoa(d.pid()), // the trampoline became the handler
	} {
		if got := p.status[field]; got != want {
			t.Errorf("handler's %s: got %q; want %q", field, got, want)
		}
	}
	for name, want := range map[string]string{
		"Max open files":     strconv.FormatUint(nofile, 10),
		"Max core file size": "0",
		"Max address space":  strconv.Itoa(512 << 20),
		"Max cpu time":       "10",
		"Max processes":      "64",
		"Max file size":      strconv.Itoa(1 << 20),
		"Max stack size":     "unlimited",
	} {
		if got := p.limits[name]; got != [2]string{want, want} {
			t.Errorf("handler's %q soft and hard limits: got %q; want %q for both", name, got, want)
		}
	}
	if got := p.nice; got != strconv.Itoa(nice) {
		t.Errorf("handler's nice value: got %s; want %d", got, nice)
	}
}

// nrOpen is the kernel's ceiling on RLIMIT_NOFILE, fs.nr_open.
func nrOpen(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSandboxChroot(t *testing.T) {
	needRoot(t)
	root := openDir(t)
	for _, dir := range []string{"bin", "data"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	echo, err := os.ReadFile(filepath.Join(bin, "echo")) // a static Go program
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "echo"), echo, 0o755); err != nil {
		t.Fatal(err)
	}
	buildProbe(t, filepath.Join(root, "bin", "probe"))

	echoPort, probePort, trampolinePort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	chroot := fmt.Sprintf("chroot = %q", root)
	d := startDaemon(t, jsonLog+
		programService("echo", echoPort, "/bin/echo", nil, chroot)+
		programService("probe", probePort, "/bin/probe", nil, chroot, `workdir = "/data"`)+
		// umask sends this one through the trampoline, which chroots and
		// changes to the workdir itself, as root, then becomes nobody.
		programService("trampoline", trampolinePort, "/bin/probe", nil, chroot, `workdir = "/data"`, `user = "nobody"`, `umask = "0077"`))

	// /bin/echo inside the root echoes; the host's would print a newline.
	if got := exchange(t, addr(echoPort), "inside the root\n"); got != "inside the root\n" {
		t.Errorf("chrooted echo: got %q; want %q", got, "inside the root\n")
	}
	for _, tc := range []struct {
		service string
		port    int
		uid     int
	}{
		{"probe", probePort, 0},
		{"trampoline", trampolinePort, 65534},
	} {
		r := probe(t, addr(tc.port))
		if want := []string{"bin", "data"}; !slices.Equal(r.Root, want) {
			t.Errorf("%s: \"/\" holds %q; want only the root's %q", tc.service, r.Root, want)
		}
		if r.Cwd != "/data" || !slices.Equal(r.Argv, []string{"probe"}) || r.UID != tc.uid || r.PPID != d.pid() {
			t.Errorf("%s: got cwd %q, argv %q, uid %d, ppid %d; want /data, [probe], %d and goinetd's pid %d",
				tc.service, r.Cwd, r.Argv, r.UID, r.PPID, tc.uid, d.pid())
		}
		if !slices.Equal(r.FDs, []int{0, 1, 2}) {
			t.Errorf("%s: inherited descriptors %v; want [0 1 2]", tc.service, r.FDs)
		}
		if tc.service == "trampoline" && r.Umask != 0o077 {
			t.Errorf("%s: umask %04o; want 0077", tc.service, r.Umask)
		}
	}
}

func TestSandboxListenFDsAsUser(t *testing.T) {
	needRoot(t)
	probePath := filepath.Join(openDir(t), "probe")
	buildProbe(t, probePath)
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("activated", port, probePath, []string{"listen-fds"},
		`mode = "wait"`, `listen_fds = true`, `user = "nobody"`, `workdir = "/"`))

	r := probe(t, addr(port))
	pid := strconv.Itoa(r.PID)
	for _, want := range []string{"LISTEN_PID=" + pid, "LISTEN_FDS=1", "LISTEN_FDNAMES=activated"} {
		if !slices.Contains(r.Env, want) {
			t.Errorf("handler's environment %q lacks %s", r.Env, want)
		}
	}
	if want := []int{0, 1, 2, 3}; !slices.Equal(r.FDs, want) {
		t.Errorf("handler's inherited descriptors: got %v; want %v", r.FDs, want)
	}
	if want := []string{"probe", "listen-fds"}; !slices.Equal(r.Argv, want) {
		t.Errorf("handler's argv: got %q; want %q", r.Argv, want)
	}
	if r.UID != 65534 || r.GID != 65534 || !slices.Equal(r.Groups, []int{65534}) || r.PPID != d.pid() {
		t.Errorf("handler runs as uid %d, gid %d, groups %v, child of %d; want nobody (65534, 65534, [65534]), child of goinetd (%d)",
			r.UID, r.GID, r.Groups, r.PPID, d.pid())
	}
	d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
}

func TestSandboxTrampolineFailureIsLoggedAndServingGoesOn(t *testing.T) {
	// No process may raise RLIMIT_NOFILE above fs.nr_open, root or not.
	tooMany := nrOpen(t) + 1
	brokenPort, echoPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		programService("broken", brokenPort, filepath.Join(bin, "echo"), nil, fmt.Sprintf("rlimits = { nofile = %d }", tooMany))+
		echoService("echo", "127.0.0.1", echoPort))

	want := fmt.Sprintf("goinetd-exec: setrlimit nofile=%d: operation not permitted", tooMany)
	for range 2 { // and goinetd goes on serving the service
		c := dial(t, "", addr(brokenPort))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Fatalf("client of the broken service: got %q, %v; want the connection closed", b, err)
		}
	}
	lines := d.waitLogs(2, func(r record) bool { return r.msg() == "stderr" && r.str("service") == "broken" })
	for _, line := range lines {
		if line.str("text") != want {
			t.Errorf("trampoline's stderr: got %q; want %q", line.str("text"), want)
		}
		pid := line.str("pid")
		end := d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("pid") == pid })
		if end.str("service") != "broken" || end.str("exit") != "127" {
			t.Errorf("exit record %v: want service broken and exit 127", end)
		}
	}
	if got := exchange(t, addr(echoPort), "still serving"); got != "still serving" {
		t.Errorf("echo after the failures: got %q", got)
	}
}

func TestSandboxTrampolineOnlyWhenNeeded(t *testing.T) {
	// The trampoline is goinetd, a Go program: GODEBUG=inittrace=1 makes
	// it print a line per package it initialises to its stderr, here the
	// client's socket. sh ignores GODEBUG, so only a handler that was
	// started through the trampoline comes with those lines.
	const script = `tr "\0" " " </proc/$$/cmdline; grep "^PPid:" /proc/$$/status`
	extra := []string{`env = { GODEBUG = "inittrace=1" }`, `stderr = "socket"`}
	plainPort, trampolinePort, userPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	cfg := jsonLog +
		programService("plain", plainPort, "/bin/sh", []string{"-c", script}, extra...) +
		programService("trampoline", trampolinePort, "/bin/sh", []string{"-c", script}, append(extra, `umask = "0022"`)...)
	if os.Geteuid() == 0 {
		cfg += programService("user", userPort, "/bin/sh", []string{"-c", script}, append(extra, `user = "nobody"`, `workdir = "/"`)...)
	}
	d := startDaemon(t, cfg)
	// argv exactly as configured, argv[0] the program's base name, and
	// goinetd's child: no process in between.
	want := "sh -c " + script + " PPid:\t" + strconv.Itoa(d.pid()) + "\n"

	if got := exchange(t, addr(plainPort), ""); got != want {
		t.Errorf("plain service: got %q; want %q, with no trampoline before it", got, want)
	}
	if os.Geteuid() == 0 {
		if got := exchange(t, addr(userPort), ""); got != want {
			t.Errorf("service with a user alone: got %q; want %q, with no trampoline before it", got, want)
		}
	}
	got := exchange(t, addr(trampolinePort), "")
	trace, ok := strings.CutSuffix(got, want)
	if !ok || trace == "" {
		t.Fatalf("service with a umask: got %q; want the trampoline's init trace, then %q", got, want)
	}
	for _, line := range strings.Split(strings.TrimSuffix(trace, "\n"), "\n") {
		if !strings.HasPrefix(line, "init ") {
			t.Errorf("service with a umask: line %q before the handler's output; want only the trampoline's init trace", line)
		}
	}
}

// TestChdirFailureIsNamed checks that a handler whose user cannot enter
// its working folder (the default: the config's folder, here a 0700 test
// folder) is logged as a failed chdir naming the folder, not as a failed
// exec of a program that was never tried.
func TestChdirFailureIsNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root may run a handler as another user")
	}
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+programService("closed", port, "/bin/cat", nil, `user = "nobody"`))
	expectClosed(t, dial(t, "", addr(port)))
	r := d.waitLog(func(r record) bool { return r.msg() == "spawn failed" })
	if r.str("stage") != "chdir" || r.str("workdir") != filepath.Dir(d.config) || !strings.Contains(r.str("err"), "permission denied") {
		t.Errorf("got %v; want stage chdir, workdir %s, permission denied", r, filepath.Dir(d.config))
	}
}

// TestNumericUserWithoutPasswdEntry checks that user = N with no passwd
// entry runs the handler as uid N, group N, as systemd's User= does.
func TestNumericUserWithoutPasswdEntry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root may run a handler as another user")
	}
	const uid = "4242"
	if _, err := user.LookupId(uid); err == nil {
		t.Skipf("uid %s has a passwd entry here", uid)
	}
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+programService("numeric", port, "/usr/bin/id", nil, "user = "+uid, `workdir = "/"`))
	if got := strings.TrimSpace(exchange(t, addr(port), "")); got != "uid=4242 gid=4242 groups=4242" {
		t.Errorf("got id %q; want uid=4242 gid=4242 groups=4242", got)
	}
}
