//go:build linux && !amd64

package vfork

// Available is false: goinetd's own spawn is written for amd64 only, and
// every handler starts through syscall.ForkExec.
const Available = false

func vforkExec(*vforkArgs) { panic("goinetd: vforkExec on an architecture without it") }

func cloneExec(*Stack) { panic("goinetd: cloneExec on an architecture without it") }
