package main

// A unix socket's file in a folder that someone else can write: goinetd,
// as root, must never change the mode or owner of anything but the socket
// it made, whatever that someone puts at the names it uses.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// secretFile makes a 0600 file outside dir, the file an attacker wants
// goinetd to chmod, and returns its path.
func secretFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

// checkUnchanged fails the test if the file at path no longer has mode
// 0600.
func checkUnchanged(t *testing.T, path, when string) bool {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("%s: got mode %v on %s, the target of the attacker's symlink; want -rw------- (goinetd followed the symlink)", when, fi.Mode(), path)
		return false
	}
	return true
}

// socketReplacedMsg is what goinetd logs when a reload finds something
// other than its socket at the socket's path.
const socketReplacedMsg = "socket file replaced; its mode and owner are left alone"

// swapNames swaps the names a and b atomically (renameat2 RENAME_EXCHANGE).
func swapNames(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// TestReloadNeverChmodsThroughASymlink is the attack on reload: the owner
// of the socket's folder keeps exchanging the socket with a symlink to a
// root-only file while goinetd reloads with a new socket_mode each time.
// goinetd must change the socket's mode, never the file's.
func TestReloadNeverChmodsThroughASymlink(t *testing.T) {
	const reloads = 100
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	secret := secretFile(t)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	config := func(mode string) string {
		return jsonLog + fmt.Sprintf("\n[services.local]\nprotocol = \"unix\"\npath = %q\nbuiltin = \"echo\"\nsocket_mode = %q\n", path, mode)
	}
	d := startDaemon(t, config("0640"))

	var stop atomic.Bool
	var swaps int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		// In pairs, so that the socket is back at path when it stops, with
		// as little as possible between them: the socket is at path about
		// half of the time, the symlink the other half.
		for !stop.Load() {
			if swapNames(path, link) != nil {
				t.Errorf("cannot exchange %s and %s", path, link)
				return
			}
			if swapNames(path, link) != nil {
				t.Errorf("cannot exchange %s and %s back", path, link)
				return
			}
			swaps++
		}
	}()
	// A reload whose check finds the symlink at path fails, and keeps the
	// old config: the attacker can always make goinetd refuse a reload.
	modes := []string{"0604", "0640"}
	applied, n := 0, 0
	for n < reloads {
		n++
		d.writeConfig(config(modes[n%2]))
		if d.reload(n).msg() == "reloaded" {
			applied++
		}
		if !checkUnchanged(t, secret, fmt.Sprintf("after reload %d", n)) {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	refused := len(d.logs.records(func(r record) bool { return r.msg() == socketReplacedMsg }))
	t.Logf("%d reloads (%d applied), %d exchanges of the socket with a symlink; %d applied reloads found the symlink and left it alone",
		n, applied, swaps, refused)
	if applied == 0 {
		t.Errorf("got no reload applied under attack; want some, else nothing was tested")
	}

	// Unattacked, a reload still sets the socket's mode, and its owner.
	text, uid := config("0606"), os.Geteuid()
	if uid == 0 {
		text, uid = text+"socket_user = 65534\n", 65534
	}
	d.writeConfig(text)
	if r := d.reload(n + 1); r.msg() != "reloaded" {
		t.Fatalf("unattacked reload: got %v; want reloaded", r)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Perm() != 0o606 || fi.Mode().Type() != os.ModeSocket || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("socket after an unattacked reload: got %v, %v; want a socket with mode 0606 owned by uid %d", fi, err, uid)
	}
}

// inotifyAttacker watches a folder and, as soon as a name other than the
// ones in spare appears, keeps exchanging it with a symlink: a directory
// with one to bait (a folder of symlinks to the secret under any name
// goinetd might use inside it), anything else with one to the secret.
type inotifyAttacker struct {
	dir       string
	spare     map[string]bool
	fileLink  string // -> the secret
	dirLink   string // -> bait
	fd        int
	wins      atomic.Int64 // exchanges done
	halt      atomic.Bool  // set when the attacks are to stop
	done      chan struct{}
	stopName  string
	stopOnce  sync.Once
	attacking sync.WaitGroup
}

func newInotifyAttacker(t *testing.T, dir, secret string, spare ...string) *inotifyAttacker {
	t.Helper()
	bait := t.TempDir()
	for _, name := range []string{"socket", "sock", "s", filepath.Base(spare[0])} {
		if err := os.Symlink(secret, filepath.Join(bait, name)); err != nil {
			t.Fatal(err)
		}
	}
	a := &inotifyAttacker{
		dir:      dir,
		spare:    map[string]bool{"file-link": true, "dir-link": true, "stop": true},
		fileLink: filepath.Join(dir, "file-link"),
		dirLink:  filepath.Join(dir, "dir-link"),
		done:     make(chan struct{}),
		stopName: filepath.Join(dir, "stop"),
	}
	for _, s := range spare {
		a.spare[s] = true
	}
	if err := os.Symlink(secret, a.fileLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bait, a.dirLink); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("needs inotify: %v", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	a.fd = fd
	go a.watch()
	t.Cleanup(a.stop)
	return a
}

// watch reads events on a thread of its own, in a blocking read, so that
// it wakes as soon as the kernel queues an event.
func (a *inotifyAttacker) watch() {
	runtime.LockOSThread()
	defer close(a.done)
	defer unix.Close(a.fd)
	buf := make([]byte, 64*1024)
	for {
		n, err := unix.Read(a.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := string(bytes.TrimRight(nameBytes, "\x00"))
			if name == "stop" {
				a.attacking.Wait()
				return
			}
			if a.spare[name] {
				continue
			}
			link := a.fileLink
			if ev.Mask&unix.IN_ISDIR != 0 {
				link = a.dirLink
			}
			a.attacking.Add(1)
			go a.attack(filepath.Join(a.dir, name), link)
		}
	}
}

// attack exchanges target with link, in pairs, until target is gone (the
// daemon renamed or removed it) or a bound is reached. Each pair leaves
// both names as they were.
func (a *inotifyAttacker) attack(target, link string) {
	runtime.LockOSThread()
	defer a.attacking.Done()
	for range 1000 {
		if a.halt.Load() {
			return
		}
		if err := swapNames(target, link); err != nil {
			return
		}
		a.wins.Add(1)
		if err := swapNames(target, link); err != nil {
			return // the daemon moved what was at target: link is at target's new place
		}
	}
}

// stop ends the watcher: it sees the name "stop" created, waits for its
// attacks and returns.
func (a *inotifyAttacker) stop() {
	a.stopOnce.Do(func() {
		a.halt.Store(true)
		os.WriteFile(a.stopName, nil, 0o644)
		select {
		case <-a.done:
		case <-time.After(waitTimeout):
			panic("inotify attacker did not stop")
		}
		os.Remove(a.stopName)
	})
}

// echoOverUnix checks that the echo service at path answers.
func echoOverUnix(t *testing.T, path string) {
	t.Helper()
	c, err := net.DialTimeout("unix", path, ioTimeout)
	if err != nil {
		t.Errorf("dial %s: %v", path, err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 5)
	c.Write([]byte("hello"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Errorf("echo over %s: got %q, %v; want \"hello\"", path, buf, err)
	}
}

// waitStarted waits until goinetd serves or exits, and reports which.
func (d *daemon) waitStarted() bool {
	d.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.logs.mu.Lock()
		changed := d.logs.changed
		d.logs.mu.Unlock()
		if len(d.logs.records(func(r record) bool { return r.msg() == "serving" })) > 0 {
			return true
		}
		select {
		case <-d.done:
			return false
		case <-changed:
		case <-deadline:
			d.t.Fatalf("goinetd neither served nor exited within %v; log:\n%s", waitTimeout, d.logs)
		}
	}
}

// TestBindNeverChmodsThroughASymlink is the attack on start: the owner of
// the socket's folder watches it with inotify and replaces whatever goinetd
// creates there, before the socket reaches its path, with a symlink to a
// root-only file. goinetd may fail to start; it must never chmod the file.
func TestBindNeverChmodsThroughASymlink(t *testing.T) {
	const starts = 12
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	secret := secretFile(t)
	config := filepath.Join(t.TempDir(), "inetd.toml")
	text := jsonLog + fmt.Sprintf("\n[services.local]\nprotocol = \"unix\"\npath = %q\nbuiltin = \"echo\"\n", path)
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	served, exchanges := 0, int64(0)
	want := "listen on " + path + ": "
	for i := 1; i <= starts; i++ {
		a := newInotifyAttacker(t, dir, secret, filepath.Base(path))
		d := launchFile(t, config)
		started := d.waitStarted()
		ok := checkUnchanged(t, secret, fmt.Sprintf("start %d", i))
		if started {
			served++
			// Served, and (no race with the stop) its loop is running.
			echoOverUnix(t, path)
			if code := d.stop(syscall.SIGTERM); code != 0 {
				t.Errorf("start %d: exit status %d after SIGTERM; want 0", i, code)
			}
		} else if code := d.wait(); code != 1 || !strings.Contains(d.logs.String(), want) {
			// The attacker can stop goinetd from starting (as a file at
			// path would); then it says why.
			t.Errorf("start %d: exit status %d, log %q; want 1 and an error containing %q", i, code, d.logs, want)
		}
		a.stop()
		exchanges += a.wins.Load()
		// Reset the folder for the next start.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		if !ok || t.Failed() {
			break
		}
	}
	t.Logf("%d starts under attack, %d served, %d exchanges done", starts, served, exchanges)
}

// TestStopRemovesOnlyItsOwnSocket replaces the socket at its path with
// another file while goinetd runs: the stop must leave that file.
func TestStopRemovesOnlyItsOwnSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	d := startDaemon(t, jsonLog+fmt.Sprintf("\n[services.local]\nprotocol = \"unix\"\npath = %q\nbuiltin = \"echo\"\n", path))
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("not goinetd's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status: got %d; want 0", code)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "not goinetd's" {
		t.Errorf("%s after the stop: got %q, %v; want the file put there, untouched", path, b, err)
	}
}

// TestCheckWarnsOfASocketFolderOthersCanWrite: check accepts the config
// and warns that whoever can write the folder can replace the socket.
func TestCheckWarnsOfASocketFolderOthersCanWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "inetd.toml")
	os.WriteFile(path, []byte(fmt.Sprintf("[services.local]\nprotocol = \"unix\"\npath = %q\nbuiltin = \"echo\"\n", filepath.Join(dir, "app.sock"))), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("check: exit %d; want 0; stderr %q", code, stderr.String())
	}
	want := "warning: " + path + ":3: services.local.path: folder " + dir + " is writable by every user: they can replace the socket"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("got stderr %q; want it to start with %q", stderr.String(), want)
	}
}
