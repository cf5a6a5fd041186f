// Command lastaccess is a goinetd handler that greets a TCP peer with the time
// it last connected, and records the time of this connection.
//
// # Usage
//
//	lastaccess [-db PATH|DB]            greet the peer and record the connection
//	lastaccess [-db PATH|DB] -list      print every record, for operators
//	lastaccess [-db PATH] -migrate      turn a records file into a records folder
//	lastaccess -db DB -init             create the table in a PostgreSQL database
//
// The records are kept at PATH (default "lastaccess.db", relative to the
// working directory; goinetd runs shipped handlers with the config folder as
// working directory): in a folder when PATH is a folder or does not exist yet,
// in a single file when PATH is a regular file. See Layouts. Or they are
// kept in a PostgreSQL database DB, which several hosts can share: a -db
// that starts with postgres:// or postgresql://, or a libpq keyword/value
// string (one that starts with "keyword="); see PostgreSQL.
//
// Like any inetd handler, lastaccess gets the connection on stdin (fd 0) and
// stdout (fd 1) and its diagnostics go to stderr. The peer address is taken
// from the TCPREMOTEIP environment variable when it is set (the UCSPI
// convention), and otherwise from getpeername(2) on stdin, so the program works
// under any inetd. An IPv4-mapped IPv6 address is reported as plain IPv4 and an
// IPv6 zone is dropped: records are keyed by address. To the peer it writes
// three lines and exits:
//
//	Welcome, 192.0.2.7.
//	I last saw you at 2026-11-29T18:10:00Z.      (or: I've never seen you before.)
//	I have noted your connection at 2026-11-30T09:00:00Z.
//
// Times are RFC 3339 in UTC with second precision. The "last saw" time is the
// stored string, verbatim. The greeting is written after the record is safely
// stored and the lock released, so a slow peer never holds up other peers.
//
// With -list it prints every record and changes none (it only creates
// PATH.lock if missing). It needs no peer. With -migrate it converts a records
// file into a records folder; see Migrating.
//
// Exit status: 0 on success; 1 when the peer address cannot be found or is
// invalid, when the records cannot be read or written, when the greeting
// cannot be written, or when -migrate fails; 2 on a command-line usage error.
// Every failure is reported on stderr, naming what failed and with what path
// or value. (A peer that has already closed the connection usually ends the
// process with SIGPIPE instead; its connection is recorded all the same.)
//
// # Record format
//
// One record per line, "IP|TIME\n": IP in canonical net/netip form (lower-case
// IPv6, no zone, no IPv4-mapped IPv6), TIME in RFC 3339. For example
//
//	192.0.2.7|2026-11-29T18:10:00Z
//	2001:db8::1|2026-11-30T09:00:00Z
//
// A records file is a plain text file of such lines. An update keeps its
// lines in their order: a known address's record is rewritten where it is, a
// new one is appended. A line that is not a well-formed record is reported on
// stderr with the file's path and line number and what is wrong, never with
// its content, and kept as it is; it is never dropped, so an operator's
// mistake or note survives. If the same address
// appears twice, the first line is the record and the later one is reported
// and kept. A missing records file means no records yet.
//
// # Layouts
//
// The folder layout, used when PATH is a folder or missing, keeps each
// address's record in a records file of its own, PATH/IP, named after the
// canonical address. That name needs no escaping: it is made of 0-9, a-f, "."
// and ":" only, is never "." or "..", never starts with a dot, and is at most
// 39 bytes. The first update creates PATH (mode 0755 less the umask). An
// update reads and rewrites only the one tiny file of its address, so its cost
// does not depend on the number of records (the folder lookup is hashed on
// ext4, xfs and tmpfs). In an address's file, a well-formed line for another
// address is reported and kept, like a malformed line. -list prints the lines
// of the address files sorted by address (IPv4 first, each family in numeric
// order), then those of any other file in the folder, by name, after saying
// on stderr that it holds no record (a migration's PATH/malformed is one);
// entries that are not files are reported and skipped. An update reports only
// problems in its own address's file.
//
// The file layout, used when PATH is an existing regular file (as created by
// earlier versions), keeps every record in PATH itself, and -list prints its
// lines in file order. Every update reads, parses and rewrites the whole
// file, so its cost grows linearly with the number of records: about 0.6 ms
// more per 1,000 records on the machine of docs/performance.md, where 4
// connections at a time get 560 updates/s at 1,000 records, 130 at 10,000
// and 15 at 100,000, against about 700 at any size in the folder layout.
// -migrate converts it into the folder layout.
//
// # Whom it trusts
//
// lastaccess often runs as root, and its stderr reaches goinetd's log or
// even the client. So it never opens a records file or its lock file
// through a symbolic link (the open is refused and reported; -list skips
// such an entry), it opens an address's file relative to the records
// folder it checked, and it refuses to work with a records folder, or the
// folder holding PATH and PATH.lock, that a user other than root or its own
// could write: owned by another user, writable by a group other than root's
// or its own, or writable by every user (allowed, for the folder holding
// PATH only, when its sticky bit is set, as on /tmp).
//
// # Locking
//
// Every access, in either layout, locks a separate lock file, PATH.lock
// (created with mode 0644 when missing, never removed). The lock cannot be
// on a records file itself, because an update may replace that file by
// rename: a process blocked on the old inode would wake up holding a lock on
// a file nobody reads any more. Two kinds of lock on it, which Linux keeps
// apart:
//
//   - flock(2) on the whole file: shared by every update and -list,
//     exclusive for -migrate, so no update or listing runs during a
//     migration. The layout is chosen under it, so an update never races a
//     migration.
//   - Under it, record locks (fcntl F_OFD_SETLKW, which belong to the open
//     file, not the process) on bytes of the file, which is never written:
//     an update in the folder layout write-locks one byte that stands for
//     its address (a hash of it, see addrKey: two addresses that share one
//     only wait for each other); an update in the file layout write-locks
//     them all; -list read-locks them all.
//
// So a connection holds its address's lock across the whole
// read-modify-write, and two concurrent connections of one address never
// both read the old record: no update is lost. Connections of different
// addresses update at once in the folder layout, which is what lets it keep
// up with goinetd (see Throughput). -list sees the records either before
// an update or after it. The clock is read under the address's lock, so the
// time stored for an address never goes backwards unless the system clock
// does. A process killed while holding a lock releases it with its
// descriptors. Earlier versions held the flock exclusively for an update;
// they and this one exclude each other, so they may run side by side
// during an upgrade. An update that may not open the lock file for writing
// (record write locks need that; an operator's -list as root may have
// created it) takes the flock exclusively instead. The lock file must be on
// a local filesystem, and must not be deleted while lastaccess may run:
// processes would then lock different inodes.
//
// # Crash safety
//
// The common update, of an address whose file holds exactly its one record
// as lastaccess writes it, overwrites that record in place: the new record
// has the same length (the address, "|", and a 20-byte time), so one
// pwrite(2) at offset 0 replaces it, and fdatasync(2) makes it durable
// before the client is answered. The record is at most 61 bytes, inside the
// file's first 512-byte sector, and the file keeps its size and blocks, so
// the write is atomic: a SIGKILL cannot stop it halfway (the kernel copies
// it into one page of the page cache in one step), nor can a power loss on
// a disk that writes a sector atomically, the assumption PostgreSQL makes
// for its pg_control file. It costs one write and one flush, and no new
// inode, rename or folder fsync.
//
// Every other update never writes a records file in place: it writes the
// file's whole new content to a temporary file, fsyncs it, renames it over
// the records file and fsyncs the records file's folder. rename(2) is
// atomic, so after a crash at any moment, SIGKILL included, the records file
// holds either the old lines or the new ones, never a torn line. That is a
// new address's first update, a file holding anything else (another time
// zone, notes, malformed lines) or one lastaccess may not write, and every
// update in the file layout. On any failure the temporary file is removed
// and the records file is untouched. The temporary files are
// "PATH/.tmp/IP.tmp-PID-RANDOM" in the folder layout, and
// ".BASE.tmp-PID-RANDOM" beside PATH in the file layout (BASE is PATH's
// base name). A process killed between creating and renaming its temporary
// file leaves it behind. The next update that writes a temporary file
// removes every such file it finds first, and reports each one on stderr:
// in the file layout, all of them (it holds every record's lock); in the
// folder layout, those whose address's lock it holds or can take at once,
// since an update creates its temporary file only under its address's lock
// and removes or renames it before releasing it. In the folder layout it
// looks for them in PATH/.tmp only, a folder that is almost always empty,
// so that this costs nothing per record either.
//
// # Migrating
//
// lastaccess -db PATH -migrate turns the records file PATH into a records
// folder at the same path while goinetd keeps serving; connections wait on
// the lock meanwhile (-migrate of 100,000 records took 8 s on the machine
// of docs/performance.md, so pick a quiet moment). Each address's record goes to its file,
// followed by any duplicate lines for it; the malformed lines go, in order,
// to PATH/malformed. The folder and the files get the old file's permissions
// (plus x on the folder wherever it has r). The old file is kept as
// PATH.old, for the operator to delete. The steps, and what a crash after
// each leaves:
//
//  1. Build the folder as PATH.migrating, then syncfs(2) and fsync it. A crash
//     leaves PATH the records file, still in use, and a partial
//     PATH.migrating, which the next -migrate removes before starting again.
//  2. Swap PATH.migrating and PATH in one atomic renameat2(RENAME_EXCHANGE),
//     and fsync the parent folder. PATH is never missing, so no update can
//     start a fresh empty store in its place. A crash leaves PATH the folder,
//     in use, and the old file as PATH.migrating.
//  3. Rename PATH.migrating to PATH.old and fsync the parent folder. If a
//     crash came first, the next -migrate does this step.
//
// So after a crash, run -migrate again: it finishes or redoes the migration,
// and no record is lost in any case. It refuses, changing nothing, when
// PATH.old already exists or something else is at PATH.migrating.
//
// RENAME_EXCHANGE works on ext4, xfs, btrfs and tmpfs, not on NFS, for
// instance. Where it does not, -migrate fails and changes nothing; then
// migrate by hand, with goinetd stopped so that nothing updates the records
// meanwhile, through a filesystem that has it (here /tmp):
//
//	systemctl stop goinetd
//	cp PATH /tmp/records && lastaccess -db /tmp/records -migrate
//	mv PATH PATH.old && cp -a /tmp/records PATH && sync
//	systemctl start goinetd
//
// If that is interrupted, remove the partial PATH folder and redo the copy.
//
// # PostgreSQL
//
// With -db naming a PostgreSQL database, the records are rows of the table
// lastaccess (ip inet primary key, at timestamptz, previous_at
// timestamptz), which every host of a fleet behind a load balancer can
// share: a client is known whichever host it reaches. The table is created
// by the first connection that finds it missing, or beforehand by
// lastaccess -db DB -init (which the database user needs the right to do
// once; afterwards it needs only SELECT, INSERT and UPDATE on the table).
// DB is a postgres:// or postgresql:// URL or a libpq keyword/value string,
// and what it leaves out comes from the PG* environment variables as with
// libpq (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE,
// PGCONNECT_TIMEOUT, PGPASSFILE, ...; goinetd passes a handler only the
// variables its service's env and pass_env name). -db postgres:// takes
// everything from them.
//
// Each connection of a client is one connection to the database and one
// statement, an upsert that returns the time it replaced:
//
//	INSERT INTO lastaccess AS r (ip, at) VALUES ($1, date_trunc('second', now()))
//	ON CONFLICT (ip) DO UPDATE SET previous_at = r.at, at = greatest(r.at, excluded.at)
//	RETURNING previous_at, at
//
// It is atomic: of two concurrent connections of one address, on any hosts,
// the second waits for the first's row and replaces it, so each sees the
// time the one before noted, "never seen" is said once per address across
// the fleet, and no update is lost. The times come from the database
// server's clock, so the hosts' clocks do not matter, and a stored time
// never goes backwards. The greeting is written once the statement has
// committed, so, with the server's default synchronous_commit, the record
// is durable before the client is answered; a handler killed at any moment
// leaves the row before or after its statement.
//
// -list prints every row as "IP|TIME", by address (IPv4 first, each family
// in numeric order), as of one snapshot; a missing table is no records.
// -migrate does not apply (it turns a records file into a folder).
//
// When the database cannot be reached or used (down, refusing the user, no
// table it may create, too slow), the client gets one line,
//
//	Sorry, I cannot reach my records right now. Please try again later.
//
// lastaccess reports why on stderr (goinetd's log) in one line starting
// "lastaccess: database unavailable:", naming the server, user and
// database but never the password, and exits 1. Connecting is bounded by
// the connection string's connect_timeout (or PGCONNECT_TIMEOUT), 5 s when
// it sets none, and the statement by as long again, so a handler never
// hangs on a database that does not answer. Nothing is retried: the
// client may connect again.
//
// The driver is github.com/jackc/pgx/v5, in a second build of this
// program, lastaccess-postgres (go build -tags postgres), which lastaccess
// runs in its own place (execve, same arguments, environment and
// descriptors) when -db names a database. make build and make install put
// it beside lastaccess. The driver's packages (TLS, x509, Unicode tables)
// take about 1.5 ms to initialise, which would slow every connection of a
// records folder; in a build of its own they cost that store nothing.
//
// # Which store
//
// A records folder (the default) on one host: the fastest, keeps up with
// goinetd's spawn rate, survives SIGKILL and crashes as above, needs
// nothing else. A records file: only as left by earlier versions; migrate
// it. PostgreSQL: when several hosts must share what they know of their
// clients, or the records must be backed up, replicated or queried with
// the database's tools. It costs a database connection per client
// connection (a server process forked by PostgreSQL, authentication, one
// round trip), so it serves fewer connections per second, and a client is
// turned away with the apology while the database is down.
//
// # Throughput
//
// BenchmarkBesideEcho drives the real binaries through goinetd, in one
// run: 8 clients in a closed loop from 200 loopback addresses, each of
// which has connected once, alternating 2-second phases of the bundled
// echo handler, of lastaccess with a records folder, and of lastaccess
// with PostgreSQL 15 (a local server on a unix socket, fsync on), each
// handler with the environment the shipped inetd.toml gives it (since
// 2026-12-07; the runs below are from before, without it):
//
//	go test -run '^$' -bench BesideEcho -benchtime 5x ./services/lastaccess/
//
// On this machine (2 vCPUs, Linux 6.18, Go 1.26.8, ext4 on a virtio disk),
// 2026-12-07, shared with other sessions' builds and tests (load average
// 13-15), so the rates move from run to run but the three in one run
// share the same load. Connections per second (the mean of 5 iterations,
// as the benchmark reported then; it now reports medians), and the CPU
// time of the handler processes per connection:
//
//	run   echo         records folder             PostgreSQL
//	1     638  2.1 ms  518 (0.81 echo)  2.7 ms    93 (0.15 echo)  8.7 ms
//	2     712  2.0 ms  498 (0.70 echo)  2.9 ms   104 (0.15 echo)  8.2 ms
//	3     662  2.2 ms  494 (0.75 echo)  2.9 ms    94 (0.14 echo)  9.2 ms
//
// Over the eleven runs of the day the folder served 0.64 to 0.84 of echo's
// rate (0.85 in one run with the fdatasync taken out, which is the part
// of the gap that durability costs; the rest is the handler's own 0.6-0.8
// ms of CPU: its package initialisation, the lock, the folder checks and
// the write).
// Before this version an update held one exclusive lock across its two
// fsyncs, so updates went one at a time: 90 connections/s beside echo's
// 351 (0.26) in the same benchmark. Both handlers' CPU is mostly the Go
// runtime's start. The PostgreSQL store's cost is the database connection
// (PostgreSQL forks a server process for each one, not counted above) and
// a second program start, lastaccess-postgres with its driver.
// Since the greeting is built without fmt (about 80 µs less CPU per
// connection), fifteen runs gave 0.73 to 0.86 of echo's rate, median
// 0.80, and seven with shorter phases (-benchtime 20x -lastaccess.phase
// 500ms) 0.77 to 0.81, median 0.79; the benchmark now reports medians
// over its iterations.
// docs/performance.md ("lastaccess at scale") has those runs, and where a
// handler's CPU goes against the floor of a Go program making only the
// update's system calls.
package main
