// Command goinetd is a config-driven inetd-style superserver: it binds
// every service declared in inetd.toml and, for each connection, starts a
// freshly executed handler with the connection on its standard input and
// output.
//
// Usage:
//
//	goinetd [-c FILE] [-log-level LEVEL]   serve in the foreground
//	goinetd check [-c FILE | FILE]         validate FILE and summarise it
//	goinetd import [-o FILE] PATH...       convert inetd.conf and xinetd files
//	goinetd help
//	goinetd -version
//
// GOINETD_SPAWN=forkexec starts every handler through Go's
// syscall.ForkExec instead of goinetd's own vfork (spawner.SpawnMode).
//
// SIGHUP reloads the config as a transaction. SIGTERM and SIGINT stop
// accepting at once, wait up to [server] shutdown_grace for handlers to
// finish, then end them; a requested stop exits 0 either way.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/internal/logsink"
	"github.com/goinetd/goinetd/internal/trampoline"
	"github.com/goinetd/goinetd/internal/vfork"
	"github.com/goinetd/goinetd/metrics"
	"github.com/goinetd/goinetd/spawner"
	"golang.org/x/sys/unix"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	switch filepath.Base(os.Args[0]) {
	case trampoline.Name:
		os.Exit(trampoline.Run(os.Args[1:]))
	case vfork.ProbeName:
		// A probe child is killed before it runs; this one outlived the
		// goinetd that started it, which was killed meanwhile.
		os.Exit(0)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is goinetd with its arguments and output streams; it returns the
// exit status: 2 for a command line it does not understand.
func run(args []string, stdout, stderr io.Writer) int {
	cmd, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, errUsage):
		return 2 // the flag package has said what is wrong
	case errors.Is(err, errNoConfig):
		fmt.Fprintf(stderr, "goinetd: %v\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "goinetd: %v\n", err)
		return 2
	}
	switch cmd.name {
	case "help":
		printUsage(stdout)
		return 0
	case "version":
		fmt.Fprintf(stdout, "goinetd %s\n", version)
		return 0
	case "check":
		return check(cmd.configPath, stdout, stderr)
	case "import":
		return runImport(cmd.importPaths, cmd.importOut, stdout, stderr)
	}
	spawn, err := spawner.ParseSpawnMode(os.Getenv(spawner.SpawnEnv))
	if err != nil {
		fmt.Fprintf(stderr, "goinetd: %v\n", err)
		return 2
	}
	return serve(cmd.configPath, cmd.level, spawn, stderr)
}

func serve(path string, level slog.Level, spawn spawner.SpawnMode, stderr io.Writer) int {
	// Two Ps, unless GOMAXPROCS says otherwise: the spawn loop's thread
	// waits in epoll_wait holding one, and the runtime leaves it there
	// only while another is idle (spawner/loop.go). More Ps cost
	// CPU per connection: the scheduler hands goroutines between threads
	// and wakes spinning ones (docs/performance.md).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	// What goinetd inherited (descriptors, ignored signals) must not
	// reach handlers.
	if err := spawner.DropInherited(); err != nil {
		fmt.Fprintf(stderr, "goinetd: %v\n", err)
		return 1
	}
	// Catch the signals before anything can deliver them.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)

	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sink, err := logsink.Open(cfg.Server.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "goinetd: %v\n", err)
		return 1
	}
	defer sink.Close()
	log := newLogger(sink, cfg.Server.LogFormat, level)
	logWarnings(log, cfg)
	m := metrics.New()
	m.BuildInfo(version)
	exporter := metrics.NewExporter(m, log)
	if err := exporter.Serve(cfg.Server.Metrics); err != nil {
		log.Error("cannot serve metrics", "err", err)
		return 1
	}
	defer exporter.Close()
	srv, err := spawner.New(log, m, spawn)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	// Sockets systemd passed (goinetd.socket) are used instead of binding,
	// by the service each is named after; LISTEN_* leave the environment.
	srv.Adopt(activation.Files(true))
	var served atomic.Pointer[config.Config] // for the status after a retried bind
	served.Store(cfg)
	srv.OnBound(func() { notify(log, "STATUS="+status(served.Load(), srv.Pending())) })
	if err := srv.Start(cfg); err != nil {
		log.Error("cannot serve "+cfg.File, "err", err)
		srv.Close()
		return 1
	}
	for _, name := range srv.Unused() {
		log.Warn("a socket passed by systemd matches no service; keeping it for a reload", "name", name)
	}
	log.Info("serving", "config", cfg.File, "services", len(cfg.Enabled()), "version", version,
		"spawn", srv.SpawnMode())
	m.Loaded(false, true)
	notify(log, "READY=1\nSTATUS="+status(cfg, srv.Pending()))

	// A reload's load runs off this loop, so that a load that blocks (a
	// file system that hangs) cannot hold up SIGTERM; its result comes
	// back here and is applied here, one reload at a time. A SIGHUP during
	// a load asks for one more load after it.
	var loading chan loadResult // not nil while a load runs
	again := false
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGUSR1 {
				reopenLog(log, sink)
				continue
			}
			if sig == syscall.SIGHUP {
				if loading != nil {
					again = true
				} else {
					loading = startReload(log, path)
				}
				continue
			}
			notify(log, "STOPPING=1")
			grace := cfg.Server.ShutdownGrace
			log.Info("stopping", "signal", sig.String(), "connections", srv.Connections(), "shutdown_grace", grace)
			st := srv.Shutdown(grace)
			// A requested stop succeeds even if handlers had to be ended:
			// service managers read any other status as a failure.
			log.Info("stopped", "ended", st.Ended, "signalled", st.Signalled, "left_running", st.Left)
			return 0
		case r := <-loading:
			loading = nil
			next := applyReload(log, srv, path, cfg, r)
			m.Loaded(true, next != cfg)
			if next != cfg && next.Server.Metrics != cfg.Server.Metrics {
				if err := exporter.Serve(next.Server.Metrics); err != nil {
					log.Error("cannot serve metrics", "err", err)
				}
			}
			cfg = next
			served.Store(cfg)
			if again {
				again = false
				loading = startReload(log, path)
			}
		}
	}
}

