package config

// Reading config files safely.
//
// goinetd runs what its config says, as root when it runs as root: whoever
// can write a config file, or replace one, can run anything as goinetd's
// user. So, as sshd (StrictModes) and sudo check theirs, goinetd reads a
// config file only if
//
//   - it is a regular file (never a FIFO, which would block the read and
//     with it a reload, nor a device), of at most maxFileSize bytes;
//   - it is owned by root or by goinetd's own user, and writable by no one
//     else: not by others, and by its group only if that is root's (gid
//     0);
//   - every folder above it, up to "/", follows the same rule, except that
//     a folder with the sticky bit (as /tmp) may be writable by anyone, as
//     then only the owner of a name can replace it.
//
// The main file, named on the command line, may be a symbolic link (config
// management often makes one): the file it leads to is checked, and the
// folders of both the link and the file. A drop-in file must not be a
// link: it is opened with O_NOFOLLOW, so what is checked is what its
// folder holds. Every file is opened non-blocking and checked with fstat
// on the open descriptor, so a file swapped after the check is never read.
//
// Before the TOML parser sees a file, its nesting of [ ] and { } is
// bounded (maxNesting): BurntSushi/toml takes time and memory quadratic in
// the depth of nested inline tables (a 32 KB file took 2.8 GB), and a
// reload that runs out of memory kills the running daemon.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxFileSize is the largest config file read, main file or drop-in. A
// service takes about a hundred bytes, so 4 MiB holds tens of thousands,
// which load in a few seconds and a few hundred MiB (the parse is linear,
// nesting bounded); a larger file is a mistake or an attack.
const maxFileSize = 4 << 20

// maxNesting is the deepest nesting of arrays and tables a config file
// may have. goinetd's own keys need at most three levels (an inline
// [services] table holding a service holding env); the parser's cost grows
// with the square of the depth.
const maxNesting = 8

// readConfigFile returns the content of the config file at path after the
// checks above; follow says whether path may be a symbolic link (only the
// main file's). The error says what is wrong and how to fix it.
func readConfigFile(path string, follow bool) ([]byte, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	stat := os.Stat
	if !follow {
		flags |= unix.O_NOFOLLOW
		stat = os.Lstat
	}
	// Refuse what is not a regular file before opening it: opening a
	// device can have effects of its own.
	fi, err := stat(path)
	if err != nil {
		return nil, statError(err)
	}
	if !follow && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, errors.New("is a symbolic link; goinetd does not follow links in a drop-in folder: put the file itself there")
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%s)", fileType(fi.Mode()))
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return nil, statError(&fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%s)", fileType(fi.Mode()))
	}
	if err := trusted(fi, "file", path); err != nil {
		return nil, err
	}
	folders := []string{filepath.Dir(path)}
	if follow {
		// The file the link leads to lives in folders of its own.
		if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
			folders = append(folders, filepath.Dir(real))
		}
	}
	for _, dir := range folders {
		if err := trustedFolders(dir, path); err != nil {
			return nil, err
		}
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("is %d bytes; a config file has at most %d", fi.Size(), maxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("is more than %d bytes; a config file has at most %d", maxFileSize, maxFileSize)
	}
	return data, nil
}

// trustedFolders checks dir and every folder above it, to "/", with
// trusted; file is the config file they hold, for the message.
func trustedFolders(dir, file string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		fi, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("folder %s: %w", abs, err)
		}
		if err := trusted(fi, "folder "+abs+" (holding "+file+")", abs); err != nil {
			return err
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return nil
		}
		abs = parent
	}
}

// trusted returns nil if the file or folder fi, at path, can be written
// only by root or goinetd's user (see the package's rules above). what
// names it at the start of a message; the message ends with the command
// that fixes it.
func trusted(fi fs.FileInfo, what, path string) error {
	w := writers(fi)
	switch {
	case w.owner >= 0:
		owner := "root"
		if euid := os.Geteuid(); euid != 0 {
			owner = fmt.Sprintf("root or uid %d (goinetd's user)", euid)
		}
		return fmt.Errorf("%s is owned by uid %d; it must be owned by %s, as goinetd runs what its config says: chown root %s",
			what, w.owner, owner, path)
	case w.group >= 0 || w.others:
		return fmt.Errorf("%s is writable by %s (mode %04o), who could change what goinetd runs: chmod go-w %s",
			what, w, fi.Mode().Perm(), path)
	}
	return nil
}

// writersOf are those other than root and goinetd's own user and group
// who may write a file or folder: its owner (a uid, or -1), its group (a
// gid, or -1) and everyone else.
type writersOf struct {
	owner, group int
	others       bool
}

// writers says who other than root and goinetd's user and group may write
// fi. A sticky folder (such as /tmp) that root or goinetd owns counts as
// written by them alone: no one else can replace what they made in it.
func writers(fi fs.FileInfo) writersOf {
	w := writersOf{owner: -1, group: -1}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return w
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if st.Uid != 0 && st.Uid != uid {
		w.owner = int(st.Uid)
		return w
	}
	if fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 {
		return w
	}
	perm := fi.Mode().Perm()
	if perm&0o020 != 0 && st.Gid != 0 && st.Gid != gid {
		w.group = int(st.Gid)
	}
	w.others = perm&0o002 != 0
	return w
}

// String names the writers, for a message: "group 100 and others".
func (w writersOf) String() string {
	var who []string
	if w.owner >= 0 {
		who = append(who, fmt.Sprintf("uid %d", w.owner))
	}
	if w.group >= 0 {
		who = append(who, fmt.Sprintf("group %d", w.group))
	}
	if w.others {
		who = append(who, "others")
	}
	return strings.Join(who, " and ")
}

// fileType names the type of a file that is not a regular one.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}
