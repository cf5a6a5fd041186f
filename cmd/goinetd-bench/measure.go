package main

import (
	"context"
	"crypto/x509"
	"errors"
	"math"
	"os"
	"sync"
	"time"
)

// levelResult is one server at one concurrency level in one round.
type levelResult struct {
	Server      string         `json:"server"`
	Round       int            `json:"round"`
	Level       int            `json:"level"`
	Handshake   string         `json:"handshake,omitempty"` // TLS: handshakeFull or handshakeResumed
	Conns       int            `json:"conns"`
	Resumed     int            `json:"resumed,omitempty"` // TLS: the connections that resumed a session
	Seconds     float64        `json:"seconds"`
	ConnsPerSec float64        `json:"conns_per_sec"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	Errors      int            `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	// The server's own CPU time (utime+stime, every thread, children
	// excluded) per completed connection, and the same plus the CPU time of
	// the children it reaped meanwhile (cutime+cstime: the handlers, and
	// whatever a server does in a child before exec).
	CPUus         float64 `json:"cpu_us_per_conn"`
	CPUChildrenUs float64 `json:"cpu_with_children_us_per_conn"`
	PeakRSSKB     int64   `json:"peak_rss_kb"` // VmHWM, or the largest VmRSS sampled
	MaxThreads    int     `json:"max_threads"`
	MaxChildren   int     `json:"max_children"` // live children, largest sampled
	ZombiesLeft   int     `json:"zombies_left"` // children in state Z once the deadline has passed
	ChildrenLeft  int     `json:"children_left"`
	ServerDied    bool    `json:"server_died,omitempty"`
	// The share of the machine's CPU time that went to neither the
	// server, nor its children, nor goinetd-bench itself: the kernel's
	// own threads, and whatever else ran. Above a few percent, something
	// else disturbed the level.
	OthersPct float64 `json:"others_pct"`
}

// bulkResult is one server moving MB through one TLS connection and its
// handler, and back, in one round.
type bulkResult struct {
	Server         string  `json:"server"`
	Round          int     `json:"round"`
	MB             int64   `json:"mb"` // 10^6 bytes, each way
	Seconds        float64 `json:"seconds"`
	MBps           float64 `json:"mb_per_sec"`
	CPUTreeUsPerMB float64 `json:"cpu_tree_us_per_mb"` // the server's tree, as CPUChildrenUs
	Negotiated     string  `json:"negotiated"`         // protocol, cipher suite, key exchange
	Error          string  `json:"error,omitempty"`
	ZombiesLeft    int     `json:"zombies_left"`
	ChildrenLeft   int     `json:"children_left"`
	ServerDied     bool    `json:"server_died,omitempty"`
	OthersPct      float64 `json:"others_pct"`
}

// holdResult is one server holding many connections at once, in one round.
type holdResult struct {
	Server           string         `json:"server"`
	Round            int            `json:"round"`
	Held             int            `json:"held"`
	ThreadsHeld      int            `json:"threads_held"`
	RSSHeldKB        int64          `json:"rss_held_kb"`
	ChildrenHeld     int            `json:"children_held"`
	ThreadsAfter     int            `json:"threads_after"`
	RSSAfterKB       int64          `json:"rss_after_kb"`
	ChildrenAfter    int            `json:"children_after"`
	ZombiesAfter     int            `json:"zombies_after"`
	Errors           int            `json:"errors"`
	ErrorKinds       map[string]int `json:"error_kinds,omitempty"`
	SecondsToOpen    float64        `json:"seconds_to_open"`
	SecondsToRelease float64        `json:"seconds_to_release"`
}

// settings are the knobs of one measurement.
type settings struct {
	duration time.Duration // per level, measured
	warmup   time.Duration // per level, before measuring
	maxConns int           // per level, measured
	timeout  time.Duration // per connection
	sample   time.Duration // how often the server's threads, RSS and children are sampled
	settle   time.Duration // how long children may take to be reaped after a level
	ticks    uint64        // clock ticks per second of /proc/PID/stat
}

