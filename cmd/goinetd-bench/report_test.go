package main

import (
	"math"
	"strings"
	"testing"
)

// sampleResults is two levels of three rounds of a goinetd, a floor, two
// peers and the echo pair, with figures chosen so that the medians and
// the best peer are known.
func sampleResults() *results {
	specs := []*spec{
		{name: "goinetd", group: groupSpawn, role: roleSubject, changes: "defaults"},
		{name: "floor", group: groupSpawn, role: roleFloor, changes: "C"},
		{name: "peer-a", group: groupSpawn, role: rolePeer, changes: "a"},
		{name: "peer-b", group: groupSpawn, role: rolePeer, changes: "b"},
		{name: "goinetd-echo", group: groupEcho, role: roleSubject, changes: "builtin"},
		{name: "go-echo", group: groupEcho, role: roleBaseline, changes: "go"},
	}
	res := &results{Command: "goinetd-bench -rounds 3", Specs: specs, Levels: []int{1, 8},
		Header: []string{"a machine"}, Commands: map[string]string{"goinetd": "goinetd -config $DIR/inetd.toml"}}
	// conn/s per round (the median is the middle one), p99 ms, CPU µs.
	figures := map[string][3]float64{
		"goinetd":      {1500, 2, 100},
		"floor":        {2000, 1, 50},
		"peer-a":       {1200, 4, 150},
		"peer-b":       {1000, 3, 120},
		"goinetd-echo": {8000, 0.5, 40},
		"go-echo":      {10000, 0.4, 30},
	}
	for round := 1; round <= 3; round++ {
		for _, level := range res.Levels {
			for name, f := range figures {
				// Rounds 1 and 3 straddle the figure; round 2 is it.
				k := map[int]float64{1: 0.9, 2: 1, 3: 1.2}[round]
				r := levelResult{Server: name, Round: round, Level: level,
					ConnsPerSec: f[0] * k * float64(level), P50ms: f[1] / 2, P99ms: f[1] * k, MaxMs: f[1] * 3,
					CPUus: f[2] * k, CPUChildrenUs: f[2]*k + 500, PeakRSSKB: 2048, MaxThreads: 1, MaxChildren: level}
				if name == "peer-b" && round == 1 {
					r.Errors, r.ErrorKinds = 2, map[string]int{"read: ECONNRESET": 2}
				}
				res.Runs = append(res.Runs, r)
			}
		}
	}
	res.Holds = []holdResult{{Server: "goinetd", Round: 1, Held: 1000, ThreadsHeld: 9, RSSHeldKB: 12288, ChildrenHeld: 1000, ThreadsAfter: 9}}
	res.Footer = []string{"Left running at the end: nothing."}
	return res
}

func TestMedianLevel(t *testing.T) {
	res := sampleResults()
	m, n := res.medianLevel("peer-a", "", 8)
	if n != 3 {
		t.Fatalf("rounds: got %d; want 3", n)
	}
	if got, want := m["conn/s"], 1200.0*8; got != want {
		t.Errorf("median conn/s: got %v; want %v", got, want)
	}
	if got, want := m["p99 ms"], 4.0; got != want {
		t.Errorf("median p99: got %v; want %v", got, want)
	}
	if got, want := m["errors"], 0.0; got != want {
		t.Errorf("median errors: got %v; want %v", got, want)
	}
	if m, n := res.medianLevel("peer-a", "", 32); m != nil || n != 0 {
		t.Errorf("a level not run: got %v, %d; want nil, 0", m, n)
	}
}

func TestBestPeer(t *testing.T) {
	res := sampleResults()
	value, who := res.best(groupSpawn, "", 1)
	// The floor and goinetd are better, but they are not references.
	for fig, want := range map[string]struct {
		value float64
		who   string
	}{
		"conn/s":      {1200, "peer-a"},
		"p99 ms":      {3, "peer-b"},
		"CPU µs/conn": {120, "peer-b"},
	} {
		if value[fig] != want.value || who[fig] != want.who {
			t.Errorf("best %s: got %v (%s); want %v (%s)", fig, value[fig], who[fig], want.value, want.who)
		}
	}
	if _, ok := value["max ms"]; ok {
		t.Error("max ms has a best value; want none: it has no ratio")
	}
	value, who = res.best(groupEcho, "", 1)
	if value["conn/s"] != 10000 || who["conn/s"] != "go-echo" {
		t.Errorf("best echo conn/s: got %v (%s); want 10000 (go-echo)", value["conn/s"], who["conn/s"])
	}

	// A peer that served nothing is no reference.
	res.Runs = append(res.Runs[:0:0], res.Runs...)
	for i := range res.Runs {
		if res.Runs[i].Server == "peer-a" {
			res.Runs[i].ConnsPerSec, res.Runs[i].CPUus = 0, math.NaN()
		}
	}
	if value, who := res.best(groupSpawn, "", 1); who["conn/s"] != "peer-b" || value["conn/s"] != 1000 {
		t.Errorf("with peer-a dead: best conn/s got %v (%s); want 1000 (peer-b)", value["conn/s"], who["conn/s"])
	}
}

