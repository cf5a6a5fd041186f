package importer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/goinetd/goinetd/config"
)

// TestImportNeverWidens checks that what the import cannot convert never
// makes a service admit more than it did: a service bound to a host name,
// or whose only_from or no_access rules name hosts, is loaded disabled,
// and a UDP echo is not loaded at all. Without these rules each would
// serve everyone on every interface.
func TestImportNeverWidens(t *testing.T) {
	config.ServicesFile = "testdata/services"
	dir := t.TempDir()
	inetd := filepath.Join(dir, "inetd.conf")
	os.WriteFile(inetd, []byte("gateway.example.com:7001\tstream\ttcp\tnowait\tnobody\t/bin/cat\tcat\n"+
		"echo\tdgram\tudp\twait\troot\tinternal\n"), 0o644)
	xinetd := filepath.Join(dir, "xinetd")
	os.WriteFile(xinetd, []byte(`
service only-names
{
	socket_type = stream
	wait = no
	port = 7002
	server = /bin/cat
	only_from = .example.com
}

service deny-name
{
	socket_type = stream
	wait = no
	port = 7003
	server = /bin/cat
	no_access = bad.example.com 10.1.0.0
}

service bound-to-name
{
	socket_type = stream
	wait = no
	port = 7004
	server = /bin/cat
	bind = gateway.example.com
}
`), 0o644)
	r, err := Import([]string{inetd, xinetd}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(r.TOML, "imported.toml", dir)
	if err != nil {
		t.Fatalf("got %v; want the import to load\n%s", err, r.TOML)
	}
	for _, s := range cfg.Services {
		if !s.Disabled {
			t.Errorf("service %s: got enabled (%s); want disabled", s.Name, s.Summary())
		}
	}
	if len(cfg.Services) != 4 {
		t.Errorf("got %d services loaded; want 4 (the UDP echo commented out)\n%s", len(cfg.Services), r.TOML)
	}
	if len(r.NotConverted) != 5 {
		t.Errorf("got %d items not converted: %v; want 5", len(r.NotConverted), r.NotConverted)
	}
}
