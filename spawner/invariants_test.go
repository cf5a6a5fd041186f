package spawner

import (
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
