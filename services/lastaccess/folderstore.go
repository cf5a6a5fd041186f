package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// FolderStore is a Store kept in a folder, Path, that holds one records file
// per address, named after the address (see addrFileName) and holding that
// address's "IP|TIME" line. It is locked with flock(2) on Path+".lock", like
// FileStore, and an update replaces the one file it changes by atomic
// rename, with its temporary file in Path/.tmp. An update reads and writes a
// few dozen bytes, however many records there are. Its zero value is not
// usable: Path must be set.
type FolderStore struct {
	// Path is the records folder. The first update creates it if missing.
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf reports problems that do not stop the operation (malformed lines,
	// stale temporary files, files that are not records); nil discards them.
	Logf func(format string, args ...any)

	step func(name string, n int) // as FileStore.step
}

var _ Store = (*FolderStore)(nil)

// tempFolderName is the folder, inside a FolderStore's folder, where updates
// write their temporary files. Keeping them apart means an update looks for
// stale ones by listing a folder that is almost always empty, rather than
// one entry per record. No address's file name starts with a dot.
const tempFolderName = ".tmp"

// Touch implements Store. It canonicalises ip (see canonicalAddr) and
// creates the folder (mode 0755 less the umask) if it is missing. Errors
// name the step and the path that failed; on error the address's file is
// unchanged (except that a failure to fsync the folder after the rename is
// reported although the new content is already in place).
func (s *FolderStore) Touch(ip netip.Addr) (Visit, error) {
	return touchUnder(s.Path, ip, s.self)
}

// List implements Store: the lines of every address's file, by address (IPv4
// first, then IPv6, each in numeric order), then the lines of any other file
// in the folder, by name. It holds a shared lock while reading, and reports
// through Logf malformed lines, files not named after an address, and
// entries that are not files (which it skips). A missing folder is no
// records.
func (s *FolderStore) List() ([]string, error) {
	return listUnder(s.Path, s.self)
}

// self is the store itself, for touchUnder and listUnder.
func (s *FolderStore) self() (lockedStore, error) { return s, nil }

// touchLocked is Touch for a valid canonical ip, with the update's flock
// held. It takes the write lock on ip's byte of the lock file, so updates
// of other addresses run meanwhile.
func (s *FolderStore) touchLocked(lock *storeLock, ip netip.Addr) (Visit, error) {
	dir, err := s.openFolder()
	if errors.Is(err, fs.ErrNotExist) {
		if err = s.create(); err == nil {
			dir, err = s.openFolder()
		}
	}
	if err != nil {
		return Visit{}, err
	}
	defer dir.Close()
	key := addrKey(ip)
	if err := lock.lockRecords(key, unix.F_WRLCK); err != nil {
		return Visit{}, err
	}
	f := s.file(ip, dir)
	f.stepDone("lock", 0)
	if v, done, err := s.overwrite(f, ip); done || err != nil {
		return v, err
	}
	// This update writes a temporary file: first remove any left by
	// updates killed before they renamed theirs.
	n, err := removeStaleTemps(f.tempDir, "", f.logf, func(name string) (bool, func()) {
		return staleFolderTemp(lock, key, name, f.logf)
	})
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.create(); err != nil {
			return Visit{}, err
		}
	}
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

// overwrite is the common update: ip's file holds exactly its one record,
// as lastaccess writes it, so the new record has the same length and is
// written over it in place, with one pwrite(2) at offset 0 and an
// fdatasync(2), instead of a new file, an fsync, a rename and an fsync of
// the folder. The record is at most 61 bytes, inside the file's first
// 512-byte sector, and the file keeps its size, so the write is atomic:
// a SIGKILL cannot stop it halfway (the kernel copies it into one page of
// the page cache in one step) and neither can a power loss on a disk that
// writes a sector atomically, the assumption PostgreSQL makes for its
// pg_control file. done is false, with nothing changed, when the file is
// anything else (missing, a link, longer, malformed, not writable): the
// caller then rewrites it whole, and reports what is wrong.
func (s *FolderStore) overwrite(f recordsFile, ip netip.Addr) (v Visit, done bool, err error) {
	fd, err := unix.Openat(int(f.dir.Fd()), filepath.Base(f.path), unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Visit{}, false, nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > maxRecordLine {
		return Visit{}, false, nil
	}
	var buf [maxRecordLine + 1]byte
	n, err := unix.Pread(fd, buf[:], 0)
	if err != nil || int64(n) != st.Size || n == 0 || buf[n-1] != '\n' {
		return Visit{}, false, nil
	}
	f.stepDone("read", n)
	old, at, err := parseRecord(string(buf[:n-1]))
	if err != nil || old != ip || len(at) != len(time.RFC3339)-5 { // "Z07:00" is written "Z"
		return Visit{}, false, nil
	}
	f.stepDone("parse", 1)
	v = Visit{Seen: true, Last: at, Noted: nowOr(s.Now).UTC().Format(time.RFC3339)}
	line := ip.String() + "|" + v.Noted + "\n"
	if len(line) != n { // a clock past year 9999
		return Visit{}, false, nil
	}
	if w, err := unix.Pwrite(fd, []byte(line), 0); err != nil || w != n {
		if err == nil {
			err = fmt.Errorf("wrote %d of %d bytes", w, n)
		}
		return Visit{}, true, fmt.Errorf("write %s: %w", f.path, err)
	}
	f.stepDone("write", n)
	if err := unix.Fdatasync(fd); err != nil {
		return Visit{}, true, fmt.Errorf("fdatasync %s: %w", f.path, err)
	}
	f.stepDone("fsync", 0)
	return v, true, nil
}

// maxRecordLine is the length of the longest record lastaccess writes,
// "\n" included: a 39-byte IPv6 address, "|", a 20-byte time.
const maxRecordLine = 39 + 1 + 20 + 1

// staleFolderTemp reports whether the temporary file name in the temp
// folder is stale: left by an update that died before renaming it. It is
// when nobody holds the lock of the address it was written for, or we do
// (key is ours): an update creates its temporary file after taking that
// lock and removes or renames it before releasing it. While it is being
// removed, its address's lock is held (done releases it). A name that is
// no update's temporary file is stale too: no update will rename it.
func staleFolderTemp(lock *storeLock, key int64, name string, logf func(string, ...any)) (stale bool, done func()) {
	ip, ok := fileNameAddr(strings.Split(name, ".tmp-")[0])
	if !ok || !strings.Contains(name, ".tmp-") {
		return true, func() {}
	}
	other := addrKey(ip)
	if other == key {
		return true, func() {}
	}
	free, err := lock.tryRecords(other)
	if err != nil {
		logf("%v", err)
	}
	if !free {
		return false, nil
	}
	return true, func() {
		if err := lock.unlockRecords(other); err != nil {
			logf("%v", err)
		}
	}
}

// create makes the folder Path if it is missing, with mode 0755 less the
// umask, and durably (it fsyncs Path's parent), then the temp folder in it.
// The temp folder's own entry becomes durable with the first update's fsync
// of Path.
func (s *FolderStore) create() error {
	err := os.Mkdir(s.Path, 0o755)
	switch {
	case err == nil:
		parent := filepath.Dir(s.Path)
		if err := syncDir(parent); err != nil {
			return fmt.Errorf("fsync folder %s after creating %s: %w", parent, s.Path, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create folder %s: %w", s.Path, bare(err))
	}
	tmp := filepath.Join(s.Path, tempFolderName)
	if err := os.Mkdir(tmp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create folder %s: %w", tmp, bare(err))
	}
	return nil
}

// openFolder opens the records folder, checks that nobody else can write
// it (see checkFolder), and returns it: the records files are then opened
// relative to it, by name, and never through a symbolic link. A missing
// folder is fs.ErrNotExist.
func (s *FolderStore) openFolder() (*os.File, error) {
	// unix.Open, not os.Open: a blocking descriptor never starts Go's
	// poller, which the common update does not need.
	fd, err := unix.Open(s.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("open records folder %s: open: %w", s.Path, err)
	}
	dir := os.NewFile(uintptr(fd), s.Path)
	info, err := dir.Stat()
	if err == nil {
		err = checkFolder(s.Path, info, false)
	}
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("records folder: %w", err)
	}
	return dir, nil
}

// listLocked is List with the lock held.
func (s *FolderStore) listLocked() ([]string, error) {
	dir, err := s.openFolder()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Path, bare(err))
	}
	logf := logOr(s.Logf)
	type file struct {
		name string
		ip   netip.Addr // invalid for a file not named after an address
	}
	var files []file
	for _, e := range entries {
		name := e.Name()
		if name == tempFolderName {
			continue
		}
		path := filepath.Join(s.Path, name)
		info, err := e.Info() // of the entry itself: a symbolic link is not followed
		if err != nil {
			logf("%s: %v; skipped", path, bare(err))
			continue
		}
		if !info.Mode().IsRegular() {
			logf("%s: not a regular file (%s); skipped", path, info.Mode().Type())
			continue
		}
		ip, _ := fileNameAddr(name)
		files = append(files, file{name: name, ip: ip})
	}
	slices.SortFunc(files, func(a, b file) int {
		if a.ip.IsValid() != b.ip.IsValid() {
			if a.ip.IsValid() {
				return -1
			}
			return 1
		}
		if a.ip.IsValid() {
			return a.ip.Compare(b.ip)
		}
		return cmp.Compare(a.name, b.name)
	})

	var lines []string
	for _, f := range files {
		path := filepath.Join(s.Path, f.name)
		if !f.ip.IsValid() {
			logf("%s: not named after an IP address in canonical form, so it holds no record; its lines are listed as they are", path)
			more, _, err := readLines(dir, path)
			if err != nil {
				return nil, err
			}
			lines = append(lines, more...)
			continue
		}
		records, _, err := recordsFile{path: path, dir: dir, owner: f.ip, logf: logf}.read()
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			lines = append(lines, r.text)
		}
	}
	return lines, nil
}

