//go:build !goinetd_debug && !race

package spawner

// debugChecks is off: see debug_on.go.
const debugChecks = false

func (lp *spawnLoop) onLoopThread() bool { return true }
