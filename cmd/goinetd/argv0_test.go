package main

import (
	"path/filepath"
	"testing"
)

// TestArgv0 checks that a handler sees the argv[0] its service's argv0
// sets, and its program's base name without one, when it is executed
// directly and through the trampoline (nice needs it).
func TestArgv0(t *testing.T) {
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"default", "", filepath.Base(testBinary(t)) + "\n-x\n"},
		{"set", `argv0 = "in.fingerd"`, "in.fingerd\n-x\n"},
		{"trampoline", "argv0 = \"busybox-echo\"\nnice = 1", "busybox-echo\n-x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t, "127.0.0.1")
			startDaemon(t, jsonLog+helperService(t, "names", port, "argv", `args = ["-x"]`, tc.extra))
			if got := exchange(t, addr(port), ""); got != tc.want {
				t.Errorf("handler's argv: got %q; want %q", got, tc.want)
			}
		})
	}
}
