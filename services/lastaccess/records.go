package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file holds what both layouts share: the lock, and the records file,
// a plain text file of "IP|TIME" lines that is read whole and replaced whole
// by rename. FileStore keeps every record in one records file; FolderStore
// keeps each address's record in a records file of its own.

// record is one line of a records file.
type record struct {
	text string     // the line as stored, without "\n"
	ok   bool       // well-formed and the first record for ip
	ip   netip.Addr // valid when ok
	at   string     // the TIME field, verbatim; valid when ok
}

// recordsFile is one records file and where its replacements are written.
type recordsFile struct {
	path string
	// dir, when set, is the open folder holding path: the file is opened
	// by its base name relative to it, never through a path that could
	// have changed since the folder was checked (see openFolder).
	dir *os.File
	// owner, when valid, is the only address whose record the file may hold
	// (FolderStore's file for that address): a well-formed line for another
	// address is reported and kept, not used.
	owner netip.Addr
	// tempDir is where replace creates the temporary file, on the same
	// filesystem as path; tempPrefix starts its name.
	tempDir, tempPrefix string
	logf                func(format string, args ...any)
	step                func(name string, n int) // see FileStore.step
}

// readLines returns the lines of the file at path (relative to dir when
// dir is set, by its base name) and its permission bits. A missing file is
// no lines and mode 0644; so is an empty one, with its own mode. A missing
// final "\n" is tolerated (a hand edit); a rewrite adds it. A symbolic
// link is refused, never followed: it could point at a file lastaccess may
// read and nobody should see.
func readLines(dir *os.File, path string) ([]string, fs.FileMode, error) {
	f, err := openRecords(dir, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0o644, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, bare(err))
	}
	if !info.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("read %s: not a regular file (%s)", path, info.Mode().Type())
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, bare(err))
	}
	if len(data) == 0 {
		return nil, info.Mode().Perm(), nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), info.Mode().Perm(), nil
}

// openRecords opens path for reading (relative to dir when dir is set, by
// its base name) without following a symbolic link, which is an error.
// O_NONBLOCK, so that a FIFO in the way fails the caller's regular-file
// check instead of blocking in open; it changes nothing for a file.
func openRecords(dir *os.File, path string) (*os.File, error) {
	at, name := unix.AT_FDCWD, path
	if dir != nil {
		at, name = int(dir.Fd()), filepath.Base(path)
	}
	fd, err := unix.Openat(at, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, errors.New("a symbolic link; refused, not followed")
	case errors.Is(err, unix.ENOENT):
		return nil, fs.ErrNotExist
	case err != nil:
		return nil, fmt.Errorf("open: %w", err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// read returns the records in file order and the permission bits to give the
// replacement file (see readLines). Malformed lines, duplicates and records
// for an address other than the owner are reported through logf and
// returned with ok false.
func (f recordsFile) read() ([]record, fs.FileMode, error) {
	lines, mode, err := readLines(f.dir, f.path)
	if err != nil {
		return nil, 0, err
	}
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	f.stepDone("read", size)
	records := make([]record, len(lines))
	first := make(map[netip.Addr]int, len(lines)) // ip -> 1-based line number
	for i, text := range lines {
		records[i].text = text
		ip, at, err := parseRecord(text)
		if err != nil {
			// Never the line itself: the file may not be what it seems.
			f.logf("%s:%d: malformed record (%v); kept as it is", f.path, i+1, err)
			continue
		}
		if f.owner.IsValid() && ip != f.owner {
			f.logf("%s:%d: record for %s in the file of %s; kept as it is", f.path, i+1, ip, f.owner)
			continue
		}
		if n, dup := first[ip]; dup {
			f.logf("%s:%d: duplicate record for %s (the record is line %d); kept as it is", f.path, i+1, ip, n)
			continue
		}
		first[ip] = i + 1
		records[i] = record{text: text, ok: true, ip: ip, at: at}
	}
	f.stepDone("parse", len(lines))
	return records, mode, nil
}

// note records a connection from ip at now in records: a known address's
// line is rewritten where it is, a new one is appended. It returns the new
// content of the file and the visit.
func note(records []record, ip netip.Addr, now time.Time) ([]byte, Visit) {
	v := Visit{Noted: now.UTC().Format(time.RFC3339)}
	line := ip.String() + "|" + v.Noted
	for i := range records {
		if records[i].ok && records[i].ip == ip {
			v.Seen, v.Last = true, records[i].at
			records[i].text = line
			break
		}
	}
	if !v.Seen {
		records = append(records, record{text: line})
	}
	var b strings.Builder
	for _, r := range records {
		b.WriteString(r.text)
		b.WriteByte('\n')
	}
	return []byte(b.String()), v
}

// replace makes content the file's content with permission bits mode, by
// writing a temporary file in tempDir, fsyncing it, renaming it over path
// and fsyncing path's folder. On a failure before the rename, the temporary
// file is removed and path is untouched. A failure to fsync the folder after
// the rename is reported although the new content is already in place.
func (f recordsFile) replace(content []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(f.tempDir, fmt.Sprintf("%s%d-*", f.tempPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("create temp file in %s: %w", f.tempDir, bare(err))
	}
	name := tmp.Name()
	closed, renamed := false, false
	defer func() {
		if !closed {
			tmp.Close() // only on a failure path, whose error is already reported
		}
		if !renamed {
			if rmErr := os.Remove(name); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove temp file %s: %w", name, bare(rmErr)))
			}
		}
	}()

	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", name, bare(err))
	}
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("write %s: %w", name, bare(err))
	}
	f.stepDone("write", len(content))
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", name, bare(err))
	}
	f.stepDone("fsync", 0)
	closed = true
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, bare(err))
	}
	if err := os.Rename(name, f.path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", name, f.path, errors.Unwrap(err))
	}
	renamed = true
	f.stepDone("rename", 0)
	dir := filepath.Dir(f.path)
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync folder %s after replacing %s: %w", dir, f.path, err)
	}
	f.stepDone("fsync folder", 0)
	return nil
}

