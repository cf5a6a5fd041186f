package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"testing"
)

// TestKeyLiteralsAreKeys checks that every string in the validation code
// that looks like a key name is one: validate.go and replies.go name keys
// as string literals (w.add("max_per_source", ...), w.set("workdir")), and
// a misspelt one would silently disable a check or point an error at a key
// that does not exist. The few words that look like keys but are not are
// listed here, each with why.
func TestKeyLiteralsAreKeys(t *testing.T) {
	known := map[string]bool{}
	for name := range serviceKeys(&Service{}).set {
		known[name] = true
	}
	for name := range serverKeys(&Server{}).set {
		known[name] = true
	}
	notKeys := map[string]string{
		"services":  "the table of services, in a key path",
		"defaults":  "the [defaults] table, in a key path",
		"localhost": "a host name config refuses as an address",
		"chargen":   "a builtin's name",
	}
	keyLike := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for _, file := range []string{"validate.go", "replies.go"} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		ast.Inspect(f, func(n ast.Node) bool {
			if _, ok := n.(*ast.ImportSpec); ok {
				return false
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !keyLike.MatchString(s) {
				return true
			}
			seen++
			if !known[s] && notKeys[s] == "" {
				t.Errorf("%s: %q: got a string that names no key; want a key of a service or of [server] (or add it to notKeys, saying why)",
					fset.Position(lit.Pos()), s)
			}
			return true
		})
		if seen == 0 {
			t.Errorf("%s: got no key literals; want some (did the file move?)", file)
		}
	}
}
