// Package logsink is where goinetd's own log goes: standard error (for a
// service manager's journal), the local syslog socket, or a file that
// logrotate moves away, reopened on request.
//
// A sink carries one record per Write, as log/slog's handlers write
// them; to syslog each record is one message, at the severity of its
// level.
package logsink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"slices"
	"sync"

	"github.com/goinetd/goinetd/config"
	"golang.org/x/sys/unix"
)

// Sink is an open log target.
type Sink struct {
	target config.LogTarget
	stderr io.Writer

	mu     sync.Mutex
	file   *os.File       // LogFile: the open log file
	syslog *syslog.Writer // LogSyslog

	// order makes setting level and writing the record one step (see
	// severity); level is the level of the record being written.
	order sync.Mutex
	level slog.Level
}

// Open opens target; stderr is where LogStderr writes.
func Open(target config.LogTarget, stderr io.Writer) (*Sink, error) {
	s := &Sink{target: target, stderr: stderr}
	switch target.Kind {
	case config.LogFile:
		f, err := openFile(target.Path)
		if err != nil {
			return nil, err
		}
		s.file = f
	case config.LogSyslog:
		facility := slices.Index(config.SyslogFacilities, target.Facility)
		if facility < 0 {
			facility = slices.Index(config.SyslogFacilities, "daemon")
		}
		w, err := syslog.Dial("unixgram", target.Path, syslog.Priority(facility<<3)|syslog.LOG_INFO, "goinetd")
		if err != nil {
			return nil, fmt.Errorf("log to syslog at %s: %w", target.Path, err)
		}
		s.syslog = w
	}
	return s, nil
}

// openFile opens the log file at path for appending, creating it 0640;
// it never follows a symbolic link there.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log to %s: %w", path, err)
	}
	return f, nil
}

// Handler returns a handler of format and level that writes to s.
func (s *Sink) Handler(format config.LogFormat, opts *slog.HandlerOptions) slog.Handler {
	var h slog.Handler
	if format == config.LogJSON {
		h = slog.NewJSONHandler(s, opts)
	} else {
		h = slog.NewTextHandler(s, opts)
	}
	if s.syslog != nil {
		return &severity{Handler: h, sink: s}
	}
	return h
}

// Write writes one record.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.file != nil:
		return s.file.Write(p)
	case s.syslog != nil:
		return len(p), s.toSyslog(string(p))
	}
	return s.stderr.Write(p)
}

// toSyslog sends a record at the severity of its level. s.mu and s.order
// are held.
func (s *Sink) toSyslog(m string) error {
	switch {
	case s.level >= slog.LevelError:
		return s.syslog.Err(m)
	case s.level >= slog.LevelWarn:
		return s.syslog.Warning(m)
	case s.level >= slog.LevelInfo:
		return s.syslog.Info(m)
	}
	return s.syslog.Debug(m)
}

// Reopen closes and opens the log file again, for a log rotated by
// moving it away; it does nothing for the other targets. It reports
// whether there was a file to reopen.
func (s *Sink) Reopen() (bool, error) {
	if s.target.Kind != config.LogFile {
		return false, nil
	}
	f, err := openFile(s.target.Path)
	if err != nil {
		return true, err // keep writing to the old one
	}
	s.mu.Lock()
	old := s.file
	s.file = f
	s.mu.Unlock()
	return true, old.Close()
}

// Close closes the target.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.file != nil:
		return s.file.Close()
	case s.syslog != nil:
		return s.syslog.Close()
	}
	return nil
}

// severity passes each record's level to the sink, for its syslog
// severity, around the write of the handler it wraps.
type severity struct {
	slog.Handler
	sink *Sink
}

func (h *severity) Handle(ctx context.Context, r slog.Record) error {
	h.sink.order.Lock()
	defer h.sink.order.Unlock()
	h.sink.level = r.Level
	return h.Handler.Handle(ctx, r)
}

func (h *severity) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &severity{Handler: h.Handler.WithAttrs(attrs), sink: h.sink}
}

func (h *severity) WithGroup(name string) slog.Handler {
	return &severity{Handler: h.Handler.WithGroup(name), sink: h.sink}
}
