package proxyheader

import (
	"bytes"
	"errors"
	"testing"

	"github.com/goinetd/goinetd/internal/proxyheader/proxyheadertest"
	"github.com/pires/go-proxyproto"
)

func TestProxyHeaderFramingAndParsing(t *testing.T) {
	v1 := []byte("PROXY TCP4 192.0.2.7 10.0.0.1 40000 80\r\n")
	v1six := []byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 80\r\n")
	v2 := proxyheadertest.V2(t, proxyproto.PROXY, "192.0.2.7:40000", "10.0.0.1:80",
		proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")})
	v2six := proxyheadertest.V2(t, proxyproto.PROXY, "[2001:db8::7]:40000", "[2001:db8::1]:80")
	local := proxyheadertest.V2(t, proxyproto.LOCAL, "192.0.2.7:40000", "10.0.0.1:80")
	for _, c := range []struct {
		name   string
		header []byte
		client string // "" for the connection itself
	}{
		{"v1", v1, "192.0.2.7:40000"},
		{"v1 IPv6", v1six, "[2001:db8::7]:40000"},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), ""},
		{"v2 with a TLV", v2, "192.0.2.7:40000"},
		{"v2 IPv6", v2six, "[2001:db8::7]:40000"},
		{"v2 LOCAL", local, ""},
	} {
		// Every prefix asks for more; the whole header, with the client's
		// first bytes after it, frames exactly the header.
		for i := range len(c.header) {
			if n, err := Length(c.header[:i]); n != 0 || err != nil {
				t.Errorf("%s: length of a %d-byte prefix: got %d, %v; want 0 (more), nil", c.name, i, n, err)
			}
		}
		n, err := Length(append(bytes.Clone(c.header), "GET / HTTP/1.0\r\n"...))
		if err != nil || n != len(c.header) {
			t.Errorf("%s: length: got %d, %v; want %d", c.name, n, err, len(c.header))
		}
		h, err := Parse(c.header)
		if err != nil {
			t.Errorf("%s: parse: %v", c.name, err)
			continue
		}
		if got := h.Client.String(); (c.client == "" && h.Client.IsValid()) || (c.client != "" && got != c.client) {
			t.Errorf("%s: client: got %s; want %q", c.name, got, c.client)
		}
	}
}

func TestProxyHeaderRejects(t *testing.T) {
	long := append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 200)...)
	huge := append(bytes.Clone(v2Sig), 0x21, 0x11, 0xff, 0xff)
	for _, b := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n"),
		[]byte("\r\n\r\n\x00\r\nQUIX\n"),
		long,
		huge,
	} {
		if _, err := Length(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("length of %q: got %v; want a malformed header error", b[:min(len(b), 20)], err)
		}
	}
	for _, b := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.7 10.0.0.1 40000\r\n"),
		[]byte("PROXY TCP4 not-an-ip 10.0.0.1 40000 80\r\n"),
		append(bytes.Clone(v2Sig), 0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4), // addresses cut short
	} {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("parse %q: got %v; want a malformed header error", b, err)
		}
	}
}

// FuzzProxyHeader feeds arbitrary bytes to the framing and the parser: no
// panic, a length never past the input or the bounds, and a framed header
// that parses names a valid client or none.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 10.0.0.1 40000 80\r\nrest"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r\n"))
	f.Add(proxyheadertest.V2(f, proxyproto.PROXY, "192.0.2.7:40000", "10.0.0.1:80"))
	f.Add(proxyheadertest.V2(f, proxyproto.LOCAL, "192.0.2.7:40000", "10.0.0.1:80"))
	f.Add(append(bytes.Clone(v2Sig), 0x21, 0x31, 0x00, 0x00))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Length(b)
		if err != nil {
			return
		}
		if n > len(b) || n > MaxLength {
			t.Fatalf("length %d for %d bytes", n, len(b))
		}
		if n == 0 {
			return
		}
		h, err := Parse(b[:n])
		if err == nil && h.Client.IsValid() && h.Client.Addr().Is4In6() {
			t.Fatalf("client %v left IPv4-mapped", h.Client)
		}
	})
}
