package spawner

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DropInherited undoes what goinetd's own process may have inherited from
// whoever started it and must not pass on to handlers:
//
//   - every descriptor above 2 becomes close-on-exec, so that a descriptor
//     leaked by a shell, a supervisor or a test harness never reaches a
//     handler;
//   - every signal ignored at startup gets its default disposition back.
//     Ignored signals survive exec, so without this a handler of
//     `nohup goinetd` would ignore SIGHUP, and one started from a shell's
//     background job would ignore SIGINT and SIGQUIT;
//   - its controlling terminal is given up (see dropTerminal).
//
// Call it once, first thing, before any goroutine opens a descriptor that
// must stay open across exec.
func DropInherited() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark inherited descriptors close-on-exec: %w", err)
	}
	if err := dropTerminal(); err != nil {
		return err
	}
	ignored, err := ignoredSignals()
	if err != nil {
		return err
	}
	// A zero struct sigaction is SIG_DFL with no flags and an empty mask,
	// whatever the architecture's layout.
	var dfl [4]uint64
	for sig := 1; sig <= 64; sig++ {
		if ignored&(1<<(sig-1)) == 0 {
			continue
		}
		_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
			uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		if errno != 0 {
			return fmt.Errorf("restore the default action of signal %d: %w", sig, errno)
		}
	}
	return nil
}

// ignoredSignals returns the process's ignored-signal mask (bit n-1 for
// signal n), from /proc/self/status.
func ignoredSignals() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read ignored signals: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("read ignored signals: %q: %w", line, err)
			}
			return mask, nil
		}
	}
	return 0, fmt.Errorf("read ignored signals: no SigIgn in /proc/self/status")
}

// dropTerminal gives up goinetd's controlling terminal, if it has one
// (started from a shell, sudo, tmux), so that nothing goinetd starts can
// reach it: handlers inherit no controlling terminal. The terminal's
// signals still reach goinetd: Ctrl-C signals its foreground process
// group, which goinetd stays in.
//
// A session leader keeps its terminal: TIOCNOTTY would send SIGHUP and
// SIGCONT to the terminal's foreground group, goinetd's own most likely,
// and SIGHUP would kill it before it handles the signal. Its handlers
// then start in a session of their own (hasTerminal, Server.newSession).
func dropTerminal() error {
	if sid, _ := unix.Getsid(0); sid == unix.Getpid() {
		return nil
	}
	tty, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // ENXIO: no controlling terminal
	}
	defer unix.Close(tty)
	if err := unix.IoctlSetInt(tty, unix.TIOCNOTTY, 0); err != nil {
		return fmt.Errorf("give up the controlling terminal (TIOCNOTTY): %w", err)
	}
	return nil
}

// hasTerminal reports whether goinetd has a controlling terminal, which
// its handlers would share unless each starts a session of its own:
// goinetd leads its own session (dropTerminal keeps the terminal then), or
// it could not give it up.
func hasTerminal() bool {
	tty, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false // ENXIO: none
	}
	unix.Close(tty)
	return true
}
