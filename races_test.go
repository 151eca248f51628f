package iam_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// interleave runs first twice. The first run finds the statement at which
// first writes table (its first statement that starts with verb and names
// table). In the second, just before that statement, second starts in a
// goroutine and gets 300 ms to go as far as it can while first's
// transaction is open; then first goes on. It returns both errors.
func interleave(t *testing.T, e *env, verb, table string, first, second func() error) (firstErr, secondErr error) {
	t.Helper()
	faults := dbtest.InjectFaults(t, e.db)
	faults.Arm(dbtest.Plan{})
	e.must(first())
	at := 0
	for i, st := range faults.Statements() {
		if at == 0 && strings.HasPrefix(st.SQL, verb) && strings.Contains(st.SQL, table) {
			at = i + 1
		}
	}
	if at == 0 {
		t.Fatalf("no %s of %s among the statements: %+v", verb, table, faults.Statements())
	}
	done := make(chan error, 1)
	faults.Arm(dbtest.Plan{Cancel: at, CancelFunc: func() { // a hook here, cancelling nothing
		go func() { done <- second() }()
		time.Sleep(300 * time.Millisecond)
	}})
	firstErr = first()
	secondErr = <-done
	faults.Arm(dbtest.Plan{})
	return firstErr, secondErr
}

// TestLoginRacingSessionEnd: a login whose transaction is open while a
// deactivation commits must not keep its session through it.
// TestCrashRecovery found it on PostgreSQL: the login read the account as
// active, the deactivation deleted the sessions it could see and
// committed, then the login inserted its own and committed, and that
// session worked again after a reactivation. Now a login holds the
// account shared and a session-ending change holds it exclusively
// (gormstore.Tx.HoldAccount).
func TestLoginRacingSessionEnd(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		u := e.member("joon@example.com", o, authz.Member, authz.NewCategorySet(authz.VPN))
		var tok string
		loginErr, err := interleave(t, e, "INSERT", "iam_sessions",
			func() error {
				t, err := e.svc.Login(e.ctx, "joon@example.com", pw)
				tok = t.Reveal()
				return err
			},
			func() error { return e.svc.DeactivateUser(e.ctx, e.admin, u) })
		e.must(err)
		e.must(e.svc.ReactivateUser(e.ctx, e.admin, u))
		// Whichever committed first, no session of before the
		// deactivation may work after it.
		if loginErr == nil {
			if _, err := e.svc.Authenticate(e.ctx, tok); err == nil {
				t.Fatal("a session created while the account was being deactivated works after its reactivation")
			}
		}
		var n int64
		e.must(e.db.Table("iam_sessions").Where("user_id = ?", string(u)).Count(&n).Error)
		if n != 0 {
			t.Fatalf("%d sessions of the deactivated user remain", n)
		}
	})
}

// TestChangeNameRacingPasswordChange: a name change writes back the
// account row it read; a password change committing in between must not
// be undone by it (the old password working again). ChangeName now holds
// the account before reading it (gormstore.Tx.HoldUser).
func TestChangeNameRacingPasswordChange(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		u := e.member("joon@example.com", o, authz.Member, 0)
		const next = "a different horse, staple and battery"
		names := []string{"Joon Park", "Joon P."}
		_, err := interleave(t, e, "UPDATE", "iam_users",
			func() error {
				name := names[0]
				names = names[1:]
				return e.svc.ChangeName(e.ctx, u, name)
			},
			func() error { _, err := e.svc.ChangePassword(e.ctx, u, pw, next); return err })
		e.must(err)
		if _, err := e.svc.Login(e.ctx, "joon@example.com", pw); err == nil {
			t.Fatal("the old password works again after a name change raced the password change")
		}
		if _, err := e.svc.Login(e.ctx, "joon@example.com", next); err != nil {
			t.Fatalf("the new password: %v", err)
		}
	})
}
