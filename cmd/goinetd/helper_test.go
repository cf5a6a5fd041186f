package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// helperVar, set in a service's env, makes the test binary act as a
// handler instead of running tests. Its value picks what it does.
const helperVar = "GOINETD_TEST_HELPER"

// report is what the "report" helper tells the client about its process.
type report struct {
	PID      int               `json:"pid"`
	PGID     int               `json:"pgid"`
	FDs      map[string]string `json:"fds"` // inherited fd -> readlink of /proc/self/fd/N
	Blocking bool              `json:"blocking"`
	Domain   int               `json:"domain"` // fd 0's socket domain (AF_INET, AF_UNIX...); 0 if not a socket
	Cwd      string            `json:"cwd"`
	Env      []string          `json:"env"`
	// Accepting is whether fd 3 is a listening socket (listen-fds mode).
	Accepting bool `json:"accepting,omitempty"`
}

// runHelper runs the handler mode and returns its exit status.
func runHelper(mode string) int {
	switch mode {
	case "report":
		// Look at the descriptors first, before anything can open one.
		fds, err := openFDs()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		flags, err := unix.FcntlInt(0, unix.F_GETFL, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pgid, _ := unix.Getpgid(0)
		cwd, _ := os.Getwd()
		domain, _ := unix.GetsockoptInt(0, unix.SOL_SOCKET, unix.SO_DOMAIN)
		r := report{
			PID: os.Getpid(), PGID: pgid, FDs: fds, Blocking: flags&unix.O_NONBLOCK == 0,
			Domain: domain, Cwd: cwd, Env: os.Environ(),
		}
		if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
			return 1
		}
		return 0
	case "report-hold":
		// Report, then hold the connection until the client closes it.
		fds, _ := openFDs()
		json.NewEncoder(os.Stdout).Encode(report{PID: os.Getpid(), FDs: fds, Env: os.Environ()})
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "sockopts":
		// Report the socket options of fd 0, a TCP connection, as the
		// kernel gives them to the handler.
		json.NewEncoder(os.Stdout).Encode(socketOptionsOf(0))
		return 0
	case "udp-sockopts":
		// A wait-mode UDP handler: answer the datagram on fd 0 with its
		// socket options.
		buf := make([]byte, 65536)
		_, from, err := unix.Recvfrom(0, buf, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "recvfrom on fd 0: %v\n", err)
			return 1
		}
		b, _ := json.Marshal(socketOptionsOf(0))
		if err := unix.Sendto(0, b, 0, from); err != nil {
			fmt.Fprintf(os.Stderr, "sendto: %v\n", err)
			return 1
		}
		return 0
	case "argv":
		// The argv goinetd gave, one item per line.
		fmt.Println(strings.Join(os.Args, "\n"))
		return 0
	case "stderr":
		fmt.Fprintf(os.Stderr, "complaint from %d\nsecond line\n", os.Getpid())
		fmt.Printf("%d\n", os.Getpid())
		return 0
	case "exit3":
		fmt.Printf("%d\n", os.Getpid())
		return 3
	case "exec-ignoring-blocking":
		// Ignore signals 1 (SIGHUP) and 32 (one the Go runtime leaves
		// alone), block SIGUSR1, SIGPIPE and SIGALRM, then become the
		// command in the arguments, which keeps both.
		ign := [4]uint64{1} // SIG_IGN
		for _, sig := range []uintptr{1, 32} {
			if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&ign)), 0, 8, 0, 0); errno != 0 {
				fmt.Fprintf(os.Stderr, "ignore signal %d: %v\n", sig, errno)
				return 1
			}
		}
		// The mask is the thread's: block and exec on the same one.
		runtime.LockOSThread()
		var blocked unix.Sigset_t
		for _, sig := range []unix.Signal{unix.SIGUSR1, unix.SIGPIPE, unix.SIGALRM} {
			blocked.Val[0] |= 1 << (sig - 1)
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &blocked, nil); err != nil {
			fmt.Fprintf(os.Stderr, "block signals: %v\n", err)
			return 1
		}
		args := os.Args[1:]
		err := unix.Exec(args[0], args, os.Environ())
		fmt.Fprintf(os.Stderr, "exec %v: %v\n", args, err)
		return 1
	case "accept2":
		// A wait-mode TCP or unix handler: fd 0 is the listening socket;
		// serve two connections, telling each this process's pid.
		for range 2 {
			fd, _, err := unix.Accept(0)
			if err != nil {
				fmt.Fprintf(os.Stderr, "accept on fd 0: %v\n", err)
				return 1
			}
			unix.Write(fd, []byte(strconv.Itoa(os.Getpid())+"\n"))
			unix.Close(fd)
		}
		return 0
	case "udp-upper":
		// A wait-mode UDP handler: fd 0 holds the datagram, unread.
		buf := make([]byte, 65536)
		n, from, err := unix.Recvfrom(0, buf, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "recvfrom on fd 0: %v\n", err)
			return 1
		}
		reply := strings.ToUpper(string(buf[:n])) + " " + strconv.Itoa(os.Getpid())
		if err := unix.Sendto(0, []byte(reply), 0, from); err != nil {
			fmt.Fprintf(os.Stderr, "sendto: %v\n", err)
			return 1
		}
		return 0
	case "listen-fds":
		// A socket-activated handler: fd 3 is the listening socket.
		accepting, err := unix.GetsockoptInt(3, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		fds, _ := openFDs()
		fd, _, aerr := unix.Accept(3)
		if aerr != nil {
			fmt.Fprintf(os.Stderr, "accept on fd 3: %v %v\n", aerr, err)
			return 1
		}
		r := report{PID: os.Getpid(), FDs: fds, Env: os.Environ(), Accepting: accepting == 1}
		b, _ := json.Marshal(r)
		unix.Write(fd, b)
		unix.Close(fd)
		return 0
	case "tty":
		// Attack the controlling terminal, if any, as a handler running as
		// nobody did: inject input (TIOCSTI) and take the foreground.
		json.NewEncoder(os.Stdout).Encode(attackTerminal())
		return 0
	case "shell":
		// Lead the session whose terminal is fd 0, as an operator's shell
		// does, and run the command in the arguments as its foreground
		// job; pass SIGTERM on to it and exit with its status.
		return runAsJob(os.Args[1:])
	case "kill":
		fmt.Printf("%d\n", os.Getpid())
		unix.Kill(os.Getpid(), unix.SIGKILL)
		select {}
	case "write-shut-read":
		return writeShutRead(os.Args[1:]) // tls_relay_test.go
	case "orphan", "orphan-setsid", "parent", "linger":
		return runLeftoverHelper(mode) // leftovers_test.go
	}
	fmt.Fprintf(os.Stderr, "unknown %s %q\n", helperVar, mode)
	return 2
}

