package spawner

import "syscall"

// sandbox decides how p's handler is started: its process attributes, and
// whether goinetd's trampoline runs first (see Trampoline) to do what Go
// cannot do between fork and exec. p.path, p.argv and p.env hold the plain
// program when it is called; it may replace them.
func (s *Server) sandbox(p *service) error {
	p.sys = &syscall.SysProcAttr{Setpgid: true}
	if p.ListenFDs {
		// The trampoline sets LISTEN_PID to its own pid, which the
		// program keeps across exec.
		p.argv = append([]string{TrampolineName, p.path}, p.argv...)
		p.path = s.self
		p.env = append(p.env, "LISTEN_FDS=1", "LISTEN_FDNAMES="+p.Name)
	}
	return nil
}
