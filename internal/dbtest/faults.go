package dbtest

import (
	"context"
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
// and commit are not statements here, and neither is a subquery GORM
// builds (in dry-run mode) into its statement. Besides failing a statement it can
// cancel a context just before a statement and make a transaction's
// commit fail (see Plan). Safe for concurrent use.
type Faults struct {
	mu     sync.Mutex
	plan   Plan
	seen   int              // statements since the last Arm
	txs    int              // transactions that ran a statement since the last Arm
	lastTx gorm.TxCommitter // the transaction of the latest statement run in one (held, so that its address is not reused)
	poison gorm.TxCommitter // the transaction whose commit is to fail, once it ran a statement
	stmts  []Statement      // since the last Arm
}

// Plan is what a Faults injector does from the moment it is armed with
// it (see Arm). Statements and transactions are numbered from 1 in the
// order they run after Arm; the zero Plan disarms the injector.
type Plan struct {
	// Fail is the statement that fails with ErrInjected, without running.
	Fail int
	// Cancel is the statement before which CancelFunc is called: that
	// statement runs with its context cancelled, as if the caller gave
	// up at that moment.
	Cancel     int
	CancelFunc func()
	// Commit is the transaction (counting those that run at least one
	// statement) whose COMMIT fails: just before its first statement, the
	// injector inserts in it a row that breaks a foreign key checked only
	// at commit (deferred), so the database itself refuses the commit and
	// rolls the transaction back. Both PostgreSQL and SQLite (with foreign
	// keys on, as Open sets) defer such a check. From the first statement
	// that runs outside that transaction after it, every statement fails
	// with ErrInjected: nothing can go on past the transaction, whether
	// its commit failed or the code rolled it back itself, so the caller
	// may expect the state before.
	Commit int
}

// Statement is one statement an armed injector saw.
type Statement struct {
	// SQL is the statement's text, with placeholders for bound values;
	// empty for one that was failed (it did not run).
	SQL string
	// Tx is the number of the transaction it ran in (see Plan), 0 for
	// none.
	Tx int
}

// commitFaultTable is the table Plan.Commit poisons a transaction with.
const commitFaultTable = "dbtest_commit_faults"

// InjectFaults registers the injector on db's callbacks (shared by every
// session and transaction derived from db) and returns it, disarmed. It
// creates the table dbtest_commit_faults in db, for Plan.Commit.
func InjectFaults(t testing.TB, db *gorm.DB) *Faults {
	t.Helper()
	err := db.Exec("CREATE TABLE IF NOT EXISTS " + commitFaultTable +
		" (id INTEGER PRIMARY KEY, ref INTEGER REFERENCES " + commitFaultTable + " (id) DEFERRABLE INITIALLY DEFERRED)").Error
	if err != nil {
		t.Fatalf("dbtest: create %s: %v", commitFaultTable, err)
	}
	f := &Faults{}
	before := func(tx *gorm.DB) {
		if err := f.before(tx); err != nil {
			_ = tx.AddError(err) // GORM skips executing a statement that already has an error
		}
	}
	after := func(tx *gorm.DB) { f.after(tx) }
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("dbtest:faults", before),
		cb.Query().Before("gorm:query").Register("dbtest:faults", before),
		cb.Update().Before("gorm:update").Register("dbtest:faults", before),
		cb.Delete().Before("gorm:delete").Register("dbtest:faults", before),
		cb.Row().Before("gorm:row").Register("dbtest:faults", before),
		cb.Raw().Before("gorm:raw").Register("dbtest:faults", before),
		cb.Create().After("gorm:create").Register("dbtest:faults:sql", after),
		cb.Query().After("gorm:query").Register("dbtest:faults:sql", after),
		cb.Update().After("gorm:update").Register("dbtest:faults:sql", after),
		cb.Delete().After("gorm:delete").Register("dbtest:faults:sql", after),
		cb.Row().After("gorm:row").Register("dbtest:faults:sql", after),
		cb.Raw().After("gorm:raw").Register("dbtest:faults:sql", after),
	} {
		if err != nil {
			t.Fatalf("dbtest: register fault callback: %v", err)
		}
	}
	return f
}

// stmtKey is where before leaves a statement's number for after.
const stmtKey = "dbtest:faults:statement"

// before runs ahead of every statement: it counts it, and fails it,
// cancels its context or poisons its transaction's commit as planned.
func (f *Faults) before(tx *gorm.DB) error {
	if tx.DryRun {
		// Not a statement: GORM builds the SQL of a subquery by running
		// the query callbacks in dry-run mode.
		return nil
	}
	f.mu.Lock()
	f.seen++
	n := f.seen
	var cancel func()
	if f.plan.Cancel == n {
		cancel = f.plan.CancelFunc
	}
	c, inTx := tx.Statement.ConnPool.(gorm.TxCommitter)
	if inTx && c != f.lastTx {
		f.lastTx = c
		f.txs++
	}
	st := Statement{}
	if inTx {
		st.Tx = f.txs
	}
	f.stmts = append(f.stmts, st)
	tx.Statement.Settings.Store(stmtKey, len(f.stmts)-1)
	poison := inTx && f.plan.Commit != 0 && f.txs == f.plan.Commit && f.poison == nil
	if poison {
		f.poison = c
	}
	past := f.poison != nil && (!inTx || c != f.poison)
	fail := f.plan.Fail == n || past
	f.mu.Unlock()
	if cancel != nil {
		cancel() // outside the lock: a context's cancel may run callbacks
	}
	if poison {
		// Straight on the transaction's connection, not through GORM:
		// the insert is no statement of the code under test.
		_, err := tx.Statement.ConnPool.ExecContext(context.WithoutCancel(tx.Statement.Context),
			"INSERT INTO "+commitFaultTable+" (id, ref) VALUES (1, 2)")
		if err != nil {
			return err
		}
	}
	if fail {
		return ErrInjected
	}
	return nil
}

// after records the text of a statement that ran (GORM builds it in its
// own callback, after before).
func (f *Faults) after(tx *gorm.DB) {
	if tx.DryRun || errors.Is(tx.Error, ErrInjected) {
		return // a subquery being built, or a statement that did not run
	}
	v, ok := tx.Statement.Settings.Load(stmtKey)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := v.(int); i < len(f.stmts) { // else from before the latest Arm
		f.stmts[i].SQL = tx.Statement.SQL.String()
	}
}

// Arm sets the counts to zero and makes the injector follow p from now.
func (f *Faults) Arm(p Plan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan = p
	f.seen, f.txs, f.lastTx, f.poison, f.stmts = 0, 0, nil, nil, nil
}

// Reset sets the statement count to zero and makes statement n from now
// (1-based) fail with ErrInjected; n == 0 disarms the injector. It is
// Arm(Plan{Fail: n}).
func (f *Faults) Reset(n int) { f.Arm(Plan{Fail: n}) }

// Count returns the number of statements since the last Arm.
func (f *Faults) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// Transactions returns the number of transactions that ran at least one
// statement since the last Arm.
func (f *Faults) Transactions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.txs
}

// Statements returns the statements since the last Arm, in the order
// they started.
func (f *Faults) Statements() []Statement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Statement(nil), f.stmts...)
}