func (f recordsFile) stepDone(name string, n int) {
	if f.step != nil {
		f.step(name, n)
	}
}

// removeStaleTemps deletes every regular file in dir whose name starts with
// prefix and that stale says is stale, and reports it through logf. stale
// returns, for a stale file, a function to call once it is removed.
// Temporary files are only created under a lock (see staleFolderTemp and
// FileStore.touchLocked), by a holder that removes or renames them before
// unlocking, so a stale one was left by a process that died mid-update.
// It returns the number of entries it looked at. Failures only leave
// litter, so they are reported, not returned; except that a missing dir
// is returned as fs.ErrNotExist.
func removeStaleTemps(dir, prefix string, logf func(string, ...any), stale func(name string) (bool, func())) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if err != nil {
		logf("look for stale temp files in %s: %v", dir, err)
		return 0, nil
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		ok, done := stale(e.Name())
		if !ok {
			continue
		}
		path := filepath.Join(dir, e.Name())
		err := os.Remove(path)
		done()
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed by its update meanwhile
		}
		if err != nil {
			logf("remove stale temp file %s: %v", path, err)
			continue
		}
		logf("removed stale temp file %s, left by an interrupted update", path)
	}
	return len(entries), nil
}

// checkFolder refuses a folder holding records or their lock that someone
// other than root or lastaccess's own user could write: they could plant
// a symlink, swap a file, or forge a record. info is the folder's. Its
// owner must be root or this process's user; if it is writable by its
// group, that group must be root's or this process's; and it must not be
// writable by every user, unless sticky is allowed (for the folder that
// holds the records folder and its lock, such as /tmp) and set.
func checkFolder(path string, info fs.FileInfo, sticky bool) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	mode := info.Mode()
	switch {
	case st.Uid != 0 && st.Uid != uid:
		return fmt.Errorf("folder %s is owned by uid %d, not by root or lastaccess's user (uid %d): refused, since its owner could plant links or records there", path, st.Uid, uid)
	case mode&0o002 != 0 && !(sticky && mode&fs.ModeSticky != 0):
		return fmt.Errorf("folder %s is writable by every user (mode %v): refused, since anyone could plant links or records there; chmod o-w %s", path, mode.Perm(), path)
	case mode&0o020 != 0 && st.Gid != 0 && st.Gid != gid:
		return fmt.Errorf("folder %s is writable by group %d (mode %v): refused, since its members could plant links or records there; chmod g-w %s", path, st.Gid, mode.Perm(), path)
	}
	return nil
}

// parseRecord parses one "IP|TIME" line. IP must be in the canonical form the
// store writes (see canonicalAddr) and TIME valid RFC 3339; at is TIME
// verbatim. Its error says what is wrong without quoting the line, which
// is logged and may hold anything.
func parseRecord(line string) (ip netip.Addr, at string, err error) {
	ipText, at, found := strings.Cut(line, "|")
	if line == "" {
		return netip.Addr{}, "", errors.New("an empty line")
	}
	if !found {
		return netip.Addr{}, "", errors.New(`want "IP|TIME"`)
	}
	ip, err = netip.ParseAddr(ipText)
	if err != nil {
		return netip.Addr{}, "", errors.New("bad IP: not an IP address")
	}
	if canonicalAddr(ip).String() != ipText {
		return netip.Addr{}, "", errors.New("IP not in canonical form (lower-case, no zone, IPv4 not mapped)")
	}
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		return netip.Addr{}, "", errors.New("bad time: not RFC 3339")
	}
	return ip, at, nil
}

// canonicalAddr returns the form of ip the store keys records by: an
// IPv4-mapped IPv6 address becomes IPv4 and any IPv6 zone is dropped.
func canonicalAddr(ip netip.Addr) netip.Addr {
	return ip.Unmap().WithZone("")
}

// syncDir fsyncs the folder dir, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return bare(err)
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return bare(err)
	}
	return nil
}

// bare strips the path from an *fs.PathError, keeping its operation and
// cause, for messages that already name the path.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

func nowOr(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}

func logOr(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}
