package main

import (
	"net/netip"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// FileStore is a Store kept in one plain text file of "IP|TIME" lines, locked
// with flock(2) on Path+".lock" and updated by atomic rename; see the package
// comment for the scheme. Every update reads, parses and rewrites the whole
// file, so its cost grows linearly with the number of records; FolderStore
// does not. Its zero value is not usable: Path must be set.
type FileStore struct {
	// Path is the records file.
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf reports problems that do not stop the operation (malformed lines,
	// stale temporary files); nil discards them.
	Logf func(format string, args ...any)

	// step, when set, is called as each step of Touch ends, with the name of
	// the step and the bytes, lines or folder entries it handled. Tests and
	// benchmarks use it to see what an update costs.
	step func(name string, n int)
}

var _ Store = (*FileStore)(nil)

// Touch implements Store. It canonicalises ip (see canonicalAddr). Errors
// name the step and the path that failed; on error the records file is
// unchanged (except that a failure to fsync the folder after the rename is
// reported although the new content is already in place).
func (s *FileStore) Touch(ip netip.Addr) (Visit, error) {
	return touchUnder(s.Path, ip, s.self)
}

// List implements Store. It holds a shared lock while reading, and reports
// malformed lines through Logf.
func (s *FileStore) List() ([]string, error) {
	return listUnder(s.Path, s.self)
}

// self is the store itself, for touchUnder and listUnder.
func (s *FileStore) self() (lockedStore, error) { return s, nil }

// touchLocked is Touch for a valid canonical ip, with the update's flock
// held. Every update rewrites the one file, so it takes the write lock on
// every record.
func (s *FileStore) touchLocked(lock *storeLock, ip netip.Addr) (Visit, error) {
	if err := lock.lockRecords(allRecords, unix.F_WRLCK); err != nil {
		return Visit{}, err
	}
	f := s.file()
	f.stepDone("lock", 0)
	// A missing folder is reported by CreateTemp below, with its path.
	// With the write lock on every record, every temporary file is stale.
	n, _ := removeStaleTemps(filepath.Dir(s.Path), f.tempPrefix, f.logf, func(string) (bool, func()) { return true, func() {} })
	f.stepDone("clean temps", n)
	records, mode, err := f.read()
	if err != nil {
		return Visit{}, err
	}
	content, v := note(records, ip, nowOr(s.Now))
	if err := f.replace(content, mode); err != nil {
		return Visit{}, err
	}
	return v, nil
}

// listLocked is List with the lock held.
func (s *FileStore) listLocked() ([]string, error) {
	records, _, err := s.file().read()
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(records))
	for i, r := range records {
		lines[i] = r.text
	}
	return lines, nil
}

// file is the records file: Path, with its temporary files beside it, named
// ".BASE.tmp-PID-RANDOM" (BASE is Path's base name). The leading dot keeps
// them out of plain directory listings.
func (s *FileStore) file() recordsFile {
	return recordsFile{
		path:       s.Path,
		tempDir:    filepath.Dir(s.Path),
		tempPrefix: "." + filepath.Base(s.Path) + ".tmp-",
		logf:       logOr(s.Logf),
		step:       s.step,
	}
}
