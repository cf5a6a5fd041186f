package spawner

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TrampolineName is argv[0] of goinetd when it runs as the listen_fds
// trampoline; main must call Trampoline, first thing, when it sees it.
const TrampolineName = "goinetd-listen-fds"

// Trampoline runs in a child that goinetd started by executing itself, as
// the last step before the handler of a listen_fds service. args are the
// handler's path and argv.
//
// sd_listen_fds(3) accepts the passed socket only if LISTEN_PID is the pid
// of the process reading it, which is the child's own pid: not known to
// goinetd until fork returns, and Go cannot run code between fork and
// exec. The trampoline is that code: it sets LISTEN_PID to its own pid and
// execs the handler, which keeps the pid (and fds 0-3) across exec. It
// returns only if the exec fails, with the exit status to use.
func Trampoline(args []string) int {
	if len(args) < 2 {
		fmt.Fprintf(os.Stderr, "%s: want PROGRAM ARGV0 [ARG...], got %q\n", TrampolineName, args)
		return 127
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LISTEN_PID=") {
			env = append(env, kv)
		}
	}
	env = append(env, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := unix.Exec(args[0], args[1:], env)
	fmt.Fprintf(os.Stderr, "%s: exec %s: %v\n", TrampolineName, args[0], err)
	return 127
}
