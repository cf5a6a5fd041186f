package main

// Tests of the PostgreSQL store against a real server: Debian's postgresql
// package, initdb into a temporary folder and run as an unprivileged user
// (PostgreSQL refuses root) on a unix socket in that folder.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
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

// pgServer is a PostgreSQL server started by a test.
type pgServer struct {
	tb       testing.TB
	bin      string // the folder of initdb and postgres
	dir      string // its socket folder, holding data/ too
	cred     *syscall.Credential
	cmd      *exec.Cmd
	done     chan struct{}
	mu       sync.Mutex
	log      strings.Builder
	stopOnce bool
}

const pgPort = 5432 // only names the socket file: dir/.s.PGSQL.5432

// postgresBin returns the folder of the newest PostgreSQL installed by
// Debian's packages, or "" if there is none.
func postgresBin() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	slices.SortFunc(matches, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	for i := len(matches) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(filepath.Dir(matches[i]), "initdb")); err == nil {
			return filepath.Dir(matches[i])
		}
	}
	return ""
}

// startPostgres makes a fresh cluster in a temporary folder and starts its
// server; the test's cleanup stops it (within 20 s, else SIGKILL to its
// process group) and removes the folder. As root it runs as nobody. It
// skips the test when PostgreSQL is not installed.
func startPostgres(tb testing.TB) *pgServer {
	tb.Helper()
	bin := postgresBin()
	if bin == "" {
		tb.Skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres; make deps installs Debian's postgresql)")
	}
	p := &pgServer{tb: tb, bin: bin}
	dir, err := os.MkdirTemp("", "lastaccess-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	p.dir = dir
	tb.Cleanup(func() {
		p.stop()
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("remove %s: %v", dir, err)
		}
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			tb.Skipf("PostgreSQL refuses to run as root, and there is no user nobody to run it as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	return p
}

// start starts the server on the cluster and waits until it accepts
// connections (30 s at most).
func (p *pgServer) start() {
	p.tb.Helper()
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.dir, "data"),
		"-k", p.dir, "-p", strconv.Itoa(pgPort), "-c", "listen_addresses=", "-c", "max_connections=100")
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	p.cmd, p.done, p.stopOnce = cmd, make(chan struct{}), false
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "ready to accept connections") {
				close(ready)
				signalled = true
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	select {
	case <-ready:
	case <-p.done:
		p.tb.Fatalf("postgres exited before it was ready; log:\n%s", p.logText())
	case <-time.After(30 * time.Second):
		p.stop()
		p.tb.Fatalf("postgres not ready after 30 s; log:\n%s", p.logText())
	}
}

// stop stops the server with a fast shutdown (SIGINT), which ends every
// session, and waits for it; after 20 s it kills its process group.
func (p *pgServer) stop() {
	if p.cmd == nil || p.stopOnce {
		return
	}
	p.stopOnce = true
	p.cmd.Process.Signal(syscall.SIGCONT) // in case a test stopped it
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.tb.Errorf("postgres did not stop within 20 s of SIGINT; killed")
	}
}

func (p *pgServer) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// url is the server's database postgres, as a postgres:// URL.
func (p *pgServer) url(params ...string) string {
	return fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d", p.dir, pgPort) + strings.Join(params, "")
}

// env is the server's database postgres, as PG* variables.
func (p *pgServer) env() []string {
	return []string{"PGHOST=" + p.dir, "PGPORT=" + strconv.Itoa(pgPort), "PGUSER=postgres", "PGDATABASE=postgres"}
}

