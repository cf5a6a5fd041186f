package main

// A flood, of connections or of a handler's stderr, costs goinetd's log a
// bounded number of records per second, and the records held back are
// counted.

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goinetd/goinetd/config"
)

// logEveryConnection lifts connection_log_rate, for tests that account
// for every connection by its record.
const logEveryConnection = "[defaults]\nconnection_log_rate = 0\n"

// windows is how many budget periods of length per a span of elapsed
// can touch: the records a budget lets through in it are at most this
// many times its rate.
func windows(elapsed, per time.Duration) int {
	return int(math.Ceil(float64(elapsed)/float64(per))) + 1
}

// dropped sums the dropped counts of the summary records msg of service.
func dropped(d *daemon, msg, service string) int {
	n := 0
	for _, r := range d.logs.records(func(r record) bool { return r.msg() == msg && r.str("service") == service }) {
		k, _ := strconv.Atoi(r.str("dropped"))
		n += k
	}
	return n
}

// TestStderrFloodIsBounded: a handler writes 262,144 blank lines, then
// 50,000 lines of text (3.4 MB) to its stderr. Blank lines make no
// record; of the others, at most stderr_line_rate are logged a second,
// and the rest are counted in "stderr lines dropped" records.
func TestStderrFloodIsBounded(t *testing.T) {
	const lines = 50000
	const text = "a line of text that a handler writes to its stderr, over and over"
	port := freePort(t, "127.0.0.1")
	script := fmt.Sprintf("head -c 262144 /dev/zero | tr '\\0' '\\n' >&2; yes '%s' | head -n %d >&2", text, lines)
	d := startDaemon(t, jsonLog+programService("flood", port, "/bin/sh", []string{"-c", script}))
	start := time.Now()
	exchange(t, addr(port), "")

	isLine := func(r record) bool { return r.msg() == "stderr" && r.str("service") == "flood" }
	accounted := func() int { return len(d.logs.records(isLine)) + dropped(d, "stderr lines dropped", "flood") }
	waitFor(t, fmt.Sprintf("%d lines logged or counted as dropped", lines), func() bool { return accounted() >= lines })
	elapsed := time.Since(start)
	if n := accounted(); n != lines {
		t.Errorf("lines logged or counted as dropped: got %d; want %d", n, lines)
	}
	logged, size := 0, 0
	for _, r := range d.logs.records(isLine) {
		if r.str("text") != text {
			t.Errorf("stderr record %v: got text %q; want %q (blank lines make no record)", r, r.str("text"), text)
			break
		}
		logged++
		size += len(r.str("text"))
	}
	w := windows(elapsed, config.DefaultStderrLineRate.Per)
	if most := w * config.DefaultStderrLineRate.N; logged > most {
		t.Errorf("%d stderr records in %v; want at most %d (%s)", logged, elapsed, most, config.DefaultStderrLineRate)
	}
	if most := w * config.DefaultStderrByteRate.N; size > most {
		t.Errorf("%d bytes of stderr logged in %v; want at most %d (%s bytes)", size, elapsed, most, config.DefaultStderrByteRate)
	}
	t.Logf("%d blank and %d text lines in %v: %d records (%d bytes of text), %d dropped; goinetd's log: %d bytes",
		262144, lines, elapsed.Round(time.Millisecond), logged, size, dropped(d, "stderr lines dropped", "flood"), len(d.logs.String()))
}

// TestLongStderrLineIsOneTruncatedRecord: a 100 KiB line, written in
// pieces or in one write (a datagram larger than goinetd reads at once),
// makes one record of at most config.MaxStderrRecord bytes, marked
// truncated; the next line is logged whole.
func TestLongStderrLineIsOneTruncatedRecord(t *testing.T) {
	if _, err := exec.LookPath("dd"); err != nil {
		t.Skip("needs dd to write a line in one write")
	}
	const long = 100 << 10
	file := filepath.Join(t.TempDir(), "line")
	if err := os.WriteFile(file, []byte(strings.Repeat("b", long)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "127.0.0.1")
	script := fmt.Sprintf("tr '\\0' a < /dev/zero | head -c %d >&2; echo >&2; echo after-a >&2; "+
		"dd if=\"$1\" bs=256k count=1 status=none >&2; echo after-b >&2", long)
	d := startDaemon(t, jsonLog+programService("long", port, "/bin/sh", []string{"-c", script, "sh", file}))
	exchange(t, addr(port), "")
	d.waitLog(func(r record) bool { return r.msg() == "stderr" && r.str("text") == "after-b" })
	d.waitLog(func(r record) bool { return r.msg() == "stderr" && r.str("text") == "after-a" })

	for _, c := range []string{"a", "b"} {
		rs := d.logs.records(func(r record) bool { return r.msg() == "stderr" && strings.HasPrefix(r.str("text"), c+c) })
		if len(rs) != 1 {
			t.Errorf("a %d-byte line of %q, %s: got %d records; want 1", long, c, map[string]string{"a": "in pieces", "b": "in one write"}[c], len(rs))
			continue
		}
		got := rs[0].str("text")
		if len(got) > config.MaxStderrRecord || strings.Trim(got, c) != "" || rs[0].str("truncated") != "true" {
			t.Errorf("the record of a %d-byte line of %q: got %d bytes, truncated=%q; want at most %d of %q and truncated=true",
				long, c, len(got), rs[0].str("truncated"), config.MaxStderrRecord, c)
		}
	}
}

// TestConnectionFloodRecordsAreBounded floods a built-in and a handler
// with connections: at most connection_log_rate "connection ended"
// records are written a second per service, and "connection records
// dropped" counts the rest.
func TestConnectionFloodRecordsAreBounded(t *testing.T) {
	builtinPort, handlerPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	d := startDaemon(t, jsonLog+
		fmt.Sprintf("[services.daytime]\naddress = \"127.0.0.1\"\nport = %d\nbuiltin = \"daytime\"\n", builtinPort)+
		programService("true", handlerPort, "/bin/true", nil))
	flood := map[string]int{"daytime": 1000, "true": 300}
	start := time.Now()
	for service, port := range map[string]int{"daytime": builtinPort, "true": handlerPort} {
		for range flood[service] {
			c := dial(t, "", addr(port))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}
	for service, n := range flood {
		isEnded := func(r record) bool { return r.msg() == "connection ended" && r.str("service") == service }
		accounted := func() int { return len(d.logs.records(isEnded)) + dropped(d, "connection records dropped", service) }
		waitFor(t, fmt.Sprintf("%d connections to %s logged or counted as dropped", n, service), func() bool { return accounted() >= n })
		elapsed := time.Since(start)
		if got := accounted(); got != n {
			t.Errorf("%s: connections logged or counted as dropped: got %d; want %d", service, got, n)
		}
		// Goroutines racing at a period's turn may each get a record in.
		rate := config.DefaultConnectionLogRate
		logged, most := len(d.logs.records(isEnded)), windows(elapsed, rate.Per)*rate.N+10
		if logged > most {
			t.Errorf("%s: %d connection records for %d connections in %v; want at most %d (%s)", service, logged, n, elapsed, most, rate)
		}
		t.Logf("%s: %d connections in %v: %d records, %d dropped", service, n, elapsed.Round(time.Millisecond), logged,
			dropped(d, "connection records dropped", service))
	}
}
