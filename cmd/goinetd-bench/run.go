package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runner runs the comparison: it owns the temporary folder, the ports,
// the results and the list of problems of one run.
type runner struct {
	ctx      context.Context
	p        proc
	o        *options
	set      settings
	dir      string // a subfolder per server start: its config and log
	ports    *portPicker
	progress io.Writer
	res      *results
	clients  []namedClient // each level is measured with each, in order
	// exitedOrphans counts, by server, the handlers that exited after the
	// process that started them, unreaped by it.
	exitedOrphans map[string]int
	tls           tlsFiles // -tls: the certificate every server serves
	problems      []string
	servers       []*server // every server started, to check none is left
}

// bench runs the whole comparison. The results it returns are complete
// unless ctx ended early; its error says what went wrong (failed
// connections, a server that did not start, processes left running).
func bench(ctx context.Context, o *options, progress io.Writer) (*results, error) {
	if err := becomeSubreaper(); err != nil {
		return nil, err
	}
	set := o.set
	auxv, _ := os.ReadFile("/proc/self/auxv")
	set.ticks = clockTicks(auxv)
	dir, err := os.MkdirTemp("", "goinetd-bench-")
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	all := append(allSpecs(o.paths), o.custom...)
	clients := []namedClient{{"", tcpClient{}}}
	var files tlsFiles
	if o.tls {
		if files, err = makeTLSFiles(dir); err != nil {
			return nil, err
		}
		all = tlsSpecs(o.paths, files)
		clients = []namedClient{
			{handshakeFull, newTLSClient(files.roots, handshakeFull)},
			{handshakeResumed, newTLSClient(files.roots, handshakeResumed)},
		}
	}
	specs, skipped, err := selectSpecs(o, all)
	if err != nil {
		return nil, err
	}
	r := &runner{
		clients: clients, tls: files, exitedOrphans: make(map[string]int),
		ctx: ctx, p: proc{root: "/proc"}, o: o, set: set, dir: dir,
		ports: &portPicker{next: o.portBase}, progress: progress,
		res: &results{
			Command:  "goinetd-bench " + strings.Join(quoteArgs(os.Args[1:]), " "),
			Specs:    specs,
			Skipped:  skipped,
			Levels:   o.levels,
			Commands: make(map[string]string),
			Header:   header(o, set),
		},
	}
	started := time.Now()
	for round := 1; round <= o.rounds && ctx.Err() == nil; round++ {
		for _, level := range o.levels {
			for _, cl := range r.clients {
				for _, sp := range specs {
					r.level(sp, cl, round, level)
				}
			}
		}
		if o.hold > 0 {
			for _, sp := range specs {
				r.hold(sp, round)
			}
		}
		if o.tls && o.bulkMB > 0 {
			for _, sp := range specs {
				r.bulk(sp, round)
			}
		}
	}
	r.checkLeftovers()
	r.res.Footer = append(r.res.Footer, fmt.Sprintf("Took %v; load average at the end: %s.",
		time.Since(started).Round(time.Second), loadavg()))
	if o.keep {
		r.res.Footer = append(r.res.Footer, "Configs and logs kept in "+dir+".")
	}
	if ctx.Err() != nil {
		r.problem("interrupted: the figures are partial")
	}
	if len(r.problems) > 0 {
		return r.res, fmt.Errorf("%d problems:\n  %s", len(r.problems), strings.Join(r.problems, "\n  "))
	}
	return r.res, nil
}

func (r *runner) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// namedClient is a client of the closed loop, and the name of its
// handshake in the results ("" for plain TCP).
type namedClient struct {
	handshake string
	client    client
}

// minResumedShare is the share of a resumed level's connections that
// must have resumed their session: each worker's first connection after
// the server's start makes a full handshake.
const minResumedShare = 0.9

// level measures sp at one concurrency level with one client, in a fresh
// server.
func (r *runner) level(sp *spec, cl namedClient, round, level int) {
	tag := fmt.Sprintf("r%d-c%d", round, level)
	if cl.handshake != "" {
		tag += "-" + cl.handshake
	}
	r.withServer(sp, tag, func(srv *server) {
		lr := measureLevel(r.ctx, r.p, srv, cl.client, level, r.set)
		lr.Round, lr.Handshake = round, cl.handshake
		r.res.Runs = append(r.res.Runs, lr)
		fmt.Fprintf(r.progress, "round %d/%d  conc %-3d %-8s %-24s %9s conn/s  p99 %7s ms  cpu %6s µs/conn (tree %6s)  errors %d  others %s%%\n",
			round, r.o.rounds, level, cl.handshake, sp.name, fmtCount(lr.ConnsPerSec), fmtMs(lr.P99ms), fmtMicros(lr.CPUus),
			fmtMicros(lr.CPUChildrenUs), lr.Errors, fmtTenths(lr.OthersPct))
		if lr.Errors > 0 || lr.ServerDied || lr.ZombiesLeft > 0 || lr.ChildrenLeft > 0 {
			r.problem("round %d conc %d %s %s: %d errors, %d zombies and %d children left, exited: %v",
				round, level, cl.handshake, sp.name, lr.Errors, lr.ZombiesLeft, lr.ChildrenLeft, lr.ServerDied)
		}
		if cl.handshake == handshakeResumed && float64(lr.Resumed) < minResumedShare*float64(lr.Conns) {
			r.problem("round %d conc %d resumed %s: only %d of %d connections resumed a session",
				round, level, sp.name, lr.Resumed, lr.Conns)
		}
	})
}

