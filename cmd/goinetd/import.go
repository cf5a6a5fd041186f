package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/goinetd/goinetd/internal/importer"
)

// runImport converts paths to an inetd.toml on out (a file) or stdout,
// and summarises on stderr what could not be converted. It exits 1 if a
// path cannot be read or parsed, and 0 otherwise, even with items not
// converted: they are comments in the file, to read before serving it.
func runImport(paths []string, out string, stdout, stderr io.Writer) int {
	r, err := importer.Import(paths, importer.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "goinetd import: %v\n", err)
		return 1
	}
	if out == "" {
		stdout.Write(r.TOML)
	} else if err := writeNew(out, r.TOML); err != nil {
		fmt.Fprintf(stderr, "goinetd import: %v\n", err)
		return 1
	}
	summarise(stderr, r, out)
	return 0
}

// summarise tells what was imported and lists what was not converted.
func summarise(w io.Writer, r *importer.Result, out string) {
	where := "standard output"
	if out != "" {
		where = out
	}
	io.WriteString(w, r.Summary(where))
}

// writeNew writes data to path through a temporary file in its folder,
// so that a reader never sees half a config.
func writeNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".goinetd-import-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
