package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var lastaccessBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lastaccess-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "create build folder: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// TestUnwritableFolder runs the binary as an unprivileged user when the
	// tests run as root; MkdirTemp's 0700 would stop it.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "chmod build folder: %v\n", err)
		return 1
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "find the go tool: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "lastaccess")
	// lastaccess runs lastaccess-postgres, beside it, for a PostgreSQL -db.
	for _, args := range [][]string{{"-o", bin}, {"-tags", "postgres", "-o", bin + "-postgres"}} {
		cmd := exec.CommandContext(ctx, goTool, append(append([]string{"build"}, args...), ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
	}
	lastaccessBin = bin
	return m.Run()
}

// outcome is what one run of the binary did.
type outcome struct {
	stdout, stderr string
	code           int // exit status; -1 when killed by a signal
	pid            int
}

// command returns a command running the binary under test with args, in
// folder dir, with the test's environment minus TCPREMOTEIP plus env.
func command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, lastaccessBin, args...)
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "TCPREMOTEIP=")
	})
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runCommand runs cmd to completion, capturing stdout and stderr unless they
// are already set. The error is only for a failure to run at all; a non-zero
// exit is reported in the outcome.
func runCommand(cmd *exec.Cmd) (outcome, error) {
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return outcome{}, err
	}
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return outcome{}, err
	}
	return outcome{
		stdout: stdout.String(),
		stderr: stderr.String(),
		code:   cmd.ProcessState.ExitCode(),
		pid:    cmd.ProcessState.Pid(),
	}, nil
}

// connect runs one connection from remoteIP (via TCPREMOTEIP) against db.
func connect(ctx context.Context, t *testing.T, db, remoteIP string) outcome {
	t.Helper()
	out, err := runCommand(command(ctx, filepath.Dir(db), []string{"TCPREMOTEIP=" + remoteIP}, "-db", db))
	if err != nil {
		t.Fatalf("run lastaccess from %s: %v", remoteIP, err)
	}
	return out
}

var greetingRE = regexp.MustCompile(`^Welcome, ([^\n]+)\.\n` +
	`(?:(I've never seen you before\.)|I last saw you at ([^\n]+)\.)\n` +
	`I have noted your connection at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\.\n$`)

// greeting is a parsed, complete greeting.
type greeting struct {
	ip    string
	seen  bool
	last  string
	noted string
}

// parseGreeting parses out, reporting false unless it is a complete greeting.
func parseGreeting(out string) (greeting, bool) {
	m := greetingRE.FindStringSubmatch(out)
	if m == nil {
		return greeting{}, false
	}
	return greeting{ip: m[1], seen: m[2] == "", last: m[3], noted: m[4]}, true
}

// mustGreet asserts that o is a successful run with a complete greeting and
// an empty stderr, and returns the greeting.
func mustGreet(t *testing.T, o outcome) greeting {
	t.Helper()
	if o.code != 0 {
		t.Fatalf("exit status: got %d; want 0 (stderr %q)", o.code, o.stderr)
	}
	if o.stderr != "" {
		t.Errorf("stderr: got %q; want empty", o.stderr)
	}
	g, ok := parseGreeting(o.stdout)
	if !ok {
		t.Fatalf("stdout: got %q; want a three-line greeting", o.stdout)
	}
	return g
}

var recordRE = regexp.MustCompile(`^([^|]+)\|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$`)

// parseRecordLine checks one line of the records file independently of the
// code under test: a canonical IP, "|", and an RFC 3339 UTC time.
func parseRecordLine(line string) (ip string, at time.Time, err error) {
	m := recordRE.FindStringSubmatch(line)
	if m == nil {
		return "", time.Time{}, fmt.Errorf("line %q is not IP|TIME", line)
	}
	addr, err := netip.ParseAddr(m[1])
	if err != nil || addr.String() != m[1] || addr.Is4In6() || addr.Zone() != "" {
		return "", time.Time{}, fmt.Errorf("line %q: IP is not canonical", line)
	}
	at, err = time.Parse(time.RFC3339, m[2])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("line %q: %w", line, err)
	}
	return m[1], at, nil
}

