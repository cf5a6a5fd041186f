package builtin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// service is one built-in: how it serves a stream and how it answers a
// datagram.
type service struct {
	// serve runs the service on conn until it is done and closes conn. It
	// returns the error that ended it, unwrapped, nil at a normal end.
	serve func(conn net.Conn, now func() time.Time) error
	// reply is Reply for this service.
	reply func(request []byte, now func() time.Time) ([]byte, bool)
}

// lookup returns the built-in service name, and false if there is none.
// It and Names must list the same services.
func lookup(name string) (service, bool) {
	switch name {
	case "chargen":
		return service{serveChargen, replyChargen}, true
	case "daytime":
		return service{serveDaytime, replyDaytime}, true
	case "discard":
		return service{serveDiscard, replyDiscard}, true
	case "echo":
		return service{serveEcho, replyEcho}, true
	case "time":
		return service{serveTime, replyTime}, true
	}
	return service{}, false
}

// Names lists the built-in services, sorted. The slice is new on every
// call: the caller may keep and change it.
func Names() []string {
	return []string{"chargen", "daytime", "discard", "echo", "time"}
}

// Valid reports whether name is a built-in service, that is, one of Names.
// Names are case-sensitive.
func Valid(name string) bool {
	_, ok := lookup(name)
	return ok
}

// Serve runs the built-in service name on the stream connection conn until
// the service is done, and closes conn in every case.
//
// Each service ends as its RFC says: echo and discard when the client
// closes its side (EOF), after echo has sent back everything; daytime and
// time once they have sent their answer; chargen when the client closes the
// connection, which it notices as a failed write (a half-close does not
// stop it). For these normal ends Serve returns nil. It also returns nil
// when the client goes away early, which the service sees as a connection
// reset or a broken pipe: that is the client's choice, not a failure.
//
// For a name that is not Valid, Serve closes conn without sending a byte
// and returns an error naming the name. Otherwise it returns the error that
// ended the service, prefixed with "builtin <name>: ": when another
// goroutine closes conn, as goinetd does when it shuts down, an error
// wrapping net.ErrClosed; when a deadline the caller set on conn passes, an
// error wrapping os.ErrDeadlineExceeded; or any other read, write or close
// error. A net.Pipe reports the closing of either of its ends as
// io.ErrClosedPipe, so over a pipe a close by another goroutine looks like
// the client going away, and Serve returns nil.
//
// Serve sets no deadline: a client that never closes holds echo, discard
// and chargen until the caller closes conn or sets a deadline on it.
// Closing conn from another goroutine makes Serve return promptly, and no
// goroutine that Serve starts outlives it.
//
// now gives the time for daytime and time; nil means time.Now. daytime
// writes the time in the location now's result carries, which for
// time.Now is the process's local time zone.
func Serve(name string, conn net.Conn, now func() time.Time) error {
	svc, ok := lookup(name)
	if !ok {
		return finish(conn, fmt.Errorf("builtin: unknown service %q", name))
	}
	if now == nil {
		now = time.Now
	}
	if err := svc.serve(conn, now); err != nil && !clientGone(err) {
		return fmt.Errorf("builtin %s: %w", name, err)
	}
	return nil
}

// Reply returns the datagram to send back for one datagram, request,
// received by the built-in service name, and whether to send one at all.
//
// echo returns a copy of request, empty for an empty request. daytime
// returns its line and time its four bytes, whatever request holds (RFC
// 868 asks for an empty datagram; any is answered). chargen returns a
// random number of characters, 0 to 512 inclusive, of its stream from the
// start of line 0, CR LF line ends included. For discard, and for a name
// that is not Valid, Reply returns nil and false. A reply never shares
// memory with request, and request is never changed.
//
// now is as for Serve: nil means time.Now.
//
// Reply does not know the sender: the caller must check RefuseSource
// first, or two servers can be made to answer each other for ever.
func Reply(name string, request []byte, now func() time.Time) (reply []byte, ok bool) {
	svc, ok := lookup(name)
	if !ok {
		return nil, false
	}
	if now == nil {
		now = time.Now
	}
	return svc.reply(request, now)
}

// finish closes conn and returns the error that ended the service: err if
// there is one, otherwise the close's error. After a failure the close's
// own error says nothing new, so it is dropped.
func finish(conn net.Conn, err error) error {
	cerr := conn.Close()
	if err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("close: %w", cerr)
	}
	return nil
}

// clientGone reports whether err means that the client closed or reset the
// connection: EPIPE and ECONNRESET from a socket, io.ErrClosedPipe from a
// net.Pipe (which cannot tell which end was closed).
func clientGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrClosedPipe)
}
