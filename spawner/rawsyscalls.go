package spawner

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The hot path's own accept4, getsockname and wait4. x/sys/unix's accept4
// and getsockname follow each call with getsockopt(SO_PROTOCOL), to tell an
// L2TP socket from a plain IPv4 one, which a listening stream socket never
// is: two system calls per connection that these skip.
//
// All three are raw system calls, made without telling the Go scheduler,
// since none of them can block: the listener is non-blocking, and wait4
// has WNOHANG. A system call the scheduler is told of wakes its monitor
// thread (sysmon) when goinetd was idle, which at one client at a time
// cost more than the call itself (docs/performance.md). close(2) stays an ordinary call: a handler that set
// SO_LINGER and exited at once would make goinetd's close wait.

// accept4 takes a connection off the listening socket lfd, close-on-exec.
func accept4(lfd int) (int, unix.Sockaddr, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&n)), unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, nil, errno
	}
	return int(fd), sockaddr(&rsa, n), nil
}

// getsockname returns the local address of the connected socket fd.
func getsockname(fd int) (unix.Sockaddr, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return nil, errno
	}
	return sockaddr(&rsa, n), nil
}

// sockaddr converts the n-byte address rsa of a TCP or unix stream socket.
// A unix peer that did not bind has no name; an unknown family is nil.
func sockaddr(rsa *unix.RawSockaddrAny, n uint32) unix.Sockaddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return &unix.SockaddrInet4{Port: int(port[0])<<8 | int(port[1]), Addr: p.Addr}
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return &unix.SockaddrInet6{Port: int(port[0])<<8 | int(port[1]), ZoneId: p.Scope_id, Addr: p.Addr}
	case unix.AF_UNIX:
		p := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
		path := p.Path[:min(max(int(n)-2, 0), len(p.Path))] // n counts the family's 2 bytes
		name := make([]byte, 0, len(path))
		for i, c := range path {
			if c == 0 && i > 0 {
				break // a path name ends at its NUL; an abstract one at n
			}
			name = append(name, byte(c))
		}
		if len(name) > 0 && name[0] == 0 {
			name[0] = '@' // as x/sys/unix shows an abstract name
		}
		return &unix.SockaddrUnix{Name: string(name)}
	}
	return nil
}

// wait4NoHang is unix.Wait4(-1, status, WNOHANG, nil): it collects one
// exited child, if any.
func wait4NoHang(status *unix.WaitStatus) (int, error) {
	pid, _, errno := unix.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(status)), unix.WNOHANG, 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(pid), nil
}
