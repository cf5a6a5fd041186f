package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConcurrentConnectionsLoseNoUpdate runs 300 connections from 60 peers
// all at once. With a lost update two processes would read the same old
// record, so every noted time must be read back by exactly one later
// connection, except each peer's final one, which is the stored record.
func TestConcurrentConnectionsLoseNoUpdate(t *testing.T) {
	t.Parallel()
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			testConcurrentConnectionsLoseNoUpdate(t, l)
		})
	}
}

func testConcurrentConnectionsLoseNoUpdate(t *testing.T, l layout) {
	const peers, conns = 60, 300
	ctx := testContext(t, 2*time.Minute)
	db := filepath.Join(t.TempDir(), "db")
	l.prepare(t, db, nil)

	outcomes := make([]outcome, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			ip := fmt.Sprintf("127.0.0.%d", i%peers+1)
			outcomes[i], errs[i] = runCommand(command(ctx, filepath.Dir(db), []string{"TCPREMOTEIP=" + ip}, "-db", db))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("run lastaccess: %v", err)
	}

	neverSeen := 0
	noted := map[string][]string{} // ip -> every noted time
	read := map[string][]string{}  // ip -> every "last saw" time
	for i, o := range outcomes {
		if o.code != 0 || o.stderr != "" {
			t.Fatalf("connection %d: got exit %d, stderr %q; want exit 0, no stderr", i, o.code, o.stderr)
		}
		g, ok := parseGreeting(o.stdout)
		if !ok {
			t.Fatalf("connection %d: got %q; want a complete greeting", i, o.stdout)
		}
		if !g.seen {
			neverSeen++
		} else {
			read[g.ip] = append(read[g.ip], g.last)
		}
		noted[g.ip] = append(noted[g.ip], g.noted)
	}
	if neverSeen != peers {
		t.Errorf(`"I've never seen you before." greetings: got %d; want %d`, neverSeen, peers)
	}

	records, _ := listDB(ctx, t, db)
	if len(records) != peers {
		t.Errorf("records: got %d; want %d", len(records), peers)
	}
	for i := range peers {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		want := slices.Sorted(slices.Values(noted[ip]))
		got := slices.Sorted(slices.Values(append(read[ip], records[ip])))
		if !slices.Equal(got, want) {
			t.Errorf("%s: times read back plus stored record: got %v; want the noted times %v", ip, got, want)
		}
	}
}

// TestKilledUpdatesNeverTearTheFile SIGKILLs random connections at random
// moments while they update the records, in rounds: the test holds the
// exclusive lock while it starts a batch of 1 to 4 processes (32 in every
// 16th round), waits until /proc/locks shows every one of them blocked on
// it, then releases it and kills about half the batch at moments spread over
// the time the batch takes to drain (measured by a first round that kills
// nothing). After the release the
// batch does nothing but pass through the lock one by one, so the kills land
// before, during and after the write, the rename and the fsyncs. Which
// process is killed and when come from a seeded generator.
//
// Afterwards the records must parse completely, keep every record that was
// there, and hold every completed connection with a time no earlier than the
// one it was told; the only other files may be temporary files of killed
// processes, and the next update removes them. Both layouts.
func TestKilledUpdatesNeverTearTheFile(t *testing.T) {
	t.Parallel()
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			testKilledUpdatesNeverTearTheFile(t, l)
		})
	}
}

