package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newTestFolderStore returns a FolderStore for a folder that does not exist
// yet, with a fake clock and its reports collected in *logs.
func newTestFolderStore(t *testing.T, logs *[]string) *FolderStore {
	t.Helper()
	return &FolderStore{
		Path: filepath.Join(t.TempDir(), "records"),
		Now:  fakeClock(time.Date(2026, 11, 29, 18, 10, 0, 0, time.FixedZone("CET", 3600))),
		Logf: func(format string, args ...any) { *logs = append(*logs, fmt.Sprintf(format, args...)) },
	}
}

func TestFolderStoreTouchKeepsOtherLinesAndMode(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestFolderStore(t, &logs)
	path := filepath.Join(s.Path, "192.0.2.2")
	// No final newline, a note, a record in the wrong file, and a mode to keep.
	writeFiles(t, filepath.Dir(s.Path), map[string]string{
		"records/192.0.2.2": "note to self\n192.0.2.2|2020-02-02T00:00:00Z\n192.0.2.3|2020-03-03T00:00:00Z",
		"records/192.0.2.1": "192.0.2.1|2020-01-01T00:00:00Z\n",
	})
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}

	touchKnownThenNew(t, s)

	if got, want := readFile(t, path), "note to self\n192.0.2.2|2026-11-29T17:10:00Z\n192.0.2.3|2020-03-03T00:00:00Z\n"; got != want {
		t.Errorf("%s: got %q; want %q", path, got, want)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("%s mode: got %v, %v; want %v", path, info, err, os.FileMode(0o640))
	}
	want := []string{
		"192.0.2.1|2020-01-01T00:00:00Z",
		"note to self",
		"192.0.2.2|2026-11-29T17:10:00Z",
		"192.0.2.3|2020-03-03T00:00:00Z",
		"2001:db8::7|2026-11-29T17:10:01Z",
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List: got %q; want %q", got, want)
	}
	// The first Touch and the List read 192.0.2.2's file; the second Touch
	// reads only 2001:db8::7's.
	wantLogs := []string{
		path + `:1: malformed record (want "IP|TIME"); kept as it is`,
		path + `:3: record for 192.0.2.3 in the file of 192.0.2.2; kept as it is`,
	}
	if wantLogs = append(wantLogs, wantLogs...); !slices.Equal(logs, wantLogs) {
		t.Errorf("reports: got %q; want %q", logs, wantLogs)
	}
}