// sampler records the peaks of a server's threads, RSS and live children
// while it runs.
type sampler struct {
	p        proc
	pid      int
	mu       sync.Mutex
	threads  int
	rssKB    int64
	children int
}

func (s *sampler) take() {
	st, err := s.p.status(s.pid)
	kids, kerr := s.p.children(s.pid)
	live, _ := childCounts(kids)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.threads = max(s.threads, st.threads)
		s.rssKB = max(s.rssKB, st.rssKB, st.hwmKB)
	}
	if kerr == nil {
		s.children = max(s.children, live)
	}
}

// run samples every interval until ctx ends, then once more.
func (s *sampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.take()
		select {
		case <-ctx.Done():
			s.take()
			return
		case <-t.C:
		}
	}
}

// cpuSnapshot is a server's CPU time, goinetd-bench's own and the
// machine's, at one moment; err is the first that reading them met.
type cpuSnapshot struct {
	srv, self   procStat
	busy, total uint64 // the machine's, from /proc/stat
	err         error
}

func takeCPU(p proc, pid int) cpuSnapshot {
	var s cpuSnapshot
	var errs [3]error
	s.srv, errs[0] = p.stat(pid)
	s.self, errs[1] = p.stat(os.Getpid())
	s.busy, s.total, errs[2] = p.cpuTimes()
	s.err = errors.Join(errs[:]...)
	return s
}

// serverTicks returns the server's CPU time from s to after, in clock
// ticks: its own (utime+stime, every thread), and its tree's (its own
// plus cutime+cstime: the children it reaped meanwhile, and theirs).
func (s cpuSnapshot) serverTicks(after cpuSnapshot) (own, tree uint64) {
	own = after.srv.utime + after.srv.stime - s.srv.utime - s.srv.stime
	return own, own + after.srv.cutime + after.srv.cstime - s.srv.cutime - s.srv.cstime
}

// othersPct returns the share of the machine's CPU time from s to after
// that went to neither the server's tree nor goinetd-bench: NaN if it
// could not be read.
func (s cpuSnapshot) othersPct(after cpuSnapshot) float64 {
	if s.err != nil || after.err != nil || after.total <= s.total {
		return math.NaN()
	}
	_, tree := s.serverTicks(after)
	ours := tree + after.self.utime + after.self.stime - s.self.utime - s.self.stime
	others := float64(after.busy-s.busy) - float64(ours)
	return max(others, 0) / float64(after.total-s.total) * 100
}

// perUnit converts ticks into microseconds per unit (a connection, a MB).
// A tick is 10 ms: a run too short to cost one has no figure (NaN),
// rather than a figure of 0.
func perUnit(ticks, ticksPerSec uint64, units float64) float64 {
	if ticks == 0 || units <= 0 {
		return math.NaN()
	}
	return float64(ticks) / float64(ticksPerSec) * 1e6 / units
}

// measureLevel warms srv up, then runs the closed loop of cl at the given
// concurrency and measures it: the client's figures, and the server's
// CPU time, peaks and leftovers from /proc.
func measureLevel(ctx context.Context, p proc, srv *server, cl client, level int, set settings) levelResult {
	r := levelResult{Server: srv.spec.name, Level: level}
	if set.warmup > 0 {
		closedLoop(ctx, cl, srv.addr(), level, set.warmup, set.maxConns, set.timeout)
		waitChildren(p, srv.pid(), set.settle)
	}
	before := takeCPU(p, srv.pid())

	sctx, stopSampling := context.WithCancel(ctx)
	smp := &sampler{p: p, pid: srv.pid()}
	sampled := make(chan struct{})
	go func() {
		smp.run(sctx, set.sample)
		close(sampled)
	}()
	load := closedLoop(ctx, cl, srv.addr(), level, set.duration, set.maxConns, set.timeout)
	stopSampling()
	<-sampled

	// The handlers of the last connections have exited (their clients
	// read EOF), but the server may not have reaped them yet; cutime
	// counts a child only once it is reaped.
	r.ChildrenLeft, r.ZombiesLeft = waitChildren(p, srv.pid(), set.settle)
	after := takeCPU(p, srv.pid())

	r.Conns, r.Resumed, r.Seconds = load.conns, load.resumed, load.elapsed.Seconds()
	r.ConnsPerSec = float64(load.conns) / load.elapsed.Seconds()
	r.P50ms = ms(percentile(load.latencies, 50))
	r.P99ms = ms(percentile(load.latencies, 99))
	r.MaxMs = ms(percentile(load.latencies, 100))
	r.Errors, r.ErrorKinds = load.errorCount(), load.errors
	r.CPUus, r.CPUChildrenUs = math.NaN(), math.NaN()
	if before.err == nil && after.err == nil {
		own, tree := before.serverTicks(after)
		r.CPUus, r.CPUChildrenUs = perUnit(own, set.ticks, float64(load.conns)), perUnit(tree, set.ticks, float64(load.conns))
	}
	r.OthersPct = before.othersPct(after)
	r.PeakRSSKB, r.MaxThreads, r.MaxChildren = smp.rssKB, smp.threads, smp.children
	r.ServerDied = !srv.alive()
	return r
}

