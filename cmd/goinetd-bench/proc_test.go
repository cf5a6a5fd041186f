package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// statLine is a /proc/PID/stat line as Linux writes it.
func statLine(pid int, comm string, state byte, ppid int, utime, stime, cutime, cstime uint64) string {
	return fmt.Sprintf("%d (%s) %c %d %d %d 0 -1 4194560 120 0 0 0 %d %d %d %d 20 0 1 0 4242 10485760 300 "+
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		pid, comm, state, ppid, pid, pid, utime, stime, cutime, cstime)
}

func TestParseStat(t *testing.T) {
	for _, comm := range []string{"cat", "a b", "x) S 1 (y", "(sd-pam)"} {
		st, err := parseStat([]byte(statLine(4321, comm, 'Z', 17, 11, 22, 33, 44)))
		if err != nil {
			t.Fatalf("comm %q: %v", comm, err)
		}
		want := procStat{pid: 4321, comm: comm, state: 'Z', ppid: 17, utime: 11, stime: 22, cutime: 33, cstime: 44}
		if st != want {
			t.Errorf("comm %q: got %+v; want %+v", comm, st, want)
		}
	}
	for _, bad := range []string{"", "12 cat S 1", "12 (cat) S 1 2 3", "x (cat) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20",
		"12 (cat) S 1 1 1 0 -1 0 0 0 0 0 1 x 3 4 20"} {
		if st, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, nil; want an error", bad, st)
		}
	}
}

