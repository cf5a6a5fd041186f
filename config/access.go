package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Access modes AccessDenied checks, as in access(2).
const (
	MayExec   = 1
	MaySearch = 1
)

// AccessDenied returns why a process with credential c could not reach
// path inside root ("/" when there is no chroot) and get want (MayExec or
// MaySearch) on it, or nil. It reads the mode bits of path and of every
// folder above it, up to root, as the kernel would for c; ACLs and
// capabilities beyond root's are not considered. A path that cannot be
// read at all is left to the other checks.
func AccessDenied(root, path string, c *Credential, want uint32) error {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	dir := filepath.Clean(root)
	parts := []string{}
	if rel != "" {
		parts = strings.Split(rel, "/")
	}
	for i := 0; ; i++ {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return nil
		}
		last := i == len(parts)
		bits := uint32(MaySearch)
		if last {
			bits = want
		}
		if !permits(&st, c, bits) {
			what := "search"
			if last && want == MayExec && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				what = "execute"
			}
			return fmt.Errorf("uid %d cannot %s %s (mode %#o, owner %d:%d)", c.UID, what, dir, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if last {
			return nil
		}
		dir = filepath.Join(dir, parts[i])
	}
}

// permits reports whether c may have want on a file with st's owner and
// mode.
func permits(st *unix.Stat_t, c *Credential, want uint32) bool {
	mode := st.Mode
	if c.UID == 0 {
		// Root may do anything, except execute a file no one may.
		return want != MayExec || mode&unix.S_IFMT == unix.S_IFDIR || mode&0o111 != 0
	}
	switch {
	case st.Uid == c.UID:
		mode >>= 6
	case st.Gid == c.GID || slices.Contains(c.Groups, st.Gid):
		mode >>= 3
	}
	return mode&want == want
}
