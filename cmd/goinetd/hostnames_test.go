package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestResolvePeer runs goinetd in a mount namespace of its own, with a
// hosts file and a resolv.conf of the test's (the machine's stay as they
// are), and checks that resolve_peer passes a client's name only when it
// is forward-confirmed and made of host name characters, and that a name
// server that never answers delays only the client it is asked about,
// until resolve_timeout.
func TestResolvePeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: goinetd runs in a mount namespace with its own /etc/hosts")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	dns := startSilentDNS(t, "127.0.0.77")
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	hosts := write("hosts", "127.0.0.1 localhost\n"+
		"127.0.0.2 good.goinetd.test\n"+
		"127.0.0.4 liar.goinetd.test\n"+ // 127.0.0.3's reverse name, which is not 127.0.0.3
		"127.0.0.5 evil_host.goinetd.test\n") // Go's resolver lets '_' through
	resolv := write("resolv.conf", "nameserver 127.0.0.77\noptions timeout:30 attempts:1\n")
	nss := write("nsswitch.conf", "hosts: files dns\n")

	const timeout = 5 * time.Second
	port, plain, proxied := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf(`
[services.named]
address = "0.0.0.0"
port = %d
program = %q
env = { %s = "report" }
resolve_peer = true
resolve_timeout = %q

[services.plain]
address = "0.0.0.0"
port = %d
program = %q
env = { %s = "report" }

[services.proxied]
address = "127.0.0.1"
port = %d
program = %q
env = { %s = "report" }
resolve_peer = true
proxy_protocol = true
proxy_from = ["127.0.0.1"]
`, port, testBinary(t), helperVar, timeout, plain, testBinary(t), helperVar, proxied, testBinary(t), helperVar),
		inPrivateEtc(hosts, resolv, nss))
	at := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	for _, tc := range []struct{ from, name string }{
		{"127.0.0.2", "good.goinetd.test"}, // confirmed: hosts both ways
		{"127.0.0.3", ""},                  // the name server says liar.goinetd.test, which is 127.0.0.4
		{"127.0.0.6", ""},                  // no name: the name server says so
		{"127.0.0.5", ""},                  // a name with a character outside [A-Za-z0-9.-]
	} {
		env := getReport(t, tc.from, at).Env
		checkHostVars(t, tc.from, env, tc.name)
	}

	// Behind a balancer, the client its header names is looked up.
	c := dial(t, "127.0.0.1", net.JoinHostPort("127.0.0.1", strconv.Itoa(proxied)))
	if _, err := io.WriteString(c, "PROXY TCP4 127.0.0.2 127.0.0.1 4000 80\r\n"); err != nil {
		t.Fatal(err)
	}
	var behind report
	if err := json.NewDecoder(c).Decode(&behind); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	checkHostVars(t, "127.0.0.2 via a balancer", behind.Env, "good.goinetd.test")

	// 127.0.0.9's reverse lookup goes to a name server that never answers.
	start := time.Now()
	slow := dial(t, "127.0.0.9", at)
	slow.SetDeadline(start.Add(timeout + 20*time.Second))
	select {
	case <-dns.asked:
	case <-time.After(ioTimeout):
		t.Fatalf("the name server got no PTR query for 127.0.0.9 within %v; want one", ioTimeout)
	}
	// Meanwhile the same service and another one serve other clients.
	checkHostVars(t, "127.0.0.2", getReport(t, "127.0.0.2", at).Env, "good.goinetd.test")
	getReport(t, "127.0.0.1", net.JoinHostPort("127.0.0.1", strconv.Itoa(plain)))
	if waited := time.Since(start); waited >= timeout {
		t.Errorf("other clients, while 127.0.0.9's name was looked up: got served after %v; want before resolve_timeout, %v", waited, timeout)
	}
	if n := len(d.logs.records(func(r record) bool {
		return r.msg() == "spawned" && strings.HasPrefix(r.str("peer"), "127.0.0.9:")
	})); n != 0 {
		t.Errorf("before resolve_timeout: got %d handlers for 127.0.0.9; want none yet", n)
	}
	var r report
	if err := json.NewDecoder(slow).Decode(&r); err != nil {
		t.Fatalf("127.0.0.9's report: %v", err)
	}
	waited := time.Since(start)
	checkHostVars(t, "127.0.0.9", r.Env, "")
	if waited < timeout-500*time.Millisecond || waited > timeout+10*time.Second {
		t.Errorf("127.0.0.9's handler: got it after %v; want it after about resolve_timeout, %v", waited, timeout)
	}
}

// checkHostVars checks that env, a handler's environment for a client
// from, names the host name (none if it is "").
func checkHostVars(t *testing.T, from string, env []string, name string) {
	t.Helper()
	for _, v := range []string{"TCPREMOTEHOST", "REMOTE_HOST"} {
		i := slices.IndexFunc(env, func(kv string) bool { return strings.HasPrefix(kv, v+"=") })
		switch {
		case name == "" && i >= 0:
			t.Errorf("from %s: got %s; want no %s", from, env[i], v)
		case name != "" && i < 0:
			t.Errorf("from %s: got no %s in %q; want %s=%s", from, v, env, v, name)
		case name != "" && env[i] != v+"="+name:
			t.Errorf("from %s: got %s; want %s=%s", from, env[i], v, name)
		}
	}
}

// inPrivateEtc runs goinetd in a private mount namespace where the files
// hosts, resolv and nss are /etc/hosts, /etc/resolv.conf and
// /etc/nsswitch.conf.
func inPrivateEtc(hosts, resolv, nss string) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			panic(err) // TestResolvePeer checked
		}
		const script = `mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf &&
mount --bind "$3" /etc/nsswitch.conf && shift 3 && exec "$@"`
		cmd.Args = append([]string{unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", hosts, resolv, nss}, cmd.Args...)
		cmd.Path = unshare
	}
}

// silentDNS is a name server on loopback port 53 that names 127.0.0.3
// liar.goinetd.test, answers every other query with NXDOMAIN, except the
// one for 127.0.0.9's name, which it never answers: asked receives once
// it has had it.
type silentDNS struct {
	asked chan struct{}
}

func startSilentDNS(t *testing.T, ip string) *silentDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "53"))
	if err != nil {
		t.Skipf("needs %s:53 for a test name server: %v", ip, err)
	}
	s := &silentDNS{asked: make(chan struct{}, 1)}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	ptr := map[string]string{"3.0.0.127.in-addr.arpa.": "liar.goinetd.test."}
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			} else if err != nil {
				continue
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			if q.Type == dnsmessage.TypePTR && q.Name.String() == "9.0.0.127.in-addr.arpa." {
				select {
				case s.asked <- struct{}{}:
				default:
				}
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: dnsmessage.RCodeNameError})
			name, ok := ptr[q.Name.String()]
			if ok && q.Type == dnsmessage.TypePTR {
				b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
			}
			b.StartQuestions()
			b.Question(q)
			if ok && q.Type == dnsmessage.TypePTR {
				b.StartAnswers()
				b.PTRResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(name)})
			}
			if msg, err := b.Finish(); err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return s
}