// openFDs lists the descriptors the process inherited through exec, with
// what each refers to. Those are the ones without FD_CLOEXEC: the Go
// runtime opens its own (cgroup files, epoll) close-on-exec.
func openFDs() (map[string]string, error) {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	fds := make(map[string]string)
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return fds, nil
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		for _, name := range names {
			fd, _ := strconv.Atoi(name)
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
				continue
			}
			target, _ := os.Readlink("/proc/self/fd/" + name)
			fds[name] = target
		}
	}
}

// ttyReport is what the "tty" helper reports: its session and terminal,
// and what each attempt on a terminal gave ("ok", or the error).
type ttyReport struct {
	PID     int               `json:"pid"`
	SID     int               `json:"sid"`
	TTY     int               `json:"tty"` // tty_nr of /proc/self/stat: 0 if none
	TIOCSTI map[string]string `json:"tiocsti"`
	OpenTTY string            `json:"open_tty"`  // open("/dev/tty")
	Fg      string            `json:"tcsetpgrp"` // take the terminal's foreground
}

// attackTerminal tries TIOCSTI on its descriptors 0-2 and on /dev/tty,
// and makes its own process group the foreground one of /dev/tty, then
// gives the foreground back.
func attackTerminal() ttyReport {
	r := ttyReport{PID: os.Getpid(), TIOCSTI: map[string]string{}}
	r.SID, _ = unix.Getsid(0)
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		r.TTY, _ = strconv.Atoi(fields[4]) // state ppid pgrp session tty_nr
	}
	inject := func(fd int) string {
		c := byte('#')
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		if errno != 0 {
			return errno.Error()
		}
		return "ok"
	}
	for fd := range 3 {
		r.TIOCSTI[strconv.Itoa(fd)] = inject(fd)
	}
	tty, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		r.OpenTTY = err.Error()
		return r
	}
	defer unix.Close(tty)
	r.OpenTTY = "ok"
	r.TIOCSTI["/dev/tty"] = inject(tty)
	// A background group's tcsetpgrp stops it with SIGTTOU, unless it
	// ignores the signal, as an attacker would.
	signal.Ignore(unix.SIGTTOU)
	fg, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP)
	if err == nil {
		err = unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, unix.Getpgrp())
	}
	if err != nil {
		r.Fg = err.Error()
		return r
	}
	r.Fg = "ok"
	unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, fg)
	return r
}

// runAsJob runs argv as a shell runs a foreground job, and returns its
// exit status.
func runAsJob(argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, unix.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for sig := range terms {
			cmd.Process.Signal(sig)
		}
	}()
	cmd.Wait()
	return cmd.ProcessState.ExitCode()
}

// socketOptionsOf reads the options goinetd may set on socket fd, by
// their C names; an option getsockopt refuses (TCP ones on UDP, IPv6
// ones on IPv4) is left out.
func socketOptionsOf(fd int) map[string]int {
	opts := map[string]int{}
	for _, o := range []struct {
		name       string
		level, opt int
	}{
		{"SO_DOMAIN", unix.SOL_SOCKET, unix.SO_DOMAIN},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF},
		{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF},
		{"SO_MARK", unix.SOL_SOCKET, unix.SO_MARK},
		{"IP_TOS", unix.SOL_IP, unix.IP_TOS},
		{"IP_TTL", unix.SOL_IP, unix.IP_TTL},
		{"IPV6_TCLASS", unix.SOL_IPV6, unix.IPV6_TCLASS},
		{"IPV6_UNICAST_HOPS", unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS},
	} {
		if v, err := unix.GetsockoptInt(fd, o.level, o.opt); err == nil {
			opts[o.name] = v
		}
	}
	return opts
}
