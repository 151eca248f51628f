package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// Database is a throwaway database for the benchmarks: an SQLite file in
// a temporary directory or a fresh PostgreSQL schema, removed by Close.
type Database struct {
	Kind string // "sqlite-file" or "postgres"
	DB   *gorm.DB
	// Reopen opens a second, independent pool on the same database, as
	// another process starting would.
	Reopen func() (*gorm.DB, error)
	remove func() error
}

// Close closes the pool and removes the database.
func (d *Database) Close() error {
	CloseDB(d.DB)
	return d.remove()
}

// CloseDB closes a pool Reopen returned.
func CloseDB(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

var quiet = &gorm.Config{Logger: logger.Discard}

// OpenSQLiteFile creates an SQLite database file (WAL) in a new directory
// under dir ("" for the system's temporary directory).
func OpenSQLiteFile(dir string) (*Database, error) {
	tmp, err := os.MkdirTemp(dir, "iam-bench-")
	if err != nil {
		return nil, err
	}
	dsn := dbtest.SQLiteFileDSN(filepath.Join(tmp, "iam.db"))
	open := func() (*gorm.DB, error) { return gorm.Open(sqlite.Open(dsn), quiet) }
	db, err := open()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &Database{Kind: "sqlite-file", DB: db, Reopen: open, remove: func() error { return os.RemoveAll(tmp) }}, nil
}

// OpenPostgres creates a fresh schema on the server of the DSN base.
func OpenPostgres(base string) (*Database, error) {
	dsn, drop, err := dbtest.NewSchema(base)
	if err != nil {
		return nil, err
	}
	open := func() (*gorm.DB, error) { return gorm.Open(postgres.Open(dsn), quiet) }
	db, err := open()
	if err != nil {
		drop()
		return nil, err
	}
	return &Database{Kind: "postgres", DB: db, Reopen: open, remove: drop}, nil
}

// ImportBatchSize is how many users one Import call of Populate writes.
const ImportBatchSize = 10_000

// Populate writes w into svc's database db through the module's bulk
// import (Service.Import): every organization, user, membership and
// grant, in transactions of ImportBatchSize users, each with its audit
// event. The accounts have no password (as imported accounts may), so no
// argon2 runs. Then it runs ANALYZE, as a migration should after a bulk
// load: until the database has statistics of the new rows (PostgreSQL's
// autovacuum gathers them eventually), its planner may scan a table where
// an index serves. It returns how long the import and ANALYZE took.
func Populate(ctx context.Context, svc *iam.Service, db *gorm.DB, w *Workload) (time.Duration, error) {
	start := time.Now()
	orgs := make([]iam.ImportOrg, len(w.Orgs))
	for i, o := range w.Orgs {
		orgs[i] = iam.ImportOrg{ID: o, Name: fmt.Sprintf("Org %d", i+1)}
	}
	for i := 0; i < len(w.Users); i += ImportBatchSize {
		var b iam.ImportBatch
		if i == 0 {
			b.Orgs = orgs
		}
		for j, u := range w.Users[i:min(i+ImportBatchSize, len(w.Users))] {
			n := i + j + 1
			iu := iam.ImportUser{ID: u.ID, Email: fmt.Sprintf("user%d@example.com", n), Name: fmt.Sprintf("User %d", n), PlatformAdmin: u.PlatformAdmin}
			if !u.PlatformAdmin {
				iu.Memberships = map[authz.OrgID]authz.Membership{u.Org: u.Membership}
			}
			b.Users = append(b.Users, iu)
		}
		if _, err := svc.Import(ctx, b); err != nil {
			return 0, fmt.Errorf("bench: populate: %w", err)
		}
	}
	if err := db.WithContext(ctx).Exec("ANALYZE").Error; err != nil {
		return 0, fmt.Errorf("bench: populate: analyze: %w", err)
	}
	return time.Since(start), nil
}
