package gormstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/kiops/iam/authz"
)

// scope is where the methods of the identity, approval and audit stores
// run: inside one Tx (the store returned by Tx.Identity and its siblings),
// or on the Store's *gorm.DB, each method in a transaction of its own (the
// store returned by Store.Identity and its siblings).
type scope struct {
	tx *Tx      // nil: each method on db, in a transaction of its own
	db *gorm.DB // the Store's database, when tx is nil
}

// read runs fn, a query of one statement, with bound parameters only. In a
// Tx it runs on the transaction; otherwise on the database, outside any
// transaction (one statement is atomic by itself).
func (s scope) read(ctx context.Context, op string, fn func(db *gorm.DB) error) error {
	if s.tx == nil {
		return wrap(op, fn(s.db.WithContext(ctx)))
	}
	return s.inTx(ctx, op, fn)
}

// write runs fn, which may run several statements that must hold
// together. In a Tx it runs on the transaction; otherwise in a transaction
// of its own, committed when fn returns nil and rolled back otherwise.
func (s scope) write(ctx context.Context, op string, fn func(db *gorm.DB) error) error {
	if s.tx == nil {
		return wrap(op, s.db.WithContext(ctx).Transaction(fn))
	}
	return s.inTx(ctx, op, fn)
}

// inTx runs fn on the Tx. A storage failure (an error fn marked with
// failed: a statement that did not run through) spoils the Tx, as a failed
// policy write does: on PostgreSQL the transaction is aborted by then
// anyway. An outcome fn determined from statements that succeeded and that
// wrote nothing (authz.ErrInvalid, authz.ErrNotFound, a conflict found
// with ON CONFLICT DO NOTHING or a conditional update) leaves the Tx
// usable: the caller decides.
func (s scope) inTx(ctx context.Context, op string, fn func(db *gorm.DB) error) error {
	t := s.tx
	if err := t.usable(op); err != nil {
		return err
	}
	err := fn(t.db.WithContext(ctx))
	var se *storageError
	if errors.As(err, &se) {
		return t.fail(op, err)
	}
	return wrap(op, err)
}

// wrap prefixes err with the operation, as every error of the package is.
// deleteOwned deletes every row of model whose owner column holds id: the
// deletes by user or by org of the stores. column is "user_id" or
// "org_id", a constant of this package (never input); idErr is the
// caller's parse of id, refused as op's *authz.InvalidError before
// anything is written.
func (s scope) deleteOwned(ctx context.Context, op, column, id string, idErr error, model any) error {
	if idErr != nil {
		return wrap(op, idErr)
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		return failed(db.Where(column+" = ?", id).Delete(model).Error)
	})
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("gormstore: %s: %w", op, err)
}

// storageError is a failure of the database: a statement that did not run
// through (a lost connection, a cancelled context, a constraint the store
// did not expect to hit). A unique violation among them also matches
// authz.ErrConflict.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// Is makes a unique violation match authz.ErrConflict, on every dialect.
func (e *storageError) Is(target error) bool {
	return target == authz.ErrConflict && isUniqueViolation(e.err)
}

// failed marks err (the error of a statement) as a storage failure; nil
// stays nil.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return &storageError{err}
}

// isUniqueViolation reports whether err says that a statement would have
// broken a unique index or primary key: GORM's translated error, the
// SQLSTATE 23505 of PostgreSQL (pgconn.PgError has a SQLState method), or
// SQLite's message. The stores insert with ON CONFLICT DO NOTHING, so this
// is a safety net for dialects or races that still raise one.
func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) && coded.SQLState() == "23505" {
		return true
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// notFound is the error of a read or a conditional write that found
// nothing: it matches authz.ErrNotFound.
func notFound(what string) error { return fmt.Errorf("%s: %w", what, authz.ErrNotFound) }

// conflict is the error of a write refused by the stored state: it
// matches authz.ErrConflict.
func conflict(what string) error { return fmt.Errorf("%s: %w", what, authz.ErrConflict) }

// corrupt is the error for a stored row this module never writes (an
// unknown status, say). It matches no error kind: the caller's input was
// fine, the table is not, and the read fails closed.
func corrupt(table, id, why string) error {
	return fmt.Errorf("stored row %s of %s is not one this module writes: %s", id, table, why)
}

// Times are stored in UTC, in whole microseconds (what PostgreSQL's
// timestamptz holds exactly), and compared as stored. On SQLite, GORM's
// driver writes a time as text ("2006-01-02 15:04:05.999999999-07:00");
// in UTC and within years 1000 to 9999 that text sorts as the instants
// do, so comparisons and ORDER BY are right on every dialect. A time in
// another zone would compare by its wall clock there: every time that is
// written or bound as a parameter goes through these functions.

// dbTime is t as stored: UTC, truncated to whole microseconds, without a
// monotonic clock reading.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// dbTimeCeil is t in UTC rounded up to a whole microsecond. Stored times
// are whole microseconds, so for a stored s, s >= t exactly when
// s >= dbTimeCeil(t), and s < t exactly when s < dbTimeCeil(t); while
// s > t exactly when s > dbTime(t), and s <= t exactly when s <= dbTime(t).
func dbTimeCeil(t time.Time) time.Time {
	f := dbTime(t)
	if f.Before(t) {
		f = f.Add(time.Microsecond)
	}
	return f
}

// nullTime is t as a nullable column: nil for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := dbTime(t)
	return &v
}

// fromNullTime reads a nullable time column: the zero time for NULL.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