func testKilledUpdatesNeverTearTheFile(t *testing.T, l layout) {
	const (
		rounds   = 80
		maxBatch = 4  // a process holds the lock for about 1/batch of its batch's kill window
		bigBatch = 32 // every 16th round: many at once, fewer kills mid-update
		peers    = 24
		preload  = 3000 // records not touched by the test; they make each update longer
	)
	ctx := testContext(t, 2*time.Minute)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	lockPath := db + ".lock"

	preloaded := make([]string, preload)
	for i := range preload {
		preloaded[i] = fmt.Sprintf("10.%d.%d.%d|2020-01-01T00:00:00Z", i>>16&255, i>>8&255, i&255)
	}
	initial := strings.Join(preloaded, "\n") + "\n"
	l.prepare(t, db, preloaded)
	if err := os.WriteFile(lockPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	lockIno := info.Sys().(*syscall.Stat_t).Ino
	if _, err := os.ReadFile("/proc/locks"); err != nil {
		t.Skipf("cannot see who waits for the lock: %v", err)
	}

	type plan struct {
		ip        string
		kill      bool
		killAfter time.Duration // from the release of the test's lock
	}
	type result struct {
		plan
		o      outcome
		killed bool // by our SIGKILL, as opposed to finishing first
		err    error
	}
	rng := rand.New(rand.NewPCG(20261129, 1))
	var results []result
	var perProcess time.Duration // how long the batch takes to drain, per process
	for round := range rounds + 1 {
		batch := maxBatch // round 0, which kills nothing, measures perProcess
		switch {
		case round > 0 && round%16 == 0:
			batch = bigBatch
		case round > 0:
			batch = rng.IntN(maxBatch) + 1
		}
		killWindow := time.Duration(batch) * perProcess
		plans := make([]plan, batch)
		for i := range plans {
			plans[i].ip = fmt.Sprintf("127.0.1.%d", rng.IntN(peers)+1)
			if round > 0 {
				plans[i].kill = rng.IntN(2) == 0
				plans[i].killAfter = time.Duration(rng.Int64N(int64(killWindow)))
			}
		}
		roundResults := make([]result, batch)
		held := lockExclusive(t, lockPath)
		var wg sync.WaitGroup
		var exited atomic.Int32
		cmds := make([]*exec.Cmd, batch)
		for i, p := range plans {
			cmd := command(ctx, dir, []string{"TCPREMOTEIP=" + p.ip}, "-db", db)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				held.Close()
				wg.Wait()
				t.Fatalf("start lastaccess: %v", err)
			}
			cmds[i] = cmd
			wg.Go(func() {
				defer exited.Add(1)
				err := cmd.Wait() // always, so no process outlives the test
				var exitErr *exec.ExitError
				if err != nil && !errors.As(err, &exitErr) {
					roundResults[i] = result{plan: p, err: err}
					return
				}
				ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
				roundResults[i] = result{
					plan: p,
					o: outcome{
						stdout: stdout.String(), stderr: stderr.String(),
						code: cmd.ProcessState.ExitCode(), pid: cmd.ProcessState.Pid(),
					},
					killed: ws.Signaled() && ws.Signal() == syscall.SIGKILL,
				}
			})
		}
		waitErr := waitForLockWaiters(ctx, "FLOCK", lockIno, batch, &exited)
		released := time.Now()
		held.Close()
		var timers []*time.Timer
		for i, p := range plans {
			if p.kill {
				proc := cmds[i].Process
				timers = append(timers, time.AfterFunc(p.killAfter, func() { proc.Kill() }))
			}
		}
		wg.Wait()
		drained := time.Since(released)
		for _, timer := range timers {
			timer.Stop()
		}
		if waitErr != nil {
			t.Fatalf("round %d: %v", round, waitErr)
		}
		if round == 0 {
			perProcess = drained / time.Duration(batch)
		}
		results = append(results, roundResults...)
	}

	killedPIDs := map[int]bool{}
	told := map[string]string{} // ip -> latest noted time among completed connections
	neverSeen := map[string]int{}
	var completed []greeting
	staleReports := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("connection %d: %v", i, r.err)
		}
		if r.killed {
			killedPIDs[r.o.pid] = true
			continue
		}
		// Not killed: it must have succeeded, whatever the killed ones did.
		if r.o.code != 0 {
			t.Fatalf("connection %d from %s: got exit %d, stderr %q; want exit 0", i, r.ip, r.o.code, r.o.stderr)
		}
		g, ok := parseGreeting(r.o.stdout)
		if !ok || g.ip != r.ip {
			t.Fatalf("connection %d: got %q; want a complete greeting for %s", i, r.o.stdout, r.ip)
		}
		// Its stderr may only report temp files left by killed processes.
		for _, line := range strings.Split(strings.TrimSuffix(r.o.stderr, "\n"), "\n") {
			if strings.Contains(line, "removed stale temp file") {
				staleReports++
			} else if line != "" {
				t.Errorf("connection %d: stderr line %q; want only stale temp file reports", i, line)
			}
		}
		completed = append(completed, g)
		told[g.ip] = max(told[g.ip], g.noted)
		if !g.seen {
			neverSeen[g.ip]++
		}
	}
	for ip, n := range neverSeen {
		if n > 1 {
			t.Errorf(`%s: "never seen" greetings among completed connections: got %d; want at most 1`, ip, n)
		}
	}

	// The records parse completely, with no torn line: listDB checks every
	// line, and storeContent reads every file as it is.
	content := storeContent(t, db)
	if !strings.HasSuffix(content, "\n") {
		t.Errorf("records end with %q; want a complete line", content[max(0, len(content)-40):])
	}
	records, lines := listDB(ctx, t, db)
	if got := strings.Join(lines, "\n") + "\n"; got != content {
		t.Errorf("-list output differs from the records as stored")
	}
	if l.folder {
		// One complete line per file, the file's own address.
		for _, name := range folderNames(t, db) {
			if name == ".tmp" {
				continue
			}
			if got, want := readFile(t, filepath.Join(db, name)), name+"|"+records[name]+"\n"; got != want {
				t.Errorf("record file %s: got %q; want %q", name, got, want)
			}
		}
		for _, line := range preloaded {
			ip, at, _ := strings.Cut(line, "|")
			if records[ip] != at {
				t.Errorf("preloaded record %s: got %q; want it intact", line, records[ip])
			}
		}
	} else if !strings.HasPrefix(content, initial) {
		t.Errorf("records file: the %d preloaded records are not all intact at the start", preload)
	}
	if got, want := len(records), preload+len(told); got < want || got > preload+peers {
		t.Errorf("records: got %d; want between %d and %d", got, want, preload+peers)
	}
	for ip, noted := range told {
		if records[ip] < noted { // same format and zone: string order is time order
			t.Errorf("%s: stored time %q; want >= %s, the time a completed connection was told", ip, records[ip], noted)
		}
	}

	// Leftovers may only be temporary files of killed processes.
	tempDir, pidOf := l.tempFolder(db)
	wantFolder := []string{"db", "db.lock"}
	if l.folder {
		if got := folderNames(t, dir); !slices.Equal(got, wantFolder) {
			t.Errorf("folder: got %v; want %v", got, wantFolder)
		}
		wantFolder = nil // in the temp folder, after the next update
	}
	var leftovers []string
	for _, name := range folderNames(t, tempDir) {
		if !l.folder && (name == "db" || name == "db.lock") {
			continue
		}
		if pid, ok := pidOf(name); !ok || !killedPIDs[pid] {
			t.Errorf("leftover file %s in %s: want only temp files of a killed process", name, tempDir)
		}
		leftovers = append(leftovers, name)
	}
	t.Logf("kill window %v per process in a batch; %d connections: %d completed, %d killed; "+
		"%d temp files of killed processes removed by later updates, %d left at the end",
		perProcess.Round(time.Microsecond), len(results), len(completed), len(killedPIDs),
		staleReports, len(leftovers))

	// The next update removes leftovers, and says so.
	o := connect(ctx, t, db, "192.0.2.2")
	mustGreetIgnoringStderr(t, o)
	if got := strings.Count(o.stderr, "removed stale temp file"); got != len(leftovers) {
		t.Errorf("stale temp file reports: got %d; want %d (stderr %q)", got, len(leftovers), o.stderr)
	}
	if got := folderNames(t, tempDir); !slices.Equal(got, wantFolder) {
		t.Errorf("%s after one more update: got %v; want %v", tempDir, got, wantFolder)
	}
}

