//go:build goinetd_debug || race

package spawner

import "golang.org/x/sys/unix"

// debugChecks turns on the assertions of the rules doc.go states that are
// cheap to check at run time. Builds with -race (the tests' race runs,
// and the goinetd binary they start) or with -tags goinetd_debug have
// them; a release build does not, and pays nothing.
const debugChecks = true

// onLoopThread reports whether the caller runs on the spawn loop's
// thread (a goroutine locked to it, or a function it runs through do).
func (lp *spawnLoop) onLoopThread() bool { return unix.Gettid() == lp.tid }
