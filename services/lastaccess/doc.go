// Command lastaccess is a goinetd handler that greets a TCP peer with the time
// it last connected, and records the time of this connection.
//
// # Usage
//
//	lastaccess [-db PATH]            greet the peer and record the connection
//	lastaccess [-db PATH] -list      print every record, for operators
//	lastaccess [-db PATH] -migrate   turn a records file into a records folder
//
// The records are kept at PATH (default "lastaccess.db", relative to the
// working directory; goinetd runs shipped handlers with the config folder as
// working directory): in a folder when PATH is a folder or does not exist yet,
// in a single file when PATH is a regular file. See Layouts.
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
// Every access, in either layout, holds flock(2) on a separate lock file,
// PATH.lock (created with mode 0644 when missing, never removed). The lock
// cannot be on a records file itself, because an update replaces that file by
// rename: a process blocked on the old inode would wake up holding a lock on
// a file nobody reads any more. A connection holds one exclusive lock across
// the whole read-modify-write, so two concurrent connections never both read
// the old record and one of the updates is never lost. -list holds a shared
// lock while it reads, so it sees the records either before an update or after
// it. -migrate holds the exclusive lock throughout. The layout is chosen after
// the lock is taken, so an update never races a migration. The clock is read
// under the exclusive lock, so the time stored for an address never goes
// backwards unless the system clock does. The lock file must not be deleted
// while lastaccess may run: processes would then lock different inodes.
//
// # Crash safety
//
// An update never writes a records file in place. Under the exclusive lock
// it writes the file's whole new content to a temporary file, fsyncs it,
// renames it over the records file and fsyncs the records file's folder.
// rename(2) is atomic, so after a crash at any moment, SIGKILL included, the
// records file holds either the old lines or the new ones, never a torn line.
// On any failure the temporary file is removed and the records file is
// untouched. The temporary files are "PATH/.tmp/IP.tmp-PID-RANDOM" in the
// folder layout, and ".BASE.tmp-PID-RANDOM" beside PATH in the file layout
// (BASE is PATH's base name). A process killed between creating and renaming
// its temporary file leaves it behind; since only the holder of the exclusive
// lock ever creates one, the next update removes every such file it finds
// before writing, and reports each one on stderr. In the folder layout it
// looks for them in PATH/.tmp only, a folder that is almost always empty, so
// that this costs nothing per record either.
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
package main
