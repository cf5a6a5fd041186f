package trampoline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// Name is argv[0] of goinetd when it runs as the trampoline;
// main must call Run, first thing, when it sees it.
const Name = "goinetd-exec"

// trampolineFailed is the trampoline's exit status when it cannot start
// the handler, as a shell's for a command it cannot run.
const trampolineFailed = 127

// Run runs in a child that goinetd started by executing itself
// (through /proc/self/exe, with argv[0] Name), as the last step
// before a handler whose sandbox Go's fork and exec cannot set up. args
// are its Instructions, encoded by Instructions.Args:
//
//	goinetd-exec [-rlimit NAME=VALUE]... [-nice N] [-umask 0OOO] [-chroot DIR]
//	             [-cred UID:GID:GROUP,...] [-dir DIR] [-listen-pid] -- PROGRAM ARGV0 [ARG...]
//
// It runs as goinetd's user (root, whenever a credential is set), with the
// handler's descriptors and environment. First it checks that goinetd
// started it and that it gained no privilege at exec (checkOrigin, in
// origin_linux.go), and refuses to do anything otherwise. It decodes every instruction
// before it acts on any, and with -listen-pid sets LISTEN_PID to its own
// pid in the environment it will pass on; then it does, in this order:
//
//  1. setrlimit for each -rlimit, soft and hard limit both VALUE (a
//     number, or "unlimited"); NAME is as in the config ("nofile", "as").
//  2. setpriority(PRIO_PROCESS) to the -nice value.
//  3. umask.
//  4. chroot to -chroot, then chdir to its "/", so the working directory
//     is never outside the new root.
//  5. setgroups, setgid, setuid to -cred (GROUPS may be empty: none).
//  6. chdir to -dir (inside the new root, if any), as the handler's user,
//     as Go's ForkExec does for a handler started directly.
//  7. execve PROGRAM (a path inside the new root, if any) with argv
//     ARGV0 ARG... and that environment.
//
// Everything that needs privilege (raising a hard limit, a negative nice
// value, chroot) happens before the credentials change, which is last, so
// a handler can never undo it. The handler keeps the trampoline's pid,
// which LISTEN_PID (sd_listen_fds(3) accepts the socket only if it is the
// reader's own pid) and the reaper's pid table rely on. The trampoline
// opens no descriptor that survives exec: the Go runtime's own are
// close-on-exec, so the handler gets exactly the descriptors goinetd gave.
//
// Run returns only if a step fails: it has printed one line naming
// the step and the error to its standard error (the handler's, so the line
// goes where the service's stderr says) and returns 127, the exit status
// for main to exit with, which the reaper logs.
func Run(args []string) int {
	// A nice value belongs to a thread, and execve keeps the calling
	// thread's: set it on the thread that execs.
	runtime.LockOSThread()
	if err := trampoline(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Name, err)
	}
	return trampolineFailed
}

// trampoline carries out args and execs the handler; it returns only an
// error, naming the failed step.
func trampoline(args []string) error {
	if err := checkOrigin(); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	in, err := parseInstructions(args)
	if err != nil {
		return fmt.Errorf("instructions %q: %w", args, err)
	}
	env := os.Environ()
	if in.ListenPID {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "LISTEN_PID=") })
		env = append(env, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	}
	for _, r := range in.Rlimits {
		// syscall.Setrlimit, not unix's: it also stops syscall.Exec from
		// restoring the soft nofile limit the runtime had at start.
		lim := syscall.Rlimit{Cur: r.Value, Max: r.Value}
		if err := syscall.Setrlimit(r.Resource, &lim); err != nil {
			return fmt.Errorf("setrlimit %s: %w", rlimitArg(r), err)
		}
	}
	if in.Nice != nil {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, *in.Nice); err != nil {
			return fmt.Errorf("setpriority %d: %w", *in.Nice, err)
		}
	}
	if in.Umask != nil {
		syscall.Umask(*in.Umask)
	}
	if in.Chroot != "" {
		if err := syscall.Chroot(in.Chroot); err != nil {
			return fmt.Errorf("chroot %s: %w", in.Chroot, err)
		}
		if err := syscall.Chdir("/"); err != nil {
			return fmt.Errorf("chdir / in %s: %w", in.Chroot, err)
		}
	}
	if c := in.Cred; c != nil {
		// package syscall's calls change every thread of the process, not
		// only the calling one as the raw system calls do.
		groups := make([]int, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups %v: %w", c.Groups, err)
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			return fmt.Errorf("setgid %d: %w", c.Gid, err)
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			return fmt.Errorf("setuid %d: %w", c.Uid, err)
		}
	}
	if in.Dir != "" {
		if err := syscall.Chdir(in.Dir); err != nil {
			return fmt.Errorf("chdir %s: %w", in.Dir, err)
		}
	}
	err = syscall.Exec(in.Program, in.Argv, env)
	return fmt.Errorf("exec %s: %w", in.Program, err)
}

