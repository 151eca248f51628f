// Package dbtest opens throwaway databases for tests: SQLite in memory,
// SQLite in a file, and PostgreSQL when IAM_TEST_POSTGRES_DSN is set. Every
// call gets a database of its own (a uniquely named memory database, a file
// in t.TempDir(), or a fresh PostgreSQL schema), so tests and packages can
// run in parallel, and everything is closed and dropped in t.Cleanup.
//
// The usual shape of a test that runs on every kind:
//
//	for _, kind := range dbtest.Kinds(t) {
//		t.Run(kind.String(), func(t *testing.T) {
//			t.Parallel()
//			db := dbtest.Open(t, kind)
//			...
//		})
//	}
//
// GORM's logger is silent unless IAM_TEST_SQL_LOG is set to a non-empty
// value, which logs every statement.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// EnvPostgresDSN names the environment variable holding the PostgreSQL DSN
// (URL or key=value form) that PostgreSQL tests run against. Without it,
// the Postgres kind is skipped. The role must be allowed to create schemas.
const EnvPostgresDSN = "IAM_TEST_POSTGRES_DSN"

// EnvSQLLog names the environment variable that, when non-empty, makes
// the databases Open returns log every SQL statement.
const EnvSQLLog = "IAM_TEST_SQL_LOG"

// Kind is a kind of test database.
type Kind int

// The kinds of test database. Their order is the order Kinds returns.
const (
	// SQLiteMemory is a private shared-cache SQLite database in memory,
	// reached through a single connection (see Open).
	SQLiteMemory Kind = iota + 1
	// SQLiteFile is a SQLite database file in WAL mode in t.TempDir().
	SQLiteFile
	// Postgres is a fresh schema on the server of IAM_TEST_POSTGRES_DSN.
	Postgres
)

