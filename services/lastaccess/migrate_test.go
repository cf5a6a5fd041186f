package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// oldRecords is a records file with a duplicate and malformed lines.
const oldRecords = "192.0.2.2|2020-02-02T00:00:00Z\n" +
	"note to self\n" +
	"2001:db8::1|2020-01-01T00:00:00Z\n" +
	"192.0.2.2|2019-01-01T00:00:00Z\n" + // a duplicate
	"192.0.2.10|2020-10-10T00:00:00+02:00\n" +
	"::ffff:1.2.3.4|2020-01-01T00:00:00Z\n"

// migratedFiles is oldRecords as a folder store, relative to its parent.
var migratedFiles = map[string]string{
	"db/192.0.2.2":   "192.0.2.2|2020-02-02T00:00:00Z\n192.0.2.2|2019-01-01T00:00:00Z\n",
	"db/192.0.2.10":  "192.0.2.10|2020-10-10T00:00:00+02:00\n",
	"db/2001:db8::1": "2001:db8::1|2020-01-01T00:00:00Z\n",
	"db/malformed":   "note to self\n::ffff:1.2.3.4|2020-01-01T00:00:00Z\n",
	"db.old":         oldRecords,
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	writeFiles(t, dir, map[string]string{"db": oldRecords})
	if err := os.Chmod(db, 0o640); err != nil {
		t.Fatal(err)
	}
	var logs []string
	logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }

	summary, err := Migrate(db, logf)
	if err != nil {
		t.Fatal(err)
	}
	if want := db + " is now a folder store of 3 records; 1 duplicate lines kept in their address's file; " +
		"2 malformed lines kept in " + db + "/malformed; the old records file is " + db + ".old"; summary != want {
		t.Errorf("summary: got %q; want %q", summary, want)
	}
	if got := readFiles(t, dir); !maps.Equal(got, migratedFiles) {
		t.Errorf("files: got %q; want %q", got, migratedFiles)
	}
	if got, want := folderNames(t, dir), []string{"db", "db.lock", "db.old"}; !slices.Equal(got, want) {
		t.Errorf("folder: got %q; want %q", got, want)
	}
	// The folder gets the file's mode, with x wherever it has r.
	for name, want := range map[string]os.FileMode{"db": os.ModeDir | 0o750, "db/192.0.2.2": 0o640, "db/malformed": 0o640} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode() != want {
			t.Errorf("%s: got %v, %v; want mode %v", name, info, err, want)
		}
	}
	wantLogs := []string{
		db + `:2: malformed record (want "IP|TIME"); kept as it is`,
		db + `:4: duplicate record for 192.0.2.2 (the record is line 1); kept as it is`,
		db + `:6: malformed record (IP not in canonical form (lower-case, no zone, IPv4 not mapped)); kept as it is`,
	}
	if !slices.Equal(logs, wantLogs) {
		t.Errorf("reports: got %q; want %q", logs, wantLogs)
	}

	logs = nil
	lines, err := (&AutoStore{Path: db, Logf: logf}).List()
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{
		"192.0.2.2|2020-02-02T00:00:00Z", "192.0.2.2|2019-01-01T00:00:00Z",
		"192.0.2.10|2020-10-10T00:00:00+02:00", "2001:db8::1|2020-01-01T00:00:00Z",
		"note to self", "::ffff:1.2.3.4|2020-01-01T00:00:00Z",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("List after the migration: got %q; want %q", lines, wantLines)
	}

	summary, err = Migrate(db, logf)
	if want := db + " is already a folder store; nothing to do"; err != nil || summary != want {
		t.Errorf("second Migrate: got %q, %v; want %q", summary, err, want)
	}
}