func TestFolderStoreCreatesItsFolder(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestFolderStore(t, &logs)
	if lines, err := s.List(); err != nil || len(lines) != 0 {
		t.Errorf("List of a missing folder: got %q, %v; want no lines, no error", lines, err)
	}
	if _, err := os.Stat(s.Path); !os.IsNotExist(err) {
		t.Errorf("after List: got %v; want %s still missing", err, s.Path)
	}
	if _, err := s.Touch(netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if got, want := folderNames(t, s.Path), []string{".tmp", "192.0.2.1"}; !slices.Equal(got, want) {
		t.Errorf("folder: got %q; want %q", got, want)
	}
	if len(logs) != 0 {
		t.Errorf("reports: got %q; want none", logs)
	}
}

func TestFolderStoreRemovesStaleTempFiles(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestFolderStore(t, &logs)
	tmp := filepath.Join(s.Path, ".tmp")
	// As left by processes killed between creating and renaming their temp file.
	stale := []string{filepath.Join(tmp, "192.0.2.9.tmp-4242-123456"), filepath.Join(tmp, "2001:db8::9.tmp-4243-1")}
	writeFiles(t, filepath.Dir(s.Path), map[string]string{
		"records/.tmp/192.0.2.9.tmp-4242-123456": "192.0.2.9|2026-11-29T18:0",
		"records/.tmp/2001:db8::9.tmp-4243-1":    "",
		"records/.tmp-look-alike":                "not in the temp folder, not the store's to remove",
	})
	if err := os.Mkdir(filepath.Join(tmp, "a-folder"), 0o755); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Touch(netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if got, want := folderNames(t, tmp), []string{"a-folder"}; !slices.Equal(got, want) {
		t.Errorf("temp folder: got %q; want %q", got, want)
	}
	if got, want := folderNames(t, s.Path), []string{".tmp", ".tmp-look-alike", "192.0.2.1"}; !slices.Equal(got, want) {
		t.Errorf("folder: got %q; want %q", got, want)
	}
	var want []string
	for _, path := range stale {
		want = append(want, "removed stale temp file "+path+", left by an interrupted update")
	}
	if !slices.Equal(logs, want) {
		t.Errorf("reports: got %q; want %q", logs, want)
	}
	if got, want := readFile(t, filepath.Join(s.Path, "192.0.2.1")), "192.0.2.1|2026-11-29T17:10:00Z\n"; got != want {
		t.Errorf("record: got %q; want %q", got, want)
	}
}

// TestFolderStoreListOrder checks that List gives address files in address
// order (IPv4 first), then other files by name, and skips and reports what is
// not a file.
func TestFolderStoreListOrder(t *testing.T) {
	t.Parallel()
	var logs []string
	s := newTestFolderStore(t, &logs)
	addrs := []string{"2001:db8::10", "10.0.0.2", "::1", "10.0.0.10", "9.255.255.255", "2001:db8::9", "fe80::1"}
	files := map[string]string{"records/notes": "hello\n", "records/10.0.0.02": "10.0.0.2|2020-01-01T00:00:00Z\n"}
	for _, a := range addrs {
		files["records/"+a] = a + "|2020-01-01T00:00:00Z\n"
	}
	writeFiles(t, filepath.Dir(s.Path), files)
	if err := os.Mkdir(filepath.Join(s.Path, "10.0.0.3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(s.Path, "10.0.0.4"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, a := range []string{"9.255.255.255", "10.0.0.2", "10.0.0.10", "::1", "2001:db8::9", "2001:db8::10", "fe80::1"} {
		want = append(want, a+"|2020-01-01T00:00:00Z")
	}
	want = append(want, "10.0.0.2|2020-01-01T00:00:00Z", "hello") // 10.0.0.02, then notes
	if !slices.Equal(got, want) {
		t.Errorf("List: got %q; want %q", got, want)
	}
	wantLogs := []string{
		filepath.Join(s.Path, "10.0.0.3") + ": not a regular file (d---------); skipped",
		filepath.Join(s.Path, "10.0.0.4") + ": not a regular file (p---------); skipped",
		filepath.Join(s.Path, "10.0.0.02") + ": not named after an IP address in canonical form, so it holds no record; its lines are listed as they are",
		filepath.Join(s.Path, "notes") + ": not named after an IP address in canonical form, so it holds no record; its lines are listed as they are",
	}
	if !slices.Equal(logs, wantLogs) {
		t.Errorf("reports: got %q; want %q", logs, wantLogs)
	}
}

// TestAddrFileNames checks that the canonical text of any address is a safe
// file name, so no escaping is needed, and that it maps back to the address
// and nothing else does.
func TestAddrFileNames(t *testing.T) {
	t.Parallel()
	addrs := []netip.Addr{
		netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("127.0.0.1"),
		netip.IPv6Unspecified(), netip.IPv6Loopback(), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::192.0.2.1"),
		netip.MustParseAddr("64:ff9b::192.0.2.1"), netip.MustParseAddr("2001:DB8::1"), netip.MustParseAddr("1::"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		if rng.IntN(4) == 0 { // runs of zeros, for "::"
			clear(b[rng.IntN(8) : 8+rng.IntN(8)])
		}
		addrs = append(addrs, netip.AddrFrom16(b), netip.AddrFrom4([4]byte(b[:4])))
	}
	for _, ip := range addrs {
		name := addrFileName(ip)
		if strings.Trim(name, "0123456789abcdef.:") != "" || name == "" || name[0] == '.' || len(name) > 39 {
			t.Fatalf("addrFileName(%v) = %q; want 1 to 39 of 0-9 a-f . : not starting with a dot", ip, name)
		}
		if want := canonicalAddr(ip).String(); name != want {
			t.Errorf("addrFileName(%v) = %q; want the record's form %q", ip, name, want)
		}
		if back, ok := fileNameAddr(name); !ok || back != canonicalAddr(ip) {
			t.Errorf("fileNameAddr(%q) = %v, %v; want %v, true", name, back, ok, canonicalAddr(ip))
		}
	}
	for _, name := range []string{"", ".", "..", ".tmp", "malformed", "notes", "10.0.0.02", "::FFFF:1.2.3.4", "::ffff:1.2.3.4", "2001:DB8::1", "fe80::1%eth0", "0:0::1", "192.0.2.1.tmp-1-2"} {
		if ip, ok := fileNameAddr(name); ok {
			t.Errorf("fileNameAddr(%q) = %v, true; want false: not the canonical name of any address", name, ip)
		}
	}
}

// TestFolderStoreUpdateCostIsConstant checks, without timing anything, that an
// update does the same work with 10,000 records as with none: it reads and
// writes the same bytes, and scans no folder entry for stale temp files.
// A known address's record is overwritten in place (one write, one
// fdatasync); a new address's file is created by rename. The updates per
// second are in BenchmarkUpdates.
func TestFolderStoreUpdateCostIsConstant(t *testing.T) {
	t.Parallel()
	work := func(records int, ip string) []string {
		var logs []string
		s := newTestFolderStore(t, &logs)
		files := map[string]string{}
		for i := range records {
			ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			files["records/"+ip] = ip + "|2020-01-01T00:00:00Z\n"
		}
		files["records/192.0.2.1"] = "192.0.2.1|2020-01-01T00:00:00Z\n"
		writeFiles(t, filepath.Dir(s.Path), files)
		if err := os.Mkdir(filepath.Join(s.Path, ".tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		var steps []string
		s.step = func(name string, n int) { steps = append(steps, fmt.Sprintf("%s %d", name, n)) }
		if _, err := s.Touch(netip.MustParseAddr(ip)); err != nil {
			t.Fatal(err)
		}
		if len(logs) != 0 {
			t.Errorf("reports: got %q; want none", logs)
		}
		return steps
	}
	wantKnown := []string{"lock 0", "read 31", "parse 1", "write 31", "fsync 0"}
	wantNew := []string{"lock 0", "clean temps 0", "read 0", "parse 0", "write 31", "fsync 0", "rename 0", "fsync folder 0"}
	for _, records := range []int{0, 10000} {
		if got := work(records, "192.0.2.1"); !slices.Equal(got, wantKnown) {
			t.Errorf("update of a known address with %d other records: got steps %q; want %q", records, got, wantKnown)
		}
		if got := work(records, "192.0.2.2"); !slices.Equal(got, wantNew) {
			t.Errorf("update of a new address with %d other records: got steps %q; want %q", records, got, wantNew)
		}
	}
}

func TestAutoStorePicksTheLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := fakeClock(time.Date(2026, 11, 29, 18, 10, 0, 0, time.UTC))
	writeFiles(t, dir, map[string]string{"file": "", "folder/192.0.2.9": "192.0.2.9|2020-01-01T00:00:00Z\n"})
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct{ name, want string }{
		{"file", "192.0.2.1|2026-11-29T18:10:00Z\n"},
		{"folder", "192.0.2.1|2026-11-29T18:10:01Z\n192.0.2.9|2020-01-01T00:00:00Z\n"},
		{"missing", "192.0.2.1|2026-11-29T18:10:02Z\n"},
	} {
		s := &AutoStore{Path: filepath.Join(dir, tc.name), Now: clock}
		if _, err := s.Touch(ip); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := storeContent(t, s.Path); got != tc.want {
			t.Errorf("%s: got %q; want %q", tc.name, got, tc.want)
		}
		if info, err := os.Stat(s.Path); err != nil || info.IsDir() != (tc.name != "file") {
			t.Errorf("%s: got %v, %v; want a folder unless it was a file", tc.name, info, err)
		}
	}
	s := &AutoStore{Path: filepath.Join(dir, "fifo")}
	wantErr := "open records " + s.Path + ": neither a folder nor a regular file (p---------)"
	if _, err := s.Touch(ip); err == nil || err.Error() != wantErr {
		t.Errorf("Touch of a FIFO: got %v; want %q", err, wantErr)
	}
	if _, err := s.List(); err == nil || err.Error() != wantErr {
		t.Errorf("List of a FIFO: got %v; want %q", err, wantErr)
	}
}

// TestFolderStoreOverwritesOnlyItsOwnRecord checks which files an update
// overwrites in place (one record of the address, as lastaccess writes
// it: the inode stays) and which it replaces whole (the inode changes):
// a time of another length, or a file it may not write.
func TestFolderStoreOverwritesOnlyItsOwnRecord(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, content, last string
		mode                os.FileMode
		inPlace             bool
	}{
		{"own record", "192.0.2.1|2020-01-01T00:00:00Z\n", "2020-01-01T00:00:00Z", 0o644, true},
		{"own record, mode kept", "192.0.2.1|2020-01-01T00:00:00Z\n", "2020-01-01T00:00:00Z", 0o600, true},
		{"another time zone", "192.0.2.1|2020-01-01T01:00:00+01:00\n", "2020-01-01T01:00:00+01:00", 0o644, false},
		{"no final newline", "192.0.2.1|2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", 0o644, false},
		{"read-only", "192.0.2.1|2020-01-01T00:00:00Z\n", "2020-01-01T00:00:00Z", 0o444, os.Geteuid() == 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var logs []string
			s := newTestFolderStore(t, &logs)
			path := filepath.Join(s.Path, "192.0.2.1")
			writeFiles(t, filepath.Dir(s.Path), map[string]string{"records/192.0.2.1": c.content})
			chmod(t, path, c.mode)
			before := inode(t, path)
			v, err := s.Touch(netip.MustParseAddr("192.0.2.1"))
			if err != nil {
				t.Fatal(err)
			}
			if !v.Seen || v.Last != c.last {
				t.Errorf("visit: got %+v; want last %q", v, c.last)
			}
			if got, want := readFile(t, path), "192.0.2.1|2026-11-29T17:10:00Z\n"; got != want {
				t.Errorf("%s: got %q; want %q", path, got, want)
			}
			if got := inode(t, path) == before; got != c.inPlace {
				t.Errorf("written in place: got %v; want %v", got, c.inPlace)
			}
			if info, err := os.Stat(path); err != nil || info.Mode().Perm() != c.mode {
				t.Errorf("%s mode: got %v, %v; want %v", path, info.Mode(), err, c.mode)
			}
			if len(logs) != 0 {
				t.Errorf("reports: got %q; want none", logs)
			}
		})
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
