package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// figure is one column of the level table: how to get it from a result,
// whether a lower value is the better one, and whether it gets a ratio
// to the best reference server.
type figure struct {
	title  string
	get    func(levelResult) float64
	lower  bool // lower is better
	ratio  bool
	format func(float64) string
}

// comparableIn reports whether f compares the servers of g: a server's
// own CPU time does not compare TLS servers, since socat's own process
// only accepts and forks (the process it forks makes the handshake).
func (f figure) comparableIn(g group) bool {
	return g != groupTLS || f.title != "CPU µs/conn"
}

var levelFigures = []figure{
	{"conn/s", func(r levelResult) float64 { return r.ConnsPerSec }, false, true, fmtCount},
	{"p50 ms", func(r levelResult) float64 { return r.P50ms }, true, true, fmtMs},
	{"p99 ms", func(r levelResult) float64 { return r.P99ms }, true, true, fmtMs},
	{"max ms", func(r levelResult) float64 { return r.MaxMs }, true, false, fmtMs},
	{"CPU µs/conn", func(r levelResult) float64 { return r.CPUus }, true, true, fmtMicros},
	{"CPU+children µs/conn", func(r levelResult) float64 { return r.CPUChildrenUs }, true, true, fmtMicros},
	{"peak RSS MiB", func(r levelResult) float64 { return float64(r.PeakRSSKB) / 1024 }, true, true, fmtTenths},
	{"threads", func(r levelResult) float64 { return float64(r.MaxThreads) }, true, false, fmtCount},
	{"children", func(r levelResult) float64 { return float64(r.MaxChildren) }, true, false, fmtCount},
	{"errors", func(r levelResult) float64 { return float64(r.Errors) }, true, false, fmtCount},
	{"zombies left", func(r levelResult) float64 { return float64(r.ZombiesLeft) }, true, false, fmtCount},
	{"others %", func(r levelResult) float64 { return r.OthersPct }, true, false, fmtTenths},
}

var holdFigures = []struct {
	title  string
	get    func(holdResult) float64
	format func(float64) string
}{
	{"held", func(r holdResult) float64 { return float64(r.Held) }, fmtCount},
	{"threads held", func(r holdResult) float64 { return float64(r.ThreadsHeld) }, fmtCount},
	{"RSS held MiB", func(r holdResult) float64 { return float64(r.RSSHeldKB) / 1024 }, fmtTenths},
	{"children held", func(r holdResult) float64 { return float64(r.ChildrenHeld) }, fmtCount},
	{"threads after", func(r holdResult) float64 { return float64(r.ThreadsAfter) }, fmtCount},
	{"RSS after MiB", func(r holdResult) float64 { return float64(r.RSSAfterKB) / 1024 }, fmtTenths},
	{"children after", func(r holdResult) float64 { return float64(r.ChildrenAfter) }, fmtCount},
	{"zombies after", func(r holdResult) float64 { return float64(r.ZombiesAfter) }, fmtCount},
	{"errors", func(r holdResult) float64 { return float64(r.Errors) }, fmtCount},
	{"s to open", func(r holdResult) float64 { return r.SecondsToOpen }, fmtSeconds},
}

// results is everything one run measured, and how it was run.
type results struct {
	Command  string            `json:"command"`
	Header   []string          `json:"header"`   // lines about the machine and the settings
	Specs    []*spec           `json:"-"`        // the servers measured, in run order
	Commands map[string]string `json:"commands"` // server: its command line, with $DIR and $PORT
	Skipped  []string          `json:"skipped"`  // servers not measured, and why
	Levels   []int             `json:"levels"`
	Runs     []levelResult     `json:"runs"`
	Holds    []holdResult      `json:"holds"`
	Bulks    []bulkResult      `json:"bulks,omitempty"` // -tls
	Footer   []string          `json:"footer"`
}

