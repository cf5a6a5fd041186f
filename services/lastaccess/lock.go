package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"

	"golang.org/x/sys/unix"
)

// storeLock is the lock file of a store, PATH.lock, held open. It carries
// two kinds of lock, which Linux keeps apart: flock(2) on the whole file,
// shared by every update and -list and taken exclusively by -migrate (and
// by lastaccess before per-address locking, so that an old and a new
// binary exclude each other during an upgrade); and, under the shared
// flock, open file description record locks (fcntl F_OFD_SETLKW) on byte
// ranges of the file, which is never written: one byte per address for an
// update of the folder layout, all of them for an update of the file
// layout (write locks) and for -list (a read lock). So updates of
// different addresses run at once, while -list and an update of one file
// exclude every update. The locks go with the descriptor: a process
// killed while holding them releases them.
type storeLock struct {
	fd   int // a raw descriptor: an *os.File would start Go's poller
	path string
	// exclusive: the flock is exclusive, so record locks are not needed
	// (lockRecords does nothing, tryRecords always succeeds).
	exclusive bool
}

// Record lock ranges of the lock file: byte 0 is never locked; an address's
// byte is in [firstKey, firstKey+keySpace); allRecords covers all of them.
const (
	firstKey   = 1
	keySpace   = 1 << 62
	allRecords = 0 // with firstKey: from firstKey to the end of any file
)

// addrKey is the byte of the lock file that stands for ip (canonical):
// FNV-1a of its 16-byte form, folded into keySpace. It must be the same
// function in every process and version, so it is spelled out here. Two addresses that
// share a byte only wait for each other.
func addrKey(ip netip.Addr) int64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range ip.As16() {
		h = (h ^ uint64(b)) * prime
	}
	return firstKey + int64(h%keySpace)
}

// lockStore opens (creating it with mode 0644 if missing) the lock file of
// the store at path, path+".lock", read-only, and takes flock(2) how on it,
// waiting as long as it takes. Read-only is enough for flock and read
// record locks, and lets an operator without write permission run -list
// once the lock file exists.
func lockStore(path string, how int) (*storeLock, error) {
	fd, err := openLockFile(path+".lock", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return flockStore(fd, path+".lock", how)
}

// lockForUpdate takes the locks an update starts with: the shared flock on
// the lock file opened read-write, as record write locks need. When this
// user may not write the lock file (an operator's -list created it), it
// falls back to the exclusive flock on the file opened read-only, which
// excludes every other access as record locks would, and more.
func lockForUpdate(path string) (*storeLock, error) {
	path += ".lock"
	fd, err := openLockFile(path, unix.O_RDWR)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS) {
		if fd, err = openLockFile(path, unix.O_RDONLY); err != nil {
			return nil, err
		}
		return flockStore(fd, path, unix.LOCK_EX)
	}
	if err != nil {
		return nil, err
	}
	return flockStore(fd, path, unix.LOCK_SH)
}

// openLockFile opens the lock file at path with flag, creating it with
// mode 0644 if missing. O_NOFOLLOW: a symlink there must not make
// lastaccess create or lock a file elsewhere; O_NONBLOCK: a FIFO must not
// hang it.
func openLockFile(path string, flag int) (int, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flag|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("lock %s: a symbolic link; refused, not followed", path)
	}
	if err != nil {
		return -1, fmt.Errorf("lock %s: open: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, fmt.Errorf("lock %s: not a regular file", path)
	}
	return fd, nil
}

// flockStore takes flock(2) how on the lock file fd, at path, waiting as
// long as it takes; on failure it closes fd.
func flockStore(fd int, path string, how int) (*storeLock, error) {
	var err error
	for {
		err = unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: flock: %w", path, err)
	}
	return &storeLock{fd: fd, path: path, exclusive: how == unix.LOCK_EX}, nil
}

// release closes the lock file, which releases every lock on it. A close
// error on a descriptor never written through cannot lose data, so there
// is nothing to report.
func (l *storeLock) release() { unix.Close(l.fd) }

// lockRecords takes a record lock of type typ (unix.F_WRLCK or F_RDLCK)
// on the byte key, or on every address's byte when key is allRecords,
// waiting as long as it takes.
func (l *storeLock) lockRecords(key int64, typ int16) error {
	if l.exclusive {
		return nil
	}
	lk := recordRange(key, typ)
	for {
		err := unix.FcntlFlock(uintptr(l.fd), unix.F_OFD_SETLKW, &lk)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, unix.EINTR):
			return fmt.Errorf("lock %s: fcntl F_OFD_SETLKW: %w", l.path, err)
		}
	}
}

// tryRecords takes a write lock on the byte key if nobody holds a lock on
// it, and reports whether it did. A byte this descriptor already holds
// counts as free.
func (l *storeLock) tryRecords(key int64) (bool, error) {
	if l.exclusive {
		return true, nil
	}
	lk := recordRange(key, unix.F_WRLCK)
	err := unix.FcntlFlock(uintptr(l.fd), unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES):
		return false, nil
	default:
		return false, fmt.Errorf("lock %s: fcntl F_OFD_SETLK: %w", l.path, err)
	}
}

// unlockRecords releases the record lock on the byte key.
func (l *storeLock) unlockRecords(key int64) error {
	if l.exclusive {
		return nil
	}
	lk := recordRange(key, unix.F_UNLCK)
	if err := unix.FcntlFlock(uintptr(l.fd), unix.F_OFD_SETLK, &lk); err != nil {
		return fmt.Errorf("unlock %s: fcntl F_OFD_SETLK: %w", l.path, err)
	}
	return nil
}

func recordRange(key int64, typ int16) unix.Flock_t {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: key, Len: 1}
	if key == allRecords {
		lk.Start, lk.Len = firstKey, 0 // 0: to the end, however far
	}
	return lk
}
