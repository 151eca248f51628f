package gormstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/internal/dbtest"
)

func TestVersion(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, kind)
			s, err := gormstore.Open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gormstore.Open(ctx, db); err != nil { // idempotent: keeps one row
				t.Fatal(err)
			}
			version := func() int64 {
				t.Helper()
				v, err := s.Version(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			if v := version(); v != 0 {
				t.Fatalf("fresh version = %d", v)
			}
			var got int64
			if err := s.Transaction(ctx, func(tx *gormstore.Tx) (err error) { got, err = tx.BumpVersion(); return err }); err != nil {
				t.Fatal(err)
			}
			if got != 1 || version() != 1 {
				t.Fatalf("after one bump: returned %d, stored %d", got, version())
			}
			boom := errors.New("boom")
			err = s.Transaction(ctx, func(tx *gormstore.Tx) error {
				if _, err := tx.BumpVersion(); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) || version() != 1 {
				t.Fatalf("a rolled-back bump: err %v, version %d", err, version())
			}
			// Concurrent transactions each see a distinct version and none
			// is lost.
			const n = 8
			seen := make(chan int64, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
						v, err := tx.BumpVersion()
						seen <- v
						return err
					})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			close(seen)
			distinct := map[int64]bool{}
			for v := range seen {
				distinct[v] = true
			}
			if len(distinct) != n || version() != 1+n {
				t.Fatalf("concurrent bumps: %d distinct versions, final %d; want %d and %d", len(distinct), version(), n, 1+n)
			}
		})
	}
}