// TestPostgresStore runs the command against a real PostgreSQL server:
// -init and -list, greetings, the three ways of naming the database, and
// a server that is down or hung, which the client hears of in one line
// while the handler exits 1 within the connect timeout.
func TestPostgresStore(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t)
	ctx := testContext(t, 2*time.Minute)
	dir := t.TempDir()
	run := func(env []string, args ...string) outcome {
		t.Helper()
		o, err := runCommand(command(ctx, dir, env, args...))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	keywords := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", pg.dir, pgPort)

	if o := run(nil, "-db", pg.url(), "-list"); o.code != 0 || o.stdout != "" || o.stderr != "" {
		t.Errorf("-list before the table exists: got exit %d, stdout %q, stderr %q; want exit 0, nothing", o.code, o.stdout, o.stderr)
	}
	o := run(nil, "-db", keywords, "-init")
	if o.code != 0 || !strings.HasPrefix(o.stdout, "table lastaccess is ready in PostgreSQL "+pg.dir) {
		t.Errorf("-init: got exit %d, stdout %q, stderr %q; want exit 0 and the table ready", o.code, o.stdout, o.stderr)
	}
	if o := run(nil, "-db", keywords, "-init"); o.code != 0 {
		t.Errorf("-init again: got exit %d, stderr %q; want exit 0", o.code, o.stderr)
	}

	// One address through each way of naming the database.
	first := mustGreet(t, run([]string{"TCPREMOTEIP=::ffff:192.0.2.7"}, "-db", pg.url()))
	second := mustGreet(t, run(append(pg.env(), "TCPREMOTEIP=192.0.2.7"), "-db", "postgres://"))
	third := mustGreet(t, run([]string{"TCPREMOTEIP=192.0.2.7"}, "-db", keywords))
	if first.ip != "192.0.2.7" || first.seen || !second.seen || second.last != first.noted || !third.seen || third.last != second.noted {
		t.Errorf("three connections: got %+v, %+v, %+v; want never seen, then each the time before", first, second, third)
	}
	mustGreet(t, run([]string{"TCPREMOTEIP=2001:db8::1"}, "-db", pg.url()))
	mustGreet(t, run([]string{"TCPREMOTEIP=10.0.0.1"}, "-db", pg.url()))
	o = run(nil, "-db", pg.url(), "-list")
	want := "10.0.0.1|" + "\n192.0.2.7|" + third.noted + "\n2001:db8::1|"
	lines := strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n")
	if o.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "10.0.0.1|") || lines[1] != "192.0.2.7|"+third.noted || !strings.HasPrefix(lines[2], "2001:db8::1|") {
		t.Errorf("-list: got exit %d, %q; want lines like %q", o.code, o.stdout, want)
	}
	for _, line := range lines {
		if _, _, err := parseRecordLine(line); err != nil {
			t.Errorf("-list: %v", err)
		}
	}
	if o := run(nil, "-db", pg.url(), "-migrate"); o.code != 2 {
		t.Errorf("-migrate of a database: got exit %d; want 2", o.code)
	}

	// Hung: the server takes the connection and never answers.
	if err := pg.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	o = run([]string{"TCPREMOTEIP=192.0.2.7"}, "-db", pg.url("&connect_timeout=1"))
	took := time.Since(start)
	pg.cmd.Process.Signal(syscall.SIGCONT)
	checkApology(t, "hung server", o, "connect to PostgreSQL "+pg.dir)
	if took > 5*time.Second {
		t.Errorf("hung server: the handler took %v; want about the 1 s connect timeout", took)
	}

	// Down: nothing listens on the socket.
	pg.stop()
	start = time.Now()
	o = run([]string{"TCPREMOTEIP=192.0.2.7"}, "-db", pg.url())
	checkApology(t, "server down", o, "connect to PostgreSQL "+pg.dir)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("server down: the handler took %v; want an immediate failure", took)
	}
	if o := run(nil, "-db", pg.url(), "-list"); o.code != 1 || o.stdout != "" || !strings.Contains(o.stderr, "database unavailable") {
		t.Errorf("-list, server down: got exit %d, stdout %q, stderr %q; want exit 1 and the reason", o.code, o.stdout, o.stderr)
	}
}

// checkApology checks that o is a handler that told its client only the
// apology, and exited 1 after one stderr line that says why.
func checkApology(t *testing.T, what string, o outcome, why string) {
	t.Helper()
	if o.code != 1 || o.stdout != apology || strings.Count(o.stderr, "\n") != 1 ||
		!strings.HasPrefix(o.stderr, "lastaccess: database unavailable: ") || !strings.Contains(o.stderr, why) {
		t.Errorf("%s: got exit %d, stdout %q, stderr %q; want exit 1, the apology, and one line naming %q", what, o.code, o.stdout, o.stderr, why)
	}
}

