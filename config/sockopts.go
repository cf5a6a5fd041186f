package config

import (
	"fmt"
	"time"
)

// SocketOptions are set on a service's listening socket when goinetd
// binds it; accepted connections inherit them from it (Linux copies the
// listener's options into each connection it accepts), so they cost
// nothing per connection. The zero value sets nothing: the kernel's
// defaults. A socket passed by systemd keeps the options of its socket
// unit. A change on reload binds the socket again.
type SocketOptions struct {
	// TCPNoDelay sets TCP_NODELAY (no Nagle delay). tcp only.
	TCPNoDelay bool
	// KeepAlive sets SO_KEEPALIVE; KeepAliveIdle (TCP_KEEPIDLE),
	// KeepAliveInterval (TCP_KEEPINTVL), whole seconds, and
	// KeepAliveCount (TCP_KEEPCNT) tune it, 0 leaving the kernel's
	// (net.ipv4.tcp_keepalive_*). tcp only.
	KeepAlive         bool
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int
	// Backlog is the listen(2) backlog; 0 keeps what Go's net.Listen
	// asks for, net.core.somaxconn (4096 since Linux 5.4). tcp only.
	Backlog int
	// DeferAccept (TCP_DEFER_ACCEPT, whole seconds) holds a connection in
	// the kernel until the client sends data, so that a client that sends
	// nothing starts no handler. 0: off. tcp only.
	DeferAccept time.Duration
	// ReceiveBuffer and SendBuffer are SO_RCVBUF and SO_SNDBUF in bytes;
	// 0 leaves the kernel's. tcp and udp.
	ReceiveBuffer int
	SendBuffer    int
	// Mark is SO_MARK (needs CAP_NET_ADMIN); 0: none. tcp and udp.
	Mark uint32
	// IPTOS is IP_TOS (IPV6_TCLASS on IPv6) and IPTTL is IP_TTL
	// (IPV6_UNICAST_HOPS); 0 leaves the kernel's. tcp and udp.
	IPTOS int
	IPTTL int
}

// The socket option keys, and which protocols they apply to.
var (
	tcpOnlySocketKeys = []string{keyTCPNoDelay, keyKeepAlive, keyKeepAliveIdle, keyKeepAliveInterval, keyKeepAliveCount, keyBacklog, keyDeferAccept}
	inetSocketKeys    = []string{keyReceiveBuffer, keySendBuffer, keyMark, keyIPTOS, keyIPTTL}
)

// parseBacklog accepts a listen backlog, 1 to 65535 (the kernel caps it
// at net.core.somaxconn).
func parseBacklog(v any, dst *int) error {
	n, ok := v.(int64)
	if !ok || n < 1 || n > 65535 {
		if ok {
			return fmt.Errorf("%d is out of range 1-65535", n)
		}
		return fmt.Errorf("must be an integer (1-65535), not %s", describe(v))
	}
	*dst = int(n)
	return nil
}

// parseSeconds accepts a duration of whole seconds, 1s to max, as the
// TCP options that count seconds take.
func parseSeconds(v any, dst *time.Duration, max time.Duration) error {
	var d time.Duration
	if err := parseDuration(v, &d); err != nil {
		return err
	}
	if d%time.Second != 0 || d > max {
		return fmt.Errorf("%q is not a whole number of seconds from 1s to %ds", v, max/time.Second)
	}
	*dst = d
	return nil
}

// parseByteCount accepts a buffer size like "256KiB" or an integer of
// bytes, 1 byte to 1GiB.
func parseByteCount(v any, dst *int) error {
	var n uint64
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("%d is negative", v)
		}
		n = uint64(v)
	case string:
		var err error
		if n, err = parseSize(v); err != nil {
			return fmt.Errorf("%q is not a size like \"256KiB\" or \"4M\"", v)
		}
	default:
		return fmt.Errorf("must be a size like \"256KiB\", not %s", describe(v))
	}
	if n < 1 || n > 1<<30 {
		return fmt.Errorf("%d bytes is out of range 1 byte to 1GiB", n)
	}
	*dst = int(n)
	return nil
}

// parseSmallInt accepts an integer from least to most (ip_tos, ip_ttl,
// keepalive_count).
func parseSmallInt(v any, dst *int, least, most int64) error {
	n, ok := v.(int64)
	if !ok || n < least || n > most {
		if ok {
			return fmt.Errorf("%d is out of range %d-%d", n, least, most)
		}
		return fmt.Errorf("must be an integer (%d-%d), not %s", least, most, describe(v))
	}
	*dst = int(n)
	return nil
}

// parseMark accepts an SO_MARK value, 1 to 2^32-1.
func parseMark(v any, dst *uint32) error {
	n, ok := v.(int64)
	if !ok || n < 1 || n > 1<<32-1 {
		if ok {
			return fmt.Errorf("%d is out of range 1-4294967295", n)
		}
		return fmt.Errorf("must be an integer (1-4294967295), not %s", describe(v))
	}
	*dst = uint32(n)
	return nil
}

// validateSocketOptions rejects the socket options that do not apply to
// the service's protocol or kind, and clears those that [defaults] sets
// where they do not apply.
func validateSocketOptions(s *Service, w *where) {
	reject := func(why string, names ...string) {
		for _, name := range names {
			if w.own(name) {
				w.add(name, "%s", why)
			}
		}
	}
	switch s.Protocol {
	case Unix:
		reject("does not apply to a unix service: socket options are for tcp and udp", append(tcpOnlySocketKeys, inetSocketKeys...)...)
		s.SocketOptions = SocketOptions{}
		return
	case UDP:
		reject("applies only to tcp services: udp has no connections", tcpOnlySocketKeys...)
		o := s.SocketOptions
		s.SocketOptions = SocketOptions{ReceiveBuffer: o.ReceiveBuffer, SendBuffer: o.SendBuffer, Mark: o.Mark, IPTOS: o.IPTOS, IPTTL: o.IPTTL}
		return
	}
	if s.Builtin != "" {
		reject("does not apply to a builtin service: Go sets TCP_NODELAY and a 15s keepalive on the connections it serves",
			keyTCPNoDelay, keyKeepAlive, keyKeepAliveIdle, keyKeepAliveInterval, keyKeepAliveCount)
		s.TCPNoDelay, s.KeepAlive = false, false
	}
	if s.Forward != "" {
		reject("does not apply to a forwarding service: Go sets TCP_NODELAY and a 15s keepalive on the connections it serves",
			keyTCPNoDelay, keyKeepAlive, keyKeepAliveIdle, keyKeepAliveInterval, keyKeepAliveCount)
		s.TCPNoDelay, s.KeepAlive = false, false
	}
	if !s.KeepAlive {
		reject("needs keepalive = true", keyKeepAliveIdle, keyKeepAliveInterval, keyKeepAliveCount)
		s.KeepAliveIdle, s.KeepAliveInterval, s.KeepAliveCount = 0, 0, 0
	}
}
