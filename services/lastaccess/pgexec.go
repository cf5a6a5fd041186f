//go:build !postgres

package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// This build of lastaccess keeps no PostgreSQL driver: its package
// initialisation would cost every connection of the file store about
// 1.5 ms (the driver brings in TLS, x509 and Unicode tables). A
// PostgreSQL -db runs lastaccess-postgres instead, the same program built
// with -tags postgres, which must sit beside this binary (make build and
// make install put it there).

// runDB replaces this process with lastaccess-postgres, with the same
// arguments, environment and descriptors. It returns only if that fails:
// the peer, if any, gets the apology.
func runDB(_ string, list, initDB bool, _ func(string) (string, bool), stdout io.Writer, logf func(string, ...any)) int {
	exe, err := os.Executable()
	if err == nil {
		exe += "-postgres"
		err = unix.Exec(exe, os.Args, os.Environ())
	}
	if !list && !initDB {
		io.WriteString(stdout, apology)
	}
	logf("%v", fmt.Errorf("%w: -db names a PostgreSQL database, served by %s: %v", errDB, exe, err))
	return 1
}
