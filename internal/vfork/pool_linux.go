package vfork

import "sync/atomic"

// Stack is the memory a child started by StartNoWait uses until it has
// exec'd or exited: its arguments and its stack (execChild needs a few
// hundred bytes of it). Go's heap does not move objects, and a Stack stays
// reachable while a child uses it (see Pool).
type Stack struct {
	args  vforkArgs
	tid   int32 // 1 from the clone until the kernel clears it
	stack [4096]byte
}

// Pool holds the Stacks of children between their clone and their exec,
// and those free for reuse. One goroutine owns it (goinetd's spawn loop).
type Pool struct {
	busy, free []*Stack
}

// maxCloning is how many children may be between their clone and their
// exec at once; beyond, Get returns nil and the caller waits for the exec
// (Start). It bounds the pool's
// memory, which does not grow with the children that have exec'd.
const maxCloning = 32

// Get returns a Stack to start one more child with, or nil if maxCloning
// are in use.
func (p *Pool) Get() *Stack {
	kept := p.busy[:0]
	for _, c := range p.busy {
		if atomic.LoadInt32(&c.tid) != 0 {
			kept = append(kept, c)
		} else {
			c.args = vforkArgs{} // drop the environment
			p.free = append(p.free, c)
		}
	}
	clear(p.busy[len(kept):])
	p.busy = kept
	if len(p.busy) >= maxCloning {
		return nil
	}
	var c *Stack
	if n := len(p.free); n > 0 {
		c, p.free = p.free[n-1], p.free[:n-1]
	} else {
		c = new(Stack)
	}
	p.busy = append(p.busy, c)
	return c
}
