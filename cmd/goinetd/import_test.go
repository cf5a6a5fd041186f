package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImportedConfigServes imports an xinetd.d folder (echo and daytime,
// xinetd's internal services) and an inetd.conf line running `git daemon
// --inetd`, checks the result with `goinetd check`, serves it, and talks
// to each service with a real client.
func TestImportedConfigServes(t *testing.T) {
	dir := t.TempDir()
	echoPort, daytimePort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	xinetdDir := filepath.Join(dir, "xinetd.d")
	os.Mkdir(xinetdDir, 0o755)
	for name, port := range map[string]int{"echo": echoPort, "daytime": daytimePort} {
		block := fmt.Sprintf("service %s\n{\n\ttype = INTERNAL UNLISTED\n\tid = %s-stream\n\tsocket_type = stream\n\tprotocol = tcp\n\tuser = root\n\twait = no\n\tbind = 127.0.0.1\n\tport = %d\n}\n", name, name, port)
		if err := os.WriteFile(filepath.Join(xinetdDir, name), []byte(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{xinetdDir}

	git, gitErr := exec.LookPath("git")
	gitPort := freePort(t, "127.0.0.1")
	if gitErr == nil {
		repos := filepath.Join(dir, "repos")
		work := filepath.Join(dir, "work")
		for _, args := range [][]string{
			{"init", "-q", "-b", "main", work},
			{"-C", work, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "--allow-empty", "-m", "first"},
			{"clone", "-q", "--bare", work, filepath.Join(repos, "project.git")},
		} {
			if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
				t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("127.0.0.1:%d\tstream\ttcp\tnowait\t%s\t%s\tgit daemon --inetd --export-all --base-path=%s %s\n", gitPort, me.Username, git, repos, repos)
		inetdConf := filepath.Join(dir, "inetd.conf")
		if err := os.WriteFile(inetdConf, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, inetdConf)
	}

	imported := filepath.Join(dir, "inetd.toml")
	goinetd := filepath.Join(bin, "goinetd")
	var stderr bytes.Buffer
	cmd := exec.Command(goinetd, append([]string{"import", "-o", imported}, paths...)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("goinetd import: %v\n%s", err, stderr.String())
	}
	if out, err := exec.Command(goinetd, "check", imported).CombinedOutput(); err != nil {
		t.Fatalf("goinetd check of the import: %v\n%s", err, out)
	}
	// The test harness reads goinetd's log as JSON.
	f, err := os.OpenFile(imported, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "\n[server]\nlog_format = \"json\"\n")
	f.Close()
	d := launchFile(t, imported)
	d.waitLog(func(r record) bool { return r.msg() == "serving" })

	if got := exchange(t, addr(echoPort), "hello\n"); got != "hello\n" {
		t.Errorf("imported echo: got %q; want %q", got, "hello\n")
	}
	if got := exchange(t, addr(daytimePort), ""); !strings.HasSuffix(got, "\r\n") || !strings.Contains(got, fmt.Sprint(time.Now().Year())) {
		t.Errorf("imported daytime: got %q; want today's date and CRLF", got)
	}
	if gitErr != nil {
		t.Skipf("git is not installed (apt-get install git): the git daemon line is not tested")
	}
	out, err := exec.Command(git, "ls-remote", fmt.Sprintf("git://127.0.0.1:%d/project.git", gitPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "refs/heads/main") {
		t.Errorf("git ls-remote through the imported git daemon line: got %v\n%s\nwant refs/heads/main listed", err, out)
	}
}