// medianLevel returns the median of each figure of server's results at
// level with the given handshake ("" for plain TCP) across rounds, and
// how many rounds there were.
func (res *results) medianLevel(server, handshake string, level int) (map[string]float64, int) {
	var runs []levelResult
	for _, r := range res.Runs {
		if r.Server == server && r.Handshake == handshake && r.Level == level {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		return nil, 0
	}
	out := make(map[string]float64)
	for _, f := range levelFigures {
		vals := make([]float64, len(runs))
		for i, r := range runs {
			vals[i] = f.get(r)
		}
		out[f.title] = median(vals)
	}
	return out, len(runs)
}

// best returns, for each ratio figure, the best median among the
// reference servers of g at level with the handshake, and the server
// that has it.
func (res *results) best(g group, handshake string, level int) (value map[string]float64, who map[string]string) {
	value, who = make(map[string]float64), make(map[string]string)
	for _, sp := range res.Specs {
		if sp.group != g || !sp.reference() {
			continue
		}
		m, n := res.medianLevel(sp.name, handshake, level)
		if n == 0 || m["conn/s"] == 0 {
			continue // it served nothing: no figure of it is a reference
		}
		for _, f := range levelFigures {
			v := m[f.title]
			if !f.ratio || math.IsNaN(v) || !f.comparableIn(g) {
				continue
			}
			cur, ok := value[f.title]
			if !ok || (f.lower && v < cur) || (!f.lower && v > cur) {
				value[f.title], who[f.title] = v, sp.name
			}
		}
	}
	return value, who
}

// roundRatios returns a's figure over b's at level with the handshake,
// round by round, for the rounds that measured both: with servers
// interleaved, a round's ratio cancels what the machine did during that
// round.
func (res *results) roundRatios(a, b, handshake string, level int, get func(levelResult) float64) []float64 {
	of := make(map[int]float64)
	for _, r := range res.Runs {
		if r.Server == b && r.Handshake == handshake && r.Level == level {
			of[r.Round] = get(r)
		}
	}
	var ratios []float64
	for _, r := range res.Runs {
		if r.Server != a || r.Handshake != handshake || r.Level != level {
			continue
		}
		if v, ok := of[r.Round]; ok && v != 0 && !math.IsNaN(v) && !math.IsNaN(get(r)) {
			ratios = append(ratios, get(r)/v)
		}
	}
	return ratios
}

// fmtRoundRatios formats round-by-round ratios of a lower-is-better
// figure: their median, and in how many rounds the first server was worse.
func fmtRoundRatios(ratios []float64) string {
	if len(ratios) == 0 {
		return "–"
	}
	worse := 0
	for _, r := range ratios {
		if r > 1 {
			worse++
		}
	}
	return fmt.Sprintf("%.2f×, worse in %d of %d", median(ratios), worse, len(ratios))
}

// handshakes returns the handshakes g's servers were measured with, in
// run order: "" alone for plain TCP.
func (res *results) handshakes(g group) []string {
	var hs []string
	for _, r := range res.Runs {
		if res.groupOf(r.Server) == g && !slices.Contains(hs, r.Handshake) {
			hs = append(hs, r.Handshake)
		}
	}
	return hs
}

func (res *results) groupOf(server string) group {
	for _, sp := range res.Specs {
		if sp.name == server {
			return sp.group
		}
	}
	return ""
}

func (res *results) groups() []group {
	var gs []group
	for _, sp := range res.Specs {
		if !slices.Contains(gs, sp.group) {
			gs = append(gs, sp.group)
		}
	}
	return gs
}

// render writes the report as markdown.
func (res *results) render(w io.Writer) {
	fmt.Fprintf(w, "# goinetd-bench\n\n")
	fmt.Fprintf(w, "`%s`\n\n", res.Command)
	for _, line := range res.Header {
		fmt.Fprintf(w, "- %s\n", line)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Each figure is the median over the rounds. `(1.07×)` is its ratio to the best reference "+
		"server's median at that level: for spawn servers the best of the peers (not goinetd, not the floor), "+
		"for the in-process group go-echo, for TLS the better of the peers (stunnel, socat; a TLS server's own CPU has no ratio, "+
		"since socat's makes no handshake: its tree's, CPU+children, has). conn/s: above 1 is better; latency, CPU and RSS: below 1 is better.\n\n")

	for _, g := range res.groups() {
		for _, hs := range res.handshakes(g) {
			res.renderTable(w, g, hs)
		}
	}

	res.renderGlance(w)
	res.renderTLSGlance(w)
	res.renderBulk(w)

	if len(res.Holds) > 0 {
		fmt.Fprintf(w, "## Held connections\n\nEach server holds the connections open at once (each one echoed, so its "+
			"handler runs), then releases them; \"after\" is once its children are gone.\n\n")
		head := []string{"server"}
		align := []string{"---"}
		for _, f := range holdFigures {
			head, align = append(head, f.title), append(align, "---:")
		}
		writeRow(w, head)
		writeRow(w, align)
		for _, sp := range res.Specs {
			vals := make([][]float64, len(holdFigures))
			for _, h := range res.Holds {
				if h.Server != sp.name {
					continue
				}
				for i, f := range holdFigures {
					vals[i] = append(vals[i], f.get(h))
				}
			}
			if len(vals[0]) == 0 {
				continue
			}
			row := []string{sp.name}
			for i, f := range holdFigures {
				row = append(row, f.format(median(vals[i])))
			}
			writeRow(w, row)
		}
		fmt.Fprintln(w)
	}

	res.renderErrors(w)

	fmt.Fprintf(w, "## Servers\n\n")
	for _, sp := range res.Specs {
		fmt.Fprintf(w, "- **%s**: %s.", sp.name, sp.changes)
		if c := res.Commands[sp.name]; c != "" {
			fmt.Fprintf(w, " `%s`", c)
		}
		fmt.Fprintln(w)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "- not measured: %s\n", s)
	}
	fmt.Fprintln(w)
	for _, line := range res.Footer {
		fmt.Fprintf(w, "%s\n", line)
	}
}