// measureBulk sends mb MB through one TLS connection to srv and its
// handler and reads them back at the same time, and measures the rate
// and the server's CPU time.
func measureBulk(ctx context.Context, p proc, srv *server, roots *x509.CertPool, mb int64, set settings) bulkResult {
	r := bulkResult{Server: srv.spec.name, MB: mb, CPUTreeUsPerMB: math.NaN()}
	before := takeCPU(p, srv.pid())
	// A slow server may take far longer than one connection of the closed
	// loop: -timeout, or a minute a GB at the least.
	deadline := time.Now().Add(max(set.timeout, time.Duration(mb)*time.Minute/1000))
	elapsed, negotiated, kind := bulkTransfer(ctx, roots, srv.addr(), mb*1e6, deadline)
	r.ChildrenLeft, r.ZombiesLeft = waitChildren(p, srv.pid(), set.settle)
	after := takeCPU(p, srv.pid())
	r.Negotiated, r.Error = negotiated, kind
	if kind == "" {
		r.Seconds = elapsed.Seconds()
		r.MBps = float64(mb) / r.Seconds
		if before.err == nil && after.err == nil {
			_, tree := before.serverTicks(after)
			r.CPUTreeUsPerMB = perUnit(tree, set.ticks, float64(mb))
		}
	}
	r.OthersPct = before.othersPct(after)
	r.ServerDied = !srv.alive()
	return r
}

// measureHold opens n connections to srv at once, samples the server
// while they are held, releases them and samples it again once its
// children are gone.
func measureHold(ctx context.Context, p proc, srv *server, n int, set settings) holdResult {
	r := holdResult{Server: srv.spec.name}
	t0 := time.Now()
	h := holdOpen(ctx, srv.addr(), n, 32, set.timeout)
	r.SecondsToOpen = time.Since(t0).Seconds()
	r.Held = len(h.conns)
	smp := &sampler{p: p, pid: srv.pid()}
	smp.take()
	r.ThreadsHeld, r.ChildrenHeld = smp.threads, smp.children
	if st, err := p.status(srv.pid()); err == nil {
		r.RSSHeldKB = st.rssKB
	}
	t0 = time.Now()
	h.release(32, set.timeout)
	r.ChildrenAfter, r.ZombiesAfter = waitChildren(p, srv.pid(), max(set.settle, 10*time.Second))
	r.SecondsToRelease = time.Since(t0).Seconds()
	if st, err := p.status(srv.pid()); err == nil {
		r.ThreadsAfter, r.RSSAfterKB = st.threads, st.rssKB
	}
	for _, c := range h.errors {
		r.Errors += c
	}
	r.ErrorKinds = h.errors
	return r
}

// waitChildren waits until pid has no child left, live or zombie, for at
// most wait, and returns how many of each are left.
func waitChildren(p proc, pid int, wait time.Duration) (live, zombies int) {
	deadline := time.Now().Add(wait)
	for {
		kids, err := p.children(pid)
		if err != nil {
			return 0, 0
		}
		live, zombies = childCounts(kids)
		if live+zombies == 0 || time.Now().After(deadline) {
			return live, zombies
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