// file is ip's records file, with its temporary files in the temp folder,
// named "NAME.tmp-PID-RANDOM" (NAME is the records file's name).
func (s *FolderStore) file(ip netip.Addr, dir *os.File) recordsFile {
	name := addrFileName(ip)
	return recordsFile{
		path:       filepath.Join(s.Path, name),
		dir:        dir,
		owner:      ip,
		tempDir:    filepath.Join(s.Path, tempFolderName),
		tempPrefix: name + ".tmp-",
		logf:       logOr(s.Logf),
		step:       s.step,
	}
}

// addrFileName is the name of ip's records file in a FolderStore: the text
// form of canonicalAddr(ip), as in its record. No escaping is needed: that
// form is made of the characters 0-9 a-f . and : only (no "/", no NUL), is
// never "." or "..", never starts with a dot (an IPv4 address starts with a
// digit, an IPv6 one with a hex digit or ":"), and is at most 39 bytes
// long. Lower-case only, so distinct addresses never clash on a
// case-insensitive filesystem either.
func addrFileName(ip netip.Addr) string {
	return canonicalAddr(ip).String()
}

// fileNameAddr is the inverse of addrFileName: it returns the address whose
// records file is called name, and false if name is no address's file name.
func fileNameAddr(name string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(name)
	if err != nil || addrFileName(ip) != name {
		return netip.Addr{}, false
	}
	return ip, true
}
