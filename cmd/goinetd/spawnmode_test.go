package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/goinetd/goinetd/spawner"
)

// TestSpawnModeFromEnvironment starts goinetd with each value of
// GOINETD_SPAWN. The "serving" record names the mode, and the spawn path
// shows in how a failed exec is learnt: goinetd's own spawn, when no other
// handler runs, does not wait for the exec and learns of its failure when
// it reaps the child (the record has its pid); syscall.ForkExec learns it
// before it returns (no child left, no pid). Any other value is refused.
func TestSpawnModeFromEnvironment(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("goinetd's own spawn is for amd64 only: every mode is forkexec")
	}
	for _, tc := range []struct {
		value string // "": unset
		want  spawner.SpawnMode
	}{
		{"", spawner.SpawnVfork},
		{"vfork", spawner.SpawnVfork},
		{"forkexec", spawner.SpawnForkExec},
	} {
		t.Run("GOINETD_SPAWN="+tc.value, func(t *testing.T) {
			echoPort, gonePort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
			handler := filepath.Join(t.TempDir(), "handler")
			copyFile(t, filepath.Join(bin, "echo"), handler)
			d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", echoPort)+
				programService("gone", gonePort, handler, nil), withSpawnEnv(tc.value))
			if got := spawner.SpawnMode(d.spawnMode()); got != tc.want {
				t.Errorf("serving record: got spawn=%q; want %q", got, tc.want)
			}
			if got := exchange(t, addr(echoPort), "hello"); got != "hello" {
				t.Errorf("echo: got %q; want %q", got, "hello")
			}
			if err := os.Remove(handler); err != nil {
				t.Fatal(err)
			}
			d.waitLog(func(r record) bool { return r.msg() == "connection ended" && r.str("service") == "echo" })
			expectClosed(t, dial(t, "", addr(gonePort)))
			failed := d.waitLog(func(r record) bool { return r.msg() == "spawn failed" && r.str("service") == "gone" })
			if reaped := failed.str("pid") != ""; reaped != (tc.want == spawner.SpawnVfork) {
				t.Errorf("exec failure learnt when the child was reaped: got %v; want %v (%v)",
					reaped, tc.want == spawner.SpawnVfork, failed)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		d := launch(t, jsonLog+echoService("echo", "127.0.0.1", freePort(t, "127.0.0.1")), withSpawnEnv("posix_spawn"))
		if code := d.wait(); code != 2 {
			t.Errorf("exit status: got %d; want 2", code)
		}
		want := `goinetd: GOINETD_SPAWN="posix_spawn": want "vfork" (the default) or "forkexec"`
		if got := d.logs.String(); got != want {
			t.Errorf("output: got %q; want %q", got, want)
		}
	})
}

// withSpawnEnv sets GOINETD_SPAWN to value, or unsets it if value is "".
func withSpawnEnv(value string) func(*exec.Cmd) {
	return func(c *exec.Cmd) {
		c.Env = slices.DeleteFunc(c.Env, func(kv string) bool { return strings.HasPrefix(kv, spawner.SpawnEnv+"=") })
		if value != "" {
			c.Env = append(c.Env, fmt.Sprintf("%s=%s", spawner.SpawnEnv, value))
		}
	}
}
