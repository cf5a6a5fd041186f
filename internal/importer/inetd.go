package importer

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// inetdOff starts a line that Debian's update-inetd disabled.
const inetdOff = "#<off>#"

// inetdPause is how long inetd stops a service that exceeded its spawns
// per minute (RETRYTIME of OpenBSD's inetd).
const inetdPause = "10m"

// parseInetd reads an inetd.conf in the format of OpenBSD's inetd and
// Debian's openbsd-inetd:
//
//	[addr:]service socket-type protocol wait|nowait[.max] user[.group] server [argv0 args...]
//
// A line "addr:" alone sets the address of the lines after it ("*:"
// resets it). A line disabled by update-inetd ("#<off># ...") becomes a
// disabled service; other comments are skipped.
func parseInetd(file string, data []byte) []*service {
	var out []*service
	host := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		disabled := false
		if rest, ok := strings.CutPrefix(line, inetdOff); ok {
			line, disabled = strings.TrimSpace(rest), true
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 1 && strings.HasSuffix(fields[0], ":") {
			host = strings.TrimSuffix(fields[0], ":")
			if host == "*" {
				host = ""
			}
			continue
		}
		about := strings.Join(fields, " ")
		if disabled {
			about = inetdOff + " " + about
		}
		s := &service{base: fields[0], origin: fmt.Sprintf("%s:%d", file, n), about: []string{about}}
		out = append(out, s)
		if len(fields) < 6 {
			s.skip("a line has at least 6 fields: service, socket type, protocol, wait, user, server")
			s.commentedOut = true
			continue
		}
		inetdService(s, fields, host)
		if disabled {
			s.set("disabled", boolean(true), "")
		}
		s.finish()
	}
	return out
}

// inetdService converts the fields of one line into s.
func inetdService(s *service, f []string, host string) {
	name, socketType, proto, wait, user, server := f[0], f[1], f[2], f[3], f[4], f[5]
	if i := strings.LastIndexByte(name, ':'); i >= 0 && proto != "unix" {
		host, name = name[:i], name[i+1:]
		if host == "*" {
			host = ""
		}
	}
	s.base = name

	var family string
	switch proto {
	case "tcp", "tcp4", "udp", "udp4":
		family = "4"
	case "tcp6", "udp6":
		family = "6"
	case "tcp46", "udp46", "unix":
	default:
		s.skip("protocol %q: goinetd serves tcp, udp and unix sockets (no RPC)", proto)
		s.commentedOut = true
		return
	}
	network := strings.TrimRight(proto, "46")
	switch {
	case socketType == "stream" && network != "udp":
	case socketType == "dgram" && network == "udp":
	default:
		s.skip("socket type %q over %s: goinetd serves stream sockets over tcp and unix, and dgram over udp", socketType, proto)
		s.commentedOut = true
		return
	}
	s.set("protocol", str(network), "")
	if network == "unix" {
		s.base = filepath.Base(name)
		s.set("path", str(name), "")
	} else {
		setAddress(s, host, family)
		if n, err := strconv.Atoi(name); err == nil {
			s.set("port", num(n), "")
		} else {
			s.set("port", str(name), "")
		}
	}

	mode, max, hasMax := strings.Cut(wait, ".")
	switch mode {
	case "wait", "nowait":
		s.set("mode", str(mode), "")
	default:
		s.skip("%q is not wait or nowait", wait)
		s.commentedOut = true
	}
	if network == "udp" && mode == "nowait" && server != "internal" {
		s.set("mode", str("wait"), "inetd.conf said nowait, which goinetd does not run for udp: the handler receives the datagram itself")
	}
	if hasMax {
		n, err := strconv.Atoi(max)
		switch {
		case err != nil || n < 0:
			s.skip("%q: the part after the dot is the spawns allowed per minute", wait)
		case n == 0:
			s.note("%s: no limit on spawns per minute, as goinetd has none unless rate_limit is set", wait)
		default:
			s.set("rate_limit", str(fmt.Sprintf("%d/m", n)), fmt.Sprintf(
				"inetd's %s: past %d spawns in a minute inetd closed the socket for 10 minutes, refusing clients; "+
					"goinetd counts connections and stops accepting for rate_pause, and clients wait in the backlog", wait, n))
			s.set("rate_pause", str(inetdPause), "")
		}
	}

	if server == "internal" {
		if s.setBuiltin(s.base) && network != "udp" {
			s.set("mode", str("nowait"), "")
		}
		if user != "root" {
			s.note("runs inside goinetd: user %s does not apply", user)
		}
		return
	}
	setUser(s, user)
	s.setProgram(server, f[6:])
}

// setAddress sets the address of an inetd.conf line: host, if any, else
// the family the protocol binds.
func setAddress(s *service, host, family string) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		switch family {
		case "4":
			s.set("address", str("0.0.0.0"), "")
		case "6":
			s.set("address", str("::"), "")
		}
		s.family = family
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		unresolved(s, host)
		return
	}
	s.set("address", str(a.String()), "")
}

// unresolved disables s, whose address is the host name host: without an
// address it would listen on every interface.
func unresolved(s *service, host string) {
	s.skip("address %q: goinetd binds IP addresses, not host names; set address to the one %s resolves to, then enable the service", host, host)
	s.set("disabled", boolean(true), "")
}

// setUser sets user and group from user, user.group or user:group.
func setUser(s *service, spec string) {
	user, group, ok := strings.Cut(spec, ":")
	if !ok {
		user, group, _ = strings.Cut(spec, ".")
	}
	s.set("user", str(user), "")
	if group != "" {
		s.set("group", str(group), "")
	}
}
