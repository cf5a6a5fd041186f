// Package proxyheadertest makes PROXY protocol v2 headers for tests, with
// github.com/pires/go-proxyproto: a second implementation to check
// package proxyheader against.
package proxyheadertest

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

// V2 returns a PROXY protocol v2 header with command cmd (PROXY or LOCAL)
// from the client src to dst ("ADDR:PORT", IPv4 or IPv6), with tlvs.
func V2(tb testing.TB, cmd proxyproto.ProtocolVersionAndCommand, src, dst string, tlvs ...proxyproto.TLV) []byte {
	tb.Helper()
	h := &proxyproto.Header{Version: 2, Command: cmd, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		DestinationAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst))}
	if netip.MustParseAddrPort(src).Addr().Is6() {
		h.TransportProtocol = proxyproto.TCPv6
	}
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
