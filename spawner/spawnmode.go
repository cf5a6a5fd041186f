package spawner

import "fmt"

// SpawnEnv is the environment variable that chooses how goinetd starts its
// handlers (a SpawnMode); main reads it once, at startup.
const SpawnEnv = "GOINETD_SPAWN"

// SpawnMode is how handlers are started.
type SpawnMode string

const (
	// SpawnVfork, the default, starts a handler through goinetd's own
	// vfork and exec (internal/vfork) where it can: not as another user
	// or in a chroot, nor on an architecture without it.
	SpawnVfork SpawnMode = "vfork"
	// SpawnForkExec starts every handler through syscall.ForkExec: the
	// slower, standard way, to turn goinetd's own off in the field.
	SpawnForkExec SpawnMode = "forkexec"
)

// ParseSpawnMode returns the mode that v, the value of SpawnEnv, names:
// empty is SpawnVfork.
func ParseSpawnMode(v string) (SpawnMode, error) {
	switch m := SpawnMode(v); m {
	case "":
		return SpawnVfork, nil
	case SpawnVfork, SpawnForkExec:
		return m, nil
	}
	return "", fmt.Errorf("%s=%q: want %q (the default) or %q", SpawnEnv, v, SpawnVfork, SpawnForkExec)
}
