//go:build linux && !amd64

package spawner

// haveVfork is false: goinetd's own spawn is written for amd64 only, and
// every handler starts through syscall.ForkExec.
const haveVfork = false

func vforkExec(*vforkArgs) { panic("goinetd: vforkExec on an architecture without it") }

func cloneExec(*cloneSpawn) { panic("goinetd: cloneExec on an architecture without it") }
