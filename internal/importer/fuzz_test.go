package importer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzImport checks that whatever an inetd.conf or xinetd file holds, the
// import is valid TOML (or an error), never a panic or a file that breaks
// out of its comments and strings.
func FuzzImport(f *testing.F) {
	for _, seed := range []string{
		"testdata/corpus/inetd.conf", "testdata/corpus/xinetd.d/sh", "testdata/corpus/xinetd.d/echo",
		"testdata/debian/openbsd-inetd/inetd.conf.update-inetd", "testdata/debian/xinetd/etc/xinetd.d/echo",
	} {
		data, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("service a\"b\n{\n\tserver = /bin/\x00cat\n\tserver_args = \"]\n\tenv = A=\"x\\\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "conf")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Import([]string{path}, Options{})
		if err != nil {
			return
		}
		var v map[string]any
		if _, err := toml.Decode(string(r.TOML), &v); err != nil {
			t.Fatalf("got invalid TOML (%v) from %q:\n%s", err, data, r.TOML)
		}
	})
}
