package main

// Benchmarks of an update's cost against the number of records, for both
// layouts. Run them on a quiet machine, on the filesystem the records will
// live on (they use the temp folder: set TMPDIR to move them):
//
//	go test -run '^$' -bench . -benchtime 2000x ./services/lastaccess/
//
// BenchmarkUpdates runs the real binary as separate processes, as goinetd
// does, and reports updates/s; BenchmarkUpdateSteps runs Touch in the test
// process and reports where an update's time goes.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

var benchBin = flag.String("lastaccess.bin", "", "benchmark this lastaccess `binary` (an older build, say) instead of the package's")

var benchPhase = flag.Duration("lastaccess.phase", 2*time.Second, "how long BenchmarkBesideEcho drives each handler per iteration")

// benchSizes are the numbers of records the store holds before the benchmark.
var benchSizes = []int{0, 1000, 10000, 100000}

// benchPeers are the addresses the benchmarks' updates come from, in turn:
// 256 addresses of the benchmarking range 198.18.0.0/15, none preloaded, so
// the store grows by at most 256 records.
var benchPeers = func() []netip.Addr {
	peers := make([]netip.Addr, 256)
	for i := range peers {
		peers[i] = netip.AddrFrom4([4]byte{198, 18, byte(i / 16), byte(i%16 + 1)})
	}
	return peers
}()

// BenchmarkUpdates measures connections per second through the lastaccess
// binary: each update is a process, with TCPREMOTEIP set and its greeting on
// a pipe, and four run at a time in a closed loop (a new one starts when one
// ends), against a store preloaded with N records. ns/op is the time per
// update with four in flight; updates/s is its inverse, including the drain
// of the last four.
func BenchmarkUpdates(b *testing.B) {
	const inFlight = 4
	bin := lastaccessBin
	if *benchBin != "" {
		bin = *benchBin
	}
	for _, l := range layouts {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/records=%d", l.name, n), func(b *testing.B) {
				db := filepath.Join(b.TempDir(), "db")
				preload(b, l, db, n)
				ctx := b.Context()
				jobs := make(chan netip.Addr)
				errs := make(chan error, inFlight)
				var wg sync.WaitGroup
				for range inFlight {
					wg.Go(func() {
						for ip := range jobs {
							if err := runUpdate(ctx, bin, db, ip); err != nil {
								errs <- err
								for range jobs { // let the loop finish
								}
								return
							}
						}
					})
				}
				start := time.Now()
				updates := 0
				for b.Loop() {
					jobs <- benchPeers[updates%len(benchPeers)]
					updates++
				}
				close(jobs)
				wg.Wait()
				elapsed := time.Since(start)
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(updates)/elapsed.Seconds(), "updates/s")
			})
		}
	}
}

// runUpdate runs one connection from ip through bin against db, and checks
// it succeeded quietly with a greeting.
func runUpdate(ctx context.Context, bin, db string, ip netip.Addr) error {
	cmd := command(ctx, filepath.Dir(db), []string{"TCPREMOTEIP=" + ip.String()}, "-db", db)
	cmd.Path, cmd.Args[0] = bin, bin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 || !strings.HasPrefix(stdout.String(), "Welcome, ") {
		return fmt.Errorf("update from %s: got %v, stdout %q, stderr %q; want a greeting", ip, err, stdout.String(), stderr.String())
	}
	return nil
}

