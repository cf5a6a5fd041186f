package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the whole command: it parses args, then lists the records, migrates
// a records file to a folder, or greets the peer on stdin/stdout. It returns the exit status: 0 on success,
// 1 on a failure (reported on stderr), 2 on a usage error.
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("lastaccess", flag.ContinueOnError)
	flags.SetOutput(stderr)
	db := flags.String("db", "lastaccess.db", "records `PATH`: a folder (created if missing) or a records file, whose lock file is PATH.lock; "+
		"or a PostgreSQL database: a postgres:// or postgresql:// URL or a libpq connection string (PG* variables fill in the rest)")
	list := flags.Bool("list", false, "print every record, under a shared lock, instead of greeting a peer")
	migrate := flags.Bool("migrate", false, "turn the records file PATH into a folder, keeping the file as PATH.old, instead of greeting a peer")
	initDB := flags.Bool("init", false, "create the table lastaccess in the PostgreSQL database -db if it is missing, instead of greeting a peer")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: lastaccess [-db PATH|URL] [-list | -migrate | -init]\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "lastaccess: unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return 2
	}
	if *db == "" {
		fmt.Fprintf(stderr, "lastaccess: -db must not be empty\n")
		return 2
	}
	if n := count(*list, *migrate, *initDB); n > 1 {
		fmt.Fprintf(stderr, "lastaccess: -list, -migrate and -init exclude each other\n")
		return 2
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "lastaccess: "+format+"\n", args...)
	}
	if isConnString(*db) {
		if *migrate {
			logf("-migrate turns a records file into a records folder; -db names a PostgreSQL database")
			return 2
		}
		return runDB(*db, *list, *initDB, lookupEnv, stdout, logf)
	}
	if *initDB {
		fmt.Fprintf(stderr, "lastaccess: -init is for a PostgreSQL -db (a postgres:// URL or a connection string); a records folder is created by the first update\n")
		return 2
	}
	// "records/" must not put the lock file inside the folder.
	path := filepath.Clean(*db)

	store := &AutoStore{Path: path, Logf: logf}
	var err error
	switch {
	case *list:
		err = listRecords(store, stdout)
	case *migrate:
		var summary string
		if summary, err = Migrate(path, logf); err == nil {
			_, err = fmt.Fprintln(stdout, summary)
		}
	default:
		err = greet(store, lookupEnv, stdout)
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

func count(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// errDB marks the errors of a database that cannot be reached or used: the
// client gets an apology (see greet).
var errDB = errors.New("database unavailable")

// isConnString reports whether the -db value names a PostgreSQL database
// rather than a path: a postgres:// or postgresql:// URL, or a libpq
// keyword/value string ("host=/run/postgresql dbname=lastaccess").
func isConnString(db string) bool {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return true
	}
	keyword, _, found := strings.Cut(strings.TrimSpace(db), "=")
	keyword = strings.TrimSpace(keyword)
	return found && keyword != "" && strings.Trim(keyword, "abcdefghijklmnopqrstuvwxyz_") == ""
}

// apology is all a client gets when the records cannot be reached.
const apology = "Sorry, I cannot reach my records right now. Please try again later.\n"

// listRecords writes every line of store to w, one per line.
func listRecords(store Store, w io.Writer) error {
	lines, err := store.List()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	return nil
}

// greet finds the peer (see peerAddr), records the connection in store, then
// writes the three greeting lines to w in one write. Recording happens first,
// so a peer that reads the greeting knows its connection is stored; the
// store's lock is released before writing, so a slow peer holds up nobody.
// When the store is a database that cannot be reached or used, the peer
// gets the apology line instead, and the error is returned.
func greet(store Store, lookupEnv func(string) (string, bool), w io.Writer) error {
	ip, err := peerAddr(lookupEnv, 0)
	if err != nil {
		return err
	}
	v, err := store.Touch(ip)
	if errors.Is(err, errDB) {
		io.WriteString(w, apology) // the error to report is err
	}
	if err != nil {
		return err
	}
	// One concatenation, not fmt: in a process that lives for one
	// connection, fmt's first use costs about 80 µs of CPU at 8 clients
	// (docs/performance.md).
	last := "I've never seen you before.\n"
	if v.Seen {
		last = "I last saw you at " + v.Last + ".\n"
	}
	greeting := "Welcome, " + ip.String() + ".\n" + last + "I have noted your connection at " + v.Noted + ".\n"
	if _, err := io.WriteString(w, greeting); err != nil {
		return fmt.Errorf("write greeting to %s: %w", ip, err)
	}
	return nil
}

// peerAddr returns the canonical (see canonicalAddr) address of the peer: the
// TCPREMOTEIP environment variable when it is set, even to an invalid or empty
// value, which is an error; otherwise getpeername(2) on fd. It is an error if
// fd is not a socket or its peer has no IP address.
func peerAddr(lookupEnv func(string) (string, bool), fd int) (netip.Addr, error) {
	if v, ok := lookupEnv("TCPREMOTEIP"); ok {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("invalid TCPREMOTEIP %q: %w", v, err)
		}
		return canonicalAddr(ip), nil
	}
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find peer: TCPREMOTEIP is not set and getpeername on fd %d failed: %w", fd, err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr), nil
	case *unix.SockaddrInet6:
		return canonicalAddr(netip.AddrFrom16(sa.Addr)), nil
	default:
		return netip.Addr{}, fmt.Errorf("find peer: TCPREMOTEIP is not set and the peer of fd %d has no IP address (%T)", fd, sa)
	}
}
