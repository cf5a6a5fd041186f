package main

// A small harness that runs lastaccess as goinetd does: the real goinetd
// binary, built once per test run when a test first needs it, serving
// real handler processes on loopback ports to real TCP clients.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/haproxytest"
	"golang.org/x/sys/unix"
)

var (
	buildGoinetd sync.Once
	goinetdBin   string // goinetd, built beside lastaccessBin
	echoBin      string // the bundled echo handler
	buildErr     error
)

// goinetdBinaries builds goinetd and the echo handler into the folder of
// lastaccessBin, once, without the race detector, as the Makefile does.
func goinetdBinaries(tb testing.TB) (goinetd, echo string) {
	tb.Helper()
	buildGoinetd.Do(func() {
		dir := filepath.Dir(lastaccessBin)
		cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/goinetd", "../echo")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build goinetd and echo: %v\n%s", err, out)
			return
		}
		goinetdBin, echoBin = filepath.Join(dir, "goinetd"), filepath.Join(dir, "echo")
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return goinetdBin, echoBin
}

// goinetdProc is one goinetd started by a test.
type goinetdProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited and its log is read
	mu   sync.Mutex
	log  strings.Builder // its stderr: JSON log records
}

// startGoinetd writes config (TOML; a [server] table is added) into a fresh
// folder, starts goinetd on it with env as its environment, and waits for
// its "serving" record. The test's cleanup stops it with SIGTERM (SIGKILL
// after 10 s) and waits for it; goinetd reaps its handlers.
func startGoinetd(tb testing.TB, config string, env ...string) *goinetdProc {
	tb.Helper()
	goinetd, _ := goinetdBinaries(tb)
	path := filepath.Join(tb.TempDir(), "inetd.toml")
	config = "[server]\nlog_format = \"json\"\n" + config
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(goinetd, "-config", path)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	g := &goinetdProc{cmd: cmd, done: make(chan struct{})}
	serving := make(chan struct{})
	go func() {
		defer close(g.done)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			g.mu.Lock()
			g.log.WriteString(sc.Text() + "\n")
			g.mu.Unlock()
			if strings.Contains(sc.Text(), `"msg":"serving"`) {
				once.Do(func() { close(serving) })
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-g.done
			tb.Errorf("goinetd did not stop within 10 s of SIGTERM; killed")
		}
	})
	select {
	case <-serving:
	case <-g.done:
		tb.Fatalf("goinetd exited before serving; log:\n%s", g.logText())
	case <-time.After(10 * time.Second):
		tb.Fatalf("goinetd not serving after 10 s; log:\n%s", g.logText())
	}
	return g
}

func (g *goinetdProc) logText() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

// children returns the pids of goinetd's running handlers: the children
// of each of its threads.
func (g *goinetdProc) children() []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", g.cmd.Process.Pid))
	var pids []int
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue // the thread is gone
		}
		for _, f := range strings.Fields(string(data)) {
			p, _ := strconv.Atoi(f)
			pids = append(pids, p)
		}
	}
	return pids
}

// handlersCPU returns the CPU time (user and system) of goinetd's
// handlers that have ended and been reaped so far, from its
// /proc/PID/stat (cutime and cstime, in clock ticks of 10 ms).
func (g *goinetdProc) handlersCPU(tb testing.TB) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command, which is in parentheses: state is 3, cutime 16.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	cutime, _ := strconv.ParseInt(fields[16-3], 10, 64)
	cstime, _ := strconv.ParseInt(fields[17-3], 10, 64)
	return time.Duration(cutime+cstime) * 10 * time.Millisecond
}

// freeTCPPort returns a loopback port that was free a moment ago.
func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serviceTOML is a goinetd service on 127.0.0.1:port running program
// with args, with no per-source cap and room for 256 connections.
func serviceTOML(name string, port int, program string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf("[services.%s]\naddress = \"127.0.0.1\"\nport = %d\nprogram = %q\nargs = [%s]\nmax_per_source = 0\nmax_connections = 256\n",
		name, port, program, strings.Join(quoted, ", "))
}

// loopbackDialer dials from the loopback address from, with the port
// picked at connect(2) (IP_BIND_ADDRESS_NO_PORT), so that many
// connections from one address can reuse ports in TIME_WAIT.
func loopbackDialer(from string) *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)},
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return err
		},
	}
}

// exchange connects to port from the address of d, sends payload and
// half-closes (unless payload is empty: lastaccess reads nothing, and a
// balancer may drop a connection its client closes before it has reached
// a server), and reads the whole reply, within timeout.
func exchange(ctx context.Context, d *net.Dialer, port int, payload string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if payload != "" {
		if _, err := io.WriteString(c, payload); err != nil {
			return "", err
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return "", err
		}
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// startHAProxy runs HAProxy with a TCP frontend on a free loopback port
// that balances connections round robin over the backends (loopback
// ports), with a PROXY protocol v2 header naming the client, and returns
// the frontend's port.
func startHAProxy(tb testing.TB, backends ...int) int {
	tb.Helper()
	front := freeTCPPort(tb)
	haproxytest.Start(tb, front, "send-proxy-v2", backends...)
	return front
}
