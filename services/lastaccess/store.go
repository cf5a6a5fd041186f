package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
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

// lockedStore is a Store's work once its lock file is locked. Both layouts
// lock the same file, so AutoStore takes the flock first and picks the
// layout under it. touchLocked takes the record locks its layout needs.
type lockedStore interface {
	touchLocked(lock *storeLock, ip netip.Addr) (Visit, error) // ip valid and canonical; lockForUpdate's lock
	listLocked() ([]string, error)                             // shared flock, read lock on every record
}

// AutoStore is the Store the command uses. Under the lock, it looks at Path:
// a regular file is a FileStore (the single-file layout, whose updates cost
// grows with the number of records); a folder, or nothing yet, is a
// FolderStore (created by the first update). Looking under the lock means a
// -migrate that changes the layout never runs between the look and the
// update. Anything else at Path is an error. Its zero value is not usable:
// Path must be set.
type AutoStore struct {
	// Path is the records file or folder.
	Path string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf reports problems that do not stop the operation; nil discards them.
	Logf func(format string, args ...any)
}

var _ Store = (*AutoStore)(nil)

// Touch implements Store, as FileStore.Touch or FolderStore.Touch.
func (s *AutoStore) Touch(ip netip.Addr) (Visit, error) { return touchUnder(s.Path, ip, s.layout) }

// List implements Store, as FileStore.List or FolderStore.List.
func (s *AutoStore) List() ([]string, error) { return listUnder(s.Path, s.layout) }

// touchUnder is every layout's Touch: it checks ip, takes the update's
// flock on the lock file of the records at path (see lockForUpdate), and
// records ip, canonical, in the store pick returns under that lock.
func touchUnder(path string, ip netip.Addr, pick func() (lockedStore, error)) (Visit, error) {
	if !ip.IsValid() {
		return Visit{}, errors.New("touch: invalid IP address")
	}
	if err := checkParent(path); err != nil {
		return Visit{}, err
	}
	lock, err := lockForUpdate(path)
	if err != nil {
		return Visit{}, err
	}
	defer lock.release()
	store, err := pick()
	if err != nil {
		return Visit{}, err
	}
	return store.touchLocked(lock, canonicalAddr(ip))
}

// listUnder is every layout's List: it takes the shared flock of the
// records at path and a read lock on every record, so that no update runs
// while it reads, and lists the store pick returns under those locks.
func listUnder(path string, pick func() (lockedStore, error)) ([]string, error) {
	if err := checkParent(path); err != nil {
		return nil, err
	}
	lock, err := lockStore(path, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	if err := lock.lockRecords(allRecords, unix.F_RDLCK); err != nil {
		return nil, err
	}
	store, err := pick()
	if err != nil {
		return nil, err
	}
	return store.listLocked()
}

// checkParent checks the folder that holds the records at path and their
// lock (see checkFolder): whoever can write it can replace either.
func checkParent(path string) error {
	parent := filepath.Dir(path)
	info, err := os.Stat(parent)
	if err != nil {
		return fmt.Errorf("records %s: folder %s: %w", path, parent, bare(err))
	}
	if err := checkFolder(parent, info, true); err != nil {
		return fmt.Errorf("records %s: %w", path, err)
	}
	return nil
}

// layout returns the store for what is at Path now; call it with the lock held.
func (s *AutoStore) layout() (lockedStore, error) {
	info, err := os.Stat(s.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && info.IsDir():
		return &FolderStore{Path: s.Path, Now: s.Now, Logf: s.Logf}, nil
	case err != nil:
		return nil, fmt.Errorf("open records %s: %w", s.Path, bare(err))
	case info.Mode().IsRegular():
		return &FileStore{Path: s.Path, Now: s.Now, Logf: s.Logf}, nil
	default:
		return nil, fmt.Errorf("open records %s: neither a folder nor a regular file (%s)", s.Path, info.Mode().Type())
	}
}
