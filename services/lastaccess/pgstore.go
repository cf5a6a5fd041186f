//go:build postgres

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresStore is a Store kept in the table lastaccess of a PostgreSQL
// database, which every host of a fleet can share. Each Touch is one
// connection and one statement, an upsert that returns the time it
// replaced (see pgTouch), so concurrent connections of one address, from
// any host, each see the time the one before noted and no update is lost.
// The times are the database server's clock, so the hosts' clocks do not
// matter. Its zero value is not usable: ConnString must be set.
type PostgresStore struct {
	// ConnString is a postgres:// or postgresql:// URL or a libpq
	// keyword/value string; what it leaves out comes from the PG*
	// environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
	// PGDATABASE, PGSSLMODE, PGCONNECT_TIMEOUT, ...), as with libpq.
	ConnString string
}

var _ Store = (*PostgresStore)(nil)

// defaultDBTimeout bounds connecting to the database when the connection
// string sets no connect_timeout (nor PGCONNECT_TIMEOUT); each statement
// then gets as long again.
const defaultDBTimeout = 5 * time.Second

// The table, created if missing. previous_at is the time at replaced: an
// upsert can only return the row it leaves, so it keeps the old time there.
const pgCreate = `CREATE TABLE IF NOT EXISTS lastaccess (
	ip inet PRIMARY KEY,
	at timestamptz NOT NULL,
	previous_at timestamptz
)`

// pgTouch records a connection from $1 and returns the time it replaced
// (NULL for a new address) and the time now stored, in one atomic
// statement: of two concurrent upserts of one address, the second waits
// for the first's row and replaces it. The time never goes backwards
// (greatest), even when two upserts' clocks were read in the other order.
const pgTouch = `INSERT INTO lastaccess AS r (ip, at) VALUES ($1, date_trunc('second', now()))
ON CONFLICT (ip) DO UPDATE SET previous_at = r.at, at = greatest(r.at, excluded.at)
RETURNING previous_at, at`

const pgList = `SELECT ip, at FROM lastaccess ORDER BY ip`

// Touch implements Store.
func (s *PostgresStore) Touch(ip netip.Addr) (Visit, error) {
	if !ip.IsValid() {
		return Visit{}, errors.New("touch: invalid IP address")
	}
	ip = canonicalAddr(ip)
	var v Visit
	err := s.do(func(ctx context.Context, conn *pgx.Conn) error {
		var last *time.Time
		var noted time.Time
		err := conn.QueryRow(ctx, pgTouch, ip.String()).Scan(&last, &noted)
		if isMissingTable(err) {
			// Whatever the create says, another connection may have
			// made the table meanwhile: the upsert tells.
			createErr := createTable(ctx, conn)
			if err = conn.QueryRow(ctx, pgTouch, ip.String()).Scan(&last, &noted); isMissingTable(err) && createErr != nil {
				err = createErr
			}
		}
		if err != nil {
			return fmt.Errorf("record %s: %w", ip, err)
		}
		v = Visit{Seen: last != nil, Noted: formatTime(noted)}
		if last != nil {
			v.Last = formatTime(*last)
		}
		return nil
	})
	return v, err
}

// List implements Store: every record, by address (IPv4 first, each family
// in numeric order), as "IP|TIME" lines. A missing table is no records.
func (s *PostgresStore) List() ([]string, error) {
	var lines []string
	err := s.do(func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, pgList)
		if isMissingTable(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		var ip netip.Prefix
		var at time.Time
		_, err = pgx.ForEachRow(rows, []any{&ip, &at}, func() error {
			lines = append(lines, ip.Addr().String()+"|"+formatTime(at))
			return nil
		})
		if isMissingTable(err) {
			lines, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		return nil
	})
	return lines, err
}

// Init creates the table if it is missing, and returns a sentence for the
// operator.
func (s *PostgresStore) Init() (string, error) {
	var where string
	err := s.do(func(ctx context.Context, conn *pgx.Conn) error {
		where = describe(conn.Config())
		return createTable(ctx, conn)
	})
	if err != nil {
		return "", err
	}
	return "table lastaccess is ready in " + where, nil
}

// do connects, runs f and disconnects, within the connect timeout for
// connecting and as long again for f. Its errors wrap errDB and name the
// server, user and database, never the password.
func (s *PostgresStore) do(f func(ctx context.Context, conn *pgx.Conn) error) error {
	cfg, err := pgx.ParseConfig(s.ConnString)
	if err != nil {
		// pgx's message may quote the string, password included.
		return fmt.Errorf("%w: -db is not a valid PostgreSQL connection string or URL", errDB)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultDBTimeout
	}
	where := describe(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: connect to %s (timeout %v): %v", errDB, where, cfg.ConnectTimeout, redact(err, cfg.Password))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	ctx, cancel = context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	defer cancel()
	if err := f(ctx, conn); err != nil {
		return fmt.Errorf("%w: %s: %v", errDB, where, redact(err, cfg.Password))
	}
	return nil
}

func createTable(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, pgCreate)
	var pgErr *pgconn.PgError
	// Two first connections may create it at once: one of them then
	// fails on the catalog's unique index, and the table is there.
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P07") {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("create table lastaccess: %w", err)
	}
	return nil
}

func isMissingTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01" // undefined_table
}

// describe names the database for messages: server, user and database.
func describe(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = fmt.Sprintf("%s/.s.PGSQL.%d", host, cfg.Port)
	} else {
		host = fmt.Sprintf("%s:%d", host, cfg.Port)
	}
	return fmt.Sprintf("PostgreSQL %s (user %s, database %s)", host, cfg.User, cfg.Database)
}

// redact removes password from err's message, and makes it one line.
func redact(err error, password string) string {
	msg := strings.ReplaceAll(strings.ReplaceAll(err.Error(), "\n\t", "; "), "\n", "; ")
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "********")
	}
	return msg
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// runDB is the command for a PostgreSQL -db: greet the peer, -list or
// -init. It returns the exit status.
func runDB(db string, list, initDB bool, lookupEnv func(string) (string, bool), stdout io.Writer, logf func(string, ...any)) int {
	store := &PostgresStore{ConnString: db}
	var err error
	switch {
	case list:
		err = listRecords(store, stdout)
	case initDB:
		var summary string
		if summary, err = store.Init(); err == nil {
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
