package spawner

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// The socket options of a service are set once, on the listening socket,
// before it is bound: Linux copies a listener's options (TCP_NODELAY,
// keepalive and its timers, buffers, mark, TOS, TTL) into every
// connection it accepts, so the accept path does nothing for them.

// sockopt is one setsockopt call and the name its error is reported by.
type sockopt struct {
	name         string
	level, opt   int
	value        int
	ipv6Level    int // if not 0, the level and option for an IPv6 socket
	ipv6Opt      int
	bothFamilies bool // an IPv6 socket gets the IPv4 option too (dual stack)
}

// beforeBind sets svc's IP_FREEBIND and socket options on the socket
// net.ListenConfig made for network ("tcp4", "udp6", ...), before it is
// bound.
func beforeBind(svc *config.Service, network string, c syscall.RawConn) error {
	ipv6 := network == "tcp6" || network == "udp6" || network == "tcp" || network == "udp"
	var err error
	ctlErr := c.Control(func(fd uintptr) {
		if ipv6 {
			// A socket Go made for "tcp" is IPv6 dual stack, unless the
			// host has no IPv6: ask the socket.
			domain, e := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
			ipv6 = e != nil || domain == unix.AF_INET6
		}
		for _, o := range socketOptions(svc) {
			level, opt := o.level, o.opt
			if ipv6 && o.ipv6Level != 0 {
				level, opt = o.ipv6Level, o.ipv6Opt
				if o.bothFamilies && network != "tcp6" && network != "udp6" {
					if err = unix.SetsockoptInt(int(fd), o.level, o.opt, o.value); err != nil {
						err = fmt.Errorf("set %s: %w", o.name, err)
						return
					}
				}
			}
			if err = unix.SetsockoptInt(int(fd), level, opt, o.value); err != nil {
				err = fmt.Errorf("set %s: %w", o.name, err)
				return
			}
		}
	})
	if ctlErr != nil {
		return ctlErr
	}
	return err
}

// socketOptions lists the setsockopt calls svc's config asks for.
func socketOptions(svc *config.Service) []sockopt {
	var opts []sockopt
	add := func(o sockopt) { opts = append(opts, o) }
	seconds := func(d time.Duration) int { return int(d / time.Second) }
	o := svc.SocketOptions
	if svc.FreeBind {
		add(sockopt{name: "IP_FREEBIND", level: unix.SOL_IP, opt: unix.IP_FREEBIND, value: 1,
			ipv6Level: unix.SOL_IPV6, ipv6Opt: unix.IPV6_FREEBIND})
	}
	if o.TCPNoDelay {
		add(sockopt{name: "TCP_NODELAY", level: unix.IPPROTO_TCP, opt: unix.TCP_NODELAY, value: 1})
	}
	if o.KeepAlive {
		add(sockopt{name: "SO_KEEPALIVE", level: unix.SOL_SOCKET, opt: unix.SO_KEEPALIVE, value: 1})
	}
	if o.KeepAliveIdle > 0 {
		add(sockopt{name: "TCP_KEEPIDLE", level: unix.IPPROTO_TCP, opt: unix.TCP_KEEPIDLE, value: seconds(o.KeepAliveIdle)})
	}
	if o.KeepAliveInterval > 0 {
		add(sockopt{name: "TCP_KEEPINTVL", level: unix.IPPROTO_TCP, opt: unix.TCP_KEEPINTVL, value: seconds(o.KeepAliveInterval)})
	}
	if o.KeepAliveCount > 0 {
		add(sockopt{name: "TCP_KEEPCNT", level: unix.IPPROTO_TCP, opt: unix.TCP_KEEPCNT, value: o.KeepAliveCount})
	}
	if o.DeferAccept > 0 {
		add(sockopt{name: "TCP_DEFER_ACCEPT", level: unix.IPPROTO_TCP, opt: unix.TCP_DEFER_ACCEPT, value: seconds(o.DeferAccept)})
	}
	if o.ReceiveBuffer > 0 {
		add(sockopt{name: "SO_RCVBUF", level: unix.SOL_SOCKET, opt: unix.SO_RCVBUF, value: o.ReceiveBuffer})
	}
	if o.SendBuffer > 0 {
		add(sockopt{name: "SO_SNDBUF", level: unix.SOL_SOCKET, opt: unix.SO_SNDBUF, value: o.SendBuffer})
	}
	if o.Mark > 0 {
		add(sockopt{name: "SO_MARK", level: unix.SOL_SOCKET, opt: unix.SO_MARK, value: int(o.Mark)})
	}
	if o.IPTOS > 0 {
		add(sockopt{name: "IP_TOS", level: unix.SOL_IP, opt: unix.IP_TOS, value: o.IPTOS,
			ipv6Level: unix.SOL_IPV6, ipv6Opt: unix.IPV6_TCLASS, bothFamilies: true})
	}
	if o.IPTTL > 0 {
		add(sockopt{name: "IP_TTL", level: unix.SOL_IP, opt: unix.IP_TTL, value: o.IPTTL,
			ipv6Level: unix.SOL_IPV6, ipv6Opt: unix.IPV6_UNICAST_HOPS, bothFamilies: true})
	}
	return opts
}

// setBacklog sets the backlog of file's listening socket: a second
// listen(2) changes it.
func setBacklog(file *os.File, backlog int) error {
	raw, err := file.SyscallConn()
	if err != nil {
		return err
	}
	ctlErr := raw.Control(func(fd uintptr) { err = unix.Listen(int(fd), backlog) })
	if ctlErr != nil {
		return ctlErr
	}
	if err != nil {
		return fmt.Errorf("set the backlog: %w", err)
	}
	return nil
}
