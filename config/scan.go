package config

import (
	"bytes"
	"strconv"

	"github.com/BurntSushi/toml"
)

// scanned is what scan learns of a TOML file without parsing its values.
type scanned struct {
	explicit map[string]bool // the keys lines holds as written, not implied
	// lines maps the path of every key and table the file writes at the
	// top level of a table (toml.Key.String()) to its line. A table only
	// implied, by [a.b] or a dotted key a.b = 1, gets the first line of
	// what it holds. Keys inside inline tables are not in it.
	lines map[string]int
	// tooDeep is the line where arrays and tables nest deeper than
	// maxNesting, or 0 if they never do.
	tooDeep int
}

// scan reads data as TOML text in one pass: comments and strings are
// skipped as TOML defines them, so that brackets in them do not count.
// Its cost is linear in the file, where asking the TOML parser for a
// key's line costs a pass over the whole file per key.
func scan(data []byte) scanned {
	sc := scanned{lines: make(map[string]int), explicit: make(map[string]bool)}
	var table []string // the path of the current [table]
	depth, line := 0, 1
	statement := true // at the start of a key or header, at depth 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if statement && depth == 0 {
			switch c {
			case ' ', '\t', '\r':
				continue
			case '\n', '#':
			case '[':
				// A [table] or [[array of tables]] header.
				j := i + 1
				if j < len(data) && data[j] == '[' {
					j++
				}
				if path, _, ok := keyPath(data, j); ok {
					table = path
					sc.record(path, line)
				}
				depth++
				statement = false
				continue
			default:
				if path, _, ok := keyPath(data, i); ok {
					sc.record(append(append([]string(nil), table...), path...), line)
				}
				statement = false
			}
		}
		switch c {
		case '\n':
			line++
			statement = depth == 0
		case '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			i, line = skipString(data, i, line)
		case '[', '{':
			if depth++; depth > maxNesting && sc.tooDeep == 0 {
				sc.tooDeep = line
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return sc
}

// record notes that path is written at line, and that each table above it
// not seen yet starts there.
func (sc *scanned) record(path []string, line int) {
	for n := 1; n <= len(path); n++ {
		key := toml.Key(path[:n]).String()
		_, seen := sc.lines[key]
		switch {
		case n == len(path) && !sc.explicit[key]:
			sc.lines[key], sc.explicit[key] = line, true
		case !seen:
			sc.lines[key] = line
		}
	}
}

// skipString returns the index of the last byte of the string that
// starts at data[i] (a quote), and the line it ends on. A one-line string
// that is not closed ends before its line does (a syntax error the parser
// reports).
func skipString(data []byte, i, line int) (int, int) {
	c := data[i]
	delim := []byte{c, c, c}
	if bytes.HasPrefix(data[i:], delim) {
		// A multi-line string ends at the next triple quote (not
		// escaped, in a basic string).
		for i += 3; i < len(data) && !bytes.HasPrefix(data[i:], delim); i++ {
			if data[i] == '\n' {
				line++
			} else if c == '"' && data[i] == '\\' {
				i++
				if i < len(data) && data[i] == '\n' {
					line++
				}
			}
		}
		return i + 2, line
	}
	for i++; i < len(data) && data[i] != c && data[i] != '\n'; i++ {
		if c == '"' && data[i] == '\\' && i+1 < len(data) && data[i+1] != '\n' {
			i++
		}
	}
	if i < len(data) && data[i] == '\n' {
		i-- // the newline is the caller's
	}
	return i, line
}

// keyPath reads the dotted key at data[i:] (bare, "basic" or 'literal'
// parts), up to the = of a key or the ] of a header. It reports false if
// what is there is not a key.
func keyPath(data []byte, i int) (path []string, next int, ok bool) {
	for {
		for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
			i++
		}
		if i >= len(data) {
			return nil, i, false
		}
		switch c := data[i]; {
		case c == '"' || c == '\'':
			end, _ := skipString(data, i, 0)
			if end >= len(data) || data[end] != c || end == i {
				return nil, i, false
			}
			part := string(data[i+1 : end])
			if c == '"' {
				unquoted, err := strconv.Unquote(`"` + part + `"`)
				if err != nil {
					return nil, i, false
				}
				part = unquoted
			}
			path = append(path, part)
			i = end + 1
		case isBareKeyByte(c):
			start := i
			for i < len(data) && isBareKeyByte(data[i]) {
				i++
			}
			path = append(path, string(data[start:i]))
		default:
			return nil, i, false
		}
		for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
			i++
		}
		if i < len(data) && data[i] == '.' {
			i++
			continue
		}
		if i < len(data) && (data[i] == '=' || data[i] == ']') {
			return path, i, true
		}
		return nil, i, false
	}
}

func isBareKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
