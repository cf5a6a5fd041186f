package spawner

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goinetd/goinetd/config"
)

// TestConnectionVariablesAreDocumented checks that every environment
// variable goinetd sets for a handler (a "NAME=" string literal in
// spawner's code or the trampoline's) is in config.ConnectionVariables,
// which a service's env may not set, and in goinetd(8)'s list of what a
// handler's environment holds; and that every listed variable is set
// somewhere. PATH is the exception: the config's env may set it.
func TestConnectionVariablesAreDocumented(t *testing.T) {
	set := map[string]string{} // name: where
	assignment := regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=`)
	for _, dir := range []string{".", "../internal/trampoline"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if m := assignment.FindStringSubmatch(s); err == nil && m != nil {
					set[m[1]] = fset.Position(lit.Pos()).String()
				}
				return true
			})
		}
	}
	man, err := os.ReadFile("../man/goinetd.8")
	if err != nil {
		t.Fatal(err)
	}
	for name, where := range set {
		if name == "PATH" {
			continue
		}
		if !slices.Contains(config.ConnectionVariables, name) {
			t.Errorf("%s: %s: got a variable goinetd sets that is not in config.ConnectionVariables; want it listed", where, name)
		}
	}
	for _, name := range config.ConnectionVariables {
		if set[name] == "" {
			t.Errorf("config.ConnectionVariables: %s: got no code that sets it; want it set, or dropped from the list", name)
		}
		if !regexp.MustCompile(`(?m)^\.BR? ` + name + `\b`).Match(man) {
			t.Errorf("man/goinetd.8: %s: got no .B or .BR line for it; want it among the handler's environment", name)
		}
	}
}
