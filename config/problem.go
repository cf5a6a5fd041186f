package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/go-multierror"
)

// A Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Line int    // 0 when the TOML parser gives no line for it
	Key  string // dotted key path, e.g. services.echo.port; empty for syntax errors
	Msg  string
}

// Error formats the problem on one line, with any control character in
// it escaped, so that a value from the file cannot break the line or reach
// a terminal or journal raw.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Key != "" {
		b.WriteString(": ")
		b.WriteString(p.Key)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return EscapeControls(b.String())
}

// EscapeControls writes the control characters of s as Go escapes (\n,
// \x1b), so that s cannot break a line or reach a terminal raw.
func EscapeControls(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Messages of the TOML parser that goinetd words its own way.
var (
	duplicateKey = regexp.MustCompile(`^Key '(.*)' has already been defined\.$`)
	outOfRange   = regexp.MustCompile(`^(-?\d+) is out of range for int64$`)
)

// intRanges are the ranges of integer keys, named in out-of-range messages.
var intRanges = map[string]string{"port": "1-65535"}

// problems collects every Problem of one file: the errors, which make the
// file invalid, and the warnings, which do not.
type problems struct {
	file     string
	lines    map[string]int // key path -> line, for every key decoded so far
	list     []*Problem
	warnings []*Problem
}

// add records a problem with key. Its line is the key's, or if the key is
// not in the file (a missing key) that of its nearest parent table. The same
// problem is recorded once: a bad [defaults] value is checked for each
// service that inherits it.
func (ps *problems) add(key, format string, args ...any) {
	ps.list = ps.record(ps.list, key, format, args...)
}

// warn records a warning with key, placed as add places a problem: a
// setting that works but is probably not what the operator wants (a
// risk, a default that will bite). Warnings never make a config invalid.
func (ps *problems) warn(key, format string, args ...any) {
	ps.warnings = ps.record(ps.warnings, key, format, args...)
}

func (ps *problems) record(list []*Problem, key, format string, args ...any) []*Problem {
	p := &Problem{File: ps.file, Line: ps.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
	for _, q := range list {
		if *q == *p {
			return list
		}
	}
	return append(list, p)
}

func (ps *problems) line(key string) int {
	for key != "" {
		if n, ok := ps.lines[key]; ok {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// addDecode records an error returned by the TOML decoder for key, keeping
// the line the decoder found, and returns that line.
func (ps *problems) addDecode(key string, err error) int {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" {
			key = pe.LastKey
		}
		msg := pe.Message
		if m := duplicateKey.FindStringSubmatch(msg); m != nil {
			key, msg = m[1], "is defined more than once"
		} else if m := outOfRange.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("%s is out of range", m[1])
			if r, ok := intRanges[key[strings.LastIndexByte(key, '.')+1:]]; ok {
				msg += " " + r
			}
		}
		line := pe.Position.Line
		if line == 0 {
			line = ps.line(key) // an implied table, e.g. env.A = 1
		}
		ps.list = append(ps.list, &Problem{File: ps.file, Line: line, Key: key, Msg: msg})
		return line
	}
	ps.add(key, "%s", strings.TrimPrefix(err.Error(), "toml: "))
	return ps.line(key)
}

// err returns every problem in file order, one per line, or nil.
func (ps *problems) err() error { return allProblems([]*problems{ps}) }

// allProblems returns every problem of files, file by file, each in line
// order, one per line, or nil if there is none.
func allProblems(files []*problems) error {
	var merr *multierror.Error
	for _, ps := range files {
		sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
		for _, p := range ps.list {
			merr = multierror.Append(merr, p)
		}
	}
	if merr == nil {
		return nil
	}
	merr.ErrorFormat = onePerLine
	return merr
}

// allWarnings returns every warning of files, file by file, each in line
// order.
func allWarnings(files []*problems) []*Problem {
	var all []*Problem
	for _, ps := range files {
		sort.SliceStable(ps.warnings, func(i, j int) bool { return ps.warnings[i].Line < ps.warnings[j].Line })
		all = append(all, ps.warnings...)
	}
	return all
}

func onePerLine(errs []error) string {
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}
