package builtin

import "net/netip"

// minReplyPort is the lowest source port ReplyAllowed answers. The ports
// below it are privileged: only a server binds them, and the built-ins of
// every inetd (echo 7, discard 9, daytime 13, chargen 19, time 37) live
// there. Answering them is how two superservers are made to talk to each
// other for ever.
const minReplyPort = 1024

// ReplyAllowed reports whether a datagram from src may be answered.
//
// It is false for a source port below 1024, port 0 included, and for a
// source address that cannot be a sender's own: the zero netip.Addr, an
// unspecified address (0.0.0.0, ::), a multicast address, and the IPv4
// blocks 0.0.0.0/8 ("this network") and 255.0.0.0/8 (which holds the
// limited broadcast address), also as IPv4-mapped IPv6 addresses. It is
// true for every other address, loopback and link-local included.
//
// A subnet's directed broadcast address cannot be recognised here without
// the host's interfaces; the kernel drops datagrams with such a source.
func ReplyAllowed(src netip.AddrPort) bool {
	if src.Port() < minReplyPort {
		return false
	}
	addr := src.Addr().Unmap()
	switch {
	case !addr.IsValid(), addr.IsUnspecified(), addr.IsMulticast():
		return false
	case addr.Is4():
		first := addr.As4()[0]
		return first != 0 && first != 255
	}
	return true
}
