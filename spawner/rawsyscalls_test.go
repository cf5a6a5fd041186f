package spawner

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAcceptAndSocknameMatchXSys checks the hot path's accept4 and
// getsockname against x/sys/unix's Getpeername and Getsockname, on real
// connections over IPv4, IPv6 and unix sockets (named, abstract and
// unnamed clients).
func TestAcceptAndSocknameMatchXSys(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, network, address string
		clientBind             string // unix: the client binds to this name first
	}{
		{"ipv4", "tcp4", "127.0.0.1:0", ""},
		{"ipv6", "tcp6", "[::1]:0", ""},
		{"unix unnamed client", "unix", filepath.Join(dir, "s1"), ""},
		{"unix named client", "unix", filepath.Join(dir, "s2"), filepath.Join(dir, "c2")},
		{"unix abstract client", "unix", "@goinetd-test-" + filepath.Base(dir), "@goinetd-test-c-" + filepath.Base(dir)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.address)
			if err != nil {
				t.Skipf("listen %s %s: %v", tc.network, tc.address, err)
			}
			defer ln.Close()
			var dialer net.Dialer
			dialer.Timeout = 5 * time.Second
			if tc.clientBind != "" {
				dialer.LocalAddr = &net.UnixAddr{Name: tc.clientBind, Net: "unix"}
			}
			client, err := dialer.Dial(tc.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()

			f, err := ln.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fd, sa, err := accept4(int(f.Fd()))
			if err != nil {
				t.Fatalf("accept4: %v", err)
			}
			defer unix.Close(fd)
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("accepted fd flags %#x, %v; want close-on-exec", flags, err)
			}
			wantPeer, err := unix.Getpeername(fd)
			if err != nil {
				t.Fatal(err)
			}
			if tc.network == "unix" && tc.clientBind == "" {
				wantPeer = &unix.SockaddrUnix{} // x/sys/unix shows no name as "@"
			}
			if !reflect.DeepEqual(sa, wantPeer) {
				t.Errorf("accept4 peer %#v; want %#v", sa, wantPeer)
			}
			local, err := getsockname(fd)
			if err != nil {
				t.Fatalf("getsockname: %v", err)
			}
			wantLocal, err := unix.Getsockname(fd)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(local, wantLocal) {
				t.Errorf("getsockname %#v; want %#v", local, wantLocal)
			}
		})
	}
}
