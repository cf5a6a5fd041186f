package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goinetd/goinetd/config"
)

// migratingDoc is the page whose examples TestMigratingDoc checks.
const migratingDoc = "../../docs/migrating.md"

// TestMigratingDoc runs the examples of docs/migrating.md: the files a
// "<!-- file: PATH -->" marker shows are imported as the next
// "<!-- import: PATHS -->" marker says, and the "<!-- output -->" and
// "<!-- summary -->" blocks after it must be what `goinetd import` writes
// (go test -update rewrites them). Each output must load.
func TestMigratingDoc(t *testing.T) {
	config.ServicesFile = "testdata/services"
	data, err := os.ReadFile(migratingDoc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	var out strings.Builder
	files := map[string]string{}
	var result *Result
	examples := 0
	// block returns the fenced block starting at lines[i] (its content,
	// and the index after it); out gets the fence lines and, unless
	// replace is set, the content.
	block := func(i int, replace *string) (string, int) {
		if i >= len(lines) || !strings.HasPrefix(lines[i], "```") {
			t.Fatalf("%s: want a fenced block after line %d", migratingDoc, i)
		}
		out.WriteString(lines[i])
		var content strings.Builder
		j := i + 1
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			content.WriteString(lines[j])
		}
		if replace != nil {
			out.WriteString(*replace)
		} else {
			out.WriteString(content.String())
		}
		if j < len(lines) {
			out.WriteString(lines[j])
		}
		return content.String(), j + 1
	}
	for i := 0; i < len(lines); {
		line := strings.TrimSpace(lines[i])
		marker, isMarker := strings.CutPrefix(line, "<!-- ")
		marker = strings.TrimSuffix(marker, " -->")
		if !isMarker {
			out.WriteString(lines[i])
			i++
			continue
		}
		out.WriteString(lines[i])
		i++
		switch {
		case strings.HasPrefix(marker, "file: "):
			files[strings.TrimPrefix(marker, "file: ")], i = block(i, nil)
		case strings.HasPrefix(marker, "import: "):
			root := t.TempDir()
			for path, content := range files {
				full := filepath.Join(root, path)
				os.MkdirAll(filepath.Dir(full), 0o755)
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files = map[string]string{}
			result, err = Import(strings.Fields(strings.TrimPrefix(marker, "import: ")), Options{Root: root})
			if err != nil {
				t.Fatalf("%s: %s: %v", migratingDoc, marker, err)
			}
			checkAccepted(t, result.TOML, false)
			examples++
		case marker == "output" || marker == "summary":
			want := string(result.TOML)
			if marker == "summary" {
				want = result.Summary("standard output")
			}
			var got string
			got, i = block(i, &want)
			if got != want && !*update {
				t.Errorf("%s: the %s of example %d:\ngot  %q\nwant %q\n(go test ./internal/importer -run TestMigratingDoc -update rewrites it)", migratingDoc, marker, examples, got, want)
			}
		}
	}
	if examples != 3 {
		t.Errorf("got %d examples in %s; want 3", examples, migratingDoc)
	}
	if *update {
		if err := os.WriteFile(migratingDoc, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
