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
	"time"

	"golang.org/x/sys/unix"
)

// Visit is the outcome of recording one connection.
type Visit struct {
	// Seen reports whether the address had a record before this connection.
	Seen bool
	// Last is the time stored for the address before this connection, exactly
	// as it was stored; empty when Seen is false.
	Last string
	// Noted is the time now stored for the address: RFC 3339, UTC, seconds.
	Noted string
}

// Store keeps the time of the last connection from each peer address.
// Implementations must be safe for concurrent use by separate processes.
type Store interface {
	// Touch records a connection from ip at the current time and reports the
	// time recorded before it, as one atomic step: of two concurrent calls for
	// the same address, one sees the time the other noted. On error nothing is
	// recorded.
	Touch(ip netip.Addr) (Visit, error)
	// List returns every line of the records in order, malformed lines included,
	// as of one consistent moment. No records is an empty list, not an error.
	List() ([]string, error)
}

// FileStore is a Store kept in a plain text file of "IP|TIME" lines, locked
// with flock(2) on Path+".lock" and updated by atomic rename; see the package
// comment for the scheme. Its zero value is not usable: Path must be set.
type FileStore struct {
	// Path is the records file.
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf reports problems that do not stop the operation (malformed lines,
	// stale temporary files); nil discards them.
	Logf func(format string, args ...any)
}

var _ Store = (*FileStore)(nil)

// record is one line of the records file.
type record struct {
	text string     // the line as stored, without "\n"
	ok   bool       // well-formed and the first record for ip
	ip   netip.Addr // valid when ok
	at   string     // the TIME field, verbatim; valid when ok
}

// Touch implements Store. It canonicalises ip (see canonicalAddr). Errors
// name the step and the path that failed; on error the records file is
// unchanged (except that a failure to fsync the folder after the rename is
// reported although the new content is already in place).
func (s *FileStore) Touch(ip netip.Addr) (Visit, error) {
	if !ip.IsValid() {
		return Visit{}, errors.New("touch: invalid IP address")
	}
	ip = canonicalAddr(ip)

	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return Visit{}, err
	}
	defer unlock()

	s.removeStaleTemps()
	records, mode, err := s.read()
	if err != nil {
		return Visit{}, err
	}

	now := s.Now
	if now == nil {
		now = time.Now
	}
	v := Visit{Noted: now().UTC().Format(time.RFC3339)}
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
	if err := s.replace([]byte(b.String()), mode); err != nil {
		return Visit{}, err
	}
	return v, nil
}

// List implements Store. It holds a shared lock while reading, and reports
// malformed lines through Logf.
func (s *FileStore) List() ([]string, error) {
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	records, _, err := s.read()
	unlock()
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(records))
	for i, r := range records {
		lines[i] = r.text
	}
	return lines, nil
}

// lock opens (creating it with mode 0644 if missing) the lock file and takes
// flock(2) how on it, waiting as long as it takes. The returned function
// releases the lock.
func (s *FileStore) lock(how int) (unlock func(), err error) {
	path := s.Path + ".lock"
	// Read-only is enough for flock, and lets an operator without write
	// permission run -list once the lock file exists.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, bare(err))
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: flock: %w", path, err)
	}
	// Closing the descriptor releases the lock; a close error on a descriptor
	// we never wrote through cannot lose data, so there is nothing to report.
	return func() { f.Close() }, nil
}

// read returns the records in file order and the permission bits to give the
// replacement file. A missing file is no records and mode 0644. Malformed and
// duplicate lines are reported through Logf and returned with ok false.
func (s *FileStore) read() ([]record, fs.FileMode, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0o644, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", s.Path, bare(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", s.Path, bare(err))
	}
	if !info.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("read %s: not a regular file (%s)", s.Path, info.Mode().Type())
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", s.Path, bare(err))
	}
	if len(data) == 0 {
		return nil, info.Mode().Perm(), nil
	}
	// A missing final "\n" is tolerated (a hand edit); the rewrite adds it.
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	records := make([]record, len(lines))
	first := make(map[netip.Addr]int, len(lines)) // ip -> 1-based line number
	for i, text := range lines {
		records[i].text = text
		ip, at, err := parseRecord(text)
		if err != nil {
			s.logf("%s:%d: malformed record %q (%v); kept as it is", s.Path, i+1, text, err)
			continue
		}
		if n, dup := first[ip]; dup {
			s.logf("%s:%d: duplicate record for %s (the record is line %d); kept as it is", s.Path, i+1, ip, n)
			continue
		}
		first[ip] = i + 1
		records[i] = record{text: text, ok: true, ip: ip, at: at}
	}
	return records, info.Mode().Perm(), nil
}

// replace makes content the records file with permission bits mode, by
// writing a temporary file in the same folder, fsyncing it, renaming it over
// Path and fsyncing the folder. On a failure before the rename, the temporary
// file is removed and Path is untouched.
func (s *FileStore) replace(content []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(s.Path)
	tmp, err := os.CreateTemp(dir, fmt.Sprintf("%s%d-*", s.tempPrefix(), os.Getpid()))
	if err != nil {
		return fmt.Errorf("create temp file in %s: %w", dir, bare(err))
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
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", name, bare(err))
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, bare(err))
	}
	if err := os.Rename(name, s.Path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", name, s.Path, errors.Unwrap(err))
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync folder %s after replacing %s: %w", dir, s.Path, err)
	}
	return nil
}

// tempPrefix is the name prefix of the store's temporary files. It starts
// with a dot so the files stay out of plain directory listings.
func (s *FileStore) tempPrefix() string {
	return "." + filepath.Base(s.Path) + ".tmp-"
}

// removeStaleTemps deletes every regular file in Path's folder whose name
// starts with tempPrefix. It must be called with the exclusive lock held:
// only the lock holder creates such files and it removes or renames them
// before unlocking, so any found then was left by a process that died mid-
// update. Failures only leave litter, so they are reported, not returned.
func (s *FileStore) removeStaleTemps() {
	dir := filepath.Dir(s.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		s.logf("look for stale temp files in %s: %v", dir, err)
		return
	}
	prefix := s.tempPrefix()
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.logf("remove stale temp file %s: %v", path, err)
			continue
		}
		s.logf("removed stale temp file %s, left by an interrupted update", path)
	}
}

func (s *FileStore) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// parseRecord parses one "IP|TIME" line. IP must be in the canonical form the
// store writes (see canonicalAddr) and TIME valid RFC 3339; at is TIME verbatim.
func parseRecord(line string) (ip netip.Addr, at string, err error) {
	ipText, at, found := strings.Cut(line, "|")
	if !found {
		return netip.Addr{}, "", errors.New(`want "IP|TIME"`)
	}
	ip, err = netip.ParseAddr(ipText)
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("bad IP: %w", err)
	}
	if want := canonicalAddr(ip).String(); ipText != want {
		return netip.Addr{}, "", fmt.Errorf("IP %q is not in canonical form %q", ipText, want)
	}
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		return netip.Addr{}, "", fmt.Errorf("bad time: %w", err)
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
