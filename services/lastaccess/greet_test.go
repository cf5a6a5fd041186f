package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFirstThenSecondConnection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	db := filepath.Join(t.TempDir(), "db")

	before := time.Now().UTC().Truncate(time.Second)
	o := connect(ctx, t, db, "127.0.0.1")
	after := time.Now().UTC()
	first := mustGreet(t, o)
	if want := "Welcome, 127.0.0.1.\nI've never seen you before.\nI have noted your connection at " + first.noted + ".\n"; o.stdout != want {
		t.Errorf("first greeting: got %q; want %q", o.stdout, want)
	}
	if noted, err := time.Parse(time.RFC3339, first.noted); err != nil || noted.Before(before) || noted.After(after) {
		t.Errorf("first noted time: got %s; want between %s and %s", first.noted, before.Format(time.RFC3339), after.Format(time.RFC3339))
	}

	mustGreet(t, connect(ctx, t, db, "127.0.0.9")) // another peer in between

	o = connect(ctx, t, db, "127.0.0.1")
	second := mustGreet(t, o)
	if want := "Welcome, 127.0.0.1.\nI last saw you at " + first.noted + ".\nI have noted your connection at " + second.noted + ".\n"; o.stdout != want {
		t.Errorf("second greeting: got %q; want %q", o.stdout, want)
	}
	if second.noted < first.noted {
		t.Errorf("second noted time: got %s; want >= %s", second.noted, first.noted)
	}

	// The updated record stays on line 1; the other peer stays on line 2.
	content := readFile(t, db)
	if !strings.HasPrefix(content, "127.0.0.1|"+second.noted+"\n127.0.0.9|") || strings.Count(content, "\n") != 2 {
		t.Errorf("records file: got %q; want 127.0.0.1|%s then 127.0.0.9|TIME", content, second.noted)
	}
}

func TestRemoteIPIsCanonicalised(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ env, want string }{
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"192.0.2.200", "192.0.2.200"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			db := filepath.Join(t.TempDir(), "db")
			g := mustGreet(t, connect(ctx, t, db, tc.env))
			if g.ip != tc.want {
				t.Errorf("welcomed IP: got %s; want %s", g.ip, tc.want)
			}
			if got, want := readFile(t, db), tc.want+"|"+g.noted+"\n"; got != want {
				t.Errorf("records file: got %q; want %q", got, want)
			}
		})
	}
}

// TestPeerFromSocket runs the handler the way an inetd does, with an accepted
// TCP socket as stdin and stdout and no TCPREMOTEIP, and checks that it finds
// the peer with getpeername.
func TestPeerFromSocket(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	deadline, _ := ctx.Deadline()
	db := filepath.Join(t.TempDir(), "db")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ln.(*net.TCPListener).SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	client, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial from 127.0.0.2: %v", err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sock, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The greeting fits in the socket buffer, so the child can finish before
	// we read. Our copy of the socket is closed after it has run, so the
	// client sees the end of the stream when the child exits.
	cmd := command(ctx, filepath.Dir(db), nil, "-db", db)
	cmd.Stdin, cmd.Stdout = sock, sock
	o, err := runCommand(cmd)
	sock.Close()
	if err != nil {
		t.Fatalf("run lastaccess: %v", err)
	}
	if err := client.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	o.stdout = string(got)
	g := mustGreet(t, o)
	if g.ip != "127.0.0.2" || g.seen {
		t.Errorf("greeting: got %q; want a first greeting for 127.0.0.2", got)
	}
	if records, _ := listDB(ctx, t, db); records["127.0.0.2"] != g.noted || len(records) != 1 {
		t.Errorf("records: got %v; want only 127.0.0.2 at %s", records, g.noted)
	}
}

func TestNoPeerAddress(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	o, err := runCommand(command(ctx, dir, nil, "-db", db)) // stdin is /dev/null
	if err != nil {
		t.Fatal(err)
	}
	if o.code != 1 || o.stdout != "" {
		t.Errorf("got exit %d, stdout %q; want exit 1, no stdout", o.code, o.stdout)
	}
	if want := "TCPREMOTEIP is not set and getpeername on fd 0 failed: socket operation on non-socket"; !strings.Contains(o.stderr, want) {
		t.Errorf("stderr: got %q; want it to contain %q", o.stderr, want)
	}
	if names := folderNames(t, dir); len(names) != 0 {
		t.Errorf("folder: got %v; want it untouched (empty)", names)
	}
}

