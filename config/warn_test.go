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

// TestSocketFolderWritableByOthersWarns checks the warning about a unix
// socket in a folder that a user other than root (or goinetd's own) can
// write, or whose parent they can write: they could replace the socket.
func TestSocketFolderWritableByOthersWarns(t *testing.T) {
	type setup func(t *testing.T, base string) string // returns the socket's folder
	chmod := func(t *testing.T, dir string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	chown := func(t *testing.T, dir string, uid, gid int) {
		t.Helper()
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a folder to another user")
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup setup
		want  string // in the warning, with the folder as %s; "" for none
	}{
		{"private", func(t *testing.T, base string) string {
			d := filepath.Join(base, "run")
			chmod(t, d, 0o755)
			return d
		}, ""},
		{"sticky", func(t *testing.T, base string) string {
			d := filepath.Join(base, "tmp")
			chmod(t, d, 0o777|os.ModeSticky)
			return d
		}, ""},
		{"world-writable", func(t *testing.T, base string) string {
			d := filepath.Join(base, "run")
			chmod(t, d, 0o777)
			return d
		}, "folder %s is writable by every user"},
		{"world-writable parent", func(t *testing.T, base string) string {
			chmod(t, filepath.Join(base, "run"), 0o777)
			d := filepath.Join(base, "run", "app")
			chmod(t, d, 0o755)
			return d
		}, "folder %s/.. is writable by every user"},
		{"through a symlink", func(t *testing.T, base string) string {
			real := filepath.Join(base, "real")
			chmod(t, real, 0o777)
			d := filepath.Join(base, "link")
			if err := os.Symlink(real, d); err != nil {
				t.Fatal(err)
			}
			return d
		}, "folder %s/../real is writable by every user"},
		{"owned by a user", func(t *testing.T, base string) string {
			d := filepath.Join(base, "run")
			chmod(t, d, 0o755)
			chown(t, d, 65534, 0)
			return d
		}, "folder %s is owned by uid 65534"},
		{"writable by a group", func(t *testing.T, base string) string {
			d := filepath.Join(base, "run")
			chmod(t, d, 0o775)
			chown(t, d, 0, 65534)
			return d
		}, "folder %s is writable by group 65534"},
		{"writable by root's group", func(t *testing.T, base string) string {
			d := filepath.Join(base, "run")
			chmod(t, d, 0o775)
			chown(t, d, 0, 0)
			return d
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := tc.setup(t, base)
			path := filepath.Join(base, "inetd.toml")
			text := "[services.local]\nprotocol = \"unix\"\npath = \"" + dir + "/app.sock\"\nbuiltin = \"echo\"\n"
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("got error:\n%v\nwant the config to load", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			if tc.want == "" {
				if len(got) > 0 {
					t.Errorf("got warnings %q; want none", got)
				}
				return
			}
			want := path + ":3: services.local.path: " + strings.ReplaceAll(tc.want, "%s/..", filepath.Dir(dir))
			want = strings.ReplaceAll(want, "%s", dir) + ": they can replace the socket"
			if len(got) != 1 || !strings.HasPrefix(got[0], want) {
				t.Errorf("got warnings %q; want one starting with %q", got, want)
			}
		})
	}
}