func TestParseStatus(t *testing.T) {
	data := "Name:\tgoinetd\nState:\tS (sleeping)\nVmHWM:\t   13312 kB\nVmRSS:\t   11024 kB\nThreads:\t8\nSigQ:\t0/94000\n"
	st, err := parseStatus([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStatus{threads: 8, rssKB: 11024, hwmKB: 13312}); st != want {
		t.Errorf("got %+v; want %+v", st, want)
	}
	// A zombie has no memory lines.
	if _, err := parseStatus([]byte("Name:\tcat\nState:\tZ (zombie)\nThreads:\t1\n")); err == nil {
		t.Error("a status without VmRSS: got no error; want one")
	}
	if _, err := parseStatus([]byte("Threads:\tmany\nVmRSS:\t1 kB\nVmHWM:\t1 kB\n")); err == nil {
		t.Error("Threads: many: got no error; want one")
	}
}

func TestOwnProcess(t *testing.T) {
	p := proc{root: "/proc"}
	st, err := p.stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.pid != os.Getpid() || st.ppid != os.Getppid() {
		t.Errorf("own stat: got pid %d ppid %d; want %d %d", st.pid, st.ppid, os.Getpid(), os.Getppid())
	}
	status, err := p.status(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if status.threads < 1 || status.rssKB <= 0 || status.hwmKB < status.rssKB {
		t.Errorf("own status: got %+v; want threads >= 1 and 0 < VmRSS <= VmHWM", status)
	}
}

// fakeProc writes a procfs tree of processes, each pid: {ppid, state}.
func fakeProc(t *testing.T, procs map[int][2]int) proc {
	root := t.TempDir()
	for pid, v := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		line := statLine(pid, "p"+strconv.Itoa(pid), byte(v[1]), v[0], 1, 2, 3, 4)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not processes: skipped by the scan.
	os.WriteFile(filepath.Join(root, "uptime"), []byte("1.0 2.0\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	return proc{root: root}
}

func pidsOf(kids []procStat) []int {
	var pids []int
	for _, k := range kids {
		pids = append(pids, k.pid)
	}
	slices.Sort(pids)
	return pids
}

func TestChildren(t *testing.T) {
	p := fakeProc(t, map[int][2]int{
		1:   {0, 'S'},
		100: {1, 'S'},
		101: {100, 'S'},
		102: {100, 'Z'},
		103: {1, 'R'},
		104: {101, 'S'}, // a grandchild
	})
	kids, err := p.children(100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pidsOf(kids), []int{101, 102}; !slices.Equal(got, want) {
		t.Errorf("children of 100 by scanning: got %v; want %v", got, want)
	}
	if live, zombies := childCounts(kids); live != 1 || zombies != 1 {
		t.Errorf("childCounts: got %d live, %d zombies; want 1, 1", live, zombies)
	}

	// With CONFIG_PROC_CHILDREN, each thread lists its own children; a
	// pid that has exited or been reused by another parent is left out.
	for tid, list := range map[string]string{"100": "101 ", "105": "102 103\n"} {
		dir := filepath.Join(p.root, "100", "task", tid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "children"), []byte(list), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kids, err = p.children(100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pidsOf(kids), []int{101, 102}; !slices.Equal(got, want) {
		t.Errorf("children of 100 from task/*/children: got %v; want %v", got, want)
	}
	if kids, err := p.children(103); err != nil || len(kids) != 0 {
		t.Errorf("children of 103: got %v, %v; want none", pidsOf(kids), err)
	}
}

func TestClockTicks(t *testing.T) {
	auxv := func(pairs ...uint64) []byte {
		b := make([]byte, 8*len(pairs))
		for i, v := range pairs {
			binary.NativeEndian.PutUint64(b[8*i:], v)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		auxv []byte
		want uint64
	}{
		{"AT_CLKTCK", auxv(6, 4096, 17, 250, 0, 0), 250},
		{"none", auxv(6, 4096, 0, 0), 100},
		{"after the end", auxv(6, 4096, 0, 0, 17, 250), 100},
		{"empty", nil, 100},
		{"truncated", auxv(6, 4096, 17)[:20], 100},
	} {
		if got := clockTicks(tc.auxv); got != tc.want {
			t.Errorf("%s: got %d; want %d", tc.name, got, tc.want)
		}
	}
	if data, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if got := clockTicks(data); got != 100 {
			t.Logf("this kernel's USER_HZ is %d", got)
		}
	}
}

func TestListenInodes(t *testing.T) {
	// Port 0x5B6F = 23407, listening (0A) twice, plus an established
	// connection to it and a listener on another port.
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:5B6F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:5B70 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91235 1 0000000000000000 100 0 0 10 0
   2: 0100007F:8A2C 0100007F:5B6F 01 00000000:00000000 00:00000000 00000000     0        0 91236 1 0000000000000000 20 4 30 10 -1
   3: 00000000:5B6F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91237 1 0000000000000000 100 0 0 10 0
`
	got, err := listenInodes([]byte(table), 23407)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[91234] || !got[91237] {
		t.Errorf("got %v; want inodes 91234 and 91237", got)
	}
	if got, err := listenInodes([]byte(table), 80); err != nil || len(got) != 0 {
		t.Errorf("port 80: got %v, %v; want none", got, err)
	}
	bad := "header\n   0: 0100007F:ZZZZ 00000000:0000 0A 0 0 0 0 0 1 0\n"
	if _, err := listenInodes([]byte(bad), 1); err == nil {
		t.Error("a bad port: got no error; want one")
	}
}

func TestListening(t *testing.T) {
	p := proc{root: "/proc"}
	ln, port := listenLocal(t)
	defer ln.Close()
	if !p.listening(os.Getpid(), port) {
		t.Errorf("listening(self, %d) = false; want true", port)
	}
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Wait()
	defer other.Process.Kill()
	if p.listening(other.Process.Pid, port) {
		t.Errorf("listening(another process, %d) = true; want false: the socket is not its", port)
	}
	ln.Close()
	if p.listening(os.Getpid(), port) {
		t.Errorf("listening(self, %d) after close = true; want false", port)
	}
}

func TestCPUTimes(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 7 15 4 0\ncpu0 50 2 25 500 10 1 3 7 2 0\nintr 12345\n"
	busy, total, err := cpuTimes([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	// busy: user 100 + nice 5 + system 50 + irq 3 + softirq 7 + steal 15;
	// total adds idle 1000 and iowait 20. Guest (4) is inside user.
	if busy != 180 || total != 1200 {
		t.Errorf("got busy %d total %d; want 180, 1200", busy, total)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, _, err := cpuTimes([]byte(bad)); err == nil {
			t.Errorf("cpuTimes(%q): got no error; want one", bad)
		}
	}
	if _, _, err := (proc{root: "/proc"}).cpuTimes(); err != nil {
		t.Errorf("this machine's /proc/stat: %v", err)
	}
}
