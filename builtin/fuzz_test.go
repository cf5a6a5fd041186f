package builtin

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// addSeeds gives a fuzz target of (service index, bytes) a few inputs for
// every service.
func addSeeds(f *testing.F) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	for i := range Names() {
		for _, data := range [][]byte{nil, []byte("hello, world\r\n"), every, randomBytes(3000)} {
			f.Add(uint8(i), data)
		}
	}
}

func FuzzReply(f *testing.F) {
	addSeeds(f)
	names := Names()
	now := fixedClock(rfc867Time())
	f.Fuzz(func(t *testing.T, which uint8, request []byte) {
		name := names[int(which)%len(names)]
		original := bytes.Clone(request)
		reply, ok := Reply(name, request, now)
		if !bytes.Equal(request, original) {
			t.Errorf("Reply(%q) changed the request: got %q; want %q", name, request, original)
		}
		switch name {
		case "echo":
			if !ok || !bytes.Equal(reply, request) {
				t.Errorf("echo: got %d bytes, %v; want the %d bytes of the request, true", len(reply), ok, len(request))
			}
			if len(reply) > 0 && &reply[0] == &request[0] {
				t.Errorf("echo: got the request's own memory; want a copy")
			}
		case "discard":
			if ok || reply != nil {
				t.Errorf("discard: got %q, %v; want nil, false", reply, ok)
			}
		case "time":
			if want := timeBytes(now()); !ok || !bytes.Equal(reply, want) {
				t.Errorf("time: got % x, %v; want % x, true", reply, ok, want)
			}
		case "daytime":
			if want := daytimeLine(now()); !ok || !bytes.Equal(reply, want) {
				t.Errorf("daytime: got %q, %v; want %q, true", reply, ok, want)
			}
		case "chargen":
			if !ok || len(reply) > 512 {
				t.Fatalf("chargen: got %d bytes, %v; want at most 512, true", len(reply), ok)
			}
			if d := diff(reply, wantChargen(0, len(reply))); d != "" {
				t.Errorf("chargen: %s", d)
			}
		default:
			t.Fatalf("no check for service %q", name)
		}
	})
}

// FuzzServe sends arbitrary client input to each service over net.Pipe
// and checks what comes back and how Serve ends. A pipe rather than
// loopback TCP: thousands of runs a second would leave as many sockets in
// TIME-WAIT, for every test on the host to trip over; the TCP paths are
// tested above with exact checks.
//
// A pipe's Write returns only once the other end has read every byte, so a
// send that completes proves that the service read the input.
func FuzzServe(f *testing.F) {
	addSeeds(f)
	names := Names()
	now := fixedClock(rfc867Time())
	f.Fuzz(func(t *testing.T, which uint8, input []byte) {
		name := names[int(which)%len(names)]
		client, s := servePipe(t, name, now)
		sent := make(chan error, 1)
		go func() {
			_, err := client.Write(input)
			sent <- err
		}()
		var got []byte
		var readErr error
		switch name {
		case "echo":
			got = make([]byte, len(input))
			_, readErr = io.ReadFull(client, got)
		case "chargen":
			// The stream never ends by itself: take two periods and hang up.
			got = make([]byte, 2*chargenPeriod)
			_, readErr = io.ReadFull(client, got)
		case "discard":
			// Nothing to read: discard ends at EOF, which a pipe can send
			// only by closing, below.
		default:
			got, readErr = io.ReadAll(client)
		}
		if readErr != nil {
			t.Errorf("%s: read: got %v; want nil", name, readErr)
		}
		// daytime and time close without reading, which ends our send.
		readOnly := name == "daytime" || name == "time"
		if err := <-sent; readOnly && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("%s: send %d bytes: got %v; want io.ErrClosedPipe", name, len(input), err)
		} else if !readOnly && err != nil {
			t.Errorf("%s: send %d bytes: got %v; want nil", name, len(input), err)
		}
		var want []byte
		switch name {
		case "echo":
			want = input
		case "discard":
			want = nil
		case "daytime":
			want = daytimeLine(now())
		case "time":
			want = timeBytes(now())
		case "chargen":
			want = wantChargen(0, len(got))
		default:
			t.Fatalf("no check for service %q", name)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		client.Close()
		if err := s.wait(t); err != nil {
			t.Errorf("%s: Serve: got %v; want nil", name, err)
		}
	})
}
