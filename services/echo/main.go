// Command echo is goinetd's echo handler: it copies its standard input to
// its standard output until end of file, byte for byte, then exits. Under
// goinetd both are the client's socket, so the client gets back exactly
// what it sent, and sees end of file once it has half-closed its side.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "echo: %v\n", err)
		os.Exit(1)
	}
}
