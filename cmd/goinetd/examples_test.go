package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
)

// shippedTree copies the repository's configs and example handlers into a
// temporary tree laid out like a checkout after `make build`, with bin/
// holding this run's binaries, and returns its root.
func shippedTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(root, "examples"), os.DirFS("../../examples")); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "../../inetd.toml", filepath.Join(root, "inetd.toml"))
	return root
}

func TestShippedConfigsLoad(t *testing.T) {
	root := shippedTree(t)
	configs, _ := filepath.Glob(filepath.Join(root, "examples", "*.toml"))
	configs = append(configs, filepath.Join(root, "inetd.toml"))
	if len(configs) < 2 {
		t.Fatalf("found shipped configs %v; want inetd.toml and examples/*.toml", configs)
	}
	for _, path := range configs {
		cfg, err := config.Load(path)
		if err != nil {
			t.Errorf("shipped config %s:\n%v", path, err)
			continue
		}
		if len(cfg.Enabled()) == 0 {
			t.Errorf("shipped config %s serves nothing", path)
		}
	}
}

// TestExampleConfigServes runs examples/inetd.toml, on free ports, with
// socat and nc as the clients of its shell and Python handlers.
func TestExampleConfigServes(t *testing.T) {
	for _, tool := range []string{"socat", "nc", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it): %v", tool, err)
		}
	}
	root := shippedTree(t)
	example, err := os.ReadFile(filepath.Join(root, "examples", "inetd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	text := regexp.MustCompile(`(?m)^port = (\d+)`).ReplaceAllStringFunc(string(example), func(m string) string {
		p := freePort(t, "127.0.0.1")
		ports[strings.TrimPrefix(m, "port = ")] = p
		return fmt.Sprintf("port = %d", p)
	})
	text = strings.Replace(text, `log_format = "text"`, `log_format = "json"`, 1)
	path := filepath.Join(root, "examples", "test.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := launchFile(t, path)
	d.waitLog(func(r record) bool { return r.msg() == "serving" })

	hello := fmt.Sprintf("TCP:127.0.0.1:%d", ports["17009"])
	cmd := exec.Command("socat", "-t5", "-T10", "-", hello)
	cmd.Stdin = strings.NewReader("hi there\n")
	out, err := cmd.Output()
	want := "Hello 127.0.0.1, port "
	if err != nil || !strings.HasPrefix(string(out), want) || !strings.HasSuffix(string(out), "; this is goinetd.\nyou said: hi there\n") {
		t.Errorf("socat to hello.sh: got %q, %v; want a greeting and the echoed line", out, err)
	}
	d.waitLog(func(r record) bool {
		return r.msg() == "stderr" && r.str("service") == "hello" && r.str("text") == "hello.sh: 127.0.0.1 said goodbye"
	})

	cmd = exec.Command("nc", "-N", "-w", "10", "127.0.0.1", fmt.Sprint(ports["17010"]))
	cmd.Stdin = strings.NewReader("make me loud\n")
	out, err = cmd.Output()
	if want := "upper: ready for 127.0.0.1\nMAKE ME LOUD\nupper.py: served 127.0.0.1\n"; err != nil || string(out) != want {
		t.Errorf("nc to upper.py: got %q, %v; want %q", out, err, want)
	}

	cmd = exec.Command("socat", "-t5", "-T10", "-", "UNIX-CONNECT:"+filepath.Join(root, "examples", "hello.sock"))
	cmd.Stdin = strings.NewReader("over unix\n")
	out, err = cmd.Output()
	if want := "; this is a unix socket.\nyou said: over unix\n"; err != nil || !strings.HasPrefix(string(out), "Hello process ") || !strings.HasSuffix(string(out), want) {
		t.Errorf("socat to hello.sh over a unix socket: got %q, %v; want a greeting to a process", out, err)
	}

	udp, err := net.Dial("udp", addr(ports["17012"]))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udp.SetDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 64)
	if _, err := udp.Write([]byte("quiet")); err != nil {
		t.Fatal(err)
	}
	if n, err := udp.Read(buf); err != nil || string(buf[:n]) != "QUIET" {
		t.Errorf("udp-upper.py: got %q, %v; want QUIET", buf[:n], err)
	}
	echoUDP, err := net.Dial("udp", addr(ports["17016"]))
	if err != nil {
		t.Fatal(err)
	}
	defer echoUDP.Close()
	echoUDP.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := echoUDP.Write([]byte("over udp")); err != nil {
		t.Fatal(err)
	}
	if n, err := echoUDP.Read(buf); err != nil || string(buf[:n]) != "over udp" {
		t.Errorf("builtin echo over udp: got %q, %v; want %q", buf[:n], err, "over udp")
	}
	if got := exchange(t, addr(ports["17013"]), ""); !strings.HasSuffix(got, "\r\n") {
		t.Errorf("builtin daytime: got %q", got)
	}

	if got := exchange(t, addr(ports["17007"]), "echo\n"); got != "echo\n" {
		t.Errorf("echo: got %q", got)
	}
	if got := exchange(t, addr(ports["17008"]), ""); !strings.HasPrefix(got, "Welcome, 127.0.0.1.\n") {
		t.Errorf("lastaccess: got %q", got)
	}
}

func TestExampleHAProxyConfigIsValid(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skipf("needs haproxy (make deps installs it): %v", err)
	}
	if out, err := exec.Command(haproxy, "-c", "-f", "../../examples/haproxy.cfg").CombinedOutput(); err != nil {
		t.Errorf("haproxy -c examples/haproxy.cfg: %v\n%s", err, out)
	}
}
