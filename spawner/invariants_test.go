package spawner

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestLocksHaveOneHome checks, in the source, the homes doc.go gives the
// locks: only table.go takes the pid table's lock or touches its counts,
// only table.go and reap.go (the reaper) the reap lock, and only
// invariants.go (Server.lock, which checks rule 2) takes Server.mu.
func TestLocksHaveOneHome(t *testing.T) {
	rules := []struct {
		use   *regexp.Regexp
		homes []string
	}{
		{regexp.MustCompile(`\b(cs|children)\.(mu|live|total|perService|perSource|held|released)\b`), []string{"table.go"}},
		{regexp.MustCompile(`\breapLock\.`), []string{"table.go", "reap.go"}},
		{regexp.MustCompile(`\bs\.mu\.Lock\(\)`), []string{"invariants.go"}},
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, r := range rules {
				if r.use.MatchString(line) && !slices.Contains(r.homes, file) {
					t.Errorf("%s:%d: %s: got it outside %v; want it only there (spawner/doc.go, the rules)",
						file, i+1, r.use.FindString(line), r.homes)
				}
			}
		}
	}
}

// TestDebugChecksCatchBrokenRules breaks rules 1 and 2 on purpose, in a
// build that has the checks (-race, or -tags goinetd_debug), and expects
// each to panic: a fork off the loop's thread, and the loop's thread
// taking Server.mu.
func TestDebugChecksCatchBrokenRules(t *testing.T) {
	if !debugChecks {
		t.Skip("the checks are on with -race or -tags goinetd_debug")
	}
	s := &Server{children: newChildren(slog.New(slog.DiscardHandler), nil)}
	lp, err := startSpawnLoop(s)
	if err != nil {
		t.Fatal(err)
	}
	s.loop = lp
	defer lp.stop()
	panics := func(f func()) (msg any) {
		defer func() { msg = recover() }()
		f()
		return nil
	}
	if msg := panics(lp.mustBeLoopThread); msg == nil {
		t.Error("fork check off the loop's thread: got no panic; want one")
	}
	var onLoop, lockOnLoop any
	lp.do(func() {
		onLoop = panics(lp.mustBeLoopThread)
		lockOnLoop = panics(func() { s.lock(); s.mu.Unlock() })
	})
	if onLoop != nil {
		t.Errorf("fork check on the loop's thread: got panic %v; want none", onLoop)
	}
	if lockOnLoop == nil {
		t.Error("Server.mu taken on the loop's thread: got no panic; want one")
	}
	if msg := panics(func() { s.lock(); s.mu.Unlock() }); msg != nil {
		t.Errorf("Server.mu taken off the loop's thread: got panic %v; want none", msg)
	}
}

// TestDocNamesEveryFile checks that doc.go's file map names every file of
// the package.
func TestDocNamesEveryFile(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if file != "doc.go" && !strings.HasSuffix(file, "_test.go") && !strings.Contains(string(doc), file) {
			t.Errorf("doc.go: got no mention of %s; want every file in its file map", file)
		}
	}
}
