// Package haproxytest runs a real HAProxy for goinetd's tests: a TCP
// frontend on a loopback port, balancing over goinetd backends, with the
// PROXY protocol header the test asks for.
package haproxytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start runs HAProxy in the foreground with a TCP frontend on
// 127.0.0.1:front that balances connections round robin over backends
// (ports on 127.0.0.1), each server line ending in serverOptions (such as
// "send-proxy-v2"). It returns once the frontend listens, which it sees
// in /proc/net/tcp rather than by connecting: a connection would reach a
// backend and start a handler. The test's cleanup kills HAProxy, and
// prints its output if the test failed. It skips the test when HAProxy is
// not installed.
func Start(tb testing.TB, front int, serverOptions string, backends ...int) {
	tb.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		tb.Skipf("needs haproxy (make deps installs Debian's package): %v", err)
	}
	cfg := fmt.Sprintf("global\n    maxconn 1000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"+
		"frontend in\n    bind 127.0.0.1:%d\n    default_backend goinetd\nbackend goinetd\n    balance roundrobin\n", front)
	for i, port := range backends {
		cfg += fmt.Sprintf("    server g%d 127.0.0.1:%d %s\n", i, port, serverOptions)
	}
	path := filepath.Join(tb.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", path)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if tb.Failed() {
			tb.Logf("haproxy output:\n%s", out)
		}
	})
	listening := fmt.Sprintf(" 0100007F:%04X 00000000:0000 0A ", front)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if table, err := os.ReadFile("/proc/net/tcp"); err == nil && strings.Contains(string(table), listening) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("haproxy not listening on port %d after 10 s; output:\n%s", front, out)
		}
		time.Sleep(10 * time.Millisecond) // polling the port, with a deadline
	}
}
