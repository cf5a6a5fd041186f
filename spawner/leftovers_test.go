package spawner

import (
	"os"
	"slices"
	"testing"
)

func TestParentPID(t *testing.T) {
	for _, c := range []struct {
		stat string
		want int
		ok   bool
	}{
		{"4242 (sleep) S 17 4242 4242 0 -1", 17, true},
		{"4242 (a) b) (c) R 1 4242 4242 0 -1", 1, true}, // a command name may hold ") ("
		{"4242 (sleep) S", 0, false},
		{"garbage", 0, false},
	} {
		got, ok := parentPID([]byte(c.stat))
		if got != c.want || ok != c.ok {
			t.Errorf("parentPID(%q): got %d, %v; want %d, %v", c.stat, got, ok, c.want, c.ok)
		}
	}
}

func TestChildPIDsListsOnlyOwnChildren(t *testing.T) {
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
	if err != nil {
		t.Skipf("needs /bin/sleep: %v", err)
	}
	defer p.Wait()
	defer p.Kill()
	pids := childPIDs()
	if !slices.Contains(pids, p.Pid) {
		t.Errorf("childPIDs(): got %v; want it to hold the child %d", pids, p.Pid)
	}
	if slices.Contains(pids, os.Getppid()) || slices.Contains(pids, os.Getpid()) {
		t.Errorf("childPIDs(): got %v; want neither this process nor its parent", pids)
	}
}

// BenchmarkKillProcessGroup is what the reaper adds per handler exit under
// kill_group_on_exit when the handler left nothing behind, the usual case:
// one kill(2) that finds no group. The group is one that can never exist:
// a pid is always below PID_MAX_LIMIT, 1<<22.
//
//	go test -run '^$' -bench KillProcessGroup ./spawner/
func BenchmarkKillProcessGroup(b *testing.B) {
	for b.Loop() {
		killProcessGroup(1 << 22)
	}
}
