package main

// The throughput of goinetd's forward beside socat and haproxy in TCP
// mode, in one run: MB/s on one connection, and connections/s for small
// exchanges. It is a measurement, not a check: it runs only with
// GOINETD_FORWARD_BENCH=1 and logs its figures (docs/performance.md).

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestForwardThroughput(t *testing.T) {
	if os.Getenv("GOINETD_FORWARD_BENCH") != "1" {
		t.Skip("a measurement: set GOINETD_FORWARD_BENCH=1 to run it")
	}
	const (
		bulk    = 1 << 30 // bytes sent on one connection
		clients = 8
		small   = 64
		during  = 3 * time.Second
	)
	// The target: bulk data is counted and discarded; a small exchange is
	// echoed.
	sink := startTarget(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Time{})
		n, _ := io.Copy(io.Discard, c)
		io.WriteString(c, strconv.FormatInt(n, 10))
	})
	echoer := startTarget(t, "tcp", "127.0.0.1:0", echo)

	type forwarder struct{ name, bulkAddr, smallAddr string }
	var fws []forwarder
	fws = append(fws, forwarder{"direct (no forwarder)", sink.ln.Addr().String(), echoer.ln.Addr().String()})

	gb, gs := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	startDaemon(t, jsonLog+
		forwardService("bulk", gb, sink.ln.Addr().String(), "max_connections = 0", "max_per_source = 0")+
		forwardService("small", gs, echoer.ln.Addr().String(), "max_connections = 0", "max_per_source = 0"))
	fws = append(fws, forwarder{"goinetd forward", addr(gb), addr(gs)})

	if socat, err := exec.LookPath("socat"); err == nil {
		sb, ss := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
		for _, p := range [][2]string{{strconv.Itoa(sb), sink.ln.Addr().String()}, {strconv.Itoa(ss), echoer.ln.Addr().String()}} {
			startPeer(t, socat, "TCP-LISTEN:"+p[0]+",bind=127.0.0.1,reuseaddr,fork,backlog=4096", "TCP:"+p[1])
		}
		fws = append(fws, forwarder{"socat (fork)", addr(sb), addr(ss)})
	} else {
		t.Log("socat not installed: not measured")
	}
	if haproxy, err := exec.LookPath("haproxy"); err == nil {
		hb, hs := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
		cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bulk
  bind 127.0.0.1:%d
  server s %s
listen small
  bind 127.0.0.1:%d
  server s %s
`, hb, sink.ln.Addr(), hs, echoer.ln.Addr())), 0o644)
		startPeer(t, haproxy, "-db", "-f", cfg)
		fws = append(fws, forwarder{"haproxy (mode tcp)", addr(hb), addr(hs)})
	} else {
		t.Log("haproxy not installed: not measured")
	}

	for _, fw := range fws {
		waitListening(t, fw.bulkAddr)
		waitListening(t, fw.smallAddr)
		// MB/s: bulk bytes on one connection, to the target's count.
		c := dial(t, "", fw.bulkAddr)
		c.SetDeadline(time.Now().Add(time.Minute))
		buf := make([]byte, 256<<10)
		started := time.Now()
		for sent := 0; sent < bulk; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				t.Fatalf("%s: write: %v", fw.name, err)
			}
		}
		c.CloseWrite()
		got, err := io.ReadAll(c)
		took := time.Since(started)
		if err != nil || string(got) != strconv.Itoa(bulk) {
			t.Fatalf("%s: the target counted %q, %v; want %d", fw.name, got, err, bulk)
		}
		c.Close()
		mbps := float64(bulk) / 1e6 / took.Seconds()

		// conn/s: clients in parallel, each connecting, sending 64 bytes,
		// half-closing and reading the echo to EOF, for during.
		var done atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		msg := bytes.Repeat([]byte("x"), small)
		end := time.Now().Add(during)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					c, err := net.DialTimeout("tcp", fw.smallAddr, ioTimeout)
					if err != nil {
						failed.Add(1)
						continue
					}
					c.SetDeadline(time.Now().Add(ioTimeout))
					c.Write(msg)
					c.(*net.TCPConn).CloseWrite()
					b, err := io.ReadAll(c)
					c.Close()
					if err != nil || len(b) != small {
						failed.Add(1)
						continue
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		t.Logf("%-22s %8.0f MB/s on one connection   %7.0f conn/s (%d clients, %d B each way; %d failed)",
			fw.name, mbps, float64(done.Load())/during.Seconds(), clients, small, failed.Load())
	}
}

// startPeer starts another forwarder in a process group of its own, which
// the test's cleanup kills and collects.
func startPeer(t *testing.T, path string, args ...string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
}

// waitListening waits until a connect to address succeeds.
func waitListening(t *testing.T, address string) {
	t.Helper()
	waitFor(t, address+" to listen", func() bool {
		c, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
