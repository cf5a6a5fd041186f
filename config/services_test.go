package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests look service names up in a fixed file, not the host's.
func init() { ServicesFile = "testdata/services" }

func TestPortByName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inetd.toml")
	conf := `
[services.sync]
port = "rsync"
program = "/bin/cat"

[services.web]
port = "www"
program = "/bin/cat"

[services.tftp]
protocol = "udp"
port = "tftp"
program = "/bin/cat"
argv0 = "in.tftpd"
`
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint16{"sync": 873, "web": 80, "tftp": 69}
	for _, s := range cfg.Services {
		if s.Port != want[s.Name] {
			t.Errorf("%s: got port %d; want %d", s.Name, s.Port, want[s.Name])
		}
		if sum := s.Summary(); !strings.Contains(sum, ":"+strconv.Itoa(int(want[s.Name]))+" (port ") {
			t.Errorf("%s: got summary %q; want the resolved port and its name", s.Name, sum)
		}
	}
	tftp := cfg.Services[slices.IndexFunc(cfg.Services, func(s *Service) bool { return s.Name == "tftp" })]
	if got := tftp.Argv(); strings.Join(got, " ") != "in.tftpd" {
		t.Errorf("got argv %q; want [in.tftpd]", got)
	}
	if sum := tftp.Summary(); !strings.Contains(sum, "argv0=in.tftpd") {
		t.Errorf("got summary %q; want argv0=in.tftpd in it", sum)
	}
}

func TestArgvDefault(t *testing.T) {
	s := &Service{Program: "/usr/sbin/in.fingerd", Args: []string{"-w"}}
	if got := strings.Join(s.Argv(), " "); got != "in.fingerd -w" {
		t.Errorf("got argv %q; want %q", got, "in.fingerd -w")
	}
}
