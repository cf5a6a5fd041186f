package config

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/hashicorp/go-multierror"
)

// Regression tests for problems the first version reported badly.

// parseProblems parses src as x.toml and returns its problems,
// failing the test if it parses or its error is not a list of *Problem.
func parseProblems(t *testing.T, src string) []*Problem {
	t.Helper()
	cfg, err := Parse([]byte(src), "x.toml", "/nonexistent/dir")
	if err == nil {
		t.Fatalf("got Config with %d services and nil error; want an error", len(cfg.Services))
	}
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("got error of type %T; want *multierror.Error", err)
	}
	var ps []*Problem
	for _, e := range merr.Errors {
		var p *Problem
		if !errors.As(e, &p) {
			t.Fatalf("got %T in the multierror; want *Problem", e)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestImpliedTableProblemsHaveALine(t *testing.T) {
	for _, src := range []string{
		"[servics.echo]\nport = 7\n",                                        // servics: unknown key
		"[services.echo.env]\nA = \"1\"\n",                                  // services.echo.port: missing
		"[services.echo]\nport = 7\nprogram = \"/bin/sh\"\nenv.A = 1\n",     // services.echo.env: A: must be a string
		"[services.a]\nport = 7\nprogram = \"/bin/sh\"\n[services.b.env]\n", // services.b.port: missing
	} {
		for _, p := range parseProblems(t, src) {
			if p.Line <= 0 {
				t.Errorf("config %q: got %q with Line %d; want the line of the header or key", src, p, p.Line)
			}
		}
	}
}

func TestProblemsHoldNoControlCharacters(t *testing.T) {
	for _, src := range []string{
		"[services.echo]\nport = 7\nprogram = \"/nonexistent\\nprog\"\n",
		"[services.echo]\nport = 7\nprogram = \"/bin/sh\"\nworkdir = \"/nonexistent\\ndir\"\n",
		"[services.echo]\nport = 7\nprogram = \"/bin/sh\"\nenv = { \"A\\nB\" = 1 }\n",
		"[services.echo]\nport = 7\nprogram = \"/bin/sh\"\nworkdir = \"/nonexistent\\u001b[31mdir\"\n",
		"[services.echo]\nport = 0b\n",       // not a binary number: '0b<newline>'
		"[services.echo]\nprogram = \"a\\\n", // invalid escape in string '\<newline>'
	} {
		for _, p := range parseProblems(t, src) {
			if strings.ContainsFunc(p.Error(), unicode.IsControl) {
				t.Errorf("config %q: got problem %q; want no control character in it", src, p.Error())
			}
		}
	}
}

func TestEnvReportsEveryBadVariable(t *testing.T) {
	ps := parseProblems(t, "[services.echo]\nport = 7\nprogram = \"/bin/sh\"\n"+
		"env = { \"A=B\" = \"x\", REMOTE_ADDR = \"y\", C = 1 }\n")
	var msgs []string
	for _, p := range ps {
		msgs = append(msgs, p.Msg)
	}
	if len(ps) != 3 {
		t.Errorf("got %d problems %q; want 3, one for each bad variable", len(ps), msgs)
	}
}

func TestServiceNotATableIsOneProblem(t *testing.T) {
	ps := parseProblems(t, "[services]\necho = \"/bin/sh\"\n")
	if len(ps) != 1 {
		t.Errorf("got %d problems %v; want 1, services.echo: must be a table", len(ps), ps)
	}
}

func TestDefaultsProblemIsReportedOnceWhereWritten(t *testing.T) {
	ps := parseProblems(t, "[defaults]\nlisten_fds = true\n\n[services.a]\nport = 7\nprogram = \"/bin/sh\"\n\n"+
		"[services.b]\nport = 9\nprogram = \"/bin/sh\"\n")
	if len(ps) != 1 || ps[0].Key != "defaults.listen_fds" || ps[0].Line != 2 {
		t.Errorf("got problems %v; want one, on line 2 for defaults.listen_fds", ps)
	}
}

func TestValueDescriptions(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"1979-05-27", "date"},
		{"07:32:00", "time"},
		{"1979-05-27T07:32:00Z", "date"},
		{"7.0", "7.0"},
		{"99999999999999999999", "1-65535"},
	} {
		ps := parseProblems(t, "[services.echo]\nport = "+c.value+"\nprogram = \"/bin/sh\"\n")
		if len(ps) != 1 || !strings.Contains(ps[0].Msg, c.want) {
			t.Errorf("port = %s: got %v; want one problem mentioning %q", c.value, ps, c.want)
		}
	}
}

func TestDuplicateKeyMessage(t *testing.T) {
	for _, c := range []struct{ src, key string }{
		{"[services.echo]\nport = 7\nport = 8\n", "services.echo.port"},
		{"[services.echo]\nport = 7\n[services.echo]\n", "services.echo"},
	} {
		ps := parseProblems(t, c.src)
		if len(ps) != 1 {
			t.Fatalf("config %q: got %v; want one problem", c.src, ps)
		}
		p := ps[0]
		if p.Key != c.key || strings.Contains(p.Msg, "'") || strings.HasSuffix(p.Msg, ".") ||
			unicode.IsUpper([]rune(p.Msg)[0]) {
			t.Errorf("config %q: got %q; want key %s and a lower-case message that does not repeat it", c.src, p, c.key)
		}
	}
}
