package dbtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/kiops/iam/internal/dbtest"
)

type faultRow struct {
	ID   int
	Name string
}

// forEachFaultDB runs f on every kind, in parallel, with a database
// holding the fault_rows table and an injector on it.
func forEachFaultDB(t *testing.T, f func(t *testing.T, db *gorm.DB, faults *dbtest.Faults)) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			db := dbtest.Open(t, kind)
			if err := db.AutoMigrate(&faultRow{}); err != nil {
				t.Fatal(err)
			}
			f(t, db, dbtest.InjectFaults(t, db))
		})
	}
}

// insertRenamed inserts a row and renames it: two statements.
func insertRenamed(tx *gorm.DB) error {
	if err := tx.Create(&faultRow{Name: "a"}).Error; err != nil {
		return err
	}
	return tx.Exec("UPDATE fault_rows SET name = ? WHERE name = ?", "b", "a").Error
}

// TestFaults checks that the injector fails exactly the chosen statement,
// that a transaction it fails rolls back, and that counting works, on
// every kind.
func TestFaults(t *testing.T) {
	forEachFaultDB(t, func(t *testing.T, db *gorm.DB, f *dbtest.Faults) {
		op := func() error {
			return db.Transaction(func(tx *gorm.DB) error {
				if err := insertRenamed(tx); err != nil {
					return err
				}
				var n int64
				return tx.Model(&faultRow{}).Count(&n).Error
			})
		}
		f.Reset(0)
		if err := op(); err != nil {
			t.Fatal(err)
		}
		if f.Count() != 3 {
			t.Fatalf("counted %d statements, want 3", f.Count())
		}
		for n := 1; n <= 3; n++ {
			var before int64
			f.Reset(0)
			db.Model(&faultRow{}).Count(&before)
			f.Reset(n)
			if err := op(); !errors.Is(err, dbtest.ErrInjected) {
				t.Fatalf("statement %d: err = %v, want the injected fault", n, err)
			}
			f.Reset(0)
			var after int64
			db.Model(&faultRow{}).Count(&after)
			if after != before {
				t.Fatalf("statement %d failed but the transaction left %d rows (was %d)", n, after, before)
			}
		}
	})
}

// TestFaultsPlan checks the rest of a Plan on every kind: a context
// cancelled just before statement n fails that statement and its
// transaction rolls back; a poisoned commit fails and rolls back, in the
// transaction asked for only, and nothing runs after it; statements and
// transactions are counted and their text kept.
func TestFaultsPlan(t *testing.T) {
	forEachFaultDB(t, func(t *testing.T, db *gorm.DB, f *dbtest.Faults) {
		count := func() int64 {
			t.Helper()
			f.Reset(0)
			var n int64
			if err := db.Model(&faultRow{}).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Two transactions, each inserting one row, then a statement
		// outside any.
		op := func(ctx context.Context) error {
			for range 2 {
				err := db.WithContext(ctx).Transaction(insertRenamed)
				if err != nil {
					return err
				}
			}
			var n int64
			return db.WithContext(ctx).Model(&faultRow{}).Count(&n).Error
		}
		f.Reset(0)
		if err := op(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := f.Statements()
		if n, txs := f.Count(), f.Transactions(); n != 5 || txs != 2 || len(st) != 5 ||
			!strings.HasPrefix(st[1].SQL, "UPDATE fault_rows SET name =") || st[1].Tx != 1 || st[2].Tx != 2 || st[4].Tx != 0 {
			t.Fatalf("counted %d statements in %d transactions, %+v; want 5 in 2, the last in none", n, txs, st)
		}
		for n := 1; n <= 4; n++ {
			before := count()
			ctx, cancel := context.WithCancel(context.Background())
			f.Arm(dbtest.Plan{Cancel: n, CancelFunc: cancel})
			err := op(ctx)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled before statement %d: err = %v, want context.Canceled", n, err)
			}
			// The transactions before the cancelled one committed.
			if got, want := count(), before+int64((n-1)/2); got != want {
				t.Fatalf("cancelled before statement %d: %d rows, want %d", n, got, want)
			}
		}
		for k := 1; k <= 2; k++ {
			before := count()
			f.Arm(dbtest.Plan{Commit: k})
			err := op(context.Background())
			if err == nil || errors.Is(err, dbtest.ErrInjected) {
				t.Fatalf("commit of transaction %d poisoned: err = %v, want the database's constraint error", k, err)
			}
			if f.Transactions() != k || f.Count() != 2*k {
				t.Fatalf("%d statements in %d transactions ran, want %d in %d (the poisoned one last)", f.Count(), f.Transactions(), 2*k, k)
			}
			if got, want := count(), before+int64(k-1); got != want {
				t.Fatalf("commit of transaction %d poisoned: %d rows, want %d", k, got, want)
			}
		}
		// A transaction that rolls back by itself: the next statement
		// fails.
		f.Arm(dbtest.Plan{Commit: 1})
		errRollback := errors.New("rolled back")
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&faultRow{Name: "c"}).Error; err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		if err := db.Create(&faultRow{Name: "d"}).Error; !errors.Is(err, dbtest.ErrInjected) {
			t.Fatalf("a statement after the poisoned transaction: err = %v, want the injected fault", err)
		}
		// Disarmed, the same operation commits again (the poison
		// table is empty: the failed commits rolled back).
		before := count()
		if err := op(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != before+2 {
			t.Fatalf("%d rows after a clean run, want %d", got, before+2)
		}
	})
}