// renderTable writes the medians of g's servers measured with the
// handshake ("" for plain TCP), level by level.
func (res *results) renderTable(w io.Writer, g group, handshake string) {
	if handshake == "" {
		fmt.Fprintf(w, "## %s\n\n", g)
	} else {
		fmt.Fprintf(w, "## %s: %s handshakes\n\n", g, handshake)
	}
	head := []string{"conc", "server"}

	for _, f := range levelFigures {
		head = append(head, f.title)
	}
	writeRow(w, head)
	align := []string{"---:", "---"}
	for range levelFigures {
		align = append(align, "---:")
	}
	writeRow(w, align)
	for _, level := range res.Levels {
		bestVal, _ := res.best(g, handshake, level)
		for _, sp := range res.Specs {
			if sp.group != g {
				continue
			}
			m, n := res.medianLevel(sp.name, handshake, level)
			if n == 0 {
				continue
			}
			row := []string{strconv.Itoa(level), sp.name}
			for _, f := range levelFigures {
				cell := f.format(m[f.title])
				if b, ok := bestVal[f.title]; ok && f.ratio && !math.IsNaN(m[f.title]) {
					cell += " " + fmtRatio(m[f.title], b)
				}
				row = append(row, cell)
			}
			writeRow(w, row)
		}
	}
	fmt.Fprintln(w)
}

// renderGlance writes goinetd's figures beside the best peer's and the
// floor's, level by level, and the built-in echo beside go-echo.
func (res *results) renderGlance(w io.Writer) {
	if res.groupOf("goinetd") != groupSpawn && res.groupOf("goinetd-echo") != groupEcho {
		return
	}
	fmt.Fprintf(w, "## goinetd at a glance\n\n")
	writeRow(w, []string{"conc", "conn/s goinetd ÷ best peer", "CPU µs/conn goinetd / best peer / floor",
		"p99 ms goinetd ÷ best peer", "p99 round by round: median ratio, rounds worse",
		"conn/s goinetd ÷ floor", "conn/s goinetd-echo ÷ go-echo (target ≥ 0.80)"})
	writeRow(w, []string{"---:", "---", "---", "---", "---", "---", "---"})
	for _, level := range res.Levels {
		g, _ := res.medianLevel("goinetd", "", level)
		fl, _ := res.medianLevel("floor", "", level)
		bestVal, bestWho := res.best(groupSpawn, "", level)
		ge, _ := res.medianLevel("goinetd-echo", "", level)
		gb, _ := res.medianLevel("go-echo", "", level)
		row := []string{strconv.Itoa(level), "–", "–", "–", "–", "–", "–"}
		if g != nil {
			if b, ok := bestVal["conn/s"]; ok {
				row[1] = fmt.Sprintf("%s ÷ %s (%s) = %s", fmtCount(g["conn/s"]), fmtCount(b), bestWho["conn/s"], fmtPlainRatio(g["conn/s"], b))
			}
			cpu := fmtMicros(g["CPU µs/conn"])
			if b, ok := bestVal["CPU µs/conn"]; ok {
				cpu += " / " + fmtMicros(b) + " (" + bestWho["CPU µs/conn"] + ")"
			} else {
				cpu += " / –"
			}
			if fl != nil {
				cpu += " / " + fmtMicros(fl["CPU µs/conn"])
			} else {
				cpu += " / –"
			}
			row[2] = cpu
			if b, ok := bestVal["p99 ms"]; ok {
				row[3] = fmt.Sprintf("%s ÷ %s (%s) = %s", fmtMs(g["p99 ms"]), fmtMs(b), bestWho["p99 ms"], fmtPlainRatio(g["p99 ms"], b))
				row[4] = fmtRoundRatios(res.roundRatios("goinetd", bestWho["p99 ms"], "", level, func(r levelResult) float64 { return r.P99ms }))
			}
			if fl != nil {
				row[5] = fmt.Sprintf("%s ÷ %s = %s", fmtCount(g["conn/s"]), fmtCount(fl["conn/s"]), fmtPlainRatio(g["conn/s"], fl["conn/s"]))
			}
		}
		if ge != nil && gb != nil {
			row[6] = fmt.Sprintf("%s ÷ %s = %s", fmtCount(ge["conn/s"]), fmtCount(gb["conn/s"]), fmtPlainRatio(ge["conn/s"], gb["conn/s"]))
		}
		writeRow(w, row)
	}
	fmt.Fprintln(w)
}