// BenchmarkUpdateSteps measures Touch in the benchmark's process, one at a
// time, against a store preloaded with N records, and reports the mean time
// of each step in µs (units "-us/op"): lock (open the lock file and flock), clean (look for
// stale temp files), read (the file), parse (its lines), write (build the new
// content, create the temp file and write it), fsync (the temp file), rename
// and fsync-folder.
func BenchmarkUpdateSteps(b *testing.B) {
	for _, l := range layouts {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/records=%d", l.name, n), func(b *testing.B) {
				db := filepath.Join(b.TempDir(), "db")
				preload(b, l, db, n)
				spent := map[string]time.Duration{}
				var last time.Time
				step := func(name string, _ int) {
					now := time.Now()
					spent[name] += now.Sub(last)
					last = now
				}
				logf := func(format string, args ...any) { b.Fatalf("unexpected report: "+format, args...) }
				var store Store = &FileStore{Path: db, Logf: logf, step: step}
				if l.folder {
					store = &FolderStore{Path: db, Logf: logf, step: step}
				}
				updates := 0
				for b.Loop() {
					last = time.Now()
					if _, err := store.Touch(benchPeers[updates%len(benchPeers)]); err != nil {
						b.Fatal(err)
					}
					updates++
				}
				for _, name := range []string{"lock", "clean temps", "read", "parse", "write", "fsync", "rename", "fsync folder"} {
					unit := strings.ReplaceAll(name, " temps", "")
					unit = strings.ReplaceAll(unit, " ", "-") + "-us/op"
					b.ReportMetric(float64(spent[name].Microseconds())/float64(updates), unit)
				}
			})
		}
	}
}

