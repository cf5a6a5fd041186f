package spawner

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A client that never reads, on a connection whose send buffer is full,
// must not hold the writer: writeBanner returns at once, reporting the
// banner not written.
func TestWriteBannerNeverWaits(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	defer unix.Close(fds[0]) // first: unblocks a writeBanner that would wait
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.SendmsgN(fds[0], chunk, nil, nil, unix.MSG_DONTWAIT); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan bool, 1)
	go func() { done <- writeBanner(fds[0], []byte("hello\r\n")) }()
	select {
	case ok := <-done:
		if ok {
			t.Errorf("writeBanner on a full socket: got true; want false")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("writeBanner on a full socket: still waiting after 5s; want it to return at once")
	}
	if ok := writeBanner(fds[1], []byte("hello\r\n")); !ok {
		t.Errorf("writeBanner on a fresh socket: got false; want the banner written")
	}
}