// TestMigrateRecovers puts the files in the state each step of a killed
// migration leaves, and in states that Migrate must refuse, and runs it.
func TestMigrateRecovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		prepare  func(t *testing.T, db string)
		want     map[string]string // files afterwards; nil: unchanged
		summary  string            // with DB for the path
		wantErr  string            // with DB for the path; empty for success
		wantLogs []string          // with DB for the path, besides reports of the lines
	}{
		{
			name: "killed while building",
			prepare: func(t *testing.T, db string) {
				writeFiles(t, filepath.Dir(db), map[string]string{
					"db":                      oldRecords,
					"db.migrating/192.0.2.2":  "192.0.2.2|2020-02-02T00:00:00Z\n",
					"db.migrating/2001:db8::": "2001:db8::1|20",
				})
			},
			want:     migratedFiles,
			summary:  "DB is now a folder store of 3 records; 1 duplicate lines kept in their address's file; 2 malformed lines kept in DB/malformed; the old records file is DB.old",
			wantLogs: []string{"removed DB.migrating, left by an interrupted migration"},
		},
		{
			name: "killed after the swap",
			prepare: func(t *testing.T, db string) {
				writeFiles(t, filepath.Dir(db), map[string]string{"db": oldRecords})
				records, mode, err := (&FileStore{Path: db}).file().read()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := build(db+".migrating", records, mode); err != nil {
					t.Fatal(err)
				}
				if err := unix.Renameat2(unix.AT_FDCWD, db+".migrating", unix.AT_FDCWD, db, unix.RENAME_EXCHANGE); err != nil {
					t.Skipf("this filesystem cannot swap: %v", err)
				}
			},
			want:     migratedFiles,
			summary:  "DB is a folder store; the old records file is DB.old",
			wantLogs: []string{"finished an interrupted migration: moved the old records file DB.migrating to DB.old"},
		},
		{
			name: "old file in the way",
			prepare: func(t *testing.T, db string) {
				writeFiles(t, filepath.Dir(db), map[string]string{"db": oldRecords, "db.old": "the operator's\n"})
			},
			wantErr: "migrate DB: DB.old: it exists; move it away first (nothing changed)",
		},
		{
			name: "something else in the way",
			prepare: func(t *testing.T, db string) {
				writeFiles(t, filepath.Dir(db), map[string]string{"db": oldRecords, "db.migrating": "the operator's\n"})
			},
			wantErr: "migrate DB: DB.migrating is in the way, and not lastaccess's; remove it or move it away",
		},
		{
			name:    "no records yet",
			prepare: func(t *testing.T, db string) {},
			want:    map[string]string{},
			summary: "DB did not exist; created an empty folder store there",
		},
		{
			name: "already a folder store",
			prepare: func(t *testing.T, db string) {
				writeFiles(t, filepath.Dir(db), map[string]string{"db/192.0.2.1": "192.0.2.1|2020-01-01T00:00:00Z\n"})
			},
			summary: "DB is already a folder store; nothing to do",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := filepath.Join(dir, "db")
			tc.prepare(t, db)
			before := readFiles(t, dir)
			var logs []string
			summary, err := Migrate(db, func(format string, args ...any) {
				if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "kept as it is") {
					logs = append(logs, strings.ReplaceAll(msg, db, "DB"))
				}
			})
			if tc.wantErr != "" {
				if want := strings.ReplaceAll(tc.wantErr, "DB", db); err == nil || err.Error() != want {
					t.Errorf("got error %v; want %q", err, want)
				}
			} else if want := strings.ReplaceAll(tc.summary, "DB", db); err != nil || summary != want {
				t.Errorf("got %q, %v; want %q", summary, err, want)
			}
			if !slices.Equal(logs, tc.wantLogs) {
				t.Errorf("reports: got %q; want %q", logs, tc.wantLogs)
			}
			want := tc.want
			if want == nil {
				want = before
			}
			if got := readFiles(t, dir); !maps.Equal(got, want) {
				t.Errorf("files: got %q; want %q", got, want)
			}
			if _, err := os.Lstat(db + ".migrating"); tc.wantErr == "" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s.migrating: got %v; want it gone", db, err)
			}
		})
	}
}

