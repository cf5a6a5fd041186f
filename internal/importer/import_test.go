package importer

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goinetd/goinetd/config"
	"github.com/hashicorp/go-multierror"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.toml with what Import writes now")

// goldenCases are the imports compared with testdata/golden/NAME.toml:
// Debian's files (testdata/debian/README says where they come from) and
// the hand-written corpus, which has every construct the importer reads.
var goldenCases = []struct {
	name  string
	paths []string
	root  string
	// strict: config must accept the output as is (its programs and
	// users exist on any Debian host); otherwise only missing programs
	// and users are allowed.
	strict bool
}{
	{"debian-xinetd", []string{"testdata/debian/xinetd/etc/xinetd.conf"}, "testdata/debian/xinetd", true},
	{"debian-xinetd.d", []string{"testdata/debian/xinetd/etc/xinetd.d"}, "", true},
	{"debian-inetd", []string{"testdata/debian/openbsd-inetd/inetd.conf"}, "", true},
	{"debian-inetd-update-inetd", []string{"testdata/debian/openbsd-inetd/inetd.conf.update-inetd"}, "", false},
	{"corpus-inetd", []string{"testdata/corpus/inetd.conf"}, "", true},
	{"corpus-xinetd", []string{"testdata/corpus/xinetd.conf"}, "", true},
	{"corpus-xinetd.d", []string{"testdata/corpus/xinetd.d"}, "", false},
	{"corpus-and-debian-xinetd", []string{"testdata/corpus/inetd.conf", "testdata/debian/xinetd/etc/xinetd.d"}, "", true},
}

func TestGolden(t *testing.T) {
	config.ServicesFile = "testdata/services"
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Import(tc.paths, Options{Root: tc.root})
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			golden := filepath.Join("testdata", "golden", tc.name+".toml")
			if *update {
				if err := os.WriteFile(golden, r.TOML, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if string(r.TOML) != string(want) {
				t.Errorf("got:\n%s\nwant (%s):\n%s", r.TOML, golden, want)
			}
			if n := strings.Count(string(r.TOML), "# not converted:"); n != len(r.NotConverted) {
				t.Errorf("got %d not-converted comments and %d items; want as many", n, len(r.NotConverted))
			}
			checkAccepted(t, r.TOML, tc.strict)
		})
	}
}

// checkAccepted loads text with package config, as `goinetd check` would.
// Unless strict, a program or user missing on this host is allowed; as
// another user than root, so are users and groups it may not take.
func checkAccepted(t *testing.T, text []byte, strict bool) {
	t.Helper()
	_, err := config.Parse(text, "imported.toml", t.TempDir())
	var merr *multierror.Error
	if err == nil || !errors.As(err, &merr) {
		if err != nil {
			t.Errorf("config: got %v; want it accepted", err)
		}
		return
	}
	for _, e := range merr.Errors {
		var p *config.Problem
		missing := errors.As(e, &p) && !strict &&
			(strings.HasSuffix(p.Key, ".program") && strings.Contains(p.Msg, "no such file") ||
				strings.HasSuffix(p.Key, ".user") && strings.Contains(p.Msg, "no user"))
		// Only root may run handlers as other users (the tests run as root
		// in CI).
		notRoot := errors.As(e, &p) && os.Geteuid() != 0 &&
			(strings.Contains(p.Msg, "only root") || strings.Contains(p.Msg, "not root"))
		if !missing && !notRoot {
			t.Errorf("config: got %v; want the import accepted", e)
		}
	}
}

// TestKeysAreConfigKeys checks that every key the importer writes is one
// of config's.
func TestKeysAreConfigKeys(t *testing.T) {
	known := config.ServiceKeys()
	for _, k := range keyOrder {
		if !slices.Contains(known, k) {
			t.Errorf("got key %q in keyOrder; want only config's keys (%s)", k, strings.Join(known, ", "))
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:          `"plain"`,
		`a "q" \ b`:      `"a \"q\" \\ b"`,
		"tab\tnl\n":      `"tab\tnl\n"`,
		"nul\x00esc\x1b": `"nul\u0000esc\u001B"`,
		"é":              `"é"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q): got %s; want %s", in, got, want)
		}
	}
}

func TestXinetdAddresses(t *testing.T) {
	got, bad := xinetdAddresses([]string{"0.0.0.0", "10.0.0.0", "192.168.1.0", "127.0.0.1", "10.1.{2,3}", "::1", "fe80::/10", "172.16.0.0/12", "host.example.com"})
	want := []string{"0.0.0.0/0", "10.0.0.0/8", "192.168.1.0/24", "127.0.0.1", "10.1.2.0/24", "10.1.3.0/24", "::1", "fe80::/10", "172.16.0.0/12"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
	if len(bad) != 1 || bad[0].entry != "host.example.com" {
		t.Errorf("got refused %v; want host.example.com alone", bad)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	unclosed := filepath.Join(dir, "unclosed")
	os.WriteFile(unclosed, []byte("service echo\n{\n\ttype = INTERNAL\n"), 0o644)
	stray := filepath.Join(dir, "stray")
	os.WriteFile(stray, []byte("service echo\n{\n}\nwait = no\n"), 0o644)
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{nil, "no file to import"},
		{[]string{filepath.Join(dir, "missing")}, "no such file"},
		{[]string{unclosed}, unclosed + ":1: the block has no closing }"},
		{[]string{stray}, stray + `:4: "wait = no" is outside any service or defaults block`},
	} {
		_, err := Import(tc.paths, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Import(%q): got error %v; want one with %q", tc.paths, err, tc.want)
		}
	}
}
