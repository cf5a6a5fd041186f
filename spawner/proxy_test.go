package spawner

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/goinetd/goinetd/internal/proxyheader"
	"github.com/goinetd/goinetd/internal/proxyheader/proxyheadertest"
	"github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// TestReadProxyHeaderLeavesTheRest sends the header and the client's
// first bytes in one write, over a real socket, and checks that exactly
// the header is consumed.
func TestReadProxyHeaderLeavesTheRest(t *testing.T) {
	for _, header := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.7 10.0.0.1 40000 80\r\n"),
		proxyheadertest.V2(t, proxyproto.PROXY, "192.0.2.7:40000", "10.0.0.1:80"),
	} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		client := os.NewFile(uintptr(fds[1]), "client")
		client.Write(append(bytes.Clone(header), "hello after the header"...))
		client.Close()
		h, err := readProxyHeader(fds[0], time.Second)
		if err != nil || h.Client.String() != "192.0.2.7:40000" {
			t.Errorf("readProxyHeader: got %v, %v", h.Client, err)
		}
		rest, err := io.ReadAll(os.NewFile(uintptr(fds[0]), "server"))
		if string(rest) != "hello after the header" {
			t.Errorf("after the header: got %q, %v; want the client's bytes intact", rest, err)
		}
	}
}

func TestReadProxyHeaderTimesOut(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	unix.Write(fds[1], []byte("PROXY TCP4 192.0.2.7")) // and then nothing
	start := time.Now()
	_, err = readProxyHeader(fds[0], 100*time.Millisecond)
	if !errors.Is(err, proxyheader.ErrMalformed) || time.Since(start) > 5*time.Second {
		t.Errorf("a header that never ends: got %v after %v; want a timeout error", err, time.Since(start))
	}
	if flags, _ := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0); flags&unix.O_NONBLOCK != 0 {
		t.Errorf("the socket was left non-blocking")
	}
}

func TestReadProxyHeaderConnKeepsBufferedBytes(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	go func() {
		client.Write(append([]byte("PROXY TCP4 192.0.2.7 10.0.0.1 40000 80\r\n"), "rest"...))
		client.Close()
	}()
	c, h, err := readProxyHeaderConn(server, time.Second)
	if err != nil || h.Client.String() != "192.0.2.7:40000" {
		t.Fatalf("readProxyHeaderConn: got %v, %v", h.Client, err)
	}
	if rest, _ := io.ReadAll(c); string(rest) != "rest" {
		t.Errorf("after the header: got %q; want %q", rest, "rest")
	}
}
