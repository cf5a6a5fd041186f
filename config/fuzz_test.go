package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/go-multierror"
)

// fuzzDir is the folder fuzzed configs claim to be in. It does not exist,
// so a relative program never resolves to a real file.
const fuzzDir = "/nonexistent/goinetd-fuzz"

// fmtMistake matches what fmt prints for a bad verb or argument count.
var fmtMistake = regexp.MustCompile(`%!(\w\(|\(EXTRA|\(BADINDEX|\(BADWIDTH|\(BADPREC|\(NOVERB)|\(MISSING\)`)

// FuzzParse feeds arbitrary files to Parse. Seeds: every testdata/good
// and testdata/bad file, and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/good/*.toml", "testdata/bad/*.toml"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, path := range paths {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.toml", fuzzDir)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("got Config %v and error %v; want exactly one of them nil", cfg, err)
		}
		if err != nil {
			checkFuzzError(t, data, err)
			return
		}
		checkFuzzConfig(t, cfg)
	})
}

func checkFuzzError(t *testing.T, data []byte, err error) {
	msg := err.Error()
	if utf8.Valid(data) && !utf8.ValidString(msg) {
		t.Errorf("got error %q from valid UTF-8; want valid UTF-8", msg)
	}
	// A % in the input may legitimately reach the message.
	if !bytes.Contains(data, []byte("%")) && !bytes.Contains(data, []byte(`\u0025`)) &&
		!bytes.Contains(data, []byte(`\U00000025`)) && fmtMistake.MatchString(msg) {
		t.Errorf("got error %q; want no fmt mistake in it", msg)
	}
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("got error of type %T (%v); want *multierror.Error", err, err)
	}
	if len(merr.Errors) == 0 {
		t.Fatalf("got an empty multierror; want at least one problem")
	}
	for _, e := range merr.Errors {
		var p *Problem
		if !errors.As(e, &p) {
			t.Fatalf("got %T (%v) in the multierror; want *Problem", e, e)
		}
		if p.File != "fuzz.toml" {
			t.Errorf("got File %q; want fuzz.toml", p.File)
		}
		if p.Msg == "" {
			t.Errorf("got problem %q with an empty Msg; want a message", p)
		}
		if strings.Contains(p.Error(), "\n") {
			t.Errorf("got problem %q holding a newline; want one line each", p.Error())
		}
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, "fuzz.toml") {
			t.Errorf("got line %q in error %q; want every line to start with fuzz.toml", line, msg)
		}
	}
}

func checkFuzzConfig(t *testing.T, cfg *Config) {
	if cfg.File != "fuzz.toml" || cfg.Dir != fuzzDir {
		t.Errorf("got File %q Dir %q; want fuzz.toml and %s", cfg.File, cfg.Dir, fuzzDir)
	}
	if cfg.Server.LogFormat != LogText && cfg.Server.LogFormat != LogJSON {
		t.Errorf("got LogFormat %q; want text or json", cfg.Server.LogFormat)
	}
	if !slices.IsSortedFunc(cfg.Services, func(a, b *Service) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("got services %q; want them sorted by name", names(cfg.Services))
	}
	seen := make(map[string]bool)
	for _, s := range cfg.Enabled() {
		if s.Protocol == Unix {
			if !filepath.IsAbs(s.Path) || s.Port != 0 {
				t.Errorf("service %s: got unix Path %q, Port %d; want an absolute path and no port", s.Name, s.Path, s.Port)
			}
		} else if s.Port < 1 || s.Path != "" {
			t.Errorf("service %s: got Port %d, Path %q; want 1-65535 and no path", s.Name, s.Port, s.Path)
		}
		if n := btoi(s.Program != "") + btoi(s.Builtin != "") + btoi(s.Forward != ""); n != 1 {
			t.Errorf("service %s: got Program %q, Builtin %q and Forward %q; want exactly one", s.Name, s.Program, s.Builtin, s.Forward)
		}
		if s.Program != "" && !filepath.IsAbs(s.Program) {
			t.Errorf("service %s: got Program %q; want an absolute path", s.Name, s.Program)
		}
		if s.Program != "" && !filepath.IsAbs(s.Workdir) {
			t.Errorf("service %s: got Workdir %q; want an absolute path", s.Name, s.Workdir)
		}
		if s.Protocol == UDP && s.Mode != Wait && s.Builtin == "" {
			t.Errorf("service %s: got udp %s; want udp handlers in wait mode", s.Name, s.Mode)
		}
		if s.ListenFDs && s.Mode != Wait {
			t.Errorf("service %s: got listen_fds in %s mode; want wait", s.Name, s.Mode)
		}
		if !slices.Contains([]Stderr{StderrLog, StderrSocket, StderrNull}, s.Stderr) {
			t.Errorf("service %s: got Stderr %q; want log, socket or null", s.Name, s.Stderr)
		}
		if !slices.IsSorted(s.Env) {
			t.Errorf("service %s: got Env %q; want it sorted", s.Name, s.Env)
		}
		if s.Address.Is4In6() {
			t.Errorf("service %s: got Address %s; want an IPv4-mapped address unmapped", s.Name, s.Address)
		}
		if addr := s.ListenAddress(); seen[addr] {
			t.Errorf("service %s: got ListenAddress %s twice; want a port conflict reported", s.Name, addr)
		} else {
			seen[addr] = true
		}
		_ = s.Summary()
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
