package main

// The PROXY protocol behind a real HAProxy, and with hand-made headers for
// what HAProxy does not send (the client's first bytes in the header's
// packet, malformed and silent headers, LOCAL).

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/goinetd/goinetd/internal/haproxytest"
)

// startHAProxy runs HAProxy with a TCP frontend on a free port that
// forwards to 127.0.0.1:backend with the given server options (send-proxy
// or send-proxy-v2), and returns the frontend's address.
func startHAProxy(t *testing.T, backend int, serverOptions string) string {
	t.Helper()
	front := freePort(t, "127.0.0.1")
	haproxytest.Start(t, front, serverOptions, backend)
	return addr(front)
}

func TestProxyProtocolBehindHAProxy(t *testing.T) {
	for _, option := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(option, func(t *testing.T) {
			port := freePort(t, "127.0.0.1")
			d := startDaemon(t, jsonLog+helperService(t, "behind", port, "report-hold",
				`proxy_protocol = true`, `proxy_from = ["127.0.0.1"]`,
				`no_access = ["127.0.0.3"]`, `max_per_source = 1`))
			front := startHAProxy(t, port, option)

			c, r := holdReport(t, "127.0.0.2", front)
			clientPort := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
			for name, want := range map[string]string{
				"TCPREMOTEIP": "127.0.0.2", "TCPREMOTEPORT": clientPort,
				"REMOTE_ADDR": "127.0.0.2", "REMOTE_PORT": clientPort,
				"PROXYREMOTEIP": "127.0.0.1", "TCPCONCURRENCY": "1",
			} {
				if got := envValue(r, name); got != want {
					t.Errorf("handler's %s: got %q; want %q", name, got, want)
				}
			}
			// The real client drives the address rules and per-source
			// limits, though every connection comes from HAProxy.
			expectClosed(t, dial(t, "127.0.0.3", front))
			d.waitLog(func(r record) bool {
				return r.msg() == "refused" && r.str("reason") == "address" && strings.HasPrefix(r.str("peer"), "127.0.0.3:")
			})
			expectClosed(t, dial(t, "127.0.0.2", front))
			d.waitLog(func(r record) bool {
				return r.msg() == "refused" && r.str("reason") == "per_source" && strings.HasPrefix(r.str("peer"), "127.0.0.2:")
			})
			_, other := holdReport(t, "127.0.0.4", front)
			if got := envValue(other, "TCPREMOTEIP"); got != "127.0.0.4" {
				t.Errorf("another client: TCPREMOTEIP %q; want 127.0.0.4", got)
			}
			c.Close()
			pid := strconv.Itoa(r.PID)
			e := d.waitLog(func(rec record) bool { return rec.msg() == "connection ended" && rec.str("pid") == pid })
			if !strings.HasPrefix(e.str("peer"), "127.0.0.2:"+clientPort+" via 127.0.0.1:") {
				t.Errorf("exit record %v: want the real client, via HAProxy", e)
			}
		})
	}
}

// proxyV2 is a PROXY v2 header for a TCP over IPv4 connection from src, or
// the LOCAL command if src is empty.
func proxyV2(src string) []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n")
	if src == "" {
		return append(h, 0x20, 0x00, 0x00, 0x00)
	}
	ap, _ := net.ResolveTCPAddr("tcp4", src)
	body := append(ap.IP.To4(), 10, 0, 0, 1)
	body = binary.BigEndian.AppendUint16(body, uint16(ap.Port))
	body = binary.BigEndian.AppendUint16(body, 80)
	h = append(h, 0x21, 0x11)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

func TestProxyProtocolHeaderAndDataInOnePacket(t *testing.T) {
	program, builtin := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", program, `proxy_protocol = true`, `proxy_from = ["127.0.0.0/8"]`)+
		fmt.Sprintf("[services.builtin]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"echo\"\nproxy_protocol = true\nproxy_from = [\"127.0.0.1\"]\n", builtin))
	for _, port := range []int{program, builtin} {
		for _, header := range [][]byte{
			[]byte("PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n"),
			proxyV2("198.51.100.8:40001"),
			proxyV2(""), // LOCAL: a health check, served as the balancer
		} {
			c := dial(t, "", addr(port))
			payload := "first bytes, sent with the header\x00\xff"
			if _, err := c.Write(append(header, payload...)); err != nil {
				t.Fatal(err)
			}
			c.CloseWrite()
			if got, err := io.ReadAll(c); err != nil || string(got) != payload {
				t.Errorf("port %d, header %q: got %q, %v; want exactly the bytes after the header", port, header[:12], got, err)
			}
		}
	}
	for _, peer := range []string{"198.51.100.7:40000", "198.51.100.8:40001"} {
		d.waitLog(func(r record) bool {
			return r.msg() == "connection ended" && strings.HasPrefix(r.str("peer"), peer+" via 127.0.0.1:")
		})
	}
}

func TestProxyProtocolRefusals(t *testing.T) {
	port, plain := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+echoService("echo", "127.0.0.1", port,
		`proxy_protocol = true`, `proxy_from = ["127.0.0.1"]`, `proxy_timeout = "500ms"`)+
		echoService("plain", "127.0.0.1", plain))

	// From outside proxy_from: refused, header or not, never believed.
	c := dial(t, "127.0.0.9", addr(port))
	c.Write([]byte("PROXY TCP4 10.1.1.1 10.0.0.1 1 2\r\nhi"))
	expectClosed(t, c)
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "proxy_source" })

	for _, bad := range []string{
		"GET / HTTP/1.0\r\n\r\n",
		"PROXY TCP4 10.1.1.1 10.0.0.1 1\r\n",
		"PROXY TCP4 " + strings.Repeat("9", 200) + "\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
	} {
		c := dial(t, "", addr(port))
		c.Write([]byte(bad))
		expectClosed(t, c)
	}
	// A silent balancer connection does not hold up the others.
	silent := dial(t, "", addr(port))
	c = dial(t, "", addr(port))
	c.Write(append([]byte("PROXY TCP4 203.0.113.5 10.0.0.1 5 80\r\n"), "ok"...))
	c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "ok" {
		t.Errorf("while another connection is silent: got %q; want the echo", got)
	}
	expectClosed(t, silent)
	// Five bad headers, each logged or counted in a later record's
	// "repeated".
	waitFor(t, "five proxy_header refusals to be logged", func() bool {
		n := 0
		for _, r := range d.logs.records(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "proxy_header" }) {
			if rep, err := strconv.Atoi(r.str("repeated")); err == nil {
				n += rep
			} else {
				n++
			}
		}
		return n == 5
	})
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" && r.str("service") == "echo" })); n != 1 {
		t.Errorf("%d children started; want 1, for the one good header", n)
	}
	if got := exchange(t, addr(plain), "plain"); got != "plain" {
		t.Errorf("a service without proxy_protocol: got %q", got)
	}
}
