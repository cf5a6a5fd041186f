// Command goinetd is a config-driven inetd-style superserver: it binds
// every service declared in inetd.toml and, for each connection, starts a
// freshly executed handler with the connection on its standard input and
// output.
//
// Usage:
//
//	goinetd [-config FILE] [-log-level LEVEL]   serve in the foreground
//	goinetd check [-config FILE]                validate FILE and summarise it
//	goinetd -version
//
// SIGTERM and SIGINT stop accepting and exit 0, leaving running handlers
// to finish on their own.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/goinetd/goinetd/config"
	"github.com/goinetd/goinetd/spawner"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if filepath.Base(os.Args[0]) == spawner.TrampolineName {
		os.Exit(spawner.Trampoline(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is goinetd with its arguments and output streams; it returns the
// exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return check(args[1:], stdout, stderr)
	}
	flags := flag.NewFlagSet("goinetd", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "inetd.toml", "the config `file`")
	level := flags.String("log-level", "info", "log records at this `level` and above: debug, info, warn, error")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "goinetd: unexpected argument %q (did you mean \"goinetd check\"?)\n", flags.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "goinetd %s\n", version)
		return 0
	}
	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "goinetd: -log-level: %v\n", err)
		return 2
	}
	return serve(*configPath, logLevel, stderr)
}

func serve(path string, level slog.Level, stderr io.Writer) int {
	// What goinetd inherited (descriptors, ignored signals) must not
	// reach handlers.
	if err := spawner.DropInherited(); err != nil {
		fmt.Fprintf(stderr, "goinetd: %v\n", err)
		return 1
	}
	// Catch the signals before anything can deliver them.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Server.LogFormat, level, stderr)
	srv, err := spawner.New(log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if err := srv.Start(cfg); err != nil {
		log.Error("cannot serve "+cfg.File, "err", err)
		srv.Close()
		return 1
	}
	log.Info("serving", "config", cfg.File, "services", len(cfg.Enabled()), "version", version)

	for sig := range signals {
		if sig == syscall.SIGHUP {
			log.Warn("SIGHUP: reloading is not implemented yet; still serving the loaded config")
			continue
		}
		log.Info("stopping", "signal", sig.String(), "running", srv.Running())
		srv.Close()
		return 0
	}
	return 0
}

// check validates the config and prints a summary per service, or every
// problem.
func check(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("goinetd check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "inetd.toml", "the config `file`")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok, %d services (%d enabled)\n", cfg.File, len(cfg.Services), len(cfg.Enabled()))
	for _, svc := range cfg.Services {
		fmt.Fprintln(stdout, svc.Summary())
	}
	return 0
}

func newLogger(format config.LogFormat, level slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
