package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// parseForward takes a forwarder's target: an IP literal with a port
// (an IPv6 one in brackets) or the absolute path of a unix socket. Names
// are not resolved: a target that DNS could move is not one goinetd
// checks at load.
func parseForward(v any, dst *string) error {
	s, err := parseString(v)
	if err != nil {
		return err
	}
	if strings.HasPrefix(s, "/") {
		if filepath.Clean(s) != s {
			return fmt.Errorf("%q is not a clean absolute path (did you mean %q?)", s, filepath.Clean(s))
		}
		*dst = s
		return nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return fmt.Errorf("%q is not an IP address with a port, as \"127.0.0.1:8080\" or \"[::1]:8080\", nor an absolute unix socket path", s)
	}
	*dst = ap.String()
	return nil
}

// ForwardNetwork is the network of the service's forward target: "unix"
// for a path, else "tcp".
func (s *Service) ForwardNetwork() string {
	if strings.HasPrefix(s.Forward, "/") {
		return "unix"
	}
	return "tcp"
}

// validateForward checks that forward applies: goinetd joins each
// connection it accepts to the target, so the service is a stream one in
// nowait mode that runs nothing.
func validateForward(s *Service, w *where) {
	if s.Forward == "" {
		if w.own(keyForwardTimeout) {
			w.add(keyForwardTimeout, "applies only with forward")
		}
		return
	}
	if s.ForwardTimeout == 0 {
		s.ForwardTimeout = DefaultForwardTimeout
	}
	switch {
	case s.Program != "" || s.Builtin != "":
		w.add(keyForward, "a service forwards, runs a program or runs a builtin: only one of them")
	case s.Protocol == UDP:
		w.add(keyForward, "does not apply to a udp service: goinetd forwards stream connections (tcp or unix)")
	case s.Mode == Wait:
		w.add(keyMode, "a forwarding service joins each connection to its target in goinetd: it runs in \"nowait\" mode")
	}
}
