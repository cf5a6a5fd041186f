package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeServices writes a config of n services, each with the keys a real
// one has, and returns its path.
func writeServices(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("[server]\nlog_format = \"json\"\n\n[defaults]\nmax_per_source = 4\n")
	for i := range n {
		fmt.Fprintf(&b, "\n# service %d\n[services.svc%d]\naddress = \"127.0.0.%d\"\nport = %d\nprogram = \"/bin/cat\"\nargs = [\"-u\"]\nenv = { N = \"%d\" }\nmax_connections = 10\n",
			i, i, 1+i/60000, 1024+i%60000, i)
	}
	path := filepath.Join(tb.TempDir(), "inetd.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkLoad loads configs of 1,000 and 10,000 services: the time
// should grow with the services, not with their square.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		path := writeServices(b, n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Load(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLoadIsLinear checks that loading 8 times the services allocates at
// most 10 times the memory. Finding each key's line through a parser
// error used to cost a copy and a split of the whole file per key, so
// 8,000 services took 40 times what 1,000 did. Allocation is counted, not
// time, so that the test does not depend on the machine's load.
func TestLoadIsLinear(t *testing.T) {
	allocated := func(n int) uint64 {
		path := writeServices(t, n)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := Load(path); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := allocated(1000), allocated(8000)
	if ratio := float64(large) / float64(small); ratio > 10 {
		t.Errorf("got %d bytes allocated for 8,000 services, %.1f times the %d for 1,000; want at most 10 times", large, ratio, small)
	}
}
