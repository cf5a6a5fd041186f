package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// sysconfdir is set by `make install` (-ldflags "-X main.sysconfdir=/etc")
// to the folder the installed config lives under; empty in a build from
// the checkout.
var sysconfdir string

// usageText is what `goinetd -h` and `goinetd help` print.
const usageText = `Usage:
  goinetd [-c FILE] [-log-level LEVEL]   serve the services of FILE in the foreground
  goinetd check [-c FILE | FILE]         check FILE and its drop-ins, bind nothing, summarise
  goinetd import [-o FILE] PATH...       convert inetd.conf and xinetd files to inetd.toml
  goinetd help                           print this help
  goinetd -version                       print the version

Without -c, the config is %s.
SIGHUP reloads the config; SIGTERM or SIGINT stops goinetd. See goinetd(8)
and inetd.toml(5).

Flags:
`

// command is what the command line asks for.
type command struct {
	name       string // "serve", "check", "import", "help" or "version"
	configPath string // as given, or the default that exists
	level      slog.Level
	// importPaths and importOut are import's PATHs and -o FILE ("":
	// standard output).
	importPaths []string
	importOut   string
}

// errUsage marks a command line goinetd does not understand (exit 2),
// once the flag package has said why.
var errUsage = errors.New("usage")

// errNoConfig is returned when no config file is given and none is at the
// default paths (exit 1, as for a config with problems).
var errNoConfig = errors.New("no config file")

// parseArgs reads goinetd's command line: global flags, then an optional
// subcommand with its own flags and at most one FILE. Anything it does not
// understand is an error that says what it would accept; it never falls
// back silently to the default config.
func parseArgs(args []string, stderr io.Writer) (*command, error) {
	global, g := globalFlags(stderr)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &command{name: "help"}, nil
		}
		printUsage(stderr)
		return nil, errUsage
	}
	configPath := g.configPath
	cmd := &command{name: "serve"}
	if g.version {
		cmd.name = "version"
	}
	if err := cmd.level.UnmarshalText([]byte(g.level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	rest := global.Args()
	if len(rest) > 0 {
		switch rest[0] {
		case "check":
			cmd.name = "check"
			file, err := parseCheck(rest[1:], configPath, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return &command{name: "help"}, nil
			}
			if err != nil {
				return nil, err
			}
			configPath = file
		case "import":
			paths, out, err := parseImport(rest[1:], stderr)
			if errors.Is(err, flag.ErrHelp) {
				return &command{name: "help"}, nil
			}
			if err != nil {
				return nil, err
			}
			return &command{name: "import", importPaths: paths, importOut: out}, nil
		case "help":
			if len(rest) > 1 {
				return nil, fmt.Errorf("help takes no argument, got %q", rest[1])
			}
			return &command{name: "help"}, nil
		default:
			return nil, fmt.Errorf("unknown command %q: goinetd accepts check, import, help or no command (serve); see goinetd -h", rest[0])
		}
	}
	if cmd.name == "version" {
		return cmd, nil
	}
	if configPath == "" {
		found, err := defaultConfig()
		if err != nil {
			return nil, err
		}
		configPath = found
	}
	cmd.configPath = configPath
	return cmd, nil
}

// globalOptions are the flags before any subcommand.
type globalOptions struct {
	configPath, level string
	version           bool
}

// globalFlags returns goinetd's flag set, which reports errors to w, and
// where it stores the flags.
func globalFlags(w io.Writer) (*flag.FlagSet, *globalOptions) {
	g := &globalOptions{}
	flags := flag.NewFlagSet("goinetd", flag.ContinueOnError)
	flags.SetOutput(w)
	flags.StringVar(&g.configPath, "config", "", "the config `file`")
	flags.StringVar(&g.configPath, "c", "", "the config `file` (short for -config)")
	flags.StringVar(&g.level, "log-level", "info", "log records at this `level` and above: debug, info, warn, error")
	flags.BoolVar(&g.version, "version", false, "print the version and exit")
	flags.Usage = func() {} // parseArgs prints it: to stdout for -h, to stderr after an error
	return flags, g
}

// printUsage writes goinetd's help to w.
func printUsage(w io.Writer) {
	flags, _ := globalFlags(w)
	fmt.Fprintf(w, usageText, strings.Join(defaultConfigs(), ", or else "))
	flags.PrintDefaults()
}

// parseCheck reads check's arguments: -c/-config FILE, or FILE, or neither
// (the global -c, or the default). Two different files are an error.
func parseCheck(args []string, global string, stderr io.Writer) (string, error) {
	flags := flag.NewFlagSet("goinetd check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var file string
	flags.StringVar(&file, "config", "", "the config `file`")
	flags.StringVar(&file, "c", "", "the config `file` (short for -config)")
	flags.Usage = func() {}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		fmt.Fprintf(stderr, "usage: goinetd check [-c FILE | FILE]\n")
		return "", errUsage
	}
	files := []string{}
	for _, f := range []string{global, file} {
		if f != "" {
			files = append(files, f)
		}
	}
	files = append(files, flags.Args()...)
	switch {
	case len(files) == 0:
		return "", nil
	case len(files) > 1 && !allSame(files):
		return "", fmt.Errorf("check takes one config file, got %s", strings.Join(quoted(files), " and "))
	}
	return files[0], nil
}

// parseImport reads import's arguments: -o FILE, then at least one PATH.
func parseImport(args []string, stderr io.Writer) (paths []string, out string, err error) {
	flags := flag.NewFlagSet("goinetd import", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&out, "o", "", "write the config to `file` instead of standard output")
	flags.Usage = func() {}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", err
		}
		fmt.Fprintf(stderr, "usage: goinetd import [-o FILE] PATH...\n")
		return nil, "", errUsage
	}
	if flags.NArg() == 0 {
		return nil, "", fmt.Errorf("import needs an inetd.conf, an xinetd.conf or an xinetd.d folder to read; see goinetd -h")
	}
	return flags.Args(), out, nil
}

// defaultConfig returns the first of the default config paths that
// exists: the installed SYSCONFDIR/goinetd/inetd.toml of an installed
// goinetd, then ./inetd.toml.
func defaultConfig() (string, error) {
	candidates := defaultConfigs()
	for _, path := range candidates {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w given, and none at %s; pass one with -c FILE", errNoConfig, strings.Join(candidates, " or "))
}

func defaultConfigs() []string {
	var paths []string
	if sysconfdir != "" {
		paths = append(paths, filepath.Join(sysconfdir, "goinetd", "inetd.toml"))
	}
	return append(paths, "inetd.toml")
}

func allSame(s []string) bool {
	for _, x := range s[1:] {
		if x != s[0] {
			return false
		}
	}
	return true
}

func quoted(s []string) []string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return q
}
