package builtin

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{'g', 'o', 'i', 'n', 'e', 't', 'd'}).Read(b)
	return b
}

// send writes data to conn, then half-closes it, in a new goroutine, and
// returns a channel that yields the first error.
func send(conn *net.TCPConn, data []byte) <-chan error {
	result := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.CloseWrite()
		}
		result <- err
	}()
	return result
}

func TestServeEchoTCPRoundTripsAMegabyte(t *testing.T) {
	client, _, s := serveTCP(t, "echo", nil)
	data := randomBytes(1 << 20)
	sent := send(client, data)
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("read the echo: got error %v; want EOF after %d bytes", err, len(data))
	}
	if d := diff(got, data); d != "" {
		t.Errorf("echo: %s", d)
	}
	if err := <-sent; err != nil {
		t.Errorf("send: got %v; want nil", err)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Serve: got %v; want nil", err)
	}
}

func TestServeDiscardTCPReadsToEOF(t *testing.T) {
	client, _, s := serveTCP(t, "discard", nil)
	sent := send(client, randomBytes(1<<20))
	// discard closes only at EOF, so our EOF proves it read everything.
	got, err := io.ReadAll(client)
	if err != nil || len(got) != 0 {
		t.Errorf("read: got %d bytes and %v; want EOF and nothing", len(got), err)
	}
	if err := <-sent; err != nil {
		t.Errorf("send: got %v; want nil", err)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Serve: got %v; want nil", err)
	}
}

func TestServeDaytimeAndTimeTCPSendAndClose(t *testing.T) {
	tests := []struct {
		name string
		want []byte
	}{
		{"daytime", []byte("Monday, February 22, 1982 17:37:43-PST\r\n")},
		{"time", []byte{0x9a, 0x82, 0xd3, 0x67}}, // 1982-02-23 01:37:43 UTC: 2,592,265,063
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _, s := serveTCP(t, tt.name, fixedClock(rfc867Time()))
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatalf("read: got error %v; want EOF", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %q; want %q", got, tt.want)
			}
			if err := s.wait(t); err != nil {
				t.Errorf("Serve: got %v; want nil", err)
			}
		})
	}
}

func TestServeNilNowIsTheClock(t *testing.T) {
	before := time.Now().Unix()
	client, _, _ := serveTCP(t, "time", nil)
	got, err := io.ReadAll(client)
	after := time.Now().Unix()
	if err != nil || len(got) != 4 {
		t.Fatalf("read: got %d bytes and %v; want 4 and EOF", len(got), err)
	}
	seconds := int64(got[0])<<24 | int64(got[1])<<16 | int64(got[2])<<8 | int64(got[3])
	if low, high := before+unixEpochSince1900, after+unixEpochSince1900; seconds < low || seconds > high {
		t.Errorf("got %d; want between %d and %d", seconds, low, high)
	}
}

func TestServeChargenTCPStreamsUntilTheClientCloses(t *testing.T) {
	client, _, s := serveTCP(t, "chargen", nil)
	got := make([]byte, 3*chargenPeriod+1000)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	if d := diff(got, wantChargen(0, len(got))); d != "" {
		t.Errorf("chargen: %s", d)
	}
	client.Close()
	if err := s.wait(t); err != nil {
		t.Errorf("Serve after the client closed: got %v; want nil", err)
	}
}

func TestServeChargenDrainsInputAndOutlivesAHalfClose(t *testing.T) {
	client, _, s := serveTCP(t, "chargen", nil)
	// Far more than the socket buffers hold: without chargen reading, this
	// would block until the client's deadline, since we read nothing yet.
	if err := <-send(client, randomBytes(16<<20)); err != nil {
		t.Fatalf("send 16 MiB and half-close: got %v; want nil", err)
	}
	got := make([]byte, 2*chargenPeriod)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("read after half-close: got %v; want %d bytes", err, len(got))
	}
	if d := diff(got, wantChargen(0, len(got))); d != "" {
		t.Errorf("chargen: %s", d)
	}
	select {
	case <-s.done:
		t.Fatalf("Serve returned %v after a half-close; want it to go on", s.err)
	default:
	}
	client.Close()
	if err := s.wait(t); err != nil {
		t.Errorf("Serve after the client closed: got %v; want nil", err)
	}
}

