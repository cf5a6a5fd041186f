package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is what goinetd-bench reads from /proc/PID/stat.
type procStat struct {
	pid   int
	comm  string
	state byte // R, S, D, Z, ...
	ppid  int
	// CPU time in clock ticks: the process's own (every thread, live and
	// exited), and that of its children it has waited for.
	utime, stime   uint64
	cutime, cstime uint64
}

// parseStat decodes the contents of /proc/PID/stat. The command name is
// in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	var st procStat
	s := strings.TrimSpace(string(data))
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return st, fmt.Errorf("stat %q: no (comm)", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return st, fmt.Errorf("stat %q: pid: %w", s, err)
	}
	st.pid, st.comm = pid, s[open+1:close]
	// Fields after comm, numbered as in proc(5): 3 state, 4 ppid, ...,
	// 14 utime, 15 stime, 16 cutime, 17 cstime.
	f := strings.Fields(s[close+1:])
	if len(f) < 15 || len(f[0]) != 1 {
		return st, fmt.Errorf("stat %q: want at least 17 fields", s)
	}
	field := func(n int) string { return f[n-3] }
	st.state = field(3)[0]
	if st.ppid, err = strconv.Atoi(field(4)); err != nil {
		return st, fmt.Errorf("stat %q: ppid: %w", s, err)
	}
	for n, dst := range map[int]*uint64{14: &st.utime, 15: &st.stime, 16: &st.cutime, 17: &st.cstime} {
		// cutime and cstime are signed in the kernel's format, but never
		// negative in practice.
		v, err := strconv.ParseInt(field(n), 10, 64)
		if err != nil || v < 0 {
			return st, fmt.Errorf("stat %q: field %d: %q is not a tick count", s, n, field(n))
		}
		*dst = uint64(v)
	}
	return st, nil
}

// procStatus is what goinetd-bench reads from /proc/PID/status.
type procStatus struct {
	threads int
	rssKB   int64 // VmRSS
	hwmKB   int64 // VmHWM: the peak of VmRSS over the process's life
}

// parseStatus decodes the contents of /proc/PID/status.
func parseStatus(data []byte) (procStatus, error) {
	var st procStatus
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB"))
		var err error
		switch key {
		case "Threads":
			st.threads, err = strconv.Atoi(value)
			seen++
		case "VmRSS":
			st.rssKB, err = strconv.ParseInt(value, 10, 64)
			seen++
		case "VmHWM":
			st.hwmKB, err = strconv.ParseInt(value, 10, 64)
			seen++
		}
		if err != nil {
			return st, fmt.Errorf("status: %s: %w", key, err)
		}
	}
	if seen != 3 {
		return st, errors.New("status: Threads, VmRSS or VmHWM missing (a zombie, or a kernel thread?)")
	}
	return st, nil
}

// proc reads process information under a procfs mount (normally /proc;
// tests give a fake tree).
type proc struct{ root string }