// listDB runs -list on db, requires every line to be a well-formed
// record for a distinct IP, and returns IP -> TIME and the lines.
func listDB(ctx context.Context, t *testing.T, db string) (map[string]string, []string) {
	t.Helper()
	o, err := runCommand(command(ctx, filepath.Dir(db), nil, "-db", db, "-list"))
	if err != nil {
		t.Fatalf("run lastaccess -list: %v", err)
	}
	if o.code != 0 || o.stderr != "" {
		t.Fatalf("lastaccess -list: got exit %d, stderr %q; want exit 0, no stderr", o.code, o.stderr)
	}
	if o.stdout != "" && !strings.HasSuffix(o.stdout, "\n") {
		t.Fatalf("lastaccess -list output: got %q; want complete lines", o.stdout)
	}
	records := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n")
	if o.stdout == "" {
		lines = nil
	}
	for i, line := range lines {
		ip, at, err := parseRecordLine(line)
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		if _, dup := records[ip]; dup {
			t.Fatalf("record %d: got a second record for %s; want one per IP", i+1, ip)
		}
		records[ip] = at.Format(time.RFC3339)
	}
	return records, lines
}

// readFile returns path's content, failing the test on error.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// folderNames returns the sorted names in dir.
func folderNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

// testContext returns a context that ends after d or with the test.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustGreetIgnoringStderr is mustGreet for runs expected to warn.
func mustGreetIgnoringStderr(t *testing.T, o outcome) greeting {
	t.Helper()
	o.stderr = ""
	return mustGreet(t, o)
}

// layout is one of the two ways lastaccess keeps its records. The tests of
// the command's guarantees run against both.
type layout struct {
	name   string
	folder bool // a folder of per-address files; else one records file
}

var layouts = []layout{{name: "file", folder: false}, {name: "folder", folder: true}}

// prepare makes db a store of layout l holding lines, written directly. The
// file layout gets them in order in one file, even none (an empty file is a
// file store); the folder layout gets a file per line, named by the text
// before "|" (lines must be records, one per address), and no folder at all
// when there are no lines.
func (l layout) prepare(t *testing.T, db string, lines []string) {
	t.Helper()
	if !l.folder {
		content := strings.Join(lines, "\n")
		if len(lines) > 0 {
			content += "\n"
		}
		if err := os.WriteFile(db, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if len(lines) == 0 {
		return
	}
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, line := range lines {
		name, _, _ := strings.Cut(line, "|")
		if err := os.WriteFile(filepath.Join(db, name), []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// storeContent reads the store at db directly, not through the code under
// test, and returns its content as -list should print it: the records file,
// or the content of each address's file in address order (IPv4 first), then
// of any other file by name. The folder's temp folder is skipped.
func storeContent(t *testing.T, db string) string {
	t.Helper()
	info, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() {
		return readFile(t, db)
	}
	var addrs []netip.Addr
	var others []string
	for _, name := range folderNames(t, db) {
		if name == ".tmp" {
			continue
		}
		if ip, err := netip.ParseAddr(name); err == nil && ip.String() == name {
			addrs = append(addrs, ip)
		} else {
			others = append(others, name)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var b strings.Builder
	for _, ip := range addrs {
		b.WriteString(readFile(t, filepath.Join(db, ip.String())))
	}
	for _, name := range others {
		b.WriteString(readFile(t, filepath.Join(db, name)))
	}
	return b.String()
}

// tempFolder returns where layout l's updates of db write their temporary
// files, and the PID in name if it is the name of one of them.
func (l layout) tempFolder(db string) (dir string, pidOf func(name string) (int, bool)) {
	if !l.folder {
		prefix := "." + filepath.Base(db) + ".tmp-"
		return filepath.Dir(db), func(name string) (int, bool) {
			var pid int
			rest, ok := strings.CutPrefix(name, prefix)
			_, err := fmt.Sscanf(rest, "%d-", &pid)
			return pid, ok && err == nil
		}
	}
	return filepath.Join(db, ".tmp"), func(name string) (int, bool) {
		var pid int
		ip, rest, ok := strings.Cut(name, ".tmp-")
		_, err := fmt.Sscanf(rest, "%d-", &pid)
		_, ipErr := netip.ParseAddr(ip)
		return pid, ok && err == nil && ipErr == nil
	}
}