func TestInvalidRemoteIP(t *testing.T) {
	t.Parallel()
	const content = "127.0.0.1|2020-01-02T03:04:05Z\n"
	for _, bad := range []string{"", "not-an-ip", "256.0.0.1", "127.0.0.1:80", "[::1]", "fe80::1%", " 127.0.0.1"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			db := filepath.Join(dir, "db")
			if err := os.WriteFile(db, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			o := connect(ctx, t, db, bad)
			if o.code != 1 || o.stdout != "" {
				t.Errorf("got exit %d, stdout %q; want exit 1, no stdout", o.code, o.stdout)
			}
			if want := fmt.Sprintf("lastaccess: invalid TCPREMOTEIP %q: ", bad); !strings.HasPrefix(o.stderr, want) {
				t.Errorf("stderr: got %q; want it to start with %q", o.stderr, want)
			}
			if got := readFile(t, db); got != content {
				t.Errorf("records file: got %q; want it unchanged, %q", got, content)
			}
			if got := folderNames(t, dir); !slices.Equal(got, []string{"db"}) {
				t.Errorf("folder: got %v; want [db]", got)
			}
		})
	}
}

func TestDefaultDBIsInWorkingDirectory(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()

	// -list on no records prints nothing and succeeds.
	o, err := runCommand(command(ctx, dir, nil, "-list"))
	if err != nil {
		t.Fatal(err)
	}
	if o.code != 0 || o.stdout != "" || o.stderr != "" {
		t.Errorf("-list with no records: got exit %d, stdout %q, stderr %q; want exit 0 and no output", o.code, o.stdout, o.stderr)
	}

	o, err = runCommand(command(ctx, dir, []string{"TCPREMOTEIP=192.0.2.1"}))
	if err != nil {
		t.Fatal(err)
	}
	g := mustGreet(t, o)
	if got, want := readFile(t, filepath.Join(dir, "lastaccess.db")), "192.0.2.1|"+g.noted+"\n"; got != want {
		t.Errorf("lastaccess.db: got %q; want %q", got, want)
	}
	if got, want := folderNames(t, dir), []string{"lastaccess.db", "lastaccess.db.lock"}; !slices.Equal(got, want) {
		t.Errorf("folder: got %v; want %v", got, want)
	}
	info, err := os.Stat(filepath.Join(dir, "lastaccess.db.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o644)&^currentUmask(t, dir); got != want {
		t.Errorf("lock file mode: got %v; want %v", got, want)
	}
}

// currentUmask finds the umask without changing it (syscall.Umask would,
// process-wide): it creates a file with mode 0777 and looks at what it got.
func currentUmask(t *testing.T, dir string) os.FileMode {
	t.Helper()
	probe := filepath.Join(dir, "umask-probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.Stat()
	f.Close()
	os.Remove(probe)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ info.Mode().Perm()
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	for _, args := range [][]string{{"extra"}, {"-db", ""}, {"-no-such-flag"}} {
		o, err := runCommand(command(ctx, dir, []string{"TCPREMOTEIP=127.0.0.1"}, args...))
		if err != nil {
			t.Fatal(err)
		}
		if o.code != 2 || o.stdout != "" || o.stderr == "" {
			t.Errorf("lastaccess %q: got exit %d, stdout %q, stderr %q; want exit 2, a message on stderr only", args, o.code, o.stdout, o.stderr)
		}
	}
	if names := folderNames(t, dir); len(names) != 0 {
		t.Errorf("folder: got %v; want empty", names)
	}
}

func TestMalformedLinesAreReportedAndKept(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	kept := []string{
		"127.0.0.9|2020-01-01T00:00:00Z",
		"this is not a record",
		"127.0.0.10|yesterday",
		"::ffff:1.2.3.4|2020-01-01T00:00:00Z",
		"",
		"127.0.0.9|2022-01-01T00:00:00Z", // a duplicate: the first line is the record
	}
	initial := strings.Join(kept, "\n") + "\n127.0.0.11|2021-06-01T12:00:00+02:00\n"
	if err := os.WriteFile(db, []byte(initial), 0o644); err != nil {
		t.Fatal(err)
	}

	o := connect(ctx, t, db, "127.0.0.11")
	if o.code != 0 {
		t.Fatalf("exit status: got %d; want 0 (stderr %q)", o.code, o.stderr)
	}
	g, ok := parseGreeting(o.stdout)
	if !ok || g.last != "2021-06-01T12:00:00+02:00" {
		t.Errorf("greeting: got %q; want one that last saw 127.0.0.11 at 2021-06-01T12:00:00+02:00, verbatim", o.stdout)
	}
	for _, want := range []string{
		db + `:2: malformed record "this is not a record"`,
		db + `:3: malformed record "127.0.0.10|yesterday" (bad time: `,
		db + `:4: malformed record "::ffff:1.2.3.4|2020-01-01T00:00:00Z" (IP "::ffff:1.2.3.4" is not in canonical form "1.2.3.4")`,
		db + `:5: malformed record ""`,
		db + `:6: duplicate record for 127.0.0.9 (the record is line 1)`,
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr: got %q; want it to contain %q", o.stderr, want)
		}
	}
	if got := strings.Count(o.stderr, "\n"); got != 5 {
		t.Errorf("stderr lines: got %d; want 5", got)
	}

	// A new peer is appended after everything, malformed lines included.
	h := mustGreetIgnoringStderr(t, connect(ctx, t, db, "127.0.0.12"))
	want := strings.Join(kept, "\n") + "\n127.0.0.11|" + g.noted + "\n127.0.0.12|" + h.noted + "\n"
	if got := readFile(t, db); got != want {
		t.Errorf("records file: got %q; want %q", got, want)
	}
}

// TestUnwritableFolder checks that a folder the handler cannot write gives a
// clear error, exit status 1 and no change to the records. Root ignores
// permission bits, so under root the binary runs as nobody (65534).
func TestUnwritableFolder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, db string) // creates files before the folder is made read-only
		want    func(db string) string        // in stderr
	}{
		{
			name:    "no lock file",
			prepare: func(t *testing.T, db string) {},
			want: func(db string) string {
				return "lastaccess: lock " + db + ".lock: open: permission denied"
			},
		},
		{
			name: "lock file exists",
			prepare: func(t *testing.T, db string) {
				if err := os.WriteFile(db, []byte("127.0.0.1|2020-01-02T03:04:05Z\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(db+".lock", nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: func(db string) string {
				return "lastaccess: create temp file in " + filepath.Dir(db) + ": open: permission denied"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			db := filepath.Join(dir, "db")
			tc.prepare(t, db)
			before := map[string]string{}
			for _, name := range folderNames(t, dir) {
				before[name] = readFile(t, filepath.Join(dir, name))
			}

			cmd := command(ctx, dir, []string{"TCPREMOTEIP=127.0.0.1"}, "-db", db)
			if os.Geteuid() == 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
				// t.TempDir's parent is private (0700): let nobody through.
				if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) }) // so t.TempDir can remove it

			o, err := runCommand(cmd)
			if err != nil && cmd.SysProcAttr != nil && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
				t.Skipf("running as root, and cannot switch to uid 65534 to make the folder unwritable: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.code != 1 || o.stdout != "" {
				t.Errorf("got exit %d, stdout %q; want exit 1, no stdout", o.code, o.stdout)
			}
			if want := tc.want(db) + "\n"; o.stderr != want {
				t.Errorf("stderr: got %q; want %q", o.stderr, want)
			}
			after := map[string]string{}
			for _, name := range folderNames(t, dir) {
				after[name] = readFile(t, filepath.Join(dir, name))
			}
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("folder: got %q; want it unchanged, %q", after, before)
			}
		})
	}
}
