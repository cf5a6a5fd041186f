// Package proxyheader frames and parses the PROXY protocol header
// (HAProxy's spec, versions 1 and 2), which carries the real client's
// address from a load balancer. goinetd reads the header itself, before
// the handler starts, and must not consume one byte after it: the handler
// reads the client's first bytes from the socket. So Length frames the
// header from bytes peeked at, the caller reads exactly that many off the
// socket, and Parse, through go-proxyproto, parses those bytes alone.
// The package does no I/O.
package proxyheader

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pires/go-proxyproto"
)

var (
	v1Prefix = []byte("PROXY ")
	v2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	maxV1Header = 107 // the spec's bound, CRLF included
	// MaxLength bounds a header: a version 2 one's 16 bytes, addresses
	// and TLVs; HAProxy sends far less.
	MaxLength = 4096
)

// ErrMalformed marks every error about a header's bytes.
var ErrMalformed = errors.New("malformed PROXY protocol header")

// Length returns the length of the PROXY header at the start of
// b, the bytes available so far, once b holds all of it, or 0 while more
// bytes are needed. A prefix that cannot begin a header, or a header over
// the size bound, is an error.
func Length(b []byte) (int, error) {
	switch {
	case len(b) == 0:
		return 0, nil
	case bytes.HasPrefix(b, v1Prefix):
		if i := bytes.Index(b, []byte("\r\n")); i >= 0 && i+2 <= maxV1Header {
			return i + 2, nil
		}
		if len(b) >= maxV1Header {
			return 0, fmt.Errorf("%w: version 1 line longer than %d bytes", ErrMalformed, maxV1Header)
		}
		return 0, nil
	case bytes.HasPrefix(b, v2Sig):
		if len(b) < 16 {
			return 0, nil
		}
		n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
		if n > MaxLength {
			return 0, fmt.Errorf("%w: version 2 header of %d bytes, more than %d", ErrMalformed, n, MaxLength)
		}
		if n > len(b) {
			return 0, nil
		}
		return n, nil
	case bytes.HasPrefix(v1Prefix, b[:min(len(b), len(v1Prefix))]),
		bytes.HasPrefix(v2Sig, b[:min(len(b), len(v2Sig))]):
		return 0, nil // could still become one
	}
	return 0, fmt.Errorf("%w: the connection does not start with one", ErrMalformed)
}

// Header is what a PROXY header said.
type Header struct {
	// Client is the real client, or invalid for the LOCAL command (a
	// balancer's health check) and for an address family other than TCP
	// over IPv4 or IPv6: the connection is then taken as it is.
	Client netip.AddrPort
}

// Parse parses one complete header, as framed by Length.
func Parse(b []byte) (Header, error) {
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(b), len(b)))
	if err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if h.Command.IsLocal() || !h.TransportProtocol.IsStream() {
		return Header{}, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return Header{}, nil
	}
	ap := src.AddrPort()
	return Header{Client: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}
