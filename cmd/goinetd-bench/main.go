// Command goinetd-bench measures how fast goinetd starts a handler per
// connection, side by side with the other superservers installed on the
// machine and a minimal C superserver (the floor), and how its built-in
// echo compares with a plain Go echo server.
//
// Usage:
//
//	goinetd-bench [-servers all|NAME,...] [-levels 1,8,32,128] [-duration 5s] [-max-conns N]
//	              [-rounds 3] [-hold 1000] [-server NAME=COMMAND]... [-json FILE]
//	goinetd-bench -serve-go-echo ADDRESS   the Go echo server it compares with (started by itself)
//
// It starts every server itself, as its child, on a loopback port with
// /bin/cat as the handler, waits until the server listens, and stops and
// reaps it after its turn. For each round, concurrency level and server,
// in that order (so the servers interleave: A, B, C, A, B, C, ...), a
// fresh server is warmed up, then C clients each repeatedly connect,
// write 64 bytes, read them back, half-close, read EOF and close, for
// -duration or -max-conns connections, whichever comes first. The server's
// CPU time, threads, RSS and children are read from /proc. Then each
// server holds -hold connections open at once. The report, on standard
// output, is markdown: the median of each figure over the rounds, with
// its ratio to the best peer's.
//
// bench/run.sh installs the peers, builds everything and runs it; see
// bench/README.md for what each figure means.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == serveGoEchoFlag {
		os.Exit(serveGoEcho(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are goinetd-bench's flags.
type options struct {
	servers  []string // names, or "all"
	levels   []int
	rounds   int
	hold     int
	tls      bool  // the TLS comparison instead of the plain one
	bulkMB   int64 // -tls: MB (10^6 bytes) through one connection; 0: no bulk test
	portBase int
	jsonOut  string
	keep     bool
	custom   []*spec
	paths    paths
	set      settings
}

// run is goinetd-bench with its arguments and output streams; it returns
// the exit status: 0 when every connection succeeded and nothing was left
// running, 1 otherwise, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "goinetd-bench: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	res, err := bench(ctx, opts, stderr)
	if res != nil {
		res.render(stdout)
		if opts.jsonOut != "" {
			if werr := writeJSON(opts.jsonOut, res); werr != nil {
				fmt.Fprintf(stderr, "goinetd-bench: %v\n", werr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "goinetd-bench: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("goinetd-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find my own executable: %w", err)
	}
	binDir := filepath.Dir(self)
	o := &options{paths: paths{self: self}}
	servers := fs.String("servers", "all", "comma-separated `names` of the servers to run, or all: goinetd, floor, xinetd, "+
		"openbsd-inetd, tcpserver, tcpsvd, systemd-socket-activate, goinetd-echo, go-echo")
	levels := fs.String("levels", "1,8,32,128", "comma-separated concurrency `levels` (with -tls, 1,8,32 by default)")
	fs.BoolVar(&o.tls, "tls", false, "compare TLS termination instead: goinetd (tls = {...}), stunnel and socat, "+
		"each before /bin/cat, full and resumed handshakes, and a bulk test; no hold test")
	fs.Int64Var(&o.bulkMB, "bulk-mb", 128, "-tls: how many `MB` the bulk test sends through one connection and reads back (0: no bulk test)")
	fs.DurationVar(&o.set.duration, "duration", 5*time.Second, "how long each level is measured (at most)")
	fs.IntVar(&o.set.maxConns, "max-conns", 100000, "how many connections each level makes (at most)")
	fs.DurationVar(&o.set.warmup, "warmup", 500*time.Millisecond, "how long each level runs before it is measured")
	fs.IntVar(&o.rounds, "rounds", 3, "how many times everything is measured; the report gives medians")
	fs.IntVar(&o.hold, "hold", 1000, "how many connections each server holds open at once in the hold test (0: no hold test)")
	fs.DurationVar(&o.set.timeout, "timeout", 10*time.Second, "how long one connection may take")
	fs.DurationVar(&o.set.sample, "sample", 100*time.Millisecond, "how often a server's threads, RSS and children are sampled")
	fs.DurationVar(&o.set.settle, "settle", 3*time.Second, "how long a server may take to reap its children after a level")
	fs.IntVar(&o.portBase, "port-base", 23400, "servers listen on free loopback ports from this one up (0: ports the kernel picks)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every round's figures to this `file`, as JSON")
	fs.BoolVar(&o.keep, "keep", false, "keep the servers' configs and logs (the folder is named at the end)")
	fs.StringVar(&o.paths.goinetd, "goinetd", filepath.Join(binDir, "goinetd"), "goinetd's `path`")
	fs.StringVar(&o.paths.floor, "floor", filepath.Join(binDir, "floor"), "the floor's `path` (bench/floor.c, compiled)")
	fs.StringVar(&o.paths.xinetd, "xinetd", "", "xinetd's `path` (default: in PATH, or bench/peers/xinetd/usr/sbin/xinetd)")
	fs.StringVar(&o.paths.inetd, "inetd", "", "OpenBSD inetd's `path` (default: inetd in PATH)")
	fs.StringVar(&o.paths.tcpserver, "tcpserver", "", "tcpserver's `path` (default: in PATH)")
	fs.StringVar(&o.paths.tcpsvd, "tcpsvd", "", "tcpsvd's `path` (default: in PATH)")
	fs.StringVar(&o.paths.socketActivate, "socket-activate", "", "systemd-socket-activate's `path` (default: in PATH)")
	fs.StringVar(&o.paths.stunnel, "stunnel", "", "-tls: stunnel's `path` (default: stunnel4 or stunnel in PATH)")
	fs.StringVar(&o.paths.socat, "socat", "", "-tls: socat's `path` (default: in PATH)")
	fs.Func("server", "another server to run, as `NAME=COMMAND` with {port} in COMMAND (split on spaces, no shell); repeatable", func(v string) error {
		sp, err := customSpec(v)
		if err == nil {
			o.custom = append(o.custom, sp)
		}
		return err
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if o.tls && !given["levels"] {
		*levels = "1,8,32"
	}
	if o.tls && !given["hold"] {
		o.hold = 0
	}
	if o.levels, err = parseLevels(*levels); err != nil {
		return nil, err
	}
	o.servers = strings.Split(*servers, ",")
	switch {
	case o.rounds < 1:
		return nil, errors.New("-rounds: want at least 1")
	case o.set.maxConns < 1:
		return nil, errors.New("-max-conns: want at least 1")
	case o.set.duration <= 0 || o.set.timeout <= 0 || o.set.sample <= 0:
		return nil, errors.New("-duration, -timeout and -sample must be above zero")
	case o.hold < 0:
		return nil, errors.New("-hold: want 0 or more")
	case o.bulkMB < 0:
		return nil, errors.New("-bulk-mb: want 0 or more")
	case o.tls && o.hold > 0 && given["hold"]:
		return nil, errors.New("-hold and -tls together: the TLS comparison has no hold test")
	case o.tls && len(o.custom) > 0:
		return nil, errors.New("-server and -tls together: a server given with -server is measured with plain TCP, not TLS")
	}
	peers := filepath.Join(binDir, "..", "peers")
	o.paths.goinetd = findProgram(o.paths.goinetd, "goinetd")
	o.paths.floor = findProgram(o.paths.floor)
	o.paths.xinetd = findProgram(o.paths.xinetd, "xinetd", filepath.Join(peers, "xinetd", "usr", "sbin", "xinetd"))
	o.paths.inetd = findProgram(o.paths.inetd, "inetd")
	o.paths.tcpserver = findProgram(o.paths.tcpserver, "tcpserver")
	o.paths.tcpsvd = findProgram(o.paths.tcpsvd, "tcpsvd")
	o.paths.socketActivate = findProgram(o.paths.socketActivate, "systemd-socket-activate")
	o.paths.stunnel = findProgram(o.paths.stunnel, "stunnel4", "stunnel")
	o.paths.socat = findProgram(o.paths.socat, "socat")
	return o, nil
}

// parseLevels decodes a comma-separated list of concurrency levels.
func parseLevels(s string) ([]int, error) {
	var levels []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-levels: %q is not a concurrency (a whole number, 1 or more)", f)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

// selectSpecs returns the servers of all to run, in order, and the ones
// left out because they are not installed.
func selectSpecs(o *options, all []*spec) (specs []*spec, skipped []string, err error) {
	want := make(map[string]bool)
	for _, name := range o.servers {
		want[strings.TrimSpace(name)] = true
	}
	for name := range want {
		known := name == "all"
		for _, sp := range all {
			known = known || sp.name == name
		}
		if !known {
			return nil, nil, fmt.Errorf("-servers: no server %q", name)
		}
	}
	for _, sp := range all {
		if !want["all"] && !want[sp.name] && sp.role != roleOther {
			continue
		}
		if sp.program == "" {
			if sp.role == roleSubject {
				return nil, nil, errors.New("goinetd not found: build it (go build -o bench/bin/ ./cmd/goinetd) or give -goinetd")
			}
			skipped = append(skipped, sp.name+" (not installed)")
			continue
		}
		specs = append(specs, sp)
	}
	if len(specs) == 0 {
		return nil, skipped, errors.New("no server to run")
	}
	return specs, skipped, nil
}

// header describes the machine and the settings, for the report.
func header(o *options, set settings) []string {
	osrelease, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	twReuse, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_tw_reuse")
	portRange, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	version := "unknown"
	if o.paths.goinetd != "" {
		if out, err := exec.Command(o.paths.goinetd, "-version").Output(); err == nil {
			version = strings.TrimSpace(string(out))
		}
	}
	extra := fmt.Sprintf("hold test: %d connections", o.hold)
	if o.tls {
		extra = fmt.Sprintf("TLS 1.3, ECDHE on P-256, an ECDSA P-256 certificate; full and resumed handshakes; bulk test: %d MB through one connection", o.bulkMB)
	}
	return []string{
		fmt.Sprintf("%s; Linux %s; %d CPUs; goinetd-bench built with %s; %s",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(string(osrelease)), runtime.NumCPU(), runtime.Version(), version),
		fmt.Sprintf("%d rounds; levels %v; each level: %v warm-up, then at most %v or %d connections; %s; "+
			"handler /bin/cat; %d-byte exchange per connection",
			o.rounds, o.levels, set.warmup, set.duration, set.maxConns, extra, payloadSize),
		fmt.Sprintf("load average at the start: %s; tcp_tw_reuse %s; local ports %s; clock ticks %d/s",
			loadavg(), strings.TrimSpace(string(twReuse)), strings.Join(strings.Fields(string(portRange)), "-"), set.ticks),
		"the client runs on the same machine (and cores) as the servers",
	}
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// displayCommand is srv's command line with its folder and port written
// as $DIR and $PORT, the same for every round.
func displayCommand(srv *server) string {
	port := strconv.Itoa(srv.port)
	args := make([]string, len(srv.argv))
	for i, a := range srv.argv {
		a = strings.ReplaceAll(a, srv.dir, "$DIR")
		// The run's own files (-tls: the certificate) are in the folder above.
		a = strings.ReplaceAll(a, filepath.Dir(srv.dir), "$DIR/..")
		args[i] = strings.ReplaceAll(a, port, "$PORT")
	}
	return strings.Join(quoteArgs(args), " ")
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			out[i] = strconv.Quote(a)
		} else {
			out[i] = a
		}
	}
	return out
}

// writeJSON writes every round's figures; a figure that could not be
// measured is -1.
func writeJSON(path string, res *results) error {
	out := *res
	out.Runs = make([]levelResult, len(res.Runs))
	for i, r := range res.Runs {
		unmeasuredAsMinusOne(&r.CPUus, &r.CPUChildrenUs, &r.ConnsPerSec, &r.OthersPct)
		out.Runs[i] = r
	}
	out.Bulks = make([]bulkResult, len(res.Bulks))
	for i, b := range res.Bulks {
		unmeasuredAsMinusOne(&b.CPUTreeUsPerMB, &b.OthersPct)
		out.Bulks[i] = b
	}
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("-json: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("-json: %w", err)
	}
	return nil
}

// unmeasuredAsMinusOne sets every figure that is NaN or infinite (not
// measured) to -1, which JSON can hold.
func unmeasuredAsMinusOne(figures ...*float64) {
	for _, f := range figures {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = -1
		}
	}
}
