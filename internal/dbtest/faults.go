package dbtest

import (
	"errors"
	"sync"
	"testing"

	"gorm.io/gorm"
)

// ErrInjected is the error a Faults injector makes a statement fail with.
var ErrInjected = errors.New("dbtest: injected fault")

// Faults makes chosen SQL statements of one *gorm.DB fail, for atomicity
// tests: run an operation once to count its statements, then once per
// statement with that statement failing, and check that nothing changed.
// It counts every statement GORM runs through its callbacks (create,
// query, update, delete, row and raw, Exec included); transaction begin
// and commit are not statements here. Safe for concurrent use.
type Faults struct {
	mu    sync.Mutex
	seen  int // statements since the last Reset
	failN int // the statement number to fail; 0: none
}

// InjectFaults registers the injector on db's callbacks (shared by every
// session and transaction derived from db) and returns it, disarmed.
func InjectFaults(t testing.TB, db *gorm.DB) *Faults {
	t.Helper()
	f := &Faults{}
	hook := func(tx *gorm.DB) {
		if f.next() {
			_ = tx.AddError(ErrInjected) // GORM skips executing a statement that already has an error
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("dbtest:faults", hook),
		cb.Query().Before("gorm:query").Register("dbtest:faults", hook),
		cb.Update().Before("gorm:update").Register("dbtest:faults", hook),
		cb.Delete().Before("gorm:delete").Register("dbtest:faults", hook),
		cb.Row().Before("gorm:row").Register("dbtest:faults", hook),
		cb.Raw().Before("gorm:raw").Register("dbtest:faults", hook),
	} {
		if err != nil {
			t.Fatalf("dbtest: register fault callback: %v", err)
		}
	}
	return f
}

func (f *Faults) next() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	return f.failN != 0 && f.seen == f.failN
}

// Reset sets the statement count to zero and makes statement n from now
// (1-based) fail with ErrInjected; n == 0 disarms the injector.
func (f *Faults) Reset(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen, f.failN = 0, n
}

// Count returns the number of statements since the last Reset.
func (f *Faults) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}
