package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line    string
		wantIP  string
		wantAt  string
		wantErr string // substring; empty for success
	}{
		{line: "192.0.2.1|2026-11-29T18:10:00Z", wantIP: "192.0.2.1", wantAt: "2026-11-29T18:10:00Z"},
		{line: "2001:db8::1|2026-11-29T18:10:00+01:00", wantIP: "2001:db8::1", wantAt: "2026-11-29T18:10:00+01:00"},
		{line: "192.0.2.1|2026-11-29T18:10:00.5Z", wantIP: "192.0.2.1", wantAt: "2026-11-29T18:10:00.5Z"},
		{line: "", wantErr: "an empty line"},
		{line: "192.0.2.1 2026-11-29T18:10:00Z", wantErr: `want "IP|TIME"`},
		{line: "192.0.2|2026-11-29T18:10:00Z", wantErr: "bad IP"},
		{line: "2001:DB8::1|2026-11-29T18:10:00Z", wantErr: "not in canonical form"},
		{line: "::ffff:192.0.2.1|2026-11-29T18:10:00Z", wantErr: "not in canonical form"},
		{line: "fe80::1%eth0|2026-11-29T18:10:00Z", wantErr: "not in canonical form"},
		{line: "192.0.2.1|2026-11-29 18:10:00Z", wantErr: "bad time"},
		{line: "192.0.2.1|2026-11-29T18:10:00Z|x", wantErr: "bad time"},
		{line: "192.0.2.1|2026-11-29T18:10:00Z\r", wantErr: "bad time"},
	} {
		ip, at, err := parseRecord(tc.line)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRecord(%q): got error %v; want one containing %q", tc.line, err, tc.wantErr)
			}
			continue
		}
		if err != nil || ip.String() != tc.wantIP || at != tc.wantAt {
			t.Errorf("parseRecord(%q): got %v, %q, %v; want %s, %q, nil", tc.line, ip, at, err, tc.wantIP, tc.wantAt)
		}
	}
}

// fakeClock returns a clock that starts at start and advances a second per call.
func fakeClock(start time.Time) func() time.Time {
	next := start
	return func() time.Time {
		now := next
		next = next.Add(time.Second)
		return now
	}
}

// newTestStore returns a FileStore in a fresh folder, with a fake clock and
// its reports collected in *logs.
func newTestStore(t *testing.T, logs *[]string) *FileStore {
	t.Helper()
	return &FileStore{
		Path: filepath.Join(t.TempDir(), "records"),
		Now:  fakeClock(time.Date(2026, 11, 29, 18, 10, 0, 0, time.FixedZone("CET", 3600))),
		Logf: func(format string, args ...any) { *logs = append(*logs, fmt.Sprintf(format, args...)) },
	}
}

func TestFileStoreTouchKeepsOrderAndMode(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestStore(t, &logs)
	// No final newline, a malformed line, and a restrictive mode to preserve.
	initial := "192.0.2.1|2020-01-01T00:00:00Z\nnote to self\n192.0.2.2|2020-02-02T00:00:00Z"
	if err := os.WriteFile(s.Path, []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Path, 0o640); err != nil { // exact bits, whatever the umask
		t.Fatal(err)
	}

	touchKnownThenNew(t, s)

	want := []string{
		"192.0.2.1|2020-01-01T00:00:00Z",
		"note to self",
		"192.0.2.2|2026-11-29T17:10:00Z",
		"2001:db8::7|2026-11-29T17:10:01Z",
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List: got %q; want %q", got, want)
	}
	if content := readFile(t, s.Path); content != strings.Join(want, "\n")+"\n" {
		t.Errorf("records file: got %q; want the List lines, each ending in a newline", content)
	}
	info, err := os.Stat(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("records file mode: got %v; want %v", info.Mode().Perm(), os.FileMode(0o640))
	}
	// Two Touches and one List each read the file: three reports of line 2.
	wantLog := s.Path + `:2: malformed record (want "IP|TIME"); kept as it is`
	if len(logs) != 3 || logs[0] != wantLog || logs[1] != wantLog || logs[2] != wantLog {
		t.Errorf("reports: got %q; want %q three times", logs, wantLog)
	}
}

func TestFileStoreRemovesStaleTempFiles(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestStore(t, &logs)
	dir := filepath.Dir(s.Path)
	// As left by a process killed between creating and renaming its temp file.
	stale := filepath.Join(dir, ".records.tmp-4242-123456")
	if err := os.WriteFile(stale, []byte("192.0.2.9|2026-11-29T18:0"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not the store's: another file's temp, and a look-alike folder.
	other := filepath.Join(dir, ".other.tmp-4242-123456")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".records.tmp-folder"), 0o755); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Touch(netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{".other.tmp-4242-123456", ".records.tmp-folder", "records", "records.lock"}; !slices.Equal(names, want) {
		t.Errorf("folder: got %q; want %q", names, want)
	}
	if want := []string{"removed stale temp file " + stale + ", left by an interrupted update"}; !slices.Equal(logs, want) {
		t.Errorf("reports: got %q; want %q", logs, want)
	}
	// The content of the stale file did not leak into the records.
	if got, want := readFile(t, s.Path), "192.0.2.1|2026-11-29T17:10:00Z\n"; got != want {
		t.Errorf("records file: got %q; want %q", got, want)
	}
}

func TestFileStoreRejectsInvalidAddress(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestStore(t, &logs)
	if _, err := s.Touch(netip.Addr{}); err == nil {
		t.Errorf("Touch of the zero Addr: got no error; want one")
	}
	if _, err := os.Stat(s.Path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock file after a rejected Touch: got %v; want it not to exist", err)
	}
}

func TestFileStoreRecordsPathIsAFolder(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestStore(t, &logs)
	if err := os.Mkdir(s.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := s.Touch(netip.MustParseAddr("192.0.2.1"))
	if want := "read " + s.Path + ": not a regular file"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Touch: got error %v; want one starting with %q", err, want)
	}
	entries, err := os.ReadDir(filepath.Dir(s.Path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 { // the folder and the lock file: no temp file left
		t.Errorf("folder: got %d entries; want 2", len(entries))
	}
}

// touchKnownThenNew touches 192.0.2.2 (as IPv4-mapped IPv6), which s has
// seen at 2020-02-02T00:00:00Z, then the new 2001:db8::7, with a test
// clock that starts at 2026-11-29T17:10:00Z and ticks a second a call,
// and checks both visits.
func touchKnownThenNew(t *testing.T, s Store) {
	t.Helper()
	v, err := s.Touch(netip.MustParseAddr("::ffff:192.0.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Visit{Seen: true, Last: "2020-02-02T00:00:00Z", Noted: "2026-11-29T17:10:00Z"}); v != want {
		t.Errorf("Touch of a known address: got %+v; want %+v", v, want)
	}
	v, err = s.Touch(netip.MustParseAddr("2001:db8::7"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Visit{Noted: "2026-11-29T17:10:01Z"}); v != want {
		t.Errorf("Touch of a new address: got %+v; want %+v", v, want)
	}
}
