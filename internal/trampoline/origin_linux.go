package trampoline

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The trampoline's proof of origin.
//
// goinetd becomes the trampoline when its argv[0] is Name, and
// the trampoline does what its arguments say, setuid included. Anyone can
// choose argv[0] and the arguments, so before it acts the trampoline
// checks two things (checkOrigin):
//
//  1. It gained no privilege at exec: the kernel's AT_SECURE flag is clear.
//     AT_SECURE is set when the exec raised privilege: a set-user-ID or
//     set-group-ID binary, or file capabilities (a copy of goinetd given
//     cap_setuid by setcap would otherwise make any user root). So a
//     trampoline runs with the privilege of whoever started it and can
//     only drop it. A goinetd given file capabilities itself cannot start
//     handlers through the trampoline; ambient capabilities (systemd's
//     AmbientCapabilities=) do not set AT_SECURE and keep working.
//  2. Its parent is goinetd: the parent runs the same executable (the same
//     inode: goinetd execs /proc/self/exe) with the same effective user and
//     group ids (the owner of /proc/PID). This stops a privileged launcher that lets
//     a user choose argv[0] and arguments (a sudo rule for goinetd, a
//     symlink named goinetd-exec) from becoming a setuid tool. The parent
//     is identified by getppid before and after the reads: a process's
//     parent pid changes as soon as the parent exits, so if it is the same
//     after, the parent was alive throughout and its pid not reused. A
//     parent that passes runs this binary with the trampoline's own
//     credentials, so even a goinetd started by hand gains nothing.
//
// An inherited descriptor carrying a nonce would also prove the origin,
// but it needs a descriptor that every spawn path passes and the handler
// must never see; the parent check needs none and costs a few system
// calls (no process, no descriptor left open), paid only by services
// that use the trampoline.

// elfATSecure is AT_SECURE, the auxiliary vector's entry that says the
// exec raised privilege (<elf.h>).
const elfATSecure = 23

// checkOrigin returns nil if this process may act as the trampoline: it
// gained no privilege at exec and its parent is goinetd (see above).
// Otherwise it returns why not; a failure to read what it checks is a
// refusal too.
func checkOrigin() error {
	secure, err := atSecure()
	if err != nil {
		return fmt.Errorf("read the auxiliary vector: %w", err)
	}
	if secure || os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid() {
		return errors.New("started with raised privilege (set-user-ID, set-group-ID or file capabilities); " +
			Name + " runs only as goinetd's child, with goinetd's credentials")
	}
	return parentIsGoinetd()
}

// atSecure reports the AT_SECURE entry of the process's auxiliary vector.
func atSecure() (bool, error) {
	auxv, err := unix.Auxv()
	if err != nil {
		return false, err
	}
	for _, kv := range auxv {
		if kv[0] == elfATSecure {
			return kv[1] != 0, nil
		}
	}
	return false, errors.New("no AT_SECURE entry")
}

// parentIsGoinetd returns nil if the parent process runs the same
// executable as this one, with the same effective user and group ids (the
// owner of /proc/PID), and was alive throughout the check.
func parentIsGoinetd() error {
	notGoinetd := errors.New("the parent process is not goinetd; " + Name + " runs only as goinetd's child")
	ppid := unix.Getppid()
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	proc := "/proc/" + strconv.Itoa(ppid)
	dir, err := unix.Open(proc, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w (open %s: %v)", notGoinetd, proc, err)
	}
	defer unix.Close(dir)
	var owner, exe unix.Stat_t
	if err := unix.Fstat(dir, &owner); err != nil {
		return fmt.Errorf("%w (stat %s: %v)", notGoinetd, proc, err)
	}
	if err := unix.Fstatat(dir, "exe", &exe, 0); err != nil {
		return fmt.Errorf("%w (stat %s/exe: %v)", notGoinetd, proc, err)
	}
	if exe.Dev != self.Dev || exe.Ino != self.Ino ||
		int(owner.Uid) != os.Geteuid() || int(owner.Gid) != os.Getegid() {
		return notGoinetd
	}
	if unix.Getppid() != ppid {
		return notGoinetd // the parent exited during the check
	}
	return nil
}