func (p proc) stat(pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join(p.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(data)
}

func (p proc) status(pid int) (procStatus, error) {
	data, err := os.ReadFile(filepath.Join(p.root, strconv.Itoa(pid), "status"))
	if err != nil {
		return procStatus{}, err
	}
	return parseStatus(data)
}

// children returns the stat of every child of pid, zombies included.
// It reads /proc/PID/task/*/children where the kernel has them
// (CONFIG_PROC_CHILDREN), and otherwise scans every process for its
// parent. A child that exits while it is read is left out.
func (p proc) children(pid int) ([]procStat, error) {
	tasks, _ := filepath.Glob(filepath.Join(p.root, strconv.Itoa(pid), "task", "*", "children"))
	if len(tasks) > 0 {
		var kids []procStat
		for _, t := range tasks {
			data, err := os.ReadFile(t)
			if err != nil {
				continue // the thread ended
			}
			for _, f := range strings.Fields(string(data)) {
				kid, err := strconv.Atoi(f)
				if err != nil {
					return nil, fmt.Errorf("%s: %q is not a pid", t, f)
				}
				if st, err := p.stat(kid); err == nil && st.ppid == pid {
					kids = append(kids, st)
				}
			}
		}
		return kids, nil
	}
	return p.scan(func(st procStat) bool { return st.ppid == pid })
}

// scan returns the stat of every process for which keep is true.
func (p proc) scan(keep func(procStat) bool) ([]procStat, error) {
	d, err := os.Open(p.root)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.root, err)
	}
	var out []procStat
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		st, err := p.stat(pid)
		if err != nil {
			continue // it exited meanwhile
		}
		if keep(st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// childCounts summarises children: how many are alive and how many are
// zombies (exited, not yet reaped).
func childCounts(kids []procStat) (live, zombies int) {
	for _, k := range kids {
		if k.state == 'Z' {
			zombies++
		} else {
			live++
		}
	}
	return live, zombies
}

// clockTicks is the unit of the CPU times in /proc/PID/stat, per second:
// AT_CLKTCK from the auxiliary vector (auxv, as /proc/self/auxv holds
// it), or 100, the USER_HZ of every Linux port that goinetd runs on.
func clockTicks(auxv []byte) uint64 {
	const atClkTck = 17
	for len(auxv) >= 16 {
		key, value := binary.NativeEndian.Uint64(auxv), binary.NativeEndian.Uint64(auxv[8:])
		if key == 0 {
			break
		}
		if key == atClkTck && value > 0 {
			return value
		}
		auxv = auxv[16:]
	}
	return 100
}

// listenInodes returns the socket inodes of the TCP sockets listening on
// port, from the contents of /proc/net/tcp or /proc/net/tcp6.
func listenInodes(table []byte, port int) (map[uint64]bool, error) {
	const listen = "0A"
	inodes := make(map[uint64]bool)
	sc := bufio.NewScanner(bytes.NewReader(table))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 10 {
			continue // the header
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("tcp table: local address %q", f[1])
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("tcp table: local port %q: %w", hexPort, err)
		}
		if int(p) != port || f[3] != listen {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tcp table: inode %q: %w", f[9], err)
		}
		inodes[inode] = true
	}
	return inodes, sc.Err()
}

// listening reports whether process pid, or one of its children (pid may
// be a wrapper, such as strace), holds a socket listening on TCP port:
// the port is open, and it is theirs, not another process's.
func (p proc) listening(pid, port int) bool {
	inodes := make(map[uint64]bool)
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		data, err := os.ReadFile(filepath.Join(p.root, table))
		if err != nil {
			continue
		}
		found, err := listenInodes(data, port)
		if err != nil {
			continue
		}
		for i := range found {
			inodes[i] = true
		}
	}
	if len(inodes) == 0 {
		return false
	}
	pids := []int{pid}
	if kids, err := p.children(pid); err == nil {
		for _, k := range kids {
			pids = append(pids, k.pid)
		}
	}
	for _, pid := range pids {
		fdDir := filepath.Join(p.root, strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			var inode uint64
			if _, err := fmt.Sscanf(link, "socket:[%d]", &inode); err == nil && inodes[inode] {
				return true
			}
		}
	}
	return false
}

// cpuTimes parses the first line of /proc/stat: the time the machine's
// CPUs have been busy and in all, in clock ticks. Busy is user, nice,
// system, irq, softirq and steal (guest time is inside user already): a
// process is charged for the interrupts that strike while it runs, so
// they belong with the processes' times. The rest is idle and iowait.
func cpuTimes(stat []byte) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: first line %q is not the cpu line", line)
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + v[3] + v[4], nil
}

func (p proc) cpuTimes() (busy, total uint64, err error) {
	data, err := os.ReadFile(filepath.Join(p.root, "stat"))
	if err != nil {
		return 0, 0, err
	}
	return cpuTimes(data)
}
