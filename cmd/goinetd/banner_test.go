package main

// Banners: banner before the handler (or a built-in) serves a client,
// banner_refused before a refused client is closed, with real clients.

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readBanner reads len(want) bytes from c and checks they are want.
func readBanner(t *testing.T, c net.Conn, want string) {
	t.Helper()
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != want {
		t.Fatalf("banner: got %q, %v; want %q", b, err, want)
	}
}

func TestBannerComesBeforeTheHandler(t *testing.T) {
	file := filepath.Join(t.TempDir(), "banner.txt")
	if err := os.WriteFile(file, []byte("from a file\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spawned, fromFile, builtin := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	sock := filepath.Join(t.TempDir(), "greeted.sock")
	startDaemon(t, jsonLog+echoService("greeted", "127.0.0.1", spawned, `banner = "hello\r\n"`)+fmt.Sprintf(`
[services.unix]
protocol = "unix"
path = %q
program = %q
banner = "over unix\r\n"
`, sock, filepath.Join(bin, "echo"))+
		echoService("filed", "127.0.0.1", fromFile, fmt.Sprintf("banner = %q", "@"+file))+fmt.Sprintf(`
[services.builtin]
address = "127.0.0.1"
port = %d
builtin = "echo"
banner = "built in\r\n"
`, builtin))
	for _, c := range []struct {
		port   int
		banner string
	}{{spawned, "hello\r\n"}, {fromFile, "from a file\r\n"}, {builtin, "built in\r\n"}, {0, "over unix\r\n"}} {
		var conn interface {
			net.Conn
			CloseWrite() error
		}
		if c.port == 0 {
			u, err := net.DialTimeout("unix", sock, ioTimeout)
			if err != nil {
				t.Fatalf("dial %s: %v", sock, err)
			}
			defer u.Close()
			u.SetDeadline(time.Now().Add(ioTimeout))
			conn = u.(*net.UnixConn)
		} else {
			conn = dial(t, "", addr(c.port))
		}
		// The banner arrives before the client has sent anything, so it
		// cannot be the handler's echo.
		readBanner(t, conn, c.banner)
		io.WriteString(conn, "hi")
		conn.CloseWrite()
		if b, err := io.ReadAll(conn); err != nil || string(b) != "hi" {
			t.Errorf("port %d after the banner: got %q, %v; want the echo %q", c.port, b, err, "hi")
		}
	}
}

func TestBannerRefusedReachesARefusedClient(t *testing.T) {
	guarded, limited := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		echoService("guarded", "127.0.0.1", guarded, `no_access = ["127.0.0.3"]`,
			`banner = "welcome\r\n"`, `banner_refused = "go away\r\n"`)+
		helperService(t, "limited", limited, "report-hold", "max_per_source = 1", `banner_refused = "busy\r\n"`))

	c := dial(t, "127.0.0.3", addr(guarded))
	if b, err := io.ReadAll(c); err != nil || string(b) != "go away\r\n" {
		t.Errorf("client refused by no_access: got %q, %v; want only banner_refused %q", b, err, "go away\r\n")
	}
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "address" })

	held, _ := holdReport(t, "127.0.0.4", addr(limited))
	defer held.Close()
	c = dial(t, "127.0.0.4", addr(limited))
	if b, err := io.ReadAll(c); err != nil || string(b) != "busy\r\n" {
		t.Errorf("client over max_per_source: got %q, %v; want only banner_refused %q", b, err, "busy\r\n")
	}
	d.waitLog(func(r record) bool { return r.msg() == "refused" && r.str("reason") == "per_source" })
	if n := len(d.logs.records(func(r record) bool { return r.msg() == "spawned" })); n != 1 {
		t.Errorf("%d children started; want 1, none for the refused clients", n)
	}
}

// Clients that never read, with the smallest receive buffer the kernel
// allows, take banner_refused of the largest size allowed while another
// client is served: goinetd never waits for them to read.
// A 4 KiB banner fits an empty send buffer, so this holds even with a
// blocking send; TestWriteBannerNeverWaits (spawner) is the test that
// fails without MSG_DONTWAIT.
func TestBannersDoNotWaitForTheClient(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	big := strings.Repeat("x", 4096)
	startDaemon(t, jsonLog+echoService("guarded", "127.0.0.1", port, `no_access = ["127.0.0.5"]`,
		fmt.Sprintf("banner = %q", big), fmt.Sprintf("banner_refused = %q", big)))
	d := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")},
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1) })
		}}
	for range 50 {
		c, err := d.Dial("tcp", addr(port))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close() // held, never read
	}
	c := dial(t, "127.0.0.1", addr(port))
	readBanner(t, c, big)
	io.WriteString(c, "hi")
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "hi" {
		t.Errorf("client beside 50 that never read: got %q, %v; want the echo", b, err)
	}
}
