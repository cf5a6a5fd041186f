package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The rules key, end to end: each client gets its first matching rule's
// environment, an IPv4 client on a dual-stack socket is matched as IPv4,
// and a denying rule refuses without starting anything; handlers started
// through vfork templates and through ForkExec alike.
func TestPerClientRules(t *testing.T) {
	for _, mode := range []string{"vfork", "forkexec"} {
		t.Run(mode, func(t *testing.T) { testPerClientRules(t, mode) })
	}
}

func testPerClientRules(t *testing.T, spawnMode string) {
	port, mport := freePort(t, "::"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+fmt.Sprintf("metrics = \"127.0.0.1:%d\"\n", mport)+fmt.Sprintf(`
[services.report]
port = %d
program = %q
env = { %s = "report", PATH = "/bin", LANG = "C" }
rules = [
  { from = "127.0.0.2", env = { RELAYCLIENT = "" } },
  { from = "127.0.0.3/32", env = { TRUSTED = "1" }, unset = ["LANG"] },
  { from = "127.0.0.4", deny = true },
  { from = "127.0.0.0/29", env = { WIDE = "1", LANG = "fr_FR" } },
  { from = "::1", env = { V6 = "1" } },
]
`, port, testBinary(t), helperVar), withSpawnEnv(spawnMode))
	at := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	const denied = `goinetd_connections_refused_total{reason="rule",service="report"}`
	if got := scrape(t, url, denied); got != 0 {
		t.Errorf("at start: got %s = %v; want 0", denied, got)
	}

	for _, tc := range []struct {
		from, to   string
		want, lack []string
	}{
		{"127.0.0.2", at, []string{"RELAYCLIENT=", "LANG=C", "TCPREMOTEIP=127.0.0.2"}, []string{"WIDE=1", "TRUSTED=1"}},
		{"127.0.0.3", at, []string{"TRUSTED=1", "TCPREMOTEIP=127.0.0.3"}, []string{"LANG=C", "RELAYCLIENT=", "WIDE=1"}},
		{"127.0.0.5", at, []string{"WIDE=1", "LANG=fr_FR"}, []string{"LANG=C", "RELAYCLIENT=", "TRUSTED=1"}},
		{"127.0.0.9", at, []string{"LANG=C", "PATH=/bin"}, []string{"WIDE=1", "RELAYCLIENT=", "TRUSTED=1", "V6=1"}},
		{"::1", net.JoinHostPort("::1", strconv.Itoa(port)), []string{"V6=1", "LANG=C", "TCPREMOTEIP=::1"}, []string{"WIDE=1"}},
	} {
		r := getReport(t, tc.from, tc.to)
		for _, kv := range tc.want {
			if !slices.Contains(r.Env, kv) {
				t.Errorf("from %s: got environment %q; want it to hold %s", tc.from, r.Env, kv)
			}
		}
		for _, kv := range tc.lack {
			if slices.Contains(r.Env, kv) {
				t.Errorf("from %s: got environment %q; want no %s", tc.from, r.Env, kv)
			}
		}
	}

	expectClosed(t, dial(t, "127.0.0.4", at))
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" })
	if r.str("reason") != "rule" || !strings.HasPrefix(r.str("peer"), "127.0.0.4:") {
		t.Errorf("refusal record %v: got reason %q; want rule, for 127.0.0.4", r, r.str("reason"))
	}
	waitMetric(t, url, denied, 1)
	// One more allowed connection: the one loop spawns in accept order,
	// so once its child is logged, one for the denied client would be too.
	getReport(t, "127.0.0.9", at)
	spawned := func() []record { return d.logs.records(func(r record) bool { return r.msg() == "spawned" }) }
	waitFor(t, "6 spawned records", func() bool { return len(spawned()) >= 6 })
	for _, r := range spawned() {
		if strings.HasPrefix(r.str("peer"), "127.0.0.4:") {
			t.Errorf("spawned record %v; want none for the denied client", r)
		}
	}
}

// A denying rule drops a UDP sender's datagram unread, as no_access does.
func TestUDPDenyingRule(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+helperService(t, "udp", port, "udp-upper", `protocol = "udp"`,
		`rules = [{ from = "127.0.0.3" }, { from = "127.0.0.0/29", deny = true }]`))
	refused := sendUDPFrom(t, "127.0.0.2", port, "nope")
	allowed := sendUDPFrom(t, "127.0.0.3", port, "yes")
	allowed.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 64)
	n, _, err := allowed.ReadFromUDP(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "YES ") {
		t.Fatalf("sender the first rule admits: got %q, %v; want the answer", buf[:n], err)
	}
	refused.SetReadDeadline(time.Now())
	if n, _, err := refused.ReadFromUDP(buf); err == nil {
		t.Errorf("denied sender got %q; want nothing", buf[:n])
	}
	r := d.waitLog(func(r record) bool { return r.msg() == "refused" && strings.HasPrefix(r.str("peer"), "127.0.0.2:") })
	if r.str("reason") != "rule" {
		t.Errorf("refusal record %v: got reason %q; want rule", r, r.str("reason"))
	}
}