// bulk runs the bulk test of sp in a fresh server.
func (r *runner) bulk(sp *spec, round int) {
	r.withServer(sp, fmt.Sprintf("r%d-bulk", round), func(srv *server) {
		b := measureBulk(r.ctx, r.p, srv, r.tls.roots, r.o.bulkMB, r.set)
		b.Round = round
		r.res.Bulks = append(r.res.Bulks, b)
		fmt.Fprintf(r.progress, "round %d/%d  bulk %d MB  %-24s %s MB/s  cpu tree %s µs/MB  %s %s\n",
			round, r.o.rounds, b.MB, sp.name, fmtCount(b.MBps), fmtMicros(b.CPUTreeUsPerMB), b.Negotiated, b.Error)
		if b.Error != "" || b.ServerDied || b.ZombiesLeft > 0 || b.ChildrenLeft > 0 {
			r.problem("round %d bulk %s: %q, %d zombies and %d children left, exited: %v",
				round, sp.name, b.Error, b.ZombiesLeft, b.ChildrenLeft, b.ServerDied)
		}
	})
}

// hold runs the hold test of sp in a fresh server.
func (r *runner) hold(sp *spec, round int) {
	r.withServer(sp, fmt.Sprintf("r%d-hold", round), func(srv *server) {
		h := measureHold(r.ctx, r.p, srv, r.o.hold, r.set)
		h.Round = round
		r.res.Holds = append(r.res.Holds, h)
		fmt.Fprintf(r.progress, "round %d/%d  hold %d  %-24s threads %d  RSS %s MiB  children %d  errors %d\n",
			round, r.o.rounds, h.Held, sp.name, h.ThreadsHeld, fmtTenths(float64(h.RSSHeldKB)/1024), h.ChildrenHeld, h.Errors)
		if h.Errors > 0 || h.Held < r.o.hold || h.ZombiesAfter > 0 || h.ChildrenAfter > 0 {
			r.problem("round %d hold %s: %d of %d held, %d errors, %d zombies and %d children after",
				round, sp.name, h.Held, r.o.hold, h.Errors, h.ZombiesAfter, h.ChildrenAfter)
		}
	})
}

// withServer starts sp in a folder named after tag, runs measure on it,
// then stops and reaps it, with whatever handlers it left.
func (r *runner) withServer(sp *spec, tag string, measure func(*server)) {
	if r.ctx.Err() != nil {
		return
	}
	sub := filepath.Join(r.dir, tag+"-"+sp.name)
	if err := os.Mkdir(sub, 0o755); err != nil {
		r.problem("%v", err)
		return
	}
	var (
		srv *server
		err error
	)
	// Another process may take the port between its pick and the
	// server's bind: then the next one is tried, twice.
	for attempt := 0; attempt < 3 && r.ctx.Err() == nil; attempt++ {
		var port int
		if port, err = r.ports.pick(); err != nil {
			break
		}
		if srv, err = startServer(r.p, sp, port, sub); err == nil {
			break
		}
	}
	if srv == nil {
		if err == nil {
			err = r.ctx.Err()
		}
		r.problem("%s %s: %v", tag, sp.name, err)
		fmt.Fprintf(r.progress, "%s %s: %v\n", tag, sp.name, err)
		return
	}
	r.servers = append(r.servers, srv)
	if _, ok := r.res.Commands[sp.name]; !ok {
		r.res.Commands[sp.name] = displayCommand(srv)
	}
	measure(srv)
	running, exited := srv.stop(r.p)
	if running > 0 {
		r.problem("%s %s: %d handlers still running when it stopped", tag, sp.name, running)
	}
	if exited > 0 {
		r.exitedOrphans[sp.name] += exited
	}
}

// checkLeftovers makes sure nothing is left: every server has exited and
// been waited for, and no handler was orphaned to this process. It ends
// what it finds, and says so in the report.
func (r *runner) checkLeftovers() {
	left := 0
	for _, s := range r.servers {
		if s.alive() {
			left++
			s.stop(r.p)
		}
	}
	for _, sp := range r.res.Specs {
		if n := r.exitedOrphans[sp.name]; n > 0 {
			r.res.Footer = append(r.res.Footer, fmt.Sprintf(
				"%s: %d handlers exited after the process that started them, which did not wait for them; "+
					"goinetd-bench reaped them at the server's stop, so their CPU time is in none of its figures.", sp.name, n))
		}
	}
	orphans, _ := reapOrphans(r.p, nil)
	if left+orphans > 0 {
		r.problem("left running at the end: %d servers, %d other processes (now killed)", left, orphans)
		r.res.Footer = append(r.res.Footer, fmt.Sprintf(
			"Left running at the end: %d servers and %d other processes; goinetd-bench killed them.", left, orphans))
		return
	}
	r.res.Footer = append(r.res.Footer, fmt.Sprintf(
		"Left running at the end: nothing (%d servers started, each stopped and reaped; no orphaned handler).", len(r.servers)))
}
