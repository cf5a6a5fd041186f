package importer

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/goinetd/goinetd/config"
)

// value is a TOML value, rendered.
type value string

func str(s string) value { return value(quote(s)) }

func num(n int) value { return value(strconv.Itoa(n)) }

// decimal writes f as a TOML float (8.0, not 8).
func decimal(f float64) value {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return value(s)
}

func boolean(b bool) value { return value(strconv.FormatBool(b)) }

func list(items []string) value {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return value("[" + strings.Join(q, ", ") + "]")
}

// table renders an inline table of string or preformatted values, keys
// sorted.
func table(m map[string]value) value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = bareOrQuoted(k) + " = " + string(m[k])
	}
	return value("{ " + strings.Join(parts, ", ") + " }")
}

// quote writes s as a TOML basic string: like strconv.Quote, but with the
// escapes TOML has (\uXXXX, no \x) and printable Unicode kept as is.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f || !unicode.IsPrint(r) && r != ' ' {
				fmt.Fprintf(&b, `\u%04X`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func bareOrQuoted(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return quote(k)
}

// tableHeader is the header of the service table name.
func tableHeader(name string) string {
	return "[" + toml.Key{"services", name}.String() + "]"
}

// comment makes text safe inside a one-line comment: control characters
// escaped, so a byte of the source cannot end the comment, and bytes that
// are not UTF-8 replaced, as TOML requires.
func comment(text string) string {
	return config.EscapeControls(strings.ToValidUTF8(text, "\uFFFD"))
}

// wrap splits text into comment lines of at most about 78 bytes: the
// first starts with first, the others with rest (both end in a space).
func wrap(first, rest, text string) []string {
	var lines []string
	line, empty := first, true
	for _, word := range strings.Fields(comment(text)) {
		if !empty && len(line)+1+len(word) > 78 {
			lines = append(lines, line)
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	return append(lines, line)
}
