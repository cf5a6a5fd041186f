// Package trampoline is the protocol between goinetd and itself
// re-executed as the last step before a handler whose limits, nice value,
// umask or LISTEN_PID Go's fork and exec cannot set: goinetd encodes
// Instructions as the argv of its own binary (Instructions.Args), and the
// child, seeing argv[0] Name, calls Run, which first checks that goinetd
// started it and that it gained no privilege at exec (origin_linux.go),
// then carries the instructions out and execs the handler.
package trampoline