// TestMigrateKilledAtRandomLosesNoRecord runs -migrate and SIGKILLs it at a
// random moment (seeded), spread over the time a migration takes (measured
// by a first round that kills nothing). Then, in each round, two
// connections update the store, whatever layout the kill left it in, and
// -migrate runs again to the end. No record may be lost: every record of the
// old file is in the folder store, with the time the connection noted for
// the two updated ones, and the old file is kept as db.old.
func TestMigrateKilledAtRandomLosesNoRecord(t *testing.T) {
	t.Parallel()
	const (
		rounds  = 20
		preload = 300 // enough to spread the kills over building; creating files is slow on some machines
	)
	ctx := testContext(t, 2*time.Minute)
	var initial strings.Builder
	initial.WriteString(oldRecords)
	for i := range preload {
		fmt.Fprintf(&initial, "10.0.%d.%d|2020-01-01T00:00:00Z\n", i>>8&255, i&255)
	}
	rng := rand.New(rand.NewPCG(20261129, 3))
	var took time.Duration
	states := map[string]int{} // what the kill left -> rounds
	for round := range rounds + 1 {
		dir := t.TempDir()
		db := filepath.Join(dir, "db")
		writeFiles(t, dir, map[string]string{"db": initial.String()})

		cmd := command(ctx, dir, nil, "-db", db, "-migrate")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var timer *time.Timer
		if round > 0 {
			proc := cmd.Process
			timer = time.AfterFunc(time.Duration(rng.Int64N(int64(took))), func() { proc.Kill() })
		}
		err := cmd.Wait()
		if round == 0 {
			if err != nil {
				t.Fatalf("-migrate: %v (stderr %q)", err, stderr.String())
			}
			took = time.Since(start) * 11 / 10
			continue
		}
		timer.Stop()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatal(err)
		}
		killed := err != nil && exitErr.Sys().(syscall.WaitStatus).Signaled()
		if err != nil && !killed {
			t.Fatalf("round %d: -migrate: %v (stderr %q)", round, err, stderr.String())
		}
		states[leftState(t, db, killed)]++

		// Whatever the kill left, the store serves: the address's file, or the records file.
		seen := mustGreetIgnoringStderr(t, connect(ctx, t, db, "10.0.0.5"))
		fresh := mustGreetIgnoringStderr(t, connect(ctx, t, db, "192.0.2.1"))
		if !seen.seen || seen.last != "2020-01-01T00:00:00Z" || fresh.seen {
			t.Errorf("round %d: greetings %+v and %+v; want 10.0.0.5 seen at its preloaded time, 192.0.2.1 new", round, seen, fresh)
		}

		o, err := runCommand(command(ctx, dir, nil, "-db", db, "-migrate"))
		if err != nil || o.code != 0 {
			t.Fatalf("round %d: -migrate after a kill: got %v, exit %d, stderr %q; want success", round, err, o.code, o.stderr)
		}
		records, _ := readFolderStore(t, db)
		want := map[string]string{"10.0.0.5": seen.noted, "192.0.2.1": fresh.noted,
			"192.0.2.2": "2020-02-02T00:00:00Z", "2001:db8::1": "2020-01-01T00:00:00Z", "192.0.2.10": "2020-10-10T00:00:00+02:00"}
		for i := range preload {
			if ip := fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255); ip != "10.0.0.5" {
				want[ip] = "2020-01-01T00:00:00Z"
			}
		}
		if !maps.Equal(records, want) {
			for ip, at := range want {
				if records[ip] != at {
					t.Errorf("round %d: record of %s: got %q; want %q", round, ip, records[ip], at)
				}
			}
			t.Fatalf("round %d: got %d records; want %d", round, len(records), len(want))
		}
		files := readFiles(t, dir)
		if files["db/malformed"] != migratedFiles["db/malformed"] || files["db/192.0.2.2"] != migratedFiles["db/192.0.2.2"] {
			t.Errorf("round %d: malformed and duplicate lines: got %q and %q; want %q and %q", round,
				files["db/malformed"], files["db/192.0.2.2"], migratedFiles["db/malformed"], migratedFiles["db/192.0.2.2"])
		}
		if old := files["db.old"]; !strings.HasPrefix(old, oldRecords) || len(old) < len(initial.String()) {
			t.Errorf("round %d: db.old: got %d bytes; want the old records file, perhaps updated", round, len(old))
		}
		if got, want := folderNames(t, dir), []string{"db", "db.lock", "db.old"}; !slices.Equal(got, want) {
			t.Errorf("round %d: folder: got %q; want %q", round, got, want)
		}
	}
	t.Logf("-migrate of %d records takes up to %v; what the kills left: %v", preload+3, took.Round(time.Microsecond), states)
}

// leftState names the state a killed -migrate left db in.
func leftState(t *testing.T, db string, killed bool) string {
	t.Helper()
	info, err := os.Stat(db)
	if err != nil {
		t.Fatalf("after -migrate was killed: %v; want %s to exist", err, db)
	}
	_, buildErr := os.Lstat(db + ".migrating")
	switch {
	case !killed:
		return "finished before the kill"
	case !info.IsDir() && buildErr != nil:
		return "records file"
	case !info.IsDir():
		return "records file and a partial build"
	case buildErr == nil:
		return "folder and the old file not yet moved"
	default:
		return "folder"
	}
}

// readFolderStore reads the folder store db directly and returns its
// records (IP -> TIME) and other lines, failing if an address's file does
// not start with its record.
func readFolderStore(t *testing.T, db string) (map[string]string, []string) {
	t.Helper()
	records := map[string]string{}
	var others []string
	for _, name := range folderNames(t, db) {
		if name == ".tmp" {
			continue
		}
		lines := strings.Split(strings.TrimSuffix(readFile(t, filepath.Join(db, name)), "\n"), "\n")
		if name == "malformed" {
			others = append(others, lines...)
			continue
		}
		ip, at, _ := strings.Cut(lines[0], "|")
		if _, err := time.Parse(time.RFC3339, at); err != nil || ip != name {
			t.Fatalf("%s/%s: got first line %q; want its record", db, name, lines[0])
		}
		records[ip] = at
		others = append(others, lines[1:]...)
	}
	return records, others
}
