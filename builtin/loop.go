package builtin

import (
	"net/netip"
	"slices"
)

// Why RefuseSource refuses a datagram's source, as logs and metrics name
// it.
const (
	// RefusedSourcePort: a port below 1024, port 0 included.
	RefusedSourcePort = "source_port"
	// RefusedReflectorPort: a port of ReflectorPorts.
	RefusedReflectorPort = "reflector_port"
	// RefusedSourceAddress: an address no sender can have.
	RefusedSourceAddress = "source_address"
)

// minReplyPort is the lowest source port RefuseSource lets through. The
// ports below it are privileged: only a server binds them, and the
// built-ins of every inetd (echo 7, discard 9, daytime 13, chargen 19,
// time 37) live there. Answering them is how two superservers are made to
// talk to each other for ever.
const minReplyPort = 1024

// A ReflectorPort is a well-known UDP port, above 1023, of a service that
// answers datagrams itself, and so would answer a built-in's reply: a
// loop. Most are also known amplifiers (CISA's alert TA14-017A and its
// successors).
type ReflectorPort struct {
	Port    uint16
	Service string
}

// reflectorPorts is ReflectorPorts, sorted by port. The man page
// inetd.toml(5) lists them too (a test keeps the two equal).
var reflectorPorts = []ReflectorPort{
	{1194, "OpenVPN"},
	{1434, "Microsoft SQL Server browser"},
	{1701, "L2TP"},
	{1900, "SSDP (UPnP)"},
	{2049, "NFS"},
	{2123, "GTP-C"},
	{2152, "GTP-U"},
	{3283, "Apple Remote Desktop"},
	{3389, "RDP"},
	{3391, "RD Gateway"},
	{3478, "STUN and TURN"},
	{3702, "WS-Discovery"},
	{4500, "IPsec NAT traversal"},
	{5060, "SIP"},
	{5351, "NAT-PMP and PCP"},
	{5353, "mDNS"},
	{5683, "CoAP"},
	{6881, "BitTorrent DHT"},
	{9987, "TeamSpeak 3"},
	{10001, "Ubiquiti discovery"},
	{10074, "Mitel MiCollab"},
	{11211, "memcached"},
	{17185, "VxWorks WDB"},
	{26000, "Quake"},
	{27015, "Steam game servers"},
	{27960, "Quake III"},
	{32414, "Plex GDM"},
	{33848, "Jenkins discovery"},
	{37810, "Dahua DVR discovery"},
	{47808, "BACnet"},
	{64738, "Mumble"},
}

// ReflectorPorts returns the ports RefuseSource refuses although they are
// above 1023, sorted. The slice is new on every call.
func ReflectorPorts() []ReflectorPort { return slices.Clone(reflectorPorts) }

// RefuseSource returns why a datagram from src must not be answered, or ""
// if it may be.
//
// It refuses a source port below 1024, port 0 included
// (RefusedSourcePort); a port of ReflectorPorts (RefusedReflectorPort);
// and a source address that cannot be a sender's own
// (RefusedSourceAddress): the zero netip.Addr, an unspecified address
// (0.0.0.0, ::), a multicast address, and the IPv4 blocks 0.0.0.0/8 ("this
// network") and 255.0.0.0/8 (which holds the limited broadcast address),
// also as IPv4-mapped IPv6 addresses. Every other source may be answered,
// loopback and link-local included.
//
// A subnet's directed broadcast address cannot be recognised here without
// the host's interfaces; the kernel drops datagrams with such a source.
// Nor can another server's built-in on an arbitrary port: goinetd also
// refuses the ports it serves itself, and bounds every source's replies.
func RefuseSource(src netip.AddrPort) string {
	addr := src.Addr().Unmap()
	switch {
	case !addr.IsValid(), addr.IsUnspecified(), addr.IsMulticast(),
		addr.Is4() && (addr.As4()[0] == 0 || addr.As4()[0] == 255):
		return RefusedSourceAddress
	case src.Port() < minReplyPort:
		return RefusedSourcePort
	case isReflectorPort(src.Port()):
		return RefusedReflectorPort
	}
	return ""
}

func isReflectorPort(port uint16) bool {
	_, found := slices.BinarySearchFunc(reflectorPorts, port, func(r ReflectorPort, p uint16) int { return int(r.Port) - int(p) })
	return found
}

// Answers reports whether the built-in name answers a datagram: every one
// but discard, and no name that is not Valid.
func Answers(name string) bool { return Valid(name) && name != "discard" }

// Reflector reports whether the built-in name, over UDP, is a reflector
// worth an attacker's while: echo sends back whatever the sender chose, to
// whatever source it wrote, and chargen answers an empty datagram with up
// to 512 bytes (up to 19 times its size on the wire). Serving them over
// UDP takes the operator's consent (udp_reflection). daytime and time are
// not: their reply is small and fixed, at most 2.7 and 1.2 times an empty
// datagram on the wire, and its content is not the sender's to choose;
// discard never answers.
func Reflector(name string) bool { return name == "echo" || name == "chargen" }
