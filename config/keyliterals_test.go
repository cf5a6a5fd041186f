package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"testing"
)

// knownKeys returns the keys of a service table and of [server].
func knownKeys() map[string]bool {
	known := map[string]bool{}
	for name := range serviceKeys(&Service{}).set {
		known[name] = true
	}
	for name := range serverKeys(&Server{}).set {
		known[name] = true
	}
	return known
}

// stringLiterals calls f with every string literal of file outside its
// imports.
func stringLiterals(t *testing.T, file string, f func(pos token.Position, s string)) {
	t.Helper()
	fset := token.NewFileSet()
	parsed, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(parsed, func(n ast.Node) bool {
		if _, ok := n.(*ast.ImportSpec); ok {
			return false
		}
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				f(fset.Position(lit.Pos()), s)
			}
		}
		return true
	})
}

// TestKeyNamesAreKeys checks that every constant of keynames.go names a
// key of the table: the validation code refers to keys through them, so
// that a misspelt name does not compile, and a misspelt value fails here.
func TestKeyNamesAreKeys(t *testing.T) {
	known := knownKeys()
	n := 0
	stringLiterals(t, "keynames.go", func(pos token.Position, s string) {
		n++
		if !known[s] {
			t.Errorf("%s: %q: got a constant that names no key; want a key of a service or of [server]", pos, s)
		}
	})
	if n == 0 {
		t.Error("keynames.go: got no constants; want the key names")
	}
}

// TestKeyLiteralsAreKeys checks that the validation code names keys only
// through keynames.go: a string in validate.go or replies.go that looks
// like a key name is one of the few words listed here, each with why.
func TestKeyLiteralsAreKeys(t *testing.T) {
	notKeys := map[string]string{
		"services":  "the table of services, in a key path",
		"defaults":  "the [defaults] table, in a key path",
		"localhost": "a host name config refuses as an address",
		"chargen":   "a builtin's name",
	}
	keyLike := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for _, file := range []string{"validate.go", "replies.go"} {
		stringLiterals(t, file, func(pos token.Position, s string) {
			if keyLike.MatchString(s) && notKeys[s] == "" {
				t.Errorf("%s: %q: got a key name as a string; want its constant from keynames.go (or add the word to notKeys, saying why)", pos, s)
			}
		})
	}
}