// loadResult is the outcome of a reload's config.Load.
type loadResult struct {
	cfg     *config.Config
	err     error
	started time.Time // when the SIGHUP was taken
}

// startReload tells systemd a reload has begun and loads the config at
// path in a goroutine of its own; the result arrives on the channel it
// returns, which has room for it, so a load whose result is no longer
// wanted (goinetd is stopping) ends without a reader.
func startReload(log *slog.Logger, path string) chan loadResult {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	notify(log, fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
	done := make(chan loadResult, 1)
	started := time.Now()
	go func() {
		cfg, err := config.Load(path)
		done <- loadResult{cfg, err, started}
	}()
	return done
}

// applyReload applies the config a reload loaded from path; if it is not
// valid, it logs every problem and keeps serving cur. It returns the
// config now served.
func applyReload(log *slog.Logger, srv *spawner.Server, path string, cur *config.Config, r loadResult) *config.Config {
	next, err := r.cfg, r.err
	if err != nil {
		for _, problem := range strings.Split(err.Error(), "\n") {
			log.Error("reload: config problem", "problem", problem)
		}
		log.Error("reload failed; still serving the config loaded before", "config", path)
		notify(log, "READY=1\nSTATUS=reload failed; "+status(cur, srv.Pending()))
		return cur
	}
	logWarnings(log, next)
	if next.Server.LogFormat != cur.Server.LogFormat {
		log.Warn("reload: a setting needs a restart; keeping the running one", "key", "server.log_format",
			"running", cur.Server.LogFormat, "configured", next.Server.LogFormat)
	}
	if next.Server.Log != cur.Server.Log {
		log.Warn("reload: a setting needs a restart; keeping the running one", "key", "server.log",
			"running", cur.Server.Log, "configured", next.Server.Log)
	}
	ch := srv.Apply(next)
	failed := make([]string, 0, len(ch.Failed))
	for name := range ch.Failed {
		failed = append(failed, name)
	}
	slices.Sort(failed)
	log.Info("reloaded", "config", path, "added", nonNil(ch.Added), "removed", nonNil(ch.Removed),
		"changed", nonNil(ch.Changed), "rebound", nonNil(ch.Rebound), "failed", failed, "unchanged", len(ch.Kept),
		"took", time.Since(r.started))
	notify(log, "READY=1\nSTATUS="+status(next, srv.Pending()))
	return next
}

// nonNil returns names, or an empty list for nil, which JSON would write
// as null.
func nonNil(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// logWarnings logs each of cfg's warnings, as check prints them.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "warning", w.Error())
	}
}

// status is the one-line summary systemctl status shows: the services of
// cfg being served, and those in failed, whose bind is being retried.
func status(cfg *config.Config, failed []string) string {
	var names []string
	for _, s := range cfg.Enabled() {
		if !slices.Contains(failed, s.Name) {
			names = append(names, s.Name)
		}
	}
	line := fmt.Sprintf("serving %d services: %s", len(names), strings.Join(names, ", "))
	if len(failed) > 0 {
		line += fmt.Sprintf("; cannot bind %d, retrying: %s", len(failed), strings.Join(failed, ", "))
	}
	return line
}

// notify sends state to systemd if goinetd runs under Type=notify
// (NOTIFY_SOCKET is set), and does nothing otherwise.
func notify(log *slog.Logger, state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "state", state, "err", err)
	}
}

// check validates the config at path and prints a summary per service,
// or every problem; warnings go to stderr and do not fail it.
func check(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok, %d services (%d enabled)\n", cfg.File, len(cfg.Services), len(cfg.Enabled()))
	for _, inc := range cfg.Includes {
		fmt.Fprintf(stdout, "included %s\n", inc)
	}
	for _, svc := range cfg.Services {
		fmt.Fprintln(stdout, svc.Summary())
	}
	return 0
}

// newLogger returns goinetd's logger, writing to sink. In JSON, a
// duration is a number of seconds (0.0015), as log processors expect; in
// text, Go's form (1.5ms).
func newLogger(sink *logsink.Sink, format config.LogFormat, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogJSON {
		opts.ReplaceAttr = durationSeconds
	}
	return slog.New(sink.Handler(format, opts))
}

// reopenLog reopens a log file that logrotate moved away (SIGUSR1).
func reopenLog(log *slog.Logger, sink *logsink.Sink) {
	switch reopened, err := sink.Reopen(); {
	case err != nil:
		log.Error("cannot reopen the log file; still writing to the one open", "err", err)
	case reopened:
		log.Info("log file reopened")
	default:
		log.Info("SIGUSR1: the log is not a file; nothing to reopen")
	}
}

// durationSeconds writes a duration attribute as seconds.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}