// TestPostgresFleet runs two goinetd instances, on two ports, sharing one
// PostgreSQL database, behind HAProxy balancing round robin with the
// PROXY protocol (so each host sees the real client address). 300 connections from 60 addresses, 12 at a time
// (5 of one address at once, on both hosts),
// must leave exactly 60 records and greet each address "never seen"
// exactly once, with every noted time read back by exactly one later
// connection (none lost). Then more connections while handlers of both
// are SIGKILLed at random: every greeted time is stored. Then the server
// stops: clients get the apology, goinetd logs why; it starts again, and
// the records are all there.
func TestPostgresFleet(t *testing.T) {
	t.Parallel()
	const peers, conns, killConns, workers = 60, 300, 120, 12
	pg := startPostgres(t)
	ctx := testContext(t, 3*time.Minute)
	// Host A names the database by URL, host B by PG* variables only.
	ports := []int{freeTCPPort(t), freeTCPPort(t)}
	var envTOML []string
	for _, kv := range pg.env() {
		k, v, _ := strings.Cut(kv, "=")
		envTOML = append(envTOML, fmt.Sprintf("%s = %q", k, v))
	}
	// Every connection logged, so that the test can count them per host.
	proxied := "proxy_protocol = true\nproxy_from = [\"127.0.0.1\"]\nconnection_log_rate = 0\n"
	hosts := []*goinetdProc{
		startGoinetd(t, serviceTOML("lastaccess", ports[0], lastaccessBin, "-db", pg.url())+proxied),
		startGoinetd(t, serviceTOML("lastaccess", ports[1], lastaccessBin, "-db", "postgres://")+proxied+
			"env = { "+strings.Join(envTOML, ", ")+" }\n"),
	}
	front := startHAProxy(t, ports...)
	addrs := make([]string, peers)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.3.%d", i+1)
	}

	// connectAll runs n connections, workers at a time, and returns each
	// reply (or error). Connection i is from an address that n/peers
	// consecutive connections share, so that connections of one address
	// run at once, and the balancer sends them to both hosts.
	type reply struct {
		from, text string
		err        error
		took       time.Duration
	}
	connectAll := func(n int) []reply {
		replies := make([]reply, n)
		perAddr := max(1, n/peers)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					from := addrs[i/perAddr%peers]
					start := time.Now()
					text, err := exchange(ctx, loopbackDialer(from), front, "", 30*time.Second)
					replies[i] = reply{from: from, text: text, err: err, took: time.Since(start)}
				}
			})
		}
		wg.Wait()
		return replies
	}
	list := func() map[string]string {
		t.Helper()
		o, err := runCommand(command(ctx, t.TempDir(), nil, "-db", pg.url(), "-list"))
		if err != nil || o.code != 0 || o.stderr != "" {
			t.Fatalf("-list: got %v, exit %d, stderr %q; want exit 0", err, o.code, o.stderr)
		}
		records := map[string]string{}
		for _, line := range strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n") {
			ip, at, err := parseRecordLine(line)
			if err != nil {
				t.Fatalf("-list: %v", err)
			}
			records[ip] = at.Format(time.RFC3339)
		}
		return records
	}

	// 1. No faults: every greeting right, none lost.
	start := time.Now()
	replies := connectAll(conns)
	elapsed := time.Since(start)
	neverSeen := map[string]int{}
	noted := map[string][]string{}
	read := map[string][]string{}
	for i, r := range replies {
		g, ok := parseGreeting(r.text)
		if r.err != nil || !ok || g.ip != r.from {
			t.Fatalf("connection %d from %s: got %q, %v; want a greeting; handlers said:\n%s", i, r.from, r.text, r.err, handlerLines(hosts))
		}
		if !g.seen {
			neverSeen[g.ip]++
		} else {
			read[g.ip] = append(read[g.ip], g.last)
		}
		noted[g.ip] = append(noted[g.ip], g.noted)
	}
	records := list()
	if len(records) != peers {
		t.Errorf("records: got %d; want %d", len(records), peers)
	}
	for _, ip := range addrs {
		if neverSeen[ip] != 1 {
			t.Errorf(`%s: "never seen" greetings across the fleet: got %d; want 1`, ip, neverSeen[ip])
		}
		// Every noted time but the stored one is read back exactly once.
		want := slices.Clone(noted[ip])
		if i := slices.Index(want, records[ip]); i >= 0 {
			want = slices.Delete(want, i, i+1)
		} else {
			t.Errorf("%s: stored %q; want one of the noted times %q", ip, records[ip], noted[ip])
		}
		got := slices.Clone(read[ip])
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: times read back %q; want the noted times but the last, %q", ip, got, want)
		}
	}
	t.Logf("%d connections from %d addresses, %d at a time, through HAProxy and 2 goinetd hosts: %.0f/s", conns, peers, workers, float64(conns)/elapsed.Seconds())
	for i, h := range hosts {
		if n := strings.Count(h.logText(), `"msg":"connection ended"`); n < conns/4 {
			t.Errorf("host %d: got %d connections; want about half of %d (round robin)", i, n, conns)
		}
	}

	// 2. Handlers SIGKILLed at random moments, mid-update or not.
	rng := rand.New(rand.NewPCG(20261207, 1))
	var kills atomic.Int64
	stopKiller := make(chan struct{})
	var killer sync.WaitGroup
	killer.Go(func() {
		for {
			select {
			case <-stopKiller:
				return
			case <-time.After(time.Duration(rng.Int64N(int64(20 * time.Millisecond)))): // a random moment; it waits for nothing
			}
			h := hosts[rng.IntN(2)]
			if pids := h.children(); len(pids) > 0 && killChild(h, pids[rng.IntN(len(pids))]) {
				kills.Add(1)
			}
		}
	})
	replies = connectAll(killConns)
	close(stopKiller)
	killer.Wait()
	told := map[string]string{}
	cut := 0
	for i, r := range replies {
		g, ok := parseGreeting(r.text)
		switch {
		case ok && g.ip == r.from:
			told[g.ip] = max(told[g.ip], g.noted)
		case r.text == "":
			cut++ // killed before it greeted
		default:
			t.Errorf("connection %d from %s with kills: got %q, %v; want a greeting or nothing", i, r.from, r.text, r.err)
		}
	}
	records = list()
	if len(records) != peers {
		t.Errorf("records after the kills: got %d; want %d", len(records), peers)
	}
	for ip, at := range told {
		if records[ip] < at {
			t.Errorf("%s: stored %q; want >= %s, the time a completed connection was told", ip, records[ip], at)
		}
	}
	t.Logf("%d connections with %d SIGKILLs: %d greeted, %d cut", killConns, kills.Load(), killConns-cut, cut)

	// 3. The database stops while clients keep connecting, and starts
	// again: every client gets a greeting or, while it is down, the
	// apology, at once; goinetd logs why; when it returns, so do the
	// records.
	var greetings, apologies atomic.Int64
	var mu sync.Mutex
	var bad []string
	stopClients := make(chan struct{})
	var clients sync.WaitGroup
	for w := range 4 {
		clients.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopClients:
					return
				default:
				}
				from := addrs[(w*15+i)%peers]
				start := time.Now()
				text, err := exchange(ctx, loopbackDialer(from), front, "", 30*time.Second)
				took := time.Since(start)
				g, ok := parseGreeting(text)
				switch {
				case ok && g.ip == from && took < 10*time.Second:
					greetings.Add(1)
					mu.Lock()
					told[from] = max(told[from], g.noted)
					mu.Unlock()
				case text == apology && took < 10*time.Second:
					apologies.Add(1)
				default:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("from %s: got %q, %v after %v", from, text, err, took))
					mu.Unlock()
				}
			}
		})
	}
	// waitFor waits until cond holds, failing the test after 30 s.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stopClients)
				clients.Wait()
				t.Fatalf("%s: not within 30 s (%d greetings, %d apologies)", what, greetings.Load(), apologies.Load())
			}
			time.Sleep(time.Millisecond) // polling a counter, with a deadline
		}
	}
	waitFor("20 greetings before the stop", func() bool { return greetings.Load() >= 20 })
	pg.stop()
	waitFor("10 apologies while the database is down", func() bool { return apologies.Load() >= 10 })
	pg.start()
	before := greetings.Load()
	waitFor("20 greetings once the database is back", func() bool { return greetings.Load() >= before+20 })
	close(stopClients)
	clients.Wait()
	for _, b := range bad {
		t.Errorf("connection while the database stopped and started: %s; want a greeting or the apology, at once", b)
	}
	for i, h := range hosts {
		if !strings.Contains(h.logText(), "lastaccess: database unavailable: ") {
			t.Errorf("host %d's log: no stderr record of a handler saying why; log:\n%s", i, h.logText())
		}
	}
	records = list()
	if len(records) != peers {
		t.Errorf("records after the restart: got %d; want %d", len(records), peers)
	}
	for ip, at := range told {
		if records[ip] < at {
			t.Errorf("%s after the restart: stored %q; want >= %s, the time a completed connection was told", ip, records[ip], at)
		}
	}
	t.Logf("database stopped and started under load: %d greetings, %d apologies", greetings.Load(), apologies.Load())
}

// handlerLines returns the handlers' stderr lines in the logs of hosts.
func handlerLines(hosts []*goinetdProc) string {
	var b strings.Builder
	for _, h := range hosts {
		for _, line := range strings.Split(h.logText(), "\n") {
			if strings.Contains(line, `"msg":"stderr"`) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// killChild SIGKILLs pid if it is still a running child of h, through a
// pidfd, so a recycled pid is never hit. It reports whether it did.
func killChild(h *goinetdProc, pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if !slices.Contains(h.children(), pid) {
		return false
	}
	return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil
}
