package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/testcert"
)

// TestCommandLine runs goinetd's command line as an operator types it:
// check checks the file it is given however it is given, and anything
// goinetd does not understand exits 2 saying what it accepts, never
// falling back to the default file.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[services.a]\nport = 70000\nbuiltin = \"echo\"\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(echoService("echo", "127.0.0.1", 7)), 0o644)
	// A valid ./inetd.toml, which a silent fallback would check instead.
	os.WriteFile(filepath.Join(dir, "inetd.toml"), []byte(echoService("fallback", "127.0.0.1", 8)), 0o644)
	xinetd := filepath.Join(dir, "echo")
	os.WriteFile(xinetd, []byte("service echo\n{\n\ttype = INTERNAL\n\tsocket_type = stream\n\twait = no\n\tport = 7\n}\n"), 0o644)
	out := filepath.Join(dir, "imported.toml")
	t.Chdir(dir)

	badProblem := bad + ":2: services.a.port: 70000 is out of range 1-65535"
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // a substring of standard output
		stderr     string // a substring of standard error
		noFallback bool   // output must not mention the default inetd.toml
	}{
		{args: []string{"check", bad}, code: 1, stderr: badProblem},
		{args: []string{"check", "-config", bad}, code: 1, stderr: badProblem},
		{args: []string{"check", "-c", bad}, code: 1, stderr: badProblem},
		{args: []string{"-config", bad, "check"}, code: 1, stderr: badProblem},
		{args: []string{"-c", bad, "check"}, code: 1, stderr: badProblem},
		{args: []string{"-c", bad, "check", bad}, code: 1, stderr: badProblem},
		{args: []string{"check", good}, code: 0, stdout: good + ": ok, 1 services", noFallback: true},
		{args: []string{"check"}, code: 0, stdout: "inetd.toml: ok, 1 services"},
		{args: []string{"check", good, bad}, code: 2, stderr: "check takes one config file"},
		{args: []string{"-c", good, "check", bad}, code: 2, stderr: "check takes one config file"},
		{args: []string{"check", "-x", good}, code: 2, stderr: "usage: goinetd check"},
		{args: []string{"chekc", good}, code: 2, stderr: `unknown command "chekc": goinetd accepts check, import, help`},
		{args: []string{good}, code: 2, stderr: "unknown command"},
		{args: []string{"-x"}, code: 2, stderr: "flag provided but not defined: -x"},
		{args: []string{"-log-level", "loud", "check"}, code: 2, stderr: "-log-level"},
		{args: []string{"-h"}, code: 0, stdout: "goinetd check [-c FILE | FILE]"},
		{args: []string{"help"}, code: 0, stdout: "goinetd(8)"},
		{args: []string{"check", "-h"}, code: 0, stdout: "Usage:"},
		{args: []string{"help", "check"}, code: 2, stderr: "help takes no argument"},
		{args: []string{"import", xinetd}, code: 0, stdout: "[services.echo]\n", stderr: "1 services written to standard output; 0 items not converted"},
		{args: []string{"import", "-o", out, xinetd}, code: 0, stderr: "1 services written to " + out},
		{args: []string{"import"}, code: 2, stderr: "import needs an inetd.conf, an xinetd.conf or an xinetd.d folder"},
		{args: []string{"import", "-x", xinetd}, code: 2, stderr: "usage: goinetd import [-o FILE] PATH..."},
		{args: []string{"import", filepath.Join(dir, "missing")}, code: 1, stderr: "no such file or directory"},
		{args: []string{"import", "-h"}, code: 0, stdout: "goinetd import [-o FILE] PATH..."},
		{args: []string{"check", out}, code: 0, stdout: out + ": ok, 1 services"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		name := strings.Join(tc.args, " ")
		if code != tc.code {
			t.Errorf("goinetd %s: got exit %d; want %d (stdout %q, stderr %q)", name, code, tc.code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("goinetd %s: got stdout %q; want it to contain %q", name, stdout.String(), tc.stdout)
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("goinetd %s: got stderr %q; want it to contain %q", name, stderr.String(), tc.stderr)
		}
		if tc.noFallback && strings.Contains(stdout.String(), "fallback") {
			t.Errorf("goinetd %s: got stdout %q; want no sign of ./inetd.toml", name, stdout.String())
		}
	}
}

// TestNoDefaultConfig checks that goinetd without a config, in a folder
// without inetd.toml, says which paths it tried and how to pass one.
func TestNoDefaultConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{nil, {"check"}} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		want := "goinetd: no config file given, and none at inetd.toml; pass one with -c FILE\n"
		if code != 1 || stderr.String() != want {
			t.Errorf("goinetd %v: got exit %d, stderr %q; want exit 1, %q", args, code, stderr.String(), want)
		}
	}
}