// TestServeEndsWhenClosedElsewhere proves that goinetd can stop a built-in
// that a client holds open: echo and discard wait in a read, chargen in a
// write to a client that does not read.
func TestServeEndsWhenClosedElsewhere(t *testing.T) {
	for _, name := range []string{"echo", "discard", "chargen"} {
		t.Run(name, func(t *testing.T) {
			client, server, s := serveTCP(t, name, nil)
			if name == "echo" {
				// Make sure Serve is under way: it has echoed this.
				if _, err := client.Write([]byte("x")); err != nil {
					t.Fatalf("write: %v", err)
				}
				if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
					t.Fatalf("read the echo: %v", err)
				}
			}
			server.Close()
			err := s.wait(t)
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve: got %v; want an error wrapping net.ErrClosed", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "builtin "+name+": ") {
				t.Errorf("Serve: got %q; want it to start with %q", err, "builtin "+name+": ")
			}
		})
	}
}

func TestServeReturnsTheDeadlineError(t *testing.T) {
	_, server, s := serveTCP(t, "echo", nil)
	// A deadline already past wakes the pending read at once.
	if err := server.SetDeadline(time.Now()); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	if err := s.wait(t); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Serve: got %v; want an error wrapping os.ErrDeadlineExceeded", err)
	}
}

func TestServeUnknownClosesAtOnce(t *testing.T) {
	client, _, s := serveTCP(t, "qotd", nil)
	err := s.wait(t)
	if err == nil || !strings.Contains(err.Error(), `"qotd"`) {
		t.Errorf("Serve: got %v; want an error naming \"qotd\"", err)
	}
	got, err := io.ReadAll(client)
	if err != nil || len(got) != 0 {
		t.Errorf("read: got %q and %v; want EOF and nothing", got, err)
	}
}

// TestServeOverPipe runs each service over net.Pipe: no splice, no
// CloseWrite, no kernel buffer, and io.ErrClosedPipe instead of a reset.
func TestServeOverPipe(t *testing.T) {
	now := fixedClock(rfc867Time())
	t.Run("echo", func(t *testing.T) {
		client, s := servePipe(t, "echo", now)
		for _, msg := range []string{"hello", "", "world\r\n"} {
			if _, err := client.Write([]byte(msg)); err != nil {
				t.Fatalf("write %q: %v", msg, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(client, got); err != nil || string(got) != msg {
				t.Fatalf("read: got %q and %v; want %q", got, err, msg)
			}
		}
		client.Close()
		if err := s.wait(t); err != nil {
			t.Errorf("Serve: got %v; want nil", err)
		}
	})
	t.Run("discard", func(t *testing.T) {
		client, s := servePipe(t, "discard", now)
		if _, err := client.Write(randomBytes(100000)); err != nil {
			t.Fatalf("write: %v", err)
		}
		client.Close()
		if err := s.wait(t); err != nil {
			t.Errorf("Serve: got %v; want nil", err)
		}
	})
	t.Run("chargen", func(t *testing.T) {
		client, s := servePipe(t, "chargen", now)
		got := make([]byte, chargenPeriod+100)
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("read: %v", err)
		}
		if d := diff(got, wantChargen(0, len(got))); d != "" {
			t.Errorf("chargen: %s", d)
		}
		client.Close()
		if err := s.wait(t); err != nil {
			t.Errorf("Serve: got %v; want nil", err)
		}
	})
	for name, want := range map[string]string{
		"daytime": "Monday, February 22, 1982 17:37:43-PST\r\n",
		"time":    "\x9a\x82\xd3\x67",
	} {
		t.Run(name, func(t *testing.T) {
			client, s := servePipe(t, name, now)
			got, err := io.ReadAll(client)
			if err != nil || string(got) != want {
				t.Errorf("read: got %q and %v; want %q and EOF", got, err, want)
			}
			if err := s.wait(t); err != nil {
				t.Errorf("Serve: got %v; want nil", err)
			}
		})
	}
}
