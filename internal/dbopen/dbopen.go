// Package dbopen opens the database named by a --db flag, the one
// convention of the module's commands (cmd/iamctl, examples/apiserver):
// "sqlite:PATH" for an SQLite file or a postgres:// (or postgresql://) URL
// for PostgreSQL.
package dbopen

import (
	"fmt"
	"strings"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open opens the database of a --db value: "sqlite:PATH" (a file, created
// if missing, in WAL mode, with a busy timeout and BEGIN IMMEDIATE so that
// writers wait for each other) or a postgres:// or postgresql:// URL.
// GORM's logger is silent. Close the result with Close.
//
// Errors name the flag and the value with its password hidden (Redact).
func Open(spec string) (*gorm.DB, error) {
	gcfg := &gorm.Config{Logger: logger.Discard}
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
			return nil, fmt.Errorf("--db %q: want sqlite:PATH, a file path without ? or #", spec)
		}
		// A plain path, not a file: URI, so that '%' in it is not
		// unescaped; the driver takes the parameters after '?'.
		return gorm.Open(sqlite.Open(path+"?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=1"), gcfg)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return gorm.Open(postgres.Open(spec), gcfg)
	}
	return nil, fmt.Errorf("--db %q: want sqlite:PATH or a postgres:// URL", Redact(spec))
}

// Redact hides the password of a URL-form DSN (scheme://user:password@host)
// for logs and messages; anything else is returned unchanged.
func Redact(spec string) string {
	if i := strings.Index(spec, "://"); i >= 0 {
		if at := strings.LastIndex(spec, "@"); at > i {
			if colon := strings.Index(spec[i+3:at], ":"); colon >= 0 {
				return spec[:i+3+colon] + ":xxxxx" + spec[at:]
			}
		}
	}
	return spec
}

// Close closes db's connection pool, ignoring errors: for deferred calls
// at the end of a command.
func Close(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}
