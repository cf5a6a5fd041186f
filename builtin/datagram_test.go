package builtin

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReply(t *testing.T) {
	now := fixedClock(rfc867Time())
	daytime := []byte("Monday, February 22, 1982 17:37:43-PST\r\n")
	timeReply := []byte{0x9a, 0x82, 0xd3, 0x67}
	tests := []struct {
		name    string
		request []byte
		want    []byte
		wantOK  bool
	}{
		{"echo", []byte("hello\x00\xff"), []byte("hello\x00\xff"), true},
		{"echo", []byte{}, []byte{}, true},
		{"discard", []byte("hello"), nil, false},
		{"discard", nil, nil, false},
		{"daytime", nil, daytime, true},
		{"daytime", []byte("anything"), daytime, true},
		{"time", nil, timeReply, true},
		{"time", []byte("anything"), timeReply, true},
		{"qotd", []byte("hello"), nil, false},
		{"", nil, nil, false},
	}
	for _, tt := range tests {
		got, ok := Reply(tt.name, tt.request, now)
		if !bytes.Equal(got, tt.want) || ok != tt.wantOK {
			t.Errorf("Reply(%q, %q): got %q, %v; want %q, %v", tt.name, tt.request, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestReplyEchoIsACopy(t *testing.T) {
	request := []byte("hello")
	reply, _ := Reply("echo", request, nil)
	request[0] = 'j'
	if string(reply) != "hello" {
		t.Errorf("reply after changing the request: got %q; want %q", reply, "hello")
	}
}

func TestReplyNilNowIsTheClock(t *testing.T) {
	before := time.Now().Unix()
	got, _ := Reply("time", nil, nil)
	after := time.Now().Unix()
	if len(got) != 4 {
		t.Fatalf("got %d bytes; want 4", len(got))
	}
	seconds := int64(got[0])<<24 | int64(got[1])<<16 | int64(got[2])<<8 | int64(got[3])
	if low, high := before+unixEpochSince1900, after+unixEpochSince1900; seconds < low || seconds > high {
		t.Errorf("got %d; want between %d and %d", seconds, low, high)
	}
}

func TestReplyChargenIsARandomPrefixOfThePattern(t *testing.T) {
	pattern := wantChargen(0, 512)
	var short, long bool
	for range 1000 {
		got, ok := Reply("chargen", []byte("x"), nil)
		if !ok || len(got) > 512 {
			t.Fatalf("got %d bytes, %v; want at most 512, true", len(got), ok)
		}
		if d := diff(got, pattern[:len(got)]); d != "" {
			t.Fatalf("chargen datagram: %s", d)
		}
		short = short || len(got) < 256
		long = long || len(got) >= 256
	}
	// Each has a chance of 2^-1000 of failing by bad luck.
	if !short || !long {
		t.Errorf("1000 datagrams: got short ones %v, long ones %v; want both, lengths spread over 0 to 512", short, long)
	}
}

func TestRefuseSource(t *testing.T) {
	tests := []struct {
		src  netip.AddrPort
		want string
	}{
		{netip.MustParseAddrPort("192.0.2.1:0"), RefusedSourcePort},
		{netip.MustParseAddrPort("192.0.2.1:7"), RefusedSourcePort},
		{netip.MustParseAddrPort("192.0.2.1:19"), RefusedSourcePort},
		{netip.MustParseAddrPort("192.0.2.1:1023"), RefusedSourcePort},
		{netip.MustParseAddrPort("192.0.2.1:1024"), ""},
		{netip.MustParseAddrPort("192.0.2.1:50000"), ""},
		{netip.MustParseAddrPort("192.0.2.1:65535"), ""},
		{netip.MustParseAddrPort("[2001:db8::1]:1023"), RefusedSourcePort},
		{netip.MustParseAddrPort("[2001:db8::1]:50000"), ""},
		{netip.MustParseAddrPort("[::ffff:192.0.2.1]:50000"), ""},
		{netip.MustParseAddrPort("127.0.0.1:50000"), ""},
		{netip.MustParseAddrPort("[::1]:50000"), ""},
		{netip.MustParseAddrPort("[fe80::1%eth0]:50000"), ""},
		// Services that answer datagrams themselves.
		{netip.MustParseAddrPort("192.0.2.1:1900"), RefusedReflectorPort},
		{netip.MustParseAddrPort("192.0.2.1:5353"), RefusedReflectorPort},
		{netip.MustParseAddrPort("[2001:db8::1]:11211"), RefusedReflectorPort},
		{netip.MustParseAddrPort("127.0.0.1:64738"), RefusedReflectorPort},
		{netip.MustParseAddrPort("192.0.2.1:1901"), ""},
		{netip.MustParseAddrPort("192.0.2.1:5352"), ""},
		// Addresses no sender has.
		{netip.AddrPort{}, RefusedSourceAddress},
		{netip.AddrPortFrom(netip.Addr{}, 50000), RefusedSourceAddress},
		{netip.MustParseAddrPort("0.0.0.0:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("0.1.2.3:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("[::]:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("255.255.255.255:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("[::ffff:255.255.255.255]:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("224.0.0.1:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("[ff02::1]:50000"), RefusedSourceAddress},
		{netip.MustParseAddrPort("[::ffff:224.0.0.1]:50000"), RefusedSourceAddress},
	}
	for _, tt := range tests {
		if got := RefuseSource(tt.src); got != tt.want {
			t.Errorf("RefuseSource(%v): got %q; want %q", tt.src, got, tt.want)
		}
	}
}

// TestReflectorPortsAreSortedAndRefused keeps the list sorted, which the
// binary search needs, above 1023, and each port refused.
func TestReflectorPortsAreSortedAndRefused(t *testing.T) {
	ports := ReflectorPorts()
	for i, r := range ports {
		if r.Port < minReplyPort || r.Service == "" {
			t.Errorf("reflector port %d (%q): want a port above 1023 and a service name", r.Port, r.Service)
		}
		if i > 0 && ports[i-1].Port >= r.Port {
			t.Errorf("reflector ports %d then %d: want them sorted, each once", ports[i-1].Port, r.Port)
		}
		if got := RefuseSource(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), r.Port)); got != RefusedReflectorPort {
			t.Errorf("RefuseSource(192.0.2.1:%d): got %q; want %q", r.Port, got, RefusedReflectorPort)
		}
	}
}

// TestManPageListsTheReflectorPorts keeps inetd.toml(5), where operators
// read the list, equal to the list in the code.
func TestManPageListsTheReflectorPorts(t *testing.T) {
	page, err := os.ReadFile("../man/inetd.toml.5")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(page), ".\\\" reflector ports\n")
	section, _, ok2 := strings.Cut(section, ".\\\" end of reflector ports\n")
	if !ok || !ok2 {
		t.Fatal("inetd.toml.5 has no section between .\\\" reflector ports and .\\\" end of reflector ports")
	}
	var listed []uint16
	for _, m := range regexp.MustCompile(`(?m)^(\d+) `).FindAllStringSubmatch(section, -1) {
		n, _ := strconv.Atoi(m[1])
		listed = append(listed, uint16(n))
	}
	var want []uint16
	for _, r := range ReflectorPorts() {
		want = append(want, r.Port)
	}
	if !slices.Equal(listed, want) {
		t.Errorf("inetd.toml.5 lists reflector ports %v; want %v, as the code", listed, want)
	}
}

func TestReflector(t *testing.T) {
	for _, name := range Names() {
		want := name == "echo" || name == "chargen"
		if got := Reflector(name); got != want {
			t.Errorf("Reflector(%q): got %v; want %v", name, got, want)
		}
	}
}

// udpServer answers datagrams on a loopback socket as goinetd does, with
// RefuseSource and Reply, until the test ends. After each datagram it
// sends on the returned channel whether it answered (dropping the news if
// nobody has read the last 16).
func udpServer(t *testing.T, name string, now func() time.Time) (netip.AddrPort, <-chan bool) {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	handled := make(chan bool, 16)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 65536)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed by the cleanup
			}
			answered := false
			if RefuseSource(src) == "" {
				if reply, ok := Reply(name, buf[:n], now); ok {
					_, err := conn.WriteToUDPAddrPort(reply, src)
					answered = err == nil
				}
			}
			select {
			case handled <- answered:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-stopped
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort(), handled
}

// udpClient returns an unconnected loopback UDP socket with a deadline of
// limit, closed when the test ends.
func udpClient(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(limit)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return conn
}

func TestReplyOverUDP(t *testing.T) {
	now := fixedClock(rfc867Time())
	tests := []struct {
		name    string
		request []byte
		want    []byte // nil: check against the chargen pattern
	}{
		{"echo", []byte("hello, world\r\n"), []byte("hello, world\r\n")},
		{"echo", randomBytes(60000), randomBytes(60000)},
		{"time", nil, []byte{0x9a, 0x82, 0xd3, 0x67}},
		{"daytime", []byte("?"), []byte("Monday, February 22, 1982 17:37:43-PST\r\n")},
		{"chargen", nil, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d_bytes", tt.name, len(tt.request)), func(t *testing.T) {
			server, _ := udpServer(t, tt.name, now)
			client := udpClient(t)
			if _, err := client.WriteToUDPAddrPort(tt.request, server); err != nil {
				t.Fatalf("send: %v", err)
			}
			buf := make([]byte, 65536)
			n, from, err := client.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			if from != server {
				t.Errorf("reply from %v; want %v", from, server)
			}
			got, want := buf[:n], tt.want
			if want == nil {
				want = wantChargen(0, min(n, 512))
			}
			if d := diff(got, want); d != "" {
				t.Errorf("reply: %s", d)
			}
		})
	}
}

// TestDiscardOverUDPSendsNothing proves a negative without waiting for a
// timeout: once discard has handled our datagram, we ask echo, and the
// first datagram we receive must be echo's.
func TestDiscardOverUDPSendsNothing(t *testing.T) {
	discard, handled := udpServer(t, "discard", nil)
	echo, _ := udpServer(t, "echo", nil)
	client := udpClient(t)
	if _, err := client.WriteToUDPAddrPort([]byte("into the void"), discard); err != nil {
		t.Fatalf("send to discard: %v", err)
	}
	select {
	case answered := <-handled:
		if answered {
			t.Errorf("discard answered; want no answer")
		}
	case <-time.After(limit):
		t.Fatalf("discard did not handle the datagram within %v", limit)
	}
	if _, err := client.WriteToUDPAddrPort([]byte("marker"), echo); err != nil {
		t.Fatalf("send to echo: %v", err)
	}
	buf := make([]byte, 100)
	n, from, err := client.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if from != echo || string(buf[:n]) != "marker" {
		t.Errorf("first datagram: got %q from %v; want %q from echo at %v", buf[:n], from, "marker", echo)
	}
}

func TestAnswers(t *testing.T) {
	for _, name := range append(Names(), "qotd", "") {
		want := Valid(name) && name != "discard"
		if got := Answers(name); got != want {
			t.Errorf("Answers(%q): got %v; want %v", name, got, want)
		}
		if _, ok := Reply(name, nil, nil); ok != want {
			t.Errorf("Reply(%q): got ok %v; want %v, as Answers says", name, ok, want)
		}
	}
}
