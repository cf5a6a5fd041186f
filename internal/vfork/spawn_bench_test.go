package vfork

import (
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSpawn starts /bin/true through each way goinetd can start a
// handler, back to back, collecting the children that have exited as it
// goes (as goinetd's reaper does under load), and reports the CPU this
// process spends per spawn (cpu-µs/op: its utime+stime, without the
// children's):
//
//	GOMAXPROCS=1 go test -run '^$' -bench Spawn -benchtime 3000x -count 3 ./internal/vfork/
//
// docs/performance.md has the figures.
func BenchmarkSpawn(b *testing.B) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	env := []string{"PATH=/usr/bin:/bin"}
	extra := []string{"PROTO=TCP", "TCPREMOTEIP=127.0.0.1", "TCPREMOTEPORT=40000",
		"TCPLOCALIP=127.0.0.1", "TCPLOCALPORT=17007", "REMOTE_ADDR=127.0.0.1", "REMOTE_PORT=40000"}
	if !Available {
		b.Skip("no vforkExec on this architecture")
	}
	path, argv, sys := "/bin/true", []string{"true"}, &syscall.SysProcAttr{Setsid: true}
	tmpl, err := NewTemplate(path, "", argv, env, false)
	if err != nil {
		b.Fatal(err)
	}
	var pool Pool
	type way struct {
		name  string
		spawn func() (int, error)
	}
	ways := []way{
		{"ForkExec", func() (int, error) {
			return syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: append(env, extra...), Files: files, Sys: sys})
		}},
		{"vfork-clone3", func() (int, error) { noClone3.Store(false); return tmpl.Start(files, extra, nil) }},
		{"vfork-clone", func() (int, error) { noClone3.Store(true); return tmpl.Start(files, extra, nil) }},
		{"nowait-clone3", func() (int, error) { noClone3.Store(false); return spawnFromPool(tmpl, &pool, files, extra) }},
		{"nowait-clone", func() (int, error) { noClone3.Store(true); return spawnFromPool(tmpl, &pool, files, extra) }},
	}
	defer noClone3.Store(false)
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			start := ownCPU(b)
			live := 0
			for b.Loop() {
				if _, err := w.spawn(); err != nil {
					b.Fatal(err)
				}
				live++
				for live > 0 {
					pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
					if pid <= 0 || err != nil {
						break
					}
					live--
				}
			}
			cpu := ownCPU(b) - start
			for ; live > 0; live-- {
				if _, err := unix.Wait4(-1, nil, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// spawnFromPool starts tmpl's program as goinetd's spawn loop does when waiting
// gains nothing: without waiting for its exec while pool has room.
func spawnFromPool(tmpl *Template, pool *Pool, files []uintptr, extra []string) (int, error) {
	if c := pool.Get(); c != nil {
		return tmpl.StartNoWait(c, files, extra, nil, new(uintptr))
	}
	return tmpl.Start(files, extra, nil)
}

// ownCPU is this process's user and system time, without its children's.
func ownCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
