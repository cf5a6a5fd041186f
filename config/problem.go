package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

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
	return b.String()
}

// problems collects every Problem of one file.
type problems struct {
	file  string
	lines map[string]int // key path -> line, for every key decoded so far
	list  []*Problem
}

// add records a problem with key. Its line is the key's, or if the key is
// not in the file (a missing key) that of its nearest parent table.
func (ps *problems) add(key, format string, args ...any) {
	ps.list = append(ps.list, &Problem{File: ps.file, Line: ps.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// defined reports whether the file sets key for service, in its own table
// or in [defaults], even if the value was bad.
func (ps *problems) defined(service, key string) bool {
	_, own := ps.lines[toml.Key{"services", service, key}.String()]
	_, dflt := ps.lines[toml.Key{"defaults", key}.String()]
	return own || dflt
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
// the line the decoder found.
func (ps *problems) addDecode(key string, err error) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" {
			key = pe.LastKey
		}
		ps.list = append(ps.list, &Problem{File: ps.file, Line: pe.Position.Line, Key: key, Msg: pe.Message})
		return
	}
	ps.add(key, "%s", strings.TrimPrefix(err.Error(), "toml: "))
}

// err returns every problem in file order, one per line, or nil.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
	var merr *multierror.Error
	for _, p := range ps.list {
		merr = multierror.Append(merr, p)
	}
	merr.ErrorFormat = onePerLine
	return merr
}

func onePerLine(errs []error) string {
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}
