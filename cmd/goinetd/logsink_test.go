package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogToSyslog checks log = "syslog:SOCKET": each record is one
// message to the socket, with the configured facility and the severity of
// its level, tagged goinetd[PID].
func TestLogToSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port, mport := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	// The metrics address beyond loopback makes a warning, at WARN.
	d := launch(t, fmt.Sprintf("[server]\nlog_format = \"json\"\nlog = \"syslog:%s\"\nsyslog_facility = \"local3\"\nmetrics = \"0.0.0.0:%d\"\n", sock, mport)+
		echoService("echo", "127.0.0.1", port))
	tag := "goinetd[" + strconv.Itoa(d.pid()) + "]: "
	seen := map[string]string{} // msg -> the syslog message that carried it
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(waitTimeout)
	for seen["serving"] == "" {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read the syslog socket: %v (seen %v)", err, seen)
		}
		m := string(buf[:n])
		if !strings.Contains(m, tag) {
			t.Fatalf("got syslog message %q; want the tag %q", m, tag)
		}
		var rec record
		if i := strings.Index(m, "{"); i >= 0 {
			if err := json.Unmarshal([]byte(m[i:]), &rec); err != nil {
				t.Fatalf("syslog message %q: the record is not JSON: %v", m, err)
			}
		}
		seen[rec.msg()] = m
	}
	// local3 is facility 19: info is <158>, warning <156>.
	if m := seen["serving"]; !strings.HasPrefix(m, "<158>") {
		t.Errorf("got %q for an info record; want priority <158> (local3.info)", m)
	}
	if m := seen["config warning"]; !strings.HasPrefix(m, "<156>") {
		t.Errorf("got %q for the config warning; want priority <156> (local3.warning)", m)
	}
	if d.logs.String() != "" {
		t.Errorf("got on stderr %q; want nothing there", d.logs.String())
	}
}

// TestLogToFileReopensOnSIGUSR1 checks log = "file:PATH" and that SIGUSR1
// reopens the file, as logrotate expects after moving it away.
func TestLogToFileReopensOnSIGUSR1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "goinetd.log")
	port := freePort(t, "127.0.0.1")
	d := launch(t, fmt.Sprintf("[server]\nlog = \"file:%s\"\n", path)+echoService("echo", "127.0.0.1", port))
	contains := func(p, s string) bool {
		b, _ := os.ReadFile(p)
		return strings.Contains(string(b), s)
	}
	waitFor(t, "the serving record in the log file", func() bool { return contains(path, "msg=serving") })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new log file", func() bool { return contains(path, `msg="log file reopened"`) })
	exchange(t, addr(port), "x")
	waitFor(t, "the connection's record in the new file", func() bool { return contains(path, `msg="connection ended"`) })
	if contains(path+".1", "connection ended") {
		t.Errorf("the moved log got a record after the reopen")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("got log file %v, %v; want mode 0640", fi, err)
	}
}