// preload makes db a store of layout l holding n records, written directly
// and made durable, so that the benchmark does not pay for their writeback.
func preload(b *testing.B, l layout, db string, n int) {
	b.Helper()
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("10.%d.%d.%d|2020-01-01T00:00:00Z", i>>16&255, i>>8&255, i&255)
	}
	if !l.folder {
		content := strings.Join(lines, "\n")
		if n > 0 {
			content += "\n"
		}
		if err := os.WriteFile(db, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	} else {
		for _, dir := range []string{db, filepath.Join(db, tempFolderName)} {
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for _, line := range lines {
			name, _, _ := strings.Cut(line, "|")
			if err := writeNew(filepath.Join(db, name), line+"\n", 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	d, err := os.Open(filepath.Dir(db))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		b.Fatal(err)
	}
}

// shippedEnv returns the env key the project's inetd.toml gives the
// service name, as a TOML line to append to its table, so that the
// benchmark runs each handler as that file configures it. Only the env
// tables are decoded: config.Load would also want the file's programs
// built in bin/.
func shippedEnv(b *testing.B, name string) string {
	b.Helper()
	var shipped struct {
		Services map[string]struct{ Env map[string]string }
	}
	if _, err := toml.DecodeFile("../../inetd.toml", &shipped); err != nil {
		b.Fatal(err)
	}
	s, ok := shipped.Services[name]
	if !ok {
		b.Fatalf("the shipped inetd.toml has no service %q", name)
	}
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		pairs = append(pairs, fmt.Sprintf("%s = %q", k, s.Env[k]))
	}
	return "env = { " + strings.Join(pairs, ", ") + " }\n"
}

// BenchmarkBesideEcho measures connections per second through goinetd, in
// one run, for the bundled echo handler and for lastaccess, each served to
// 8 clients in a closed loop from 200 loopback addresses, in phases of
// -lastaccess.phase each: per iteration one phase of echo, one of
// lastaccess with a records folder and, when PostgreSQL is installed, one
// of lastaccess with a PostgreSQL database (a throwaway server on a unix
// socket, fsync on, as startPostgres makes it), so a drift of the machine
// touches all alike. Each handler runs with the environment the shipped
// inetd.toml gives it (GOMAXPROCS=1, see shippedEnv). Each address has
// connected once before. It reports the median over iterations of each
// rate and of each lastaccess's rate as a fraction of echo's in the same
// iteration (the fractions are logged), and the CPU time the handler
// processes used per connection (user and system, from goinetd's reaped
// children; not PostgreSQL's server processes).
//
//	go test -run '^$' -bench BesideEcho -benchtime 5x ./services/lastaccess/
func BenchmarkBesideEcho(b *testing.B) {
	const clients, sources = 8, 200
	_, echo := goinetdBinaries(b)
	echoPort, filePort, pgPort := freeTCPPort(b), freeTCPPort(b), freeTCPPort(b)
	db := filepath.Join(b.TempDir(), "records")
	echoEnv, lastaccessEnv := shippedEnv(b, "echo"), shippedEnv(b, "lastaccess")
	config := serviceTOML("echo", echoPort, echo) + echoEnv +
		serviceTOML("lastaccess", filePort, lastaccessBin, "-db", db) + lastaccessEnv
	if postgresBin() != "" {
		pg := startPostgres(b)
		config += serviceTOML("lastaccess-postgres", pgPort, lastaccessBin, "-db", pg.url()) + lastaccessEnv
	} else {
		b.Logf("PostgreSQL is not installed: the PostgreSQL store is not measured")
		pgPort = 0
	}
	g := startGoinetd(b, config)
	addrs := make([]string, sources)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.%d.%d", 10+i/100, i%100+2)
	}
	// phase runs the clients against port for *benchPhase and returns
	// the connections completed per second; cpu adds up the CPU time
	// its handlers used, and conns counts them.
	cpu := map[int]time.Duration{}
	conns := map[int]int64{}
	phase := func(port int, payload string, ok func(reply string) bool) float64 {
		cpuBefore := g.handlersCPU(b)
		defer func() { cpu[port] += g.handlersCPU(b) - cpuBefore }()
		ctx := b.Context()
		var n, next int64
		var mu sync.Mutex
		var failed error
		stop := time.Now().Add(*benchPhase)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Go(func() {
				for time.Now().Before(stop) {
					mu.Lock()
					from := addrs[next%sources]
					next++
					mu.Unlock()
					reply, err := exchange(ctx, loopbackDialer(from), port, payload, 30*time.Second)
					mu.Lock()
					if err != nil || !ok(reply) {
						failed = fmt.Errorf("connection from %s to port %d: got %q, %v; want a full reply", from, port, reply, err)
					}
					n++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if failed != nil {
			b.Fatal(failed)
		}
		conns[port] += n
		return float64(n) / time.Since(start).Seconds()
	}
	greeted := func(r string) bool { return strings.HasPrefix(r, "Welcome, ") && strings.Count(r, "\n") == 3 }
	// Every address once first, untimed: the measure is of returning
	// clients, whose records exist (a new address's first update also
	// creates its file).
	for _, port := range []int{filePort, pgPort} {
		for _, from := range addrs {
			if port == 0 {
				continue
			}
			if reply, err := exchange(b.Context(), loopbackDialer(from), port, "", 30*time.Second); err != nil || !greeted(reply) {
				b.Fatalf("first connection from %s to port %d: got %q, %v; want a greeting", from, port, reply, err)
			}
		}
	}
	var echoRates, fileRates, pgRates []float64
	for b.Loop() {
		echoRates = append(echoRates, phase(echoPort, "hello\n", func(r string) bool { return r == "hello\n" }))
		fileRates = append(fileRates, phase(filePort, "", greeted))
		if pgPort != 0 {
			pgRates = append(pgRates, phase(pgPort, "", greeted))
		}
	}
	perConn := func(port int) float64 { return float64(cpu[port].Microseconds()) / float64(conns[port]) }
	fileShares := shares(fileRates, echoRates)
	b.Logf("folder/echo by iteration: %.3f", fileShares)
	b.ReportMetric(median(echoRates), "echo-conns/s")
	b.ReportMetric(perConn(echoPort), "echo-cpu-us/conn")
	b.ReportMetric(median(fileRates), "folder-conns/s")
	b.ReportMetric(perConn(filePort), "folder-cpu-us/conn")
	b.ReportMetric(median(fileShares), "folder/echo")
	if pgPort != 0 {
		b.ReportMetric(median(pgRates), "postgres-conns/s")
		b.ReportMetric(perConn(pgPort), "postgres-cpu-us/conn")
		b.ReportMetric(median(shares(pgRates, echoRates)), "postgres/echo")
	}
}

// shares returns rates[i]/of[i] for each iteration i: a handler's rate as
// a fraction of echo's in the same iteration, so that a drift of the
// machine between iterations cancels out.
func shares(rates, of []float64) []float64 {
	s := make([]float64, len(rates))
	for i := range rates {
		s[i] = rates[i] / of[i]
	}
	return s
}

// median returns the middle value of values (the mean of the middle two
// for an even count): one disturbed iteration does not move it.
func median(values []float64) float64 {
	v := slices.Sorted(slices.Values(values))
	mid := len(v) / 2
	if len(v)%2 == 1 {
		return v[mid]
	}
	return (v[mid-1] + v[mid]) / 2
}