// Instructions is what the trampoline does before it execs a handler; see
// Run for the order.
type Instructions struct {
	Rlimits   []config.Rlimit
	Nice      *int
	Umask     *int
	Chroot    string
	Cred      *syscall.Credential
	Dir       string
	ListenPID bool
	Program   string   // the handler, a path inside Chroot if set
	Argv      []string // its argv, argv[0] included
}

// rlimitArg is r as the trampoline's -rlimit takes it: NAME=VALUE.
func rlimitArg(r config.Rlimit) string {
	if r.Value == unix.RLIM_INFINITY {
		return r.Name + "=unlimited"
	}
	return r.Name + "=" + strconv.FormatUint(r.Value, 10)
}

// Args encodes in as the trampoline's arguments, argv[0] excluded, in the
// format Run documents; parseInstructions decodes them.
func (in *Instructions) Args() []string {
	var args []string
	for _, r := range in.Rlimits {
		args = append(args, "-rlimit", rlimitArg(r))
	}
	if in.Nice != nil {
		args = append(args, "-nice", strconv.Itoa(*in.Nice))
	}
	if in.Umask != nil {
		args = append(args, "-umask", fmt.Sprintf("%04o", *in.Umask))
	}
	if in.Chroot != "" {
		args = append(args, "-chroot", in.Chroot)
	}
	if c := in.Cred; c != nil {
		groups := make([]string, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = strconv.FormatUint(uint64(g), 10)
		}
		args = append(args, "-cred", fmt.Sprintf("%d:%d:%s", c.Uid, c.Gid, strings.Join(groups, ",")))
	}
	if in.Dir != "" {
		args = append(args, "-dir", in.Dir)
	}
	if in.ListenPID {
		args = append(args, "-listen-pid")
	}
	args = append(args, "--", in.Program)
	return append(args, in.Argv...)
}

// parseInstructions decodes the trampoline's arguments. Every value is
// checked before anything is done, so a bad one changes nothing.
func parseInstructions(args []string) (*Instructions, error) {
	in := &Instructions{}
	flags := flag.NewFlagSet(Name, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.Func("rlimit", "", func(v string) error {
		r, err := parseRlimit(v)
		if err != nil {
			return err
		}
		in.Rlimits = append(in.Rlimits, r)
		return nil
	})
	flags.Func("nice", "", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < -20 || n > 19 {
			return fmt.Errorf("%q is not a nice value (-20 to 19)", v)
		}
		in.Nice = &n
		return nil
	})
	flags.Func("umask", "", func(v string) error {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("%q is not an octal umask", v)
		}
		mask := int(m)
		in.Umask = &mask
		return nil
	})
	flags.Func("chroot", "", func(v string) error {
		if !strings.HasPrefix(v, "/") {
			return fmt.Errorf("%q is not an absolute path", v)
		}
		in.Chroot = v
		return nil
	})
	flags.Func("cred", "", func(v string) (err error) {
		in.Cred, err = parseCred(v)
		return err
	})
	flags.Func("dir", "", func(v string) error {
		if !strings.HasPrefix(v, "/") {
			return fmt.Errorf("%q is not an absolute path", v)
		}
		in.Dir = v
		return nil
	})
	flags.BoolVar(&in.ListenPID, "listen-pid", false, "")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	rest := flags.Args()
	if len(args)-len(rest) < 1 || args[len(args)-len(rest)-1] != "--" || len(rest) < 2 {
		return nil, errors.New("want -- PROGRAM ARGV0 [ARG...] after the options")
	}
	in.Program, in.Argv = rest[0], rest[1:]
	return in, nil
}

// parseRlimit decodes NAME=VALUE.
func parseRlimit(v string) (config.Rlimit, error) {
	name, value, _ := strings.Cut(v, "=")
	resource, ok := config.RlimitResource(name)
	if !ok {
		return config.Rlimit{}, fmt.Errorf("%q: no resource %q", v, name)
	}
	r := config.Rlimit{Name: name, Resource: resource, Value: unix.RLIM_INFINITY}
	if value != "unlimited" {
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return config.Rlimit{}, fmt.Errorf("%q: %q is not a number or \"unlimited\"", v, value)
		}
		r.Value = n
	}
	return r, nil
}

// parseCred decodes UID:GID:GROUP,GROUP,...
func parseCred(v string) (*syscall.Credential, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%q is not UID:GID:GROUPS", v)
	}
	ids := []string{parts[0], parts[1]}
	if parts[2] != "" {
		ids = append(ids, strings.Split(parts[2], ",")...)
	}
	nums := make([]uint32, len(ids))
	for i, id := range ids {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a numeric id", v, id)
		}
		nums[i] = uint32(n)
	}
	return &syscall.Credential{Uid: nums[0], Gid: nums[1], Groups: nums[2:]}, nil
}
