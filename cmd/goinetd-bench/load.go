package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// payloadSize is what each connection writes and expects back.
const payloadSize = 64

// payload is the bytes each connection sends: printable, so a capture
// reads well, and not all alike, so a shifted echo is caught.
var payload = func() []byte {
	b := make([]byte, payloadSize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// loadResult is one closed-loop run against one server.
type loadResult struct {
	conns     int             // connections that completed the exchange
	resumed   int             // of those, the TLS connections that resumed a session
	elapsed   time.Duration   // from the first connect to the last worker's end
	latencies []time.Duration // per completed connection, connect to EOF; sorted
	errors    map[string]int  // failed connections, by kind
}

func (r loadResult) errorCount() int {
	n := 0
	for _, c := range r.errors {
		n += c
	}
	return n
}

// client makes the connections of the closed loop: plain TCP (tcpClient)
// or TLS (tlsClient).
type client interface {
	// worker returns what one worker calls for each of its connections,
	// one at a time: connect to addr, exchange the payload, end the
	// connection, all before deadline. It returns "" or the kind of
	// failure (see errorKind), and whether a TLS session was resumed.
	// Worker i of one closedLoop is worker i of the next one too (the
	// warm-up, then the measurement): a TLS client keeps its session.
	worker(i int) func(ctx context.Context, addr string, deadline time.Time) (kind string, resumed bool)
}

// closedLoop runs workers concurrent clients against addr. Each repeatedly
// makes one connection with cl (connects, writes the payload, reads it
// back, half-closes, reads EOF and closes), until duration has passed or
// maxConns connections (completed or failed) have been started, whichever
// comes first. Each connection must finish within timeout. ctx ends the
// run early.
func closedLoop(ctx context.Context, cl client, addr string, workers int, duration time.Duration, maxConns int, timeout time.Duration) loadResult {
	var (
		remaining = int64(maxConns)
		mu        sync.Mutex
		res       = loadResult{errors: make(map[string]int)}
		wg        sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(duration)
	for i := range workers {
		wg.Go(func() {
			var lat []time.Duration
			resumed := 0
			errs := make(map[string]int)
			conn := cl.worker(i)
			for ctx.Err() == nil && time.Now().Before(deadline) && atomic.AddInt64(&remaining, -1) >= 0 {
				t0 := time.Now()
				kind, didResume := conn(ctx, addr, t0.Add(timeout))
				if kind != "" {
					errs[kind]++
					continue
				}
				lat = append(lat, time.Since(t0))
				if didResume {
					resumed++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			res.resumed += resumed
			for k, n := range errs {
				res.errors[k] += n
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.conns = len(res.latencies)
	slices.Sort(res.latencies)
	return res
}

// tcpClient makes plain TCP connections.
type tcpClient struct{}

func (tcpClient) worker(int) func(ctx context.Context, addr string, deadline time.Time) (string, bool) {
	var d net.Dialer
	buf := make([]byte, payloadSize+1)
	return func(ctx context.Context, addr string, deadline time.Time) (string, bool) {
		d.Deadline = deadline
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return errorKind("connect", err), false
		}
		defer c.Close()
		c.SetDeadline(deadline)
		return echoAndEnd(c.(*net.TCPConn), buf), false
	}
}

// halfCloser is a connection whose sending side can be closed alone: a
// *net.TCPConn (FIN) or a *tls.Conn (close_notify).
type halfCloser interface {
	io.ReadWriter
	CloseWrite() error
}

// echoAndEnd is the exchange of one connection, once it is set up: write
// the payload, read it back (it must be equal), half-close, read EOF. buf
// holds at least payloadSize+1 bytes. It returns "" on success, or the
// kind of failure (see errorKind).
func echoAndEnd(c halfCloser, buf []byte) string {
	if _, err := c.Write(payload); err != nil {
		return errorKind("write", err)
	}
	if _, err := io.ReadFull(c, buf[:payloadSize]); err != nil {
		return errorKind("read", err)
	}
	if !bytes.Equal(buf[:payloadSize], payload) {
		return "read: echo differs from what was sent"
	}
	if err := c.CloseWrite(); err != nil {
		return errorKind("half-close", err)
	}
	n, err := c.Read(buf)
	switch {
	case n > 0:
		return "eof: more bytes than were sent"
	case err == io.EOF:
		return ""
	default:
		return errorKind("eof", err)
	}
}

// errorKind names a failure for the report: the step, then the errno's
// name or "timeout", so that failures of one kind count together.
func errorKind(step string, err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return step + ": timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return step + ": early EOF"
	case errors.As(err, &errno):
		return step + ": " + errno.Error()
	case errors.Is(err, context.Canceled):
		return step + ": canceled"
	}
	return fmt.Sprintf("%s: %v", step, err)
}

// held is a set of connections held open at once.
type held struct {
	conns  []net.Conn
	errors map[string]int
}

// holdOpen opens n connections to addr, with at most parallel being
// opened at a time. Each one sends the payload and waits for the echo,
// so the server is serving it (its handler runs) when holdOpen returns.
func holdOpen(ctx context.Context, addr string, n, parallel int, timeout time.Duration) *held {
	h := &held{errors: make(map[string]int)}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(parallel, n) {
		wg.Go(func() {
			d := net.Dialer{Timeout: timeout}
			buf := make([]byte, payloadSize)
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				c, kind := openOne(ctx, &d, addr, buf, timeout)
				mu.Lock()
				if kind != "" {
					h.errors[kind]++
				} else {
					h.conns = append(h.conns, c)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return h
}

func openOne(ctx context.Context, d *net.Dialer, addr string, buf []byte, timeout time.Duration) (net.Conn, string) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, errorKind("connect", err)
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(payload); err != nil {
		c.Close()
		return nil, errorKind("write", err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		c.Close()
		return nil, errorKind("read", err)
	}
	c.SetDeadline(time.Time{})
	return c, ""
}

// release ends every held connection as the closed loop does (half-close,
// EOF, close), parallel at a time, and adds failures to h.errors.
func (h *held) release(parallel int, timeout time.Duration) {
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(parallel, max(len(h.conns), 1)) {
		wg.Go(func() {
			buf := make([]byte, 1)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(h.conns) {
					return
				}
				c := h.conns[i]
				c.SetDeadline(time.Now().Add(timeout))
				var kind string
				if err := c.(*net.TCPConn).CloseWrite(); err != nil {
					kind = errorKind("release: half-close", err)
				} else if n, err := c.Read(buf); n > 0 {
					kind = "release: more bytes than were sent"
				} else if err != io.EOF {
					kind = errorKind("release: eof", err)
				}
				c.Close()
				if kind != "" {
					mu.Lock()
					h.errors[kind]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	h.conns = nil
}
