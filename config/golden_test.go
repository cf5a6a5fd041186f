package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden with the errors Load returns now")

// dirPlaceholder stands in the golden files for the absolute path of
// testdata/bad, which differs between checkouts: Load resolves a relative
// program against the absolute folder of the config file, so a message
// about one names that folder.
const dirPlaceholder = "$DIR"

// TestBadConfigs loads every testdata/bad/NAME.toml and compares the error
// with NAME.golden. Each file is small and named for what it breaks; the
// golden files are meant to be read by eye.
func TestBadConfigs(t *testing.T) {
	paths, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 25 {
		t.Fatalf("got %d files in testdata/bad; want at least 25", len(paths))
	}
	goldens, err := filepath.Glob("testdata/bad/*.golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		if _, err := os.Stat(strings.TrimSuffix(g, ".golden") + ".toml"); err != nil {
			t.Errorf("got %s with no .toml beside it; want it deleted", g)
		}
	}
	absDir, err := filepath.Abs("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".toml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(path)
			if cfg != nil {
				t.Errorf("got Config with %d services; want nil", len(cfg.Services))
			}
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			got := strings.ReplaceAll(err.Error(), absDir, dirPlaceholder) + "\n"
			golden := strings.TrimSuffix(path, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err2 := os.ReadFile(golden)
			if err2 != nil {
				t.Fatalf("%v (run go test -update to create it)", err2)
			}
			if got != string(want) {
				t.Errorf("got error:\n%s\nwant (%s):\n%s", got, golden, want)
			}
			if strings.HasPrefix(name, "include-") {
				return // its problems are in other files too; see TestIncludes
			}
			checkProblems(t, err, path, strings.HasPrefix(name, "syntax-"))
		})
	}
}

// checkProblems checks the shape every Load error shares: a multierror of
// *Problem, one per line, each naming file, line and (except a syntax
// error) key.
func checkProblems(t *testing.T, err error, file string, syntax bool) {
	t.Helper()
	lines := strings.Split(err.Error(), "\n")
	for _, line := range lines {
		if !strings.HasPrefix(line, file+":") {
			t.Errorf("got line %q; want it to start with %q", line, file+":")
		}
	}
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("got error of type %T; want *multierror.Error", err)
	}
	if len(lines) != len(merr.Errors) {
		t.Errorf("got %d lines for %d problems; want one line per problem", len(lines), len(merr.Errors))
	}
	prevLine := 0
	for i, e := range merr.Errors {
		var p *Problem
		if !errors.As(e, &p) {
			t.Errorf("problem %d: got %T; want *Problem", i+1, e)
			continue
		}
		if p.File != file {
			t.Errorf("problem %d: got File %q; want %q", i+1, p.File, file)
		}
		if p.Line <= 0 {
			t.Errorf("problem %d (%v): got Line %d; want > 0", i+1, p, p.Line)
		}
		if p.Line < prevLine {
			t.Errorf("problem %d (%v): got Line %d after line %d; want file order", i+1, p, p.Line, prevLine)
		}
		prevLine = p.Line
		if p.Key == "" && !syntax {
			t.Errorf("problem %d (%v): got empty Key; want the key path", i+1, p)
		}
		if p.Msg == "" {
			t.Errorf("problem %d: got empty Msg; want a message", i+1)
		}
		if i < len(lines) && p.Error() != lines[i] {
			t.Errorf("problem %d: got Error() %q; want line %d of the error, %q", i+1, p.Error(), i+1, lines[i])
		}
	}
}

// TestManyProblems checks that problems from every table are reported at
// once and in file order, not in the order the loader visits them.
func TestManyProblems(t *testing.T) {
	const path = "testdata/bad/many-problems.toml"
	_, err := Load(path)
	if err == nil {
		t.Fatal("got nil error; want one")
	}
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("got error of type %T; want *multierror.Error", err)
	}
	var keys []string
	for _, e := range merr.Errors {
		var p *Problem
		if errors.As(e, &p) {
			keys = append(keys, p.Key)
		}
	}
	want := []string{
		"server.log_format",
		"server.metrics",
		"defaults.stderr",
		"defaults.colour",
		"services.zeta.port",
		"services.zeta.program",
		"services.zeta.user",
		"services.alpha.program", // missing: reported at the [services.alpha] line
		"services.alpha.args",
		"services.alpha.env",
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Errorf("got problems with keys\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
}

// TestNotExecutableStaysNotExecutable guards the fixture that
// program-not-executable.toml points at: if a checkout made it executable,
// that golden would change for the wrong reason.
func TestNotExecutableStaysNotExecutable(t *testing.T) {
	fi, err := os.Stat("testdata/bad/not-executable.txt")
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o111 != 0 {
		t.Fatalf("got mode %v for testdata/bad/not-executable.txt; want no execute bit", perm)
	}
}
