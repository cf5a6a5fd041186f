package main

// Other TLS stacks against goinetd's TLS: OpenSSL (s_client), curl, and
// Python's ssl module, each verifying goinetd's certificate against the
// test's CA, with plain shell scripts as handlers.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lineHandler answers one line with "got LINE", then lists its SSL_
// variables and exits: goinetd then ends the TLS connection with
// close_notify.
const lineHandler = `#!/bin/sh
read -r line
echo "got $line"
env | grep '^SSL_' | sort
`

// httpHandler is an HTTP/1.0 server: it reads the request and its
// headers, then answers with its SSL_ variables.
const httpHandler = `#!/bin/sh
read -r request
cr=$(printf '\r')
while read -r header && [ "$header" != "$cr" ] && [ -n "$header" ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'
echo "request: $request"
env | grep '^SSL_' | sort
`

// script writes an executable shell script into a fresh folder and
// returns its path.
func script(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTool runs a client tool with stdin, bounded by ioTimeout, and returns
// its output; it skips the test if the tool is not installed.
func runTool(t *testing.T, stdin string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	path, lookErr := exec.LookPath(name)
	if lookErr != nil {
		t.Skipf("needs %s (make deps installs it): %v", name, lookErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", name, ioTimeout, err)
	}
	return out.String(), errOut.String(), err
}

// checkLines fails the test unless out has each of the lines want.
func checkLines(t *testing.T, client, out string, want ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.TrimRight(l, "\r") == w
		}
		if !found {
			t.Errorf("%s: no line %q in the output:\n%s", client, w, out)
		}
	}
}

func TestTLSOpenSSLClient(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+programService("lines", port, script(t, "lines", lineHandler), nil,
		f.table(fmt.Sprintf("alpn = [%q]", testALPN))))
	for _, v := range []struct{ flag, name string }{{"-tls1_2", "TLSv1.2"}, {"-tls1_3", "TLSv1.3"}} {
		// -quiet keeps reading after stdin ends, until goinetd's
		// close_notify; -verify_return_error fails on a bad certificate.
		out, errOut, err := runTool(t, "hello from openssl\n", "openssl", "s_client", v.flag,
			"-connect", addr(port), "-servername", "localhost", "-CAfile", f.caFile,
			"-verify_return_error", "-alpn", testALPN, "-quiet")
		if err != nil {
			t.Errorf("openssl s_client %s: %v\nstdout:\n%s\nstderr:\n%s", v.flag, err, out, errOut)
			continue
		}
		checkLines(t, "openssl s_client "+v.flag, out, "got hello from openssl",
			"SSL_PROTOCOL="+v.name, "SSL_TLS_SNI=localhost", "SSL_ALPN="+testALPN, "SSL_SESSION_RESUMED=Initial")
	}
}

func TestTLSCurlClient(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+programService("http", port, script(t, "http", httpHandler), nil, f.table()))
	url := fmt.Sprintf("https://localhost:%d/hello", port)
	out, errOut, err := runTool(t, "", "curl", "--silent", "--show-error", "--fail", "--http1.0",
		"--max-time", "10", "--cacert", f.caFile, "--resolve", fmt.Sprintf("localhost:%d:127.0.0.1", port), url)
	if err != nil {
		t.Fatalf("curl %s: %v\nstdout:\n%s\nstderr:\n%s", url, err, out, errOut)
	}
	checkLines(t, "curl", out, "request: GET /hello HTTP/1.0", "SSL_PROTOCOL=TLSv1.3", "SSL_TLS_SNI=localhost",
		"SSL_SESSION_RESUMED=Initial")
}

// pythonClient sends a line over TLS with Python's ssl module, verifying
// the server against the CA, and prints the version, the ALPN protocol
// and what the server sent. It fails (SSLEOFError) if the server ends
// without close_notify.
const pythonClient = `
import socket, ssl, sys
port, cafile, alpn = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols([alpn])
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
        s.sendall(b"hello from python\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print(s.version(), s.selected_alpn_protocol())
        sys.stdout.write(data.decode())
`

func TestTLSPythonClient(t *testing.T) {
	f := newTLSFiles(t)
	port := freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+programService("lines", port, script(t, "lines", lineHandler), nil,
		f.table(fmt.Sprintf("alpn = [%q]", testALPN))))
	out, errOut, err := runTool(t, "", "python3", "-c", pythonClient, fmt.Sprint(port), f.caFile, testALPN)
	if err != nil {
		t.Fatalf("python3 ssl client: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	checkLines(t, "python3", out, "TLSv1.3 "+testALPN, "got hello from python", "SSL_PROTOCOL=TLSv1.3",
		"SSL_ALPN="+testALPN)
}
