package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// serveGoEchoFlag, as goinetd-bench's first argument, makes it the plain
// Go echo server the built-in echo is compared with:
//
//	goinetd-bench -serve-go-echo ADDRESS
const serveGoEchoFlag = "-serve-go-echo"

// serveGoEcho serves echo on addr the plainest way Go does it: a
// goroutine per connection that copies the connection onto itself until
// EOF, then closes it. It returns (an exit status) on SIGTERM or SIGINT.
func serveGoEcho(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: goinetd-bench %s ADDRESS\n", serveGoEchoFlag)
		return 2
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return 0 // closed on a signal
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
			time.Sleep(5 * time.Millisecond) // a descriptor shortage: let connections end
			continue
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}
