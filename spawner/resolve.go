package spawner

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// resolver looks names up with Go's own resolver (goinetd is built
// without cgo): /etc/hosts and DNS, in the order /etc/nsswitch.conf gives.
var resolver = &net.Resolver{PreferGo: true}

// spawnResolved serves a connection accepted, and counted, on a
// resolve_peer service, in a goroutine of its own so that a slow name
// server never holds up the accept loop or another connection: spawnFor
// looks the client's name up before it asks the spawn loop to start the
// handler. It owns fd.
func (s *Server) spawnResolved(svc *service, counted slot, fd int, sa unix.Sockaddr) {
	defer s.children.heldUntilReturn(&counted)()
	defer unix.Close(fd)
	s.spawnAccepted(svc, counted, fd, sa, waitExec)
}

// confirmedName returns the forward-confirmed name of addr: a name its reverse
// lookup gives that resolves back to addr, and holds only the characters
// of a host name (see hostName); "" if there is none within timeout.
func confirmedName(addr netip.Addr, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addr = addr.Unmap().WithZone("")
	names, _ := resolver.LookupAddr(ctx, addr.String()) // what is valid, even with an error
	for _, name := range names {
		name = strings.TrimSuffix(name, ".")
		if !hostName(name) {
			continue
		}
		addrs, err := resolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == addr {
				return name
			}
		}
	}
	return ""
}

// hostName reports whether name may be passed in a handler's environment:
// letters, digits, dots and hyphens only, so that a hostile answer cannot
// put a shell metacharacter, a space or a newline there.
func hostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
