package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
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
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			db := filepath.Join(t.TempDir(), "db")
			l.prepare(t, db, nil)

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

			other := mustGreet(t, connect(ctx, t, db, "127.0.0.9")) // another peer in between

			o = connect(ctx, t, db, "127.0.0.1")
			second := mustGreet(t, o)
			if want := "Welcome, 127.0.0.1.\nI last saw you at " + first.noted + ".\nI have noted your connection at " + second.noted + ".\n"; o.stdout != want {
				t.Errorf("second greeting: got %q; want %q", o.stdout, want)
			}
			if second.noted < first.noted {
				t.Errorf("second noted time: got %s; want >= %s", second.noted, first.noted)
			}

			// The file layout keeps the updated record on line 1, the other
			// peer on line 2; the folder layout lists by address: the same.
			want := "127.0.0.1|" + second.noted + "\n127.0.0.9|" + other.noted + "\n"
			if got := storeContent(t, db); got != want {
				t.Errorf("records: got %q; want %q", got, want)
			}
			if info, err := os.Stat(db); err != nil || info.IsDir() != l.folder {
				t.Errorf("%s: got %v, %v; want a folder: %v", db, info, err, l.folder)
			}
		})
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
			// A fresh store is a folder: the record is in a file named after the canonical address.
			if got, want := readFile(t, filepath.Join(db, tc.want)), tc.want+"|"+g.noted+"\n"; got != want {
				t.Errorf("record file %s: got %q; want %q", tc.want, got, want)
			}
			if got, want := folderNames(t, db), []string{".tmp", tc.want}; !slices.Equal(got, want) {
				t.Errorf("records folder: got %q; want %q", got, want)
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
	if got, want := readFile(t, filepath.Join(dir, "lastaccess.db", "192.0.2.1")), "192.0.2.1|"+g.noted+"\n"; got != want {
		t.Errorf("lastaccess.db/192.0.2.1: got %q; want %q", got, want)
	}
	if got, want := folderNames(t, dir), []string{"lastaccess.db", "lastaccess.db.lock"}; !slices.Equal(got, want) {
		t.Errorf("folder: got %v; want %v", got, want)
	}
	umask := currentUmask(t, dir)
	for name, want := range map[string]os.FileMode{
		"lastaccess.db.lock":      0o644 &^ umask,
		"lastaccess.db":           os.ModeDir | 0o755&^umask,
		"lastaccess.db/192.0.2.1": 0o644, // set exactly, as the file layout's records file
		"lastaccess.db/" + ".tmp": os.ModeDir | 0o755&^umask,
	} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode(); got != want {
			t.Errorf("%s mode: got %v; want %v", name, got, want)
		}
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
	for _, args := range [][]string{{"extra"}, {"-db", ""}, {"-no-such-flag"}, {"-list", "-migrate"}} {
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

// TestMalformedLinesAreReportedAndKept runs two connections against a store
// holding lines that are not records: the first, from an address the store
// has a record for, must read that record verbatim, report each bad line it
// reads with its path and line number, and keep them all; the second, from a
// new address, is appended. The folder layout reads only the connecting
// address's file, so it reports only that file's lines.
func TestMalformedLinesAreReportedAndKept(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		layout
		files       map[string]string // relative to the test folder
		wantReports []string          // path relative to the test folder, then the message
		wantFiles   func(g, h greeting) map[string]string
	}{
		{
			layout: layouts[0],
			files: map[string]string{"db": "127.0.0.9|2020-01-01T00:00:00Z\n" +
				"this is not a record\n" +
				"127.0.0.10|yesterday\n" +
				"::ffff:1.2.3.4|2020-01-01T00:00:00Z\n" +
				"\n" +
				"127.0.0.9|2022-01-01T00:00:00Z\n" + // a duplicate: the first line is the record
				"127.0.0.11|2021-06-01T12:00:00+02:00\n"},
			wantReports: []string{
				`db:2: malformed record (want "IP|TIME")`,
				`db:3: malformed record (bad time: not RFC 3339)`,
				`db:4: malformed record (IP not in canonical form`,
				`db:5: malformed record (an empty line)`,
				`db:6: duplicate record for 127.0.0.9 (the record is line 1)`,
			},
			// A new peer is appended after everything, malformed lines included.
			wantFiles: func(g, h greeting) map[string]string {
				return map[string]string{"db": "127.0.0.9|2020-01-01T00:00:00Z\n" +
					"this is not a record\n" +
					"127.0.0.10|yesterday\n" +
					"::ffff:1.2.3.4|2020-01-01T00:00:00Z\n" +
					"\n" +
					"127.0.0.9|2022-01-01T00:00:00Z\n" +
					"127.0.0.11|" + g.noted + "\n" +
					"127.0.0.12|" + h.noted + "\n"}
			},
		},
		{
			layout: layouts[1],
			files: map[string]string{
				"db/127.0.0.9": "127.0.0.9|2020-01-01T00:00:00Z\n",
				"db/127.0.0.11": "this is not a record\n" +
					"127.0.0.11|2021-06-01T12:00:00+02:00\n" +
					"127.0.0.10|2020-01-01T00:00:00Z\n" + // in the wrong file
					"\n" +
					"127.0.0.11|2022-01-01T00:00:00Z\n", // a duplicate: the first record is the record
				"db/notes": "not named after an address\n",
			},
			wantReports: []string{
				`db/127.0.0.11:1: malformed record (want "IP|TIME")`,
				`db/127.0.0.11:3: record for 127.0.0.10 in the file of 127.0.0.11; kept as it is`,
				`db/127.0.0.11:4: malformed record (an empty line)`,
				`db/127.0.0.11:5: duplicate record for 127.0.0.11 (the record is line 2)`,
			},
			wantFiles: func(g, h greeting) map[string]string {
				return map[string]string{
					"db/127.0.0.9": "127.0.0.9|2020-01-01T00:00:00Z\n",
					"db/127.0.0.11": "this is not a record\n" +
						"127.0.0.11|" + g.noted + "\n" +
						"127.0.0.10|2020-01-01T00:00:00Z\n" +
						"\n" +
						"127.0.0.11|2022-01-01T00:00:00Z\n",
					"db/127.0.0.12": "127.0.0.12|" + h.noted + "\n",
					"db/notes":      "not named after an address\n",
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			db := filepath.Join(dir, "db")
			writeFiles(t, dir, tc.files)

			o := connect(ctx, t, db, "127.0.0.11")
			if o.code != 0 {
				t.Fatalf("exit status: got %d; want 0 (stderr %q)", o.code, o.stderr)
			}
			g, ok := parseGreeting(o.stdout)
			if !ok || g.last != "2021-06-01T12:00:00+02:00" {
				t.Errorf("greeting: got %q; want one that last saw 127.0.0.11 at 2021-06-01T12:00:00+02:00, verbatim", o.stdout)
			}
			for _, want := range tc.wantReports {
				if want = "lastaccess: " + filepath.Join(dir, want); !strings.Contains(o.stderr, want) {
					t.Errorf("stderr: got %q; want it to contain %q", o.stderr, want)
				}
			}
			if got := strings.Count(o.stderr, "\n"); got != len(tc.wantReports) {
				t.Errorf("stderr lines: got %d; want %d", got, len(tc.wantReports))
			}

			o = connect(ctx, t, db, "127.0.0.12")
			var h greeting
			if tc.folder {
				h = mustGreet(t, o) // its own file is clean: nothing to report
			} else {
				h = mustGreetIgnoringStderr(t, o)
			}
			want := tc.wantFiles(g, h)
			if got := readFiles(t, dir); !maps.Equal(got, want) {
				t.Errorf("files: got %q; want %q", got, want)
			}
		})
	}
}

// writeFiles creates files (path relative to dir -> content) and their
// folders; a path ending in "/" is an empty folder.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readFiles returns every regular file under dir (path relative to dir ->
// content), except lock files, which are empty.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(path, ".lock") {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestUnwritableFolder checks that a folder the handler cannot write gives a
// clear error, exit status 1 and no change to the records, for each layout
// and each place the handler first needs to write. Root ignores permission
// bits, so under root the binary runs as nobody (65534).
func TestUnwritableFolder(t *testing.T) {
	t.Parallel()
	const record = "127.0.0.1|2020-01-02T03:04:05Z\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string // to create first, relative to the test folder
		readOnly []string          // folders made read-only, relative to the test folder
		want     func(db string) string
	}{
		{
			name:     "file/no lock file",
			files:    map[string]string{"db": record},
			readOnly: []string{"."},
			want:     func(db string) string { return "lastaccess: lock " + db + ".lock: open: permission denied" },
		},
		{
			name:     "file/lock file exists",
			files:    map[string]string{"db": record, "db.lock": ""},
			readOnly: []string{"."},
			want: func(db string) string {
				return "lastaccess: create temp file in " + filepath.Dir(db) + ": open: permission denied"
			},
		},
		{
			name:     "folder/no lock file",
			readOnly: []string{"."},
			want:     func(db string) string { return "lastaccess: lock " + db + ".lock: open: permission denied" },
		},
		{
			name:     "folder/no folder yet",
			files:    map[string]string{"db.lock": ""},
			readOnly: []string{"."},
			want:     func(db string) string { return "lastaccess: create folder " + db + ": mkdir: permission denied" },
		},
		{
			name:     "folder/no temp folder yet",
			files:    map[string]string{"db.lock": "", "db/127.0.0.1": record},
			readOnly: []string{".", "db"},
			want: func(db string) string {
				return "lastaccess: create folder " + filepath.Join(db, ".tmp") + ": mkdir: permission denied"
			},
		},
		{
			name:     "folder/folder read-only",
			files:    map[string]string{"db.lock": "", "db/127.0.0.1": record, "db/.tmp/": ""},
			readOnly: []string{".", "db", "db/.tmp"},
			want: func(db string) string {
				return "lastaccess: create temp file in " + filepath.Join(db, ".tmp") + ": open: permission denied"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			db := filepath.Join(dir, "db")
			writeFiles(t, dir, tc.files)
			before := readFiles(t, dir)

			cmd := command(ctx, dir, []string{"TCPREMOTEIP=127.0.0.1"}, "-db", db)
			if os.Geteuid() == 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
				// t.TempDir's parent is private (0700): let nobody through.
				if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, rel := range tc.readOnly {
				path := filepath.Join(dir, rel)
				if err := os.Chmod(path, 0o555); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(path, 0o755) }) // so t.TempDir can remove it
			}

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
			if after := readFiles(t, dir); !maps.Equal(after, before) {
				t.Errorf("files: got %q; want them unchanged, %q", after, before)
			}
			if got, want := folderNames(t, dir), slices.Sorted(maps.Keys(topLevel(tc.files))); !slices.Equal(got, want) {
				t.Errorf("folder: got %q; want %q", got, want)
			}
		})
	}
}

// topLevel returns the first element of each path in files.
func topLevel(files map[string]string) map[string]bool {
	top := map[string]bool{}
	for name := range files {
		first, _, _ := strings.Cut(name, "/")
		top[first] = true
	}
	return top
}
