package spawner

// The handler sandbox.
//
// A service's sandbox keys (config.Sandbox) are applied where they can be
// applied without a race, and as cheaply as possible:
//
//   - pass_env is resolved once, in goinetd, when the service is
//     prepared: the named variables of goinetd's own environment join the
//     service's environment template. Nothing is looked up per connection.
//   - user, group and chroot, on their own, need nothing but Go's
//     syscall.ForkExec (rather than goinetd's own spawn, which keeps
//     goinetd's credentials and root), which does in the child, between
//     fork and exec:
//     chroot, setgroups, setgid, setuid, chdir to the workdir (inside the
//     root, as the handler's user), execve of the program (a path inside
//     the root). The handler is execed directly.
//   - rlimits, nice and umask (and LISTEN_PID for listen_fds) must be set
//     in the child too, before its program starts, but neither ForkExec
//     nor goinetd's own spawn has a hook for them: the code between a
//     vfork and its exec may only make raw system calls. Setting them
//     from goinetd after fork (prlimit on the pid) would race with the
//     program; setting them on goinetd around the fork would race with
//     every other spawn. So for these services the child execs goinetd
//     itself, as the trampoline (see trampoline.Run), which runs as root when
//     a user is set: it sets the limits, the nice value and the umask,
//     chroots, switches to the handler's credentials last, and execs the
//     program, which keeps its pid. ForkExec is then given no credential
//     and no root: the trampoline does both, in that order.
//
// The trampoline costs one more execve per handler start, of goinetd's
// binary: a Go program starting, a few milliseconds. Only services with
// rlimits, nice, umask or listen_fds pay it, and its argv is built once,
// here, not per connection.
//
// What needs root: user and group (setgroups, setgid, setuid; config lets
// only root run handlers as another user), chroot (CAP_SYS_CHROOT), a negative nice value
// (CAP_SYS_NICE), and a hard limit above goinetd's own (CAP_SYS_RESOURCE).
// Lower limits, a positive nice value, umask and pass_env need nothing.
//
// A step that ForkExec does and that fails (chroot, the credentials, the
// workdir, exec) fails the spawn at once: it is logged as "spawn failed"
// and the client is closed. A step of the trampoline fails after the fork:
// the trampoline writes one line naming it to the handler's stderr and
// exits 127, which the reaper logs; the client's socket closes with it.

import (
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/internal/trampoline"
)

// sandbox decides how p's handler is started: its process attributes, and
// whether goinetd's trampoline runs first (see trampoline.Run) to do what Go
// cannot do between fork and exec. p.path, p.argv and p.env hold the plain
// program when it is called. It adds pass_env to p.env and, when the
// trampoline is needed, points p.path and p.argv at it; for a chroot
// service started through the trampoline, it also clears p.dir, since
// ForkExec would change to the workdir outside the root (the trampoline
// changes to it inside).
func (s *Server) sandbox(p *service) {
	sb := p.Sandbox
	p.env = passEnv(p.env, p.Env, sb.PassEnv, os.LookupEnv)
	// A process group of its own, and a session when goinetd has a
	// terminal to leave behind, as vfork.NewTemplate says.
	p.sys = &syscall.SysProcAttr{Setsid: s.newSession, Setpgid: !s.newSession}
	cred := credential(sb.Credential, os.Geteuid(), os.Getegid())
	if !needsTrampoline(p.Service) {
		p.sys.Credential = cred
		p.sys.Chroot = sb.Chroot
		return
	}

	in := &trampoline.Instructions{
		Chroot:    sb.Chroot,
		Cred:      cred,
		Dir:       p.Workdir,
		ListenPID: p.ListenFDs,
		Program:   p.path,
		Argv:      p.argv,
		Nice:      sb.Nice,
		Rlimits:   sb.Rlimits,
	}
	if sb.Umask != nil {
		mask := int(sb.Umask.Perm())
		in.Umask = &mask
	}
	p.path = s.self
	p.argv = append([]string{trampoline.Name}, in.Args()...)
	if p.ListenFDs {
		// The trampoline adds LISTEN_PID, its own pid, which the program
		// keeps across exec.
		p.env = append(p.env, "LISTEN_FDS=1", "LISTEN_FDNAMES="+p.Name)
		slices.Sort(p.env)
	}
	if sb.Chroot != "" {
		p.dir = ""
	}
}

// credential returns what the handler's credentials are switched to, for
// goinetd running as euid and egid, or nil if they stay goinetd's. Only
// root may switch to another user (config refuses the key otherwise), but
// setgroups needs root even to change nothing: a goinetd that is not root
// and is asked to run handlers as its own user and group switches nothing,
// and its handlers keep its supplementary groups.
func credential(c *config.Credential, euid, egid int) *syscall.Credential {
	if c == nil || euid != 0 && c.UID == uint32(euid) && c.GID == uint32(egid) {
		return nil
	}
	return &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: slices.Clone(c.Groups)}
}

// needsTrampoline reports whether svc's handler needs settings that Go's
// ForkExec cannot apply between fork and exec.
func needsTrampoline(svc *config.Service) bool {
	return svc.ListenFDs || len(svc.Rlimits) > 0 || svc.Nice != nil || svc.Umask != nil
}

// passEnv returns env plus NAME=value for each of names that lookup finds
// (goinetd's own environment, when the service is prepared), sorted. A
// name that lookup does not find is left out. A name the service's env
// sets (configured, "NAME=value" entries) keeps the configured value: the
// config file wins over goinetd's environment. PATH replaces the default
// PATH. Never passed: the variables goinetd sets for each connection or
// for listen_fds (config.ConnectionVariables), which the handler would see
// twice, or wrong; and NOTIFY_SOCKET, goinetd's own channel to systemd.
func passEnv(env, configured, names []string, lookup func(string) (string, bool)) []string {
	out := slices.Clone(env)
	for _, name := range names {
		prefix := name + "="
		setByConfig := slices.ContainsFunc(configured, func(kv string) bool { return strings.HasPrefix(kv, prefix) })
		if setByConfig || name == "NOTIFY_SOCKET" || slices.Contains(config.ConnectionVariables, name) {
			continue
		}
		value, ok := lookup(name)
		if !ok {
			continue
		}
		out = slices.DeleteFunc(out, func(kv string) bool { return strings.HasPrefix(kv, prefix) })
		out = append(out, prefix+value)
	}
	slices.Sort(out)
	return out
}
