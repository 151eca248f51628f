package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	gormadapter "github.com/casbin/gorm-adapter/v3"

	"github.com/kiops/iam/authz"
)

// fieldSep separates a rule row's fields in rowText. It is the ASCII unit
// separator, which no rule this module writes contains.
const fieldSep = '\x1f'

// rowText selects a whole rule row as one text value, its seven fields
// (NULL read as "") joined by fieldSep. Start-up reads every row of the
// table, millions at 1,000,000 users, and a driver's cost is per column
// (cgo calls for SQLite, conversions for both): one column instead of
// seven makes the read several times faster. The split is exact: a row
// has six separators exactly when no field contains one, and any other
// row is refused (splitRow).
const rowText = "COALESCE(ptype, '') || '\x1f' || COALESCE(v0, '') || '\x1f' || COALESCE(v1, '') || '\x1f' || COALESCE(v2, '')" +
	" || '\x1f' || COALESCE(v3, '') || '\x1f' || COALESCE(v4, '') || '\x1f' || COALESCE(v5, '')"

// rowBatch is how many rows the reader hands over at a time.
const rowBatch = 1024

// Rows yields every row of the rule table, in no particular order,
// streaming them from one query (a consistent snapshot of committed
// rows) without holding them all in memory. A NULL value reads as "", as
// Casbin's adapter reads it. On a failure it yields one error, wrapped
// with "gormstore: rows", and stops. Stopping the iteration early closes
// the query.
//
// The rows are read by a goroutine of their own, a batch ahead of the
// loop body, so that reading and what the body does (building an
// engine's index, at start-up) run on two cores at once.
//
// While the iteration runs it holds a database connection: on a database
// limited to one connection (SQLite in memory, typically), do not use the
// same *gorm.DB in the loop body. Rows is safe for concurrent use.
func (s *Store) Rows(ctx context.Context) iter.Seq2[authz.Row, error] {
	return func(yield func(authz.Row, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		batches := make(chan []authz.Row, 2)
		errc := make(chan error, 1)
		go func() {
			defer close(batches)
			errc <- s.streamRows(ctx, batches)
		}()
		defer func() {
			cancel()
			for range batches { // let the reader see the cancellation and finish
			}
		}()
		for b := range batches {
			for _, r := range b {
				if !yield(r, nil) {
					return
				}
			}
		}
		if err := <-errc; err != nil {
			yield(authz.Row{}, fmt.Errorf("gormstore: rows: %w", err))
		}
	}
}

// streamRows sends every row of the rule table to out in batches, and
// returns the first failure (or ctx's error once cancelled).
func (s *Store) streamRows(ctx context.Context, out chan<- []authz.Row) error {
	// The query runs without ctx's cancellation: given a context that
	// can be cancelled, the SQLite driver steps every row in a goroutine
	// of its own to watch it, which made reading several times slower.
	// The loop below checks ctx once a batch instead, and returning closes
	// the query.
	rows, err := s.db.WithContext(context.WithoutCancel(ctx)).Model(&gormadapter.CasbinRule{}).Select(rowText).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	batch := make([]authz.Row, 0, rowBatch)
	var text sql.RawBytes
	if err := ctx.Err(); err != nil {
		return err
	}
	for rows.Next() {
		if err := rows.Scan(&text); err != nil {
			return err
		}
		r, err := splitRow(string(text))
		if err != nil {
			return err
		}
		if batch = append(batch, r); len(batch) == rowBatch {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]authz.Row, 0, rowBatch)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// splitRow splits a rowText value into its fields, which share the
// memory of text (one allocation per row, made by the caller).
func splitRow(text string) (authz.Row, error) {
	var f [7]string
	rest := text
	for i := range 6 {
		j := strings.IndexByte(rest, fieldSep)
		if j < 0 {
			return authz.Row{}, fmt.Errorf("rule row %q: %w", text, errRowFields)
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	if strings.IndexByte(rest, fieldSep) >= 0 {
		return authz.Row{}, fmt.Errorf("rule row %q: %w", text, errRowFields)
	}
	f[6] = rest
	return authz.Row{PType: f[0], V0: f[1], V1: f[2], V2: f[3], V3: f[4], V4: f[5], V5: f[6]}, nil
}

var errRowFields = errors.New("a field holds the unit separator (0x1f), which no rule of this module contains")
