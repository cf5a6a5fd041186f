package main

// Records in a folder someone else prepared: lastaccess (often root) must
// not read a file through a symlink planted there, must refuse a folder
// others can write, and must never print what a malformed line holds.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secret is what a root-only file holds; it must never reach any output.
const secret = "root:$6$SECRET-HASH-d41d8cd98f00b204"

// writeSecret makes a 0600 file holding secret, outside dir.
func writeSecret(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noSecret fails the test if o's output shows any part of the secret.
func noSecret(t *testing.T, what string, o outcome) {
	t.Helper()
	for _, out := range []string{o.stdout, o.stderr} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s: got output %q; want nothing of the secret file", what, out)
		}
	}
}

func TestSymlinkInRecordsFolderIsNotFollowed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	shadow := writeSecret(t)
	db := filepath.Join(t.TempDir(), "db")
	writeFiles(t, filepath.Dir(db), map[string]string{"db/192.0.2.1": "192.0.2.1|2020-01-01T00:00:00Z\n"})
	// The record of the peer's address, and a file -list prints as it is.
	for _, name := range []string{"127.0.0.5", "notes"} {
		if err := os.Symlink(shadow, filepath.Join(db, name)); err != nil {
			t.Fatal(err)
		}
	}

	o := connect(ctx, t, db, "127.0.0.5")
	noSecret(t, "connection", o)
	if want := filepath.Join(db, "127.0.0.5") + ": a symbolic link; refused"; o.code != 1 || !strings.Contains(o.stderr, want) {
		t.Errorf("connection: got exit %d, stderr %q; want 1 and %q", o.code, o.stderr, want)
	}
	if fi, err := os.Lstat(filepath.Join(db, "127.0.0.5")); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("the planted symlink after the connection: got %v, %v; want it left as it is", fi, err)
	}
	if got := readFile(t, shadow); got != secret+"\n" {
		t.Errorf("secret file: got %q; want it unchanged", got)
	}

	l, err := runCommand(command(ctx, filepath.Dir(db), nil, "-db", db, "-list"))
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, "-list", l)
	if l.code != 0 || l.stdout != "192.0.2.1|2020-01-01T00:00:00Z\n" || !strings.Contains(l.stderr, filepath.Join(db, "notes")+": not a regular file") {
		t.Errorf("-list: got exit %d, stdout %q, stderr %q; want 0, the one record, and the symlinks skipped", l.code, l.stdout, l.stderr)
	}
}

func TestMalformedRecordIsNotEchoed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	lines := "127.0.0.5|2020-01-01T00:00:00Z\n" + secret + "\n127.0.0.5|" + secret + "\n"
	for name, files := range map[string]map[string]string{
		"file":   {"db": lines},
		"folder": {"db/127.0.0.5": lines},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, files)
			o := connect(ctx, t, filepath.Join(dir, "db"), "127.0.0.5")
			mustGreetIgnoringStderr(t, o)
			noSecret(t, "connection", o)
			for _, want := range []string{":2: malformed record (want \"IP|TIME\")", ":3: malformed record (bad time: not RFC 3339)"} {
				if !strings.Contains(o.stderr, want) {
					t.Errorf("stderr: got %q; want %q, the malformed line named by its file and number", o.stderr, want)
				}
			}
		})
	}
}

func TestRecordsFolderOthersCanWriteIsRefused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, db string) // db is a records folder with one record
		refuse string                        // in the error; "" to accept
	}{
		{"records folder writable by every user", func(t *testing.T, db string) { chmod(t, db, 0o777) }, "is writable by every user"},
		{"sticky records folder writable by every user", func(t *testing.T, db string) { chmod(t, db, 0o777|os.ModeSticky) }, "is writable by every user"},
		{"parent writable by every user", func(t *testing.T, db string) { chmod(t, filepath.Dir(db), 0o777) }, "is writable by every user"},
		{"sticky parent writable by every user", func(t *testing.T, db string) { chmod(t, filepath.Dir(db), 0o777|os.ModeSticky) }, ""},
		{"records folder owned by another user", func(t *testing.T, db string) { chown(t, db, 65534, -1) }, "is owned by uid 65534"},
		{"records folder writable by another group", func(t *testing.T, db string) {
			chmod(t, db, 0o775)
			chown(t, db, -1, 65534)
		}, "is writable by group 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "db")
			writeFiles(t, filepath.Dir(db), map[string]string{"db/127.0.0.5": "127.0.0.5|2020-01-01T00:00:00Z\n"})
			tc.setup(t, db)
			o := connect(ctx, t, db, "127.0.0.5")
			if tc.refuse == "" {
				mustGreet(t, o)
				return
			}
			if o.code != 1 || !strings.Contains(o.stderr, tc.refuse) || o.stdout != "" {
				t.Errorf("got exit %d, stdout %q, stderr %q; want 1, no greeting and an error containing %q", o.code, o.stdout, o.stderr, tc.refuse)
			}
			if got := readFile(t, filepath.Join(db, "127.0.0.5")); got != "127.0.0.5|2020-01-01T00:00:00Z\n" {
				t.Errorf("record after the refusal: got %q; want it unchanged", got)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// chown gives path to uid and gid (-1: unchanged); it needs root.
func chown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a folder to another user or group")
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}