func TestRender(t *testing.T) {
	var b strings.Builder
	sampleResults().render(&b)
	out := b.String()
	for _, want := range []string{
		"`goinetd-bench -rounds 3`",
		"## spawn /bin/cat per connection",
		"| conc | server | conn/s | p50 ms | p99 ms | max ms | CPU µs/conn | CPU+children µs/conn | peak RSS MiB | threads | children | errors | zombies left | others % |",
		// goinetd at 1: 1,500 conn/s against peer-a's 1,200; p99 2 against peer-b's 3.
		"| 1 | goinetd | 1,500 (1.25×) | 1.00 (0.67×) | 2.00 (0.67×) | 6.00 | 100 (0.83×) |",
		"| 8 | peer-a | 9,600 (1.00×) |",
		"| 1 | floor | 2,000 (1.67×) |",
		"## in-process echo",
		"| 1 | goinetd-echo | 8,000 (0.80×) |",
		"## goinetd at a glance",
		"| 1 | 1,500 ÷ 1,200 (peer-a) = 1.25× | 100 / 120 (peer-b) / 50.0 | 2.00 ÷ 3.00 (peer-b) = 0.67× | 0.67×, worse in 0 of 3 | 1,500 ÷ 2,000 = 0.75× | 8,000 ÷ 10,000 = 0.80× |",
		"## Held connections",
		"| goinetd | 1,000 | 9 | 12.0 | 1,000 | 9 |",
		"| peer-b | 1 | read: ECONNRESET | 2 |",
		"- **goinetd**: defaults. `goinetd -config $DIR/inetd.toml`",
		"Left running at the end: nothing.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q; got:\n%s", want, out)
		}
	}
	// Every table row has as many cells as its header.
	var cells int
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			cells = 0
			continue
		}
		n := strings.Count(line, " | ") + 1
		if cells == 0 {
			cells = n
		} else if n != cells {
			t.Errorf("row %q has %d cells; want %d, as its header", line, n, cells)
		}
	}
}

func TestRoundRatios(t *testing.T) {
	res := sampleResults()
	p99 := func(r levelResult) float64 { return r.P99ms }
	// goinetd's p99 is 2/3 of peer-b's in every round of the sample; make
	// it worse in round 3 only, so that the median and the count differ.
	for i, r := range res.Runs {
		if r.Server == "goinetd" && r.Level == 1 && r.Round == 3 {
			res.Runs[i].P99ms = 3 * 1.2 * 1.1
		}
	}
	got := res.roundRatios("goinetd", "peer-b", "", 1, p99)
	if len(got) != 3 {
		t.Fatalf("ratios: got %v; want one per round", got)
	}
	if s := fmtRoundRatios(got); s != "0.67×, worse in 1 of 3" {
		t.Errorf("got %q; want %q", s, "0.67×, worse in 1 of 3")
	}
	if got := res.roundRatios("goinetd", "peer-b", "", 32, p99); len(got) != 0 {
		t.Errorf("a level not run: got %v; want none", got)
	}
	if s := fmtRoundRatios(nil); s != "–" {
		t.Errorf("no rounds: got %q; want –", s)
	}
}

func TestRenderNoErrors(t *testing.T) {
	res := sampleResults()
	for i := range res.Runs {
		res.Runs[i].Errors, res.Runs[i].ErrorKinds = 0, nil
	}
	var b strings.Builder
	res.render(&b)
	if !strings.Contains(b.String(), "None: every connection of every round completed its exchange.") {
		t.Errorf("a run without errors does not say so; got:\n%s", b.String())
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{fmtCount(0), "0"},
		{fmtCount(999.4), "999"},
		{fmtCount(1000), "1,000"},
		{fmtCount(1234567), "1,234,567"},
		{fmtCount(-1234), "-1,234"},
		{fmtCount(math.NaN()), "–"},
		{fmtMs(0.0421), "0.042"},
		{fmtMs(4.213), "4.21"},
		{fmtMs(42.13), "42.1"},
		{fmtMs(3025.4), "3025"},
		{fmtMicros(57.33), "57.3"},
		{fmtMicros(301.4), "301"},
		{fmtTenths(12.25), "12.2"},
		{fmtPlainRatio(3, 2), "1.50×"},
		{fmtPlainRatio(3, 0), "–"},
		{fmtRatio(1, 4), "(0.25×)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q; want %q", tc.got, tc.want)
		}
	}
}

func TestParseLevels(t *testing.T) {
	got, err := parseLevels("1, 8,32,128")
	if err != nil || len(got) != 4 || got[0] != 1 || got[3] != 128 {
		t.Errorf("parseLevels: got %v, %v; want [1 8 32 128]", got, err)
	}
	for _, bad := range []string{"", "0", "1,,2", "x", "-4"} {
		if got, err := parseLevels(bad); err == nil {
			t.Errorf("parseLevels(%q) = %v; want an error", bad, got)
		}
	}
}

func TestCustomSpec(t *testing.T) {
	sp, err := customSpec("mine=/usr/bin/foo -p {port} --bind 127.0.0.1:{port}")
	if err != nil {
		t.Fatal(err)
	}
	argv, err := sp.argv(t.TempDir(), 4242)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(argv, " "), "/usr/bin/foo -p 4242 --bind 127.0.0.1:4242"; got != want {
		t.Errorf("argv: got %q; want %q", got, want)
	}
	if sp.name != "mine" || sp.program != "/usr/bin/foo" || sp.reference() {
		t.Errorf("got name %q program %q reference %v; want mine, /usr/bin/foo, false", sp.name, sp.program, sp.reference())
	}
	for _, bad := range []string{"noequals", "=cmd {port}", "x=", "x=/bin/cat"} {
		if _, err := customSpec(bad); err == nil {
			t.Errorf("customSpec(%q): got no error; want one", bad)
		}
	}
}
