package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// configWithDropIns writes a main config that includes conf.d/*.toml into
// a fresh folder and returns the main file and the drop-in folder.
func configWithDropIns(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	main := filepath.Join(dir, "inetd.toml")
	if err := os.WriteFile(main, []byte("include = [\"conf.d/*.toml\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dropins := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(dropins, 0o755); err != nil {
		t.Fatal(err)
	}
	return main, dropins
}

const dropInService = "[services.x]\nport = 7\nbuiltin = \"echo\"\n"

// loadErr loads path with a deadline: a file that blocks the read must not
// block Load.
func loadErr(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Load(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Load(%s) still running after 5s; want it to return at once", path)
		return nil
	}
}

// TestConfigFilesWritableByOthersAreRefused performs the attack of a
// drop-in that anyone can write, which goinetd would run as root, and its
// variants: a drop-in folder anyone can write, a file owned by another
// user, a group-writable main file.
func TestConfigFilesWritableByOthersAreRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, main, dropins, file string)
		want  func(main, dropins, file string) string
	}{
		{
			name:  "world-writable drop-in",
			setup: func(t *testing.T, _, _, file string) { chmod(t, file, 0o666) },
			want: func(_, _, file string) string {
				return file + ": file is writable by others (mode 0666), who could change what goinetd runs: chmod go-w " + file
			},
		},
		{
			name:  "drop-in folder writable by others",
			setup: func(t *testing.T, _, dropins, _ string) { chmod(t, dropins, 0o777) },
			want: func(_, dropins, file string) string {
				return fmt.Sprintf("%s: folder %s (holding %s) is writable by others (mode 0777), who could change what goinetd runs: chmod go-w %s",
					file, dropins, file, dropins)
			},
		},
		{
			name: "drop-in owned by another user",
			setup: func(t *testing.T, _, _, file string) {
				if err := os.Chown(file, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			},
			want: func(_, _, file string) string {
				return file + ": file is owned by uid 65534; it must be owned by root, as goinetd runs what its config says: chown root " + file
			},
		},
		{
			name: "group-writable main file",
			setup: func(t *testing.T, main, _, _ string) {
				if err := os.Chown(main, 0, 100); err != nil {
					t.Fatal(err)
				}
				chmod(t, main, 0o664)
			},
			want: func(main, _, _ string) string {
				return "read config " + main + ": file is writable by group 100 (mode 0664), who could change what goinetd runs: chmod go-w " + main
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			main, dropins := configWithDropIns(t)
			file := filepath.Join(dropins, "x.toml")
			if err := os.WriteFile(file, []byte(dropInService), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(main); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			tc.setup(t, main, dropins, file)
			err := loadErr(t, main)
			if want := tc.want(main, dropins, file); err == nil || err.Error() != want {
				t.Errorf("got %v;\nwant %s", err, want)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestConfigFilesTrustedAreRead: a group-writable file whose group is
// root's, a sticky folder anyone can write (as /tmp), and a main file
// reached through a symbolic link are all fine.
func TestConfigFilesTrustedAreRead(t *testing.T) {
	main, dropins := configWithDropIns(t)
	file := filepath.Join(dropins, "x.toml")
	if err := os.WriteFile(file, []byte(dropInService), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chmod(t, file, 0o664) // group root
	}
	chmod(t, dropins, 0o777|os.ModeSticky)
	link := filepath.Join(filepath.Dir(main), "link.toml")
	if err := os.Symlink(main, link); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 1 || len(cfg.Includes) != 1 || cfg.Includes[0] != file {
		t.Errorf("got services %v and includes %q; want x from %s", cfg.Services, cfg.Includes, file)
	}
}

// TestConfigFilesNotRegularAreRefused: a FIFO in the drop-in folder once
// blocked the read forever, and a reload with it; a symbolic link in it is
// not followed; a FIFO as the main file is refused too.
func TestConfigFilesNotRegularAreRefused(t *testing.T) {
	main, dropins := configWithDropIns(t)
	fifo := filepath.Join(dropins, "a-fifo.toml")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target.toml")
	if err := os.WriteFile(target, []byte(dropInService), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dropins, "b-link.toml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := loadErr(t, main)
	want := fifo + ": is not a regular file (a FIFO)\n" +
		link + ": is a symbolic link; goinetd does not follow links in a drop-in folder: put the file itself there"
	if err == nil || err.Error() != want {
		t.Errorf("got %v;\nwant %s", err, want)
	}

	err = loadErr(t, fifo)
	if want := "read config " + fifo + ": is not a regular file (a FIFO)"; err == nil || err.Error() != want {
		t.Errorf("FIFO as the main file: got %v; want %s", err, want)
	}
}

// TestConfigFileTooLargeIsRefused: a file over 4 MiB is not read.
func TestConfigFileTooLargeIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inetd.toml")
	data := strings.Repeat("# padding\n", maxFileSize/10+1)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	err := loadErr(t, path)
	if want := fmt.Sprintf("read config %s: is %d bytes; a config file has at most %d", path, len(data), maxFileSize); err == nil || err.Error() != want {
		t.Errorf("got %v; want %s", err, want)
	}
}

// TestDeepNestingIsRefusedFast performs the attack of a drop-in of deeply
// nested inline tables, which took BurntSushi/toml seconds and gigabytes
// (80 KB ran goinetd out of memory): it is refused, at once, naming the
// line.
func TestDeepNestingIsRefusedFast(t *testing.T) {
	main, dropins := configWithDropIns(t)
	depth := 80 << 10 / 8
	nested := "[services.x]\nport = 7\nbuiltin = \"echo\"\nenv = " +
		strings.Repeat("{ a = ", depth) + "1" + strings.Repeat(" }", depth) + "\n"
	file := filepath.Join(dropins, "x.toml")
	if err := os.WriteFile(file, []byte(nested), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := loadErr(t, main)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Load took %v; want well under a second", took)
	}
	want := file + ":4: arrays and tables nest more than 8 deep here; goinetd's keys need at most 3, so the file is not parsed"
	if err == nil || err.Error() != want {
		t.Errorf("got %v;\nwant %s", err, want)
	}
}

func TestNestingProblem(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name, data string
		want       int
	}{
		{"flat", "a = 1\n[t]\nb = [1, 2]\n", 0},
		{"at the limit", "a = " + deep(maxNesting) + "\n", 0},
		{"over the limit", "\n\na = " + deep(maxNesting+1) + "\n", 3},
		{"inline tables", "a = " + strings.Repeat("{b=", maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1), 1},
		{"in a comment", "# " + deep(20) + "\n", 0},
		{"in strings", `a = "` + deep(20) + `"` + "\nb = '" + deep(20) + "'\n", 0},
		{"escaped quote", `a = "\"` + deep(20) + `"`, 0},
		{"multi-line strings", "a = \"\"\"\n\\\"\"\"" + deep(20) + "\n\"\"\"\nb = '''\n" + deep(20) + "\n'''\nc = " + deep(maxNesting+1), 7},
		{"unclosed string", "a = \"" + deep(20) + "\nb = " + deep(maxNesting+1), 2},
		{"siblings", strings.Repeat("a = "+deep(maxNesting)+"\n", 100), 0},
	} {
		if got := scan([]byte(tc.data)).tooDeep; got != tc.want {
			t.Errorf("%s: got line %d; want %d", tc.name, got, tc.want)
		}
	}
}