// lockExclusive takes flock(LOCK_EX) on path, as lastaccess does; closing
// the returned file releases it.
func lockExclusive(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("flock %s: %v", path, err)
	}
	return f
}

// waitForLockWaiters waits until /proc/locks shows n requests of kind
// ("FLOCK" for flock, "OFDLCK" for an open file description record lock)
// blocked on the file with inode ino. It fails early if a process exits
// (exited > 0), since none should before the lock is released.
func waitForLockWaiters(ctx context.Context, kind string, ino uint64, n int, exited *atomic.Int32) error {
	suffix := ":" + strconv.FormatUint(ino, 10)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		locks, err := os.ReadFile("/proc/locks")
		if err != nil {
			return err
		}
		waiting := 0
		for _, line := range strings.Split(string(locks), "\n") {
			f := strings.Fields(line)
			if len(f) >= 7 && f[1] == "->" && f[2] == kind && strings.HasSuffix(f[6], suffix) {
				waiting++
			}
		}
		if waiting == n {
			return nil
		}
		if e := exited.Load(); e > 0 {
			return fmt.Errorf("waiting for %d processes to block on a %s lock: got %d exits; want none", n, kind, e)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d processes to block on a %s lock: got %d: %w", n, kind, waiting, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestUpdatesOfOneAddressWaitOthersDoNot holds the lock of one address, as
// an update in progress does, and checks that an update of another address
// completes meanwhile, while an update of the held address and a -list
// wait for it (as /proc/locks shows) and complete once it is released.
func TestUpdatesOfOneAddressWaitOthersDoNot(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	held, other := "192.0.2.1", "192.0.2.2"
	mustGreet(t, connect(ctx, t, db, held))

	lock, err := lockForUpdate(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.lockRecords(addrKey(netip.MustParseAddr(held)), unix.F_WRLCK); err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			lock.release()
		}
	}()

	if g := mustGreet(t, connect(ctx, t, db, other)); g.seen {
		t.Errorf("update of %s while %s is held: got %+v; want a first greeting", other, held, g)
	}
	waiting := []*exec.Cmd{
		command(ctx, dir, []string{"TCPREMOTEIP=" + held}, "-db", db),
		command(ctx, dir, nil, "-db", db, "-list"),
	}
	outs := make([]bytes.Buffer, len(waiting))
	var wg sync.WaitGroup
	var exited atomic.Int32
	for i, cmd := range waiting {
		cmd.Stdout = &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer exited.Add(1)
			cmd.Wait()
		})
	}
	defer wg.Wait()
	info, err := os.Stat(db + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitForLockWaiters(ctx, "OFDLCK", info.Sys().(*syscall.Stat_t).Ino, len(waiting), &exited); err != nil {
		t.Fatal(err)
	}
	lock.release()
	released = true
	wg.Wait()
	for i, cmd := range waiting {
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%v after the release: got exit %d; want 0", cmd.Args, code)
		}
		if i == 0 {
			if g, ok := parseGreeting(outs[i].String()); !ok || !g.seen {
				t.Errorf("update of %s after the release: got %q; want a greeting that saw it", held, outs[i].String())
			}
		} else if got := strings.Count(outs[i].String(), "\n"); got != 2 {
			t.Errorf("-list after the release: got %q; want 2 records", outs[i].String())
		}
	}
}

// TestUpdateWithALockFileItMayNotWrite runs updates as an unprivileged
// user whose lock file root created (as an operator's -list as root
// does): record locks need the file open for writing, so they take the
// exclusive flock instead, and work.
func TestUpdateWithALockFileItMayNotWrite(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run lastaccess as another user than the lock file's owner")
	}
	ctx := testContext(t, time.Minute)
	dir := t.TempDir()
	// t.TempDir's parent is private (0700): let nobody through.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	for _, d := range []string{db, filepath.Join(db, ".tmp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		chown(t, d, 65534, 65534)
	}
	if err := os.WriteFile(db+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() outcome {
		cmd := command(ctx, dir, []string{"TCPREMOTEIP=192.0.2.1"}, "-db", db)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		o, err := runCommand(cmd)
		if err != nil {
			t.Skipf("cannot run lastaccess as uid 65534: %v", err)
		}
		return o
	}
	first := mustGreet(t, run())
	if second := mustGreet(t, run()); first.seen || !second.seen || second.last != first.noted {
		t.Errorf("two updates as nobody: got %+v, %+v; want never seen, then the first's time", first, second)
	}
}