// TestCheckPrintsNamedPort checks that goinetd check resolves a port given
// as a service name in /etc/services and prints the number, and names the
// file when the name is not there.
func TestCheckPrintsNamedPort(t *testing.T) {
	if data, err := os.ReadFile("/etc/services"); err != nil || !strings.Contains(string(data), "\necho\t") && !strings.Contains(string(data), "\necho ") {
		t.Skip("no echo in /etc/services (apt-get install netbase)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "inetd.toml")
	os.WriteFile(path, []byte("[services.echo]\naddress = \"127.0.0.1\"\nport = \"echo\"\nbuiltin = \"echo\"\n\n[services.other]\naddress = \"127.0.0.1\"\nport = \"no-such-service\"\nbuiltin = \"echo\"\n"), 0o644)
	var stdout, stderr bytes.Buffer
	want := path + `:8: services.other.port: "no-such-service" is not a service name in /etc/services`
	if code := run([]string{"check", path}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("goinetd check: got exit %d, stderr %q; want exit 1 and %q", code, stderr.String(), want)
	}
	os.WriteFile(path, []byte("[services.echo]\naddress = \"127.0.0.1\"\nport = \"echo\"\nbuiltin = \"echo\"\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	want = `echo: tcp 127.0.0.1:7 (port "echo") builtin echo`
	if code := run([]string{"check", path}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), want) {
		t.Errorf("goinetd check: got exit %d, stdout %q, stderr %q; want exit 0 and %q", code, stdout.String(), stderr.String(), want)
	}
}

// TestCheckTLS runs the real goinetd check on TLS services, with
// certificates the test makes: a certificate near its end and a key
// others can read are warnings on stderr, and check still exits 0; an
// expired certificate is an error, exit 1.
func TestCheckTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA("check test CA")
	if err != nil {
		t.Fatal(err)
	}
	pair := func(name string, o testcert.Options) (cert, key string) {
		leaf, err := ca.Sign(o)
		if err != nil {
			t.Fatal(err)
		}
		if cert, key, err = leaf.WriteFiles(dir, name); err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	soon, soonKey := pair("soon", testcert.Options{Validity: 5 * 24 * time.Hour})
	if err := os.Chmod(soonKey, 0o644); err != nil {
		t.Fatal(err)
	}
	expired, expiredKey := pair("expired", testcert.Options{Validity: -time.Hour})
	path := filepath.Join(dir, "inetd.toml")
	check := func(config string) (stdout, stderr string, code int) {
		t.Helper()
		if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := runBounded(t, nil, filepath.Join(bin, "goinetd"), "check", path)
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return stdout, stderr, code
	}

	stdout, stderr, code := check(`[services.secure]
address = "127.0.0.1"
port = 17443
builtin = "echo"
tls = { cert = "soon.crt", key = "soon.key" }
`)
	leaf, err := tls.LoadX509KeyPair(soon, soonKey)
	if err != nil {
		t.Fatal(err)
	}
	end := leaf.Leaf.NotAfter.UTC().Format(time.RFC3339)
	wantErr := "warning: " + path + ":5: services.secure.tls: the private key " + soonKey + " is readable by every user (mode 0644): chmod 600 it, owned by root\n" +
		"warning: " + path + ":5: services.secure.tls: the certificate in " + soon + " expires on " + end + ", in 4 days: renew it and reload goinetd\n"
	wantOut := path + ": ok, 1 services (1 enabled)\nsecure: tcp 127.0.0.1:17443 tls builtin echo\n"
	if code != 0 || stdout != wantOut || stderr != wantErr {
		t.Errorf("goinetd check with warnings: got exit %d, stdout\n%s\nstderr\n%s\nwant exit 0, stdout\n%s\nstderr\n%s", code, stdout, stderr, wantOut, wantErr)
	}

	stdout, stderr, code = check(`[services.secure]
address = "127.0.0.1"
port = 17443
builtin = "echo"
tls = { cert = "expired.crt", key = "expired.key" }
`)
	leaf, err = tls.LoadX509KeyPair(expired, expiredKey)
	if err != nil {
		t.Fatal(err)
	}
	wantErr = path + ":5: services.secure.tls: the certificate in " + expired + " expired on " + leaf.Leaf.NotAfter.UTC().Format(time.RFC3339) + ": renew it\n"
	if code != 1 || stdout != "" || stderr != wantErr {
		t.Errorf("goinetd check of an expired certificate: got exit %d, stdout %q, stderr\n%s\nwant exit 1, no stdout, stderr\n%s", code, stdout, stderr, wantErr)
	}
}
