package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWarnings loads every testdata/warn/NAME.toml, which is valid but
// risky, and compares its warnings with NAME.golden (go test -update
// rewrites them). Each file must load and must warn.
func TestWarnings(t *testing.T) {
	paths, err := filepath.Glob("testdata/warn/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("got no files in testdata/warn; want at least one")
	}
	absDir, err := filepath.Abs("testdata/warn")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".toml"), func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("got error:\n%v\nwant the config to load", err)
			}
			if len(cfg.Warnings) == 0 {
				t.Fatal("got no warnings; want at least one")
			}
			var b strings.Builder
			for _, w := range cfg.Warnings {
				if w.File != path || w.Line <= 0 || w.Key == "" {
					t.Errorf("got warning %q with file %q, line %d, key %q; want file %q, a line and a key", w, w.File, w.Line, w.Key, path)
				}
				b.WriteString(strings.ReplaceAll(w.Error(), absDir, dirPlaceholder) + "\n")
			}
			golden := strings.TrimSuffix(path, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("got warnings:\n%s\nwant (%s):\n%s", b.String(), golden, want)
			}
		})
	}
}

// TestGoodConfigsDoNotWarn keeps the shipped-style configs in
// testdata/good free of warnings, so that a warning stays news.
func TestGoodConfigsDoNotWarn(t *testing.T) {
	paths, err := filepath.Glob("testdata/good/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		cfg, err := Load(path)
		if err != nil {
			continue // TestGoodConfigs reports it
		}
		for _, w := range cfg.Warnings {
			t.Errorf("%s: got warning %q; want none", path, w)
		}
	}
}
