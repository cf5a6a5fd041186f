package spawner

import (
	"fmt"
	"os"
	"strings"
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
	bothFamilies bool // a dual-stack socket gets the IPv4 option too, for IPv4 clients
}

// beforeBind sets svc's IP_FREEBIND and socket options on the socket
// net.ListenConfig made for network, "tcp4", "udp6" and so on (a dual
// stack socket is "tcp6" or "udp6" too), before it is bound.
func beforeBind(svc *config.Service, network string, c syscall.RawConn) error {
	ipv6 := strings.HasSuffix(network, "6")
	dualStack := ipv6 && !svc.Address.IsValid()
	var err error
	ctlErr := c.Control(func(fd uintptr) {
		set := func(level, opt, value int, name string) bool {
			if err = unix.SetsockoptInt(int(fd), level, opt, value); err != nil {
				err = fmt.Errorf("set %s: %w", name, err)
			}
			return err == nil
		}
		for _, o := range socketOptions(svc) {
			if !ipv6 || o.ipv6Level == 0 || (dualStack && o.bothFamilies) {
				if !set(o.level, o.opt, o.value, o.name) {
					return
				}
			}
			if ipv6 && o.ipv6Level != 0 && !set(o.ipv6Level, o.ipv6Opt, o.value, o.name) {
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