// renderErrors lists every kind of failed connection, summed over rounds.
func (res *results) renderErrors(w io.Writer) {
	type key struct {
		server string
		level  int // 0: the hold test; -1: the bulk test
		kind   string
	}
	sums := make(map[key]int)
	for _, r := range res.Runs {
		prefix := ""
		if r.Handshake != "" {
			prefix = r.Handshake + " handshakes: "
		}
		for k, n := range r.ErrorKinds {
			sums[key{r.Server, r.Level, prefix + k}] += n
		}
		if r.ServerDied {
			sums[key{r.Server, r.Level, prefix + "the server exited during the level"}]++
		}
		if r.ChildrenLeft > 0 {
			sums[key{r.Server, r.Level, prefix + "children still running after the level"}] += r.ChildrenLeft
		}
	}
	for _, h := range res.Holds {
		for k, n := range h.ErrorKinds {
			sums[key{h.Server, 0, k}] += n
		}
	}
	for _, b := range res.Bulks {
		if b.Error != "" {
			sums[key{b.Server, -1, b.Error}]++
		}
		if b.ServerDied {
			sums[key{b.Server, -1, "the server exited during the bulk test"}]++
		}
	}
	fmt.Fprintf(w, "## Errors\n\n")
	if len(sums) == 0 {
		fmt.Fprintf(w, "None: every connection of every round completed its exchange.\n\n")
		return
	}
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b key) int {
		if c := strings.Compare(a.server, b.server); c != 0 {
			return c
		}
		if a.level != b.level {
			return a.level - b.level
		}
		return strings.Compare(a.kind, b.kind)
	})
	writeRow(w, []string{"server", "conc", "kind", "count (all rounds)"})
	writeRow(w, []string{"---", "---:", "---", "---:"})
	for _, k := range keys {
		level := strconv.Itoa(k.level)
		switch k.level {
		case 0:
			level = "held"
		case -1:
			level = "bulk"
		}
		writeRow(w, []string{k.server, level, k.kind, strconv.Itoa(sums[k])})
	}
	fmt.Fprintln(w)
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func fmtRatio(v, best float64) string { return "(" + fmtPlainRatio(v, best) + ")" }

func fmtPlainRatio(v, best float64) string {
	if best == 0 || math.IsNaN(v) || math.IsNaN(best) {
		return "–"
	}
	return strconv.FormatFloat(v/best, 'f', 2, 64) + "×"
}

