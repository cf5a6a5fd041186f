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

// TestWarnUserCannotEnterOrRun checks that check warns when a service's
// user could not enter its working folder (here the default: the config's
// own 0700 folder) or run its program, which would fail every connection.
func TestWarnUserCannotEnterOrRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root may run a handler as another user")
	}
	// The test's temporary folders are 0700: open them to everyone, but
	// for the one under test.
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		os.Chmod(d, 0o711)
	}
	dir := filepath.Join(base, "private")
	os.Mkdir(dir, 0o700)
	prog := filepath.Join(base, "handler")
	os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o744) // executable by its owner, root, only
	path := filepath.Join(dir, "inetd.toml")
	os.WriteFile(path, []byte(`[services.echo]
port = 7
program = "/bin/cat"
user = "nobody"

[services.other]
port = 8
program = "`+prog+`"
user = "nobody"
workdir = "/"
`), 0o644)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		path + `:4: services.echo.user: user "nobody" cannot enter ` + dir + `, so no connection will start: uid 65534 cannot search ` + dir + ` (mode 0700, owner 0:0); set workdir to a folder it can enter, or allow it (chmod o+x)`,
		path + `:8: services.other.program: user "nobody" cannot run ` + prog + `: uid 65534 cannot execute ` + prog + ` (mode 0744, owner 0:0)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	os.Chmod(dir, 0o711)
	os.Chmod(prog, 0o755)
	if cfg, err := Load(path); err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("with the folder searchable and the program executable: got %v, %v; want no warning", cfg.Warnings, err)
	}
}
