package spawner

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// The socket's folder may be writable by someone else (/run/app/, owned
// by the app that connects): whoever can write it can put a symlink at any
// name in it, at any moment. So goinetd never changes a mode or an owner
// by a path in that folder. It binds the socket inside a private folder
// of its own, sets its mode and owner there, and renames it into place;
// later it changes the socket only through a descriptor, after checking
// that the descriptor is the socket it made.

// errNotOurSocket means that the socket's path holds something other than
// the socket goinetd made there.
var errNotOurSocket = errors.New("not the socket goinetd made")

// socketFile is the file of a unix socket goinetd bound: its path and the
// identity of the inode made there.
type socketFile struct {
	path     string
	dev, ino uint64
}

// socketName is the socket's name inside the private folder.
const socketName = "socket"

// listenUnix binds a unix stream socket at svc.Path with svc's mode and
// owner. The socket is made in a private folder and renamed into place, so
// that it never exists at Path with other permissions, and a stale socket
// there is replaced atomically; anything else at Path is an error, and it
// is left alone.
func listenUnix(svc *config.Service) (*os.File, *socketFile, error) {
	file, sf, err := bindUnix(svc)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", svc.Path, err)
	}
	return file, sf, nil
}

// bindUnix is listenUnix, without the path in its errors.
func bindUnix(svc *config.Service) (*os.File, *socketFile, error) {
	dir, base := filepath.Split(svc.Path)
	parent, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open folder %s: %w", dir, err)
	}
	defer unix.Close(parent)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, nil, errors.New("it exists and is not a socket")
	}

	private, name, err := makePrivateDir(parent)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		unix.Close(private)
		unix.Unlinkat(parent, name, unix.AT_REMOVEDIR) // empty, unless a step failed
	}()
	// bind takes a path: reach the private folder through its descriptor.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: "/proc/self/fd/" + strconv.Itoa(private) + "/" + socketName, Net: "unix"})
	if err != nil {
		return nil, nil, unwrapOp(err)
	}
	ln.SetUnlinkOnClose(false)
	file, err := ln.File()
	ln.Close()
	step := func(what string, f func() error) {
		if err == nil {
			if e := f(); e != nil {
				err = fmt.Errorf("%s: %w", what, e)
			}
		}
	}
	// Nobody else can enter the private folder: its names are safe to use.
	step("stat", func() error { return unix.Fstatat(private, socketName, &st, unix.AT_SYMLINK_NOFOLLOW) })
	step("mode", func() error { return unix.Fchmodat(private, socketName, uint32(svc.SocketMode.Perm()), 0) })
	if svc.SocketUID >= 0 || svc.SocketGID >= 0 {
		step("owner", func() error {
			return unix.Fchownat(private, socketName, svc.SocketUID, svc.SocketGID, unix.AT_SYMLINK_NOFOLLOW)
		})
	}
	step("rename into place", func() error { return unix.Renameat(private, socketName, parent, base) })
	if err != nil {
		unix.Unlinkat(private, socketName, 0)
		if file != nil {
			file.Close()
		}
		return nil, nil, err
	}
	return file, &socketFile{path: svc.Path, dev: st.Dev, ino: st.Ino}, nil
}

// makePrivateDir makes a folder with an unpredictable name in parent that
// only goinetd's user may enter, and opens it. It checks, through the
// descriptor, that what it opened is that folder: a symlink or another
// folder put in its place between mkdir and open is refused.
func makePrivateDir(parent int) (fd int, name string, err error) {
	for range 100 {
		name = fmt.Sprintf(".goinetd.%016x", rand.Uint64())
		err = unix.Mkdirat(parent, name, 0o700)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return -1, "", fmt.Errorf("make a private folder beside the socket: %w", err)
		}
		fd, err = unix.Openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		var st unix.Stat_t
		if err == nil {
			err = unix.Fstat(fd, &st)
		}
		if err == nil && (st.Uid != uint32(os.Geteuid()) || st.Mode&0o077 != 0) {
			unix.Close(fd)
			err = errors.New("not the folder goinetd made")
		}
		if err != nil {
			// Not removed: whatever is at name now is not ours.
			return -1, "", fmt.Errorf("private folder %s beside the socket was replaced: %w", name, err)
		}
		return fd, name, nil
	}
	return -1, "", fmt.Errorf("make a private folder beside the socket: %w", err)
}

// open opens the socket's path without following a symlink and checks
// that it is still the socket goinetd made. The caller closes fd.
func (sf *socketFile) open() (fd int, st unix.Stat_t, err error) {
	fd, err = unix.Open(sf.path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, st, err
	}
	if err = unix.Fstat(fd, &st); err == nil && (st.Dev != sf.dev || st.Ino != sf.ino) {
		err = errNotOurSocket
	}
	if err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

// set gives the socket mode and, where uid or gid is not -1, that owner,
// through a descriptor of the socket goinetd made: never through a symlink
// or anything else at its path. It changes nothing that already matches.
// It returns errNotOurSocket if the path holds anything else.
func (sf *socketFile) set(mode os.FileMode, uid, gid int) error {
	fd, st, err := sf.open()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if perm := uint32(mode.Perm()); st.Mode&0o7777 != perm {
		// An O_PATH descriptor takes no fchmod; its /proc link names the
		// inode itself, not the path it was opened by.
		if err := unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), perm, 0); err != nil {
			return fmt.Errorf("mode: %w", err)
		}
	}
	if (uid >= 0 && uint32(uid) != st.Uid) || (gid >= 0 && uint32(gid) != st.Gid) {
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("owner: %w", err)
		}
	}
	return nil
}

// remove removes the socket's file if its path still holds the socket
// goinetd made. What is at the path is checked and removed by name in the
// same open folder, so at most an entry that whoever can write the folder
// swaps in between is removed: one they could remove themselves.
func (sf *socketFile) remove() {
	dir, base := filepath.Split(sf.path)
	parent, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(parent)
	var st unix.Stat_t
	if unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Dev == sf.dev && st.Ino == sf.ino {
		unix.Unlinkat(parent, base, 0)
	}
}