// String returns the kind's name, used as the subtest name:
// "sqlite-memory", "sqlite-file" or "postgres".
func (k Kind) String() string {
	switch k {
	case SQLiteMemory:
		return "sqlite-memory"
	case SQLiteFile:
		return "sqlite-file"
	case Postgres:
		return "postgres"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Kinds returns the kinds of database this test run can use: both SQLite
// kinds always, and Postgres when IAM_TEST_POSTGRES_DSN is set (otherwise
// it logs that PostgreSQL is skipped).
func Kinds(t testing.TB) []Kind {
	t.Helper()
	if os.Getenv(EnvPostgresDSN) == "" {
		t.Logf("dbtest: %s is not set; skipping PostgreSQL", EnvPostgresDSN)
		return []Kind{SQLiteMemory, SQLiteFile}
	}
	return []Kind{SQLiteMemory, SQLiteFile, Postgres}
}

// busyTimeout is how long a SQLite connection waits for another
// connection's lock before failing with SQLITE_BUSY. Generous, because
// tests run under the race detector on small machines.
const busyTimeout = 30 * time.Second

// Open returns a new, empty database of the given kind, private to this
// call, closed (and for PostgreSQL dropped) in t.Cleanup. It skips the
// test for Postgres when IAM_TEST_POSTGRES_DSN is unset, and fails it when
// the database cannot be opened. It is safe to call from parallel tests.
//
// Connection settings, chosen so that concurrent transactions wait for
// each other instead of failing:
//
//   - Every SQLite DSN sets _txlock=immediate, so a transaction takes
//     SQLite's write lock at BEGIN. With the default deferred BEGIN, two
//     transactions that both read and then write can deadlock, and SQLite
//     answers SQLITE_BUSY at once (the busy timeout cannot help a
//     transaction whose snapshot is already stale). With BEGIN IMMEDIATE
//     the second writer simply waits, up to the busy timeout
//     (_busy_timeout, 30s). Read-only transactions are serialized too, a
//     fair price for tests.
//   - SQLiteMemory uses one connection (SetMaxOpenConns(1)). A shared-cache
//     memory database locks per table and reports conflicts as
//     SQLITE_LOCKED, which the busy timeout does not cover (only the
//     sqlite_unlock_notify build tag would), so several connections would
//     fail under concurrency. One connection serializes everything in
//     database/sql's pool instead. The consequence for callers: while a
//     transaction or an unclosed *sql.Rows holds the connection, any other
//     statement on the same *gorm.DB (not on the transaction) blocks until
//     it is released; code under test must use the transaction it is given.
//     Shared cache and a unique name keep the database alive until the
//     test ends (a second connection, idle, holds it: see keepAlive), and
//     no two calls ever share one.
//   - SQLiteFile uses WAL (readers do not block the writer or each other)
//     and synchronous=NORMAL, with database/sql's default unlimited pool.
//   - Postgres connects with search_path set to a fresh schema of a random
//     name, and at most 8 open connections per database so that parallel
//     tests of parallel packages stay well below max_connections.
func Open(t testing.TB, kind Kind) *gorm.DB {
	t.Helper()
	var db *gorm.DB
	switch kind {
	case SQLiteMemory:
		dsn := "file:memdb_" + randomName() + "?mode=memory&cache=shared" + sqliteParams
		keepAlive(t, dsn)
		db = open(t, sqlite.Open(dsn))
		sqlDB(t, db).SetMaxOpenConns(1)
	case SQLiteFile:
		// A plain path, not a file: URI: t.TempDir() may contain '#', '%'
		// or '&', which a URI would misread; the driver strips the query
		// from a plain path before opening it.
		path := filepath.Join(t.TempDir(), "test.db")
		db = open(t, sqlite.Open(SQLiteFileDSN(path)))
	case Postgres:
		db = openPostgres(t)
	default:
		t.Fatalf("dbtest: unknown %v", kind)
	}
	return db
}

// SQLiteFileDSN returns the DSN this package opens an SQLite file with:
// WAL, synchronous=NORMAL, a busy timeout and immediate transactions.
func SQLiteFileDSN(path string) string {
	return path + "?_journal_mode=WAL&_synchronous=NORMAL" + sqliteParams
}

var sqliteParams = fmt.Sprintf("&_busy_timeout=%d&_txlock=immediate&_foreign_keys=1", busyTimeout.Milliseconds())

// keepAlive holds a connection of its own to the shared-cache memory
// database of dsn until the test ends (its cleanup runs after the test's
// pool has closed). A memory database disappears with its last
// connection, and database/sql discards a connection whose transaction's
// context is cancelled (the SQLite driver cannot reset a session): with
// the pool's one connection alone, a cancelled transaction would wipe the
// database. This connection runs no statement, so it takes no lock.
func keepAlive(t testing.TB, dsn string) {
	t.Helper()
	s, err := sql.Open(sqlite.DriverName, dsn)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", dsn, err)
	}
	conn, err := s.Conn(context.Background())
	if err != nil {
		t.Fatalf("dbtest: connect %s: %v", dsn, err)
	}
	t.Cleanup(func() {
		conn.Close()
		s.Close()
	})
}

func openPostgres(t testing.TB) *gorm.DB {
	t.Helper()
	base := os.Getenv(EnvPostgresDSN)
	if base == "" {
		t.Skipf("dbtest: %s is not set", EnvPostgresDSN)
	}
	dsn, drop, err := NewSchema(base)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	// Cleanups run last-registered first: the test's own connections close
	// (registered below) before the schema is dropped.
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	db := open(t, postgres.Open(dsn))
	sqlDB(t, db).SetMaxOpenConns(8)
	var got string
	if err := db.Raw("SELECT current_schema()").Scan(&got).Error; err != nil || !strings.HasPrefix(got, "iamtest_") {
		t.Fatalf("dbtest: current_schema() = %q, %v; want a fresh iamtest_ schema", got, err)
	}
	return db
}

// NewSchema creates a fresh, uniquely named schema on the PostgreSQL
// server of the DSN base and returns a DSN whose connections work in it
// (search_path), and drop, which drops the schema with everything in it.
// Close every connection of dsn before calling drop. For tests, Open does
// all this; NewSchema serves programs such as the benchmark report.
func NewSchema(base string) (dsn string, drop func() error, err error) {
	schema := "iamtest_" + randomName()
	dsn, err = withSearchPath(base, schema)
	if err != nil {
		return "", nil, fmt.Errorf("postgres dsn: %w", err)
	}
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return "", nil, fmt.Errorf("open postgres: %w", err)
	}
	adminDB, err := admin.DB()
	if err != nil {
		return "", nil, err
	}
	// The admin pool keeps no idle connection: it is needed again only to
	// drop the schema.
	adminDB.SetMaxOpenConns(1)
	adminDB.SetMaxIdleConns(0)
	// The schema name is generated above from hex digits only, so it is
	// safe to splice into DDL (which takes no bind parameters).
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		adminDB.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() error {
		defer adminDB.Close()
		if err := admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE").Error; err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	return dsn, drop, nil
}

// withSearchPath adds search_path=schema to a PostgreSQL DSN, in URL or
// key=value form; pgx sends unknown parameters as run-time parameters.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

func open(t testing.TB, d gorm.Dialector) *gorm.DB {
	t.Helper()
	cfg := &gorm.Config{Logger: logger.Discard}
	if os.Getenv(EnvSQLLog) != "" {
		cfg.Logger = logger.New(log.New(os.Stderr, "", log.LstdFlags), logger.Config{LogLevel: logger.Info})
	}
	db, err := gorm.Open(d, cfg)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", d.Name(), err)
	}
	s := sqlDB(t, db)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("dbtest: close: %v", err)
		}
	})
	return db
}

func sqlDB(t testing.TB, db *gorm.DB) *sql.DB {
	t.Helper()
	s, err := db.DB()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return s
}

func randomName() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}
