package vfork

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestFence checks what the package comment promises: this package
// imports only what its child code and its probe need, and no other
// package of goinetd has assembly, //go:nosplit or //go:norace.
func TestFence(t *testing.T) {
	allowed := []string{"runtime", "sync/atomic", "syscall", "unsafe", "golang.org/x/sys/unix"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowed, path) {
				t.Errorf("%s: imports %s; want only %v", file, path, allowed)
			}
		}
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(here, "..", "..")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Dir(path) == here {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case strings.HasSuffix(path, ".s"):
			t.Errorf("%s: assembly outside internal/vfork", rel)
		case strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, mark := range []string{"\n//go:nosplit", "\n//go:norace"} {
				if strings.Contains(string(b), mark) {
					t.Errorf("%s: %s outside internal/vfork", rel, mark[1:])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
