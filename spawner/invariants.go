package spawner

// Run-time checks of two rules doc.go states, on in debug builds only
// (debugChecks): a broken rule panics, naming it.

// mustBeLoopThread panics unless it runs on the spawn loop's thread: every
// fork runs there, so that the loop, which reaps, is every child's parent.
// Once the loop has stopped, do runs what it is given on the caller's
// thread, as it documents.
func (lp *spawnLoop) mustBeLoopThread() {
	if !debugChecks || lp.onLoopThread() {
		return
	}
	select {
	case <-lp.done:
	default:
		panic("goinetd: a fork off the spawn loop's thread (see spawner/doc.go: every fork runs on the loop)")
	}
}

// lock takes s.mu. The spawn loop's thread must never take it: Apply and
// Close hold it while they wait for the loop (listener.close asks the loop
// to forget the listener), so the loop taking it would deadlock them.
func (s *Server) lock() {
	if debugChecks && s.loop != nil && s.loop.onLoopThread() {
		panic("goinetd: the spawn loop's thread takes Server.mu (see spawner/doc.go: the lock order)")
	}
	s.mu.Lock()
}
