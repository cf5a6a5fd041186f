package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestListedInPrimary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "group")
	data := "root:x:0:\nwww-data:x:33:\nstaff:x:50:alice,www-data\nalice:x:1000:alice\nbroken:x\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, gid string
		want      bool
	}{
		{"www-data", "33", false}, // its own group, with no member list
		{"alice", "1000", true},   // listed in its own group
		{"www-data", "50", true},
		{"bob", "50", false},
		{"alice", "7", false}, // no such group
	} {
		if got := listedInPrimary(path, tc.user, tc.gid); got != tc.want {
			t.Errorf("listedInPrimary(%s, %s): got %v; want %v", tc.user, tc.gid, got, tc.want)
		}
	}
	if listedInPrimary(filepath.Join(t.TempDir(), "none"), "alice", "1000") {
		t.Errorf("listedInPrimary of a missing file: got true; want false")
	}
}