// fmtCount formats a count or a rate with thousands separators.
func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtMs formats milliseconds with three significant digits.
func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func fmtMicros(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// fmtTenths formats with one decimal: MiB, percentages.
func fmtTenths(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func fmtSeconds(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// tlsPlayers returns the subject and the peers of the TLS group, in run
// order; subject is nil when goinetd was not measured.
func (res *results) tlsPlayers() (subject *spec, peers []*spec) {
	for _, sp := range res.Specs {
		switch {
		case sp.group != groupTLS:
		case sp.role == roleSubject:
			subject = sp
		case sp.role == rolePeer:
			peers = append(peers, sp)
		}
	}
	return subject, peers
}

// resumedPct returns the share of server's completed connections at
// level with the handshake that resumed a session, over every round.
func (res *results) resumedPct(server, handshake string, level int) float64 {
	conns, resumed := 0, 0
	for _, r := range res.Runs {
		if r.Server == server && r.Handshake == handshake && r.Level == level {
			conns += r.Conns
			resumed += r.Resumed
		}
	}
	if conns == 0 {
		return math.NaN()
	}
	return float64(resumed) / float64(conns) * 100
}

// renderTLSGlance writes goinetd's conn/s and CPU per connection over each
// TLS peer's, level by level, and whether goinetd meets the goal: more
// conn/s and less CPU per connection (its tree's) than every peer.
func (res *results) renderTLSGlance(w io.Writer) {
	subject, peers := res.tlsPlayers()
	if subject == nil || len(peers) == 0 {
		return
	}
	fmt.Fprintf(w, "## goinetd beside the TLS peers\n\n"+
		"Ratios are goinetd's median over the peer's. CPU is the server's tree (its own, and the children it reaped: "+
		"for socat the per-connection socat doing the handshake, for all /bin/cat). "+
		"Goal: conn/s above 1× and CPU below 1× against every peer.\n\n")
	head := []string{"handshakes", "conc", "conn/s " + subject.name}
	for _, p := range peers {
		head = append(head, "÷ "+p.name)
	}
	head = append(head, "CPU tree µs/conn "+subject.name)
	for _, p := range peers {
		head = append(head, "÷ "+p.name)
	}
	names := []string{subject.name}
	for _, p := range peers {
		names = append(names, p.name)
	}
	head = append(head, "own CPU µs/conn "+strings.Join(names, " / "), "resumed % "+strings.Join(names, " / "), "goal met")
	writeRow(w, head)
	align := make([]string, len(head))
	for i := range align {
		align[i] = "---:"
	}
	writeRow(w, align)
	for _, hs := range res.handshakes(groupTLS) {
		for _, level := range res.Levels {
			s, n := res.medianLevel(subject.name, hs, level)
			if n == 0 {
				continue
			}
			met := true
			row := []string{hs, strconv.Itoa(level), fmtCount(s["conn/s"])}
			for _, p := range peers {
				m, _ := res.medianLevel(p.name, hs, level)
				row = append(row, fmtPlainRatio(s["conn/s"], m["conn/s"]))
				met = met && m != nil && s["conn/s"] > m["conn/s"]
			}
			row = append(row, fmtMicros(s["CPU+children µs/conn"]))
			var own, resumed []string
			own = append(own, fmtMicros(s["CPU µs/conn"]))
			resumed = append(resumed, fmtTenths(res.resumedPct(subject.name, hs, level)))
			for _, p := range peers {
				m, _ := res.medianLevel(p.name, hs, level)
				row = append(row, fmtPlainRatio(s["CPU+children µs/conn"], m["CPU+children µs/conn"]))
				met = met && m != nil && s["CPU+children µs/conn"] < m["CPU+children µs/conn"]
				own = append(own, fmtMicros(m["CPU µs/conn"]))
				resumed = append(resumed, fmtTenths(res.resumedPct(p.name, hs, level)))
			}
			row = append(row, strings.Join(own, " / "), strings.Join(resumed, " / "), map[bool]string{true: "yes", false: "no"}[met])
			writeRow(w, row)
		}
	}
	fmt.Fprintln(w)
}

// renderBulk writes each server's bulk throughput on one TLS connection
// (median over the rounds), and goinetd's over each peer's; the goal is
// at least 0.80× stunnel's.
func (res *results) renderBulk(w io.Writer) {
	if len(res.Bulks) == 0 {
		return
	}
	fmt.Fprintf(w, "## One connection's bulk throughput (TLS)\n\n"+
		"MB (10^6 bytes) written through one TLS connection to /bin/cat while they are read back, ÷ the time from the end "+
		"of the handshake to EOF. CPU: the server's tree, per MB.\n\n")
	writeRow(w, []string{"server", "MB/s", "CPU tree µs/MB", "rounds", "negotiated"})
	writeRow(w, []string{"---", "---:", "---:", "---:", "---"})
	mbps := make(map[string]float64)
	for _, sp := range res.Specs {
		var rates, cpu []float64
		negotiated := ""
		for _, b := range res.Bulks {
			if b.Server != sp.name || b.Error != "" {
				continue
			}
			rates, cpu = append(rates, b.MBps), append(cpu, b.CPUTreeUsPerMB)
			negotiated = b.Negotiated
		}
		if len(rates) == 0 {
			continue
		}
		mbps[sp.name] = median(rates)
		writeRow(w, []string{sp.name, fmtCount(mbps[sp.name]), fmtMicros(median(cpu)), strconv.Itoa(len(rates)), negotiated})
	}
	fmt.Fprintln(w)
	subject, peers := res.tlsPlayers()
	if subject == nil {
		return
	}
	for _, p := range peers {
		if v, ok := mbps[p.name]; ok {
			fmt.Fprintf(w, "- %s ÷ %s: %s\n", subject.name, p.name, fmtPlainRatio(mbps[subject.name], v))
		}
	}
	fmt.Fprintf(w, "- goal: at least 0.80× stunnel's\n\n")
}
