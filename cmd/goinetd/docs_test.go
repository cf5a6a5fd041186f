package main

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goinetd/goinetd/config"
)

// TestManPageAndDocsNameEveryKey keeps the three places that list the
// config's keys in step with the keys the config package accepts
// (config.Keys): inetd.toml(5), the one reference, has an entry for each;
// examples/inetd.toml sets or shows (commented out) each; the README's
// cheat sheet shows each. Neither of the last two may name a key goinetd
// does not accept.
func TestManPageAndDocsNameEveryKey(t *testing.T) {
	want := config.Keys()
	if len(want) < 10 {
		t.Fatalf("config.Keys() = %v; want every key", want)
	}

	tags := manTags(readText(t, filepath.Join(repoRoot, "man/inetd.toml.5")))
	for _, k := range want {
		if !slices.Contains(tags, k) {
			t.Errorf("man/inetd.toml.5 has no entry (.TP tag) for %s", k)
		}
	}

	// A key is a line's first word before " = ", in the example also
	// after "# " (a key shown commented out, as user = "nobody").
	keyLine := regexp.MustCompile(`(?m)^(?:# )?([a-z][a-z_0-9]*) = `)
	readme := readText(t, filepath.Join(repoRoot, "README.md"))
	_, sheet, ok := strings.Cut(readme, "\n## Cheat sheet\n")
	_, sheet, _ = strings.Cut(sheet, "```toml\n")
	sheet, _, _ = strings.Cut(sheet, "```")
	if !ok || sheet == "" {
		t.Fatalf("README.md has no toml block under \"## Cheat sheet\"")
	}
	docs := map[string]string{
		"README.md's cheat sheet": sheet,
		"examples/inetd.toml":     readText(t, filepath.Join(repoRoot, "examples/inetd.toml")),
	}
	for name, text := range docs {
		var got []string
		for _, m := range keyLine.FindAllStringSubmatch(text, -1) {
			got = append(got, m[1])
		}
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("%s does not show %s", name, k)
			}
		}
		for _, k := range got {
			if !slices.Contains(want, k) {
				t.Errorf("%s shows %s; config.Keys() has no such key", name, k)
			}
		}
	}
}
