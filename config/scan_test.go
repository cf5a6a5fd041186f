package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestScanAgreesWithTheParser checks, on every config file in testdata,
// that each line scan finds for a key is the one the TOML parser gives it
// (the slow way, one pass over the file per key).
func TestScanAgreesWithTheParser(t *testing.T) {
	paths, err := filepath.Glob("testdata/*/*.toml")
	if err != nil || len(paths) < 50 {
		t.Fatalf("got %d files in testdata, %v; want them all", len(paths), err)
	}
	checked := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := scan(data)
		var top map[string]toml.Primitive
		md, err := toml.Decode(string(data), &top)
		if err != nil || sc.tooDeep > 0 {
			continue // a syntax error: nothing to compare
		}
		d := &decoder{md: &md}
		var walk func(prefix toml.Key, table map[string]toml.Primitive)
		walk = func(prefix toml.Key, table map[string]toml.Primitive) {
			for name, prim := range table {
				key := append(prefix[:len(prefix):len(prefix)], name)
				if got, ok := sc.lines[key.String()]; ok {
					checked++
					if want := d.parserLine(prim); got != want {
						t.Errorf("%s: %s: scan says line %d; the parser says %d", path, key, got, want)
					}
				}
				var sub map[string]toml.Primitive
				if md.PrimitiveDecode(prim, &sub) == nil {
					walk(key, sub)
				}
			}
		}
		walk(nil, top)
	}
	if checked < 500 {
		t.Errorf("compared %d keys; want at least 500", checked)
	}
}

// TestScanKeyPaths checks the key forms scan reads: bare, quoted and
// dotted keys, headers, keys after multi-line values, and none inside
// inline tables, strings or comments.
func TestScanKeyPaths(t *testing.T) {
	sc := scan([]byte(`top = 1
[services."a.b"]
'lit' = 2
env.X = "3"
args = [
  "[not.a.header]",
]
# c = 4
multi = """
d = 5
"""
inline = { e = 6 }
[[arr]]
f = 7
`))
	want := map[string]int{
		"top": 1, "services": 2, `services."a.b"`: 2, `services."a.b".lit`: 3,
		`services."a.b".env`: 4, `services."a.b".env.X`: 4, `services."a.b".args`: 5,
		`services."a.b".multi`: 9, `services."a.b".inline`: 12, "arr": 13, "arr.f": 14,
	}
	for key, line := range want {
		if got, ok := sc.lines[key]; !ok || got != line {
			t.Errorf("%s: got line %d (%v); want %d", key, got, ok, line)
		}
	}
	for key := range sc.lines {
		if _, ok := want[key]; !ok {
			t.Errorf("got a line for %s; want none", key)
		}
	}
}
