package iam_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	iam "github.com/kiops/iam"
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

// TestChangeNameRacingPasswordChange: a password change committing while
// a name change's transaction is open must not be undone by it (the old
// password working again). ChangeName holds the account before reading
// it (gormstore.Tx.HoldUser) and writes only the name.
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

// TestAccountWritesRacingNameChange: the other way round, a name change
// committing while another change to the account has read it and not yet
// written it. TestCrashRecovery found it on PostgreSQL: the account store
// wrote back the whole account as that change had read it, so a
// reactivation restored the old name over the new one, and the audit log
// told a name the table did not hold. Now each change writes only its own
// fields (identity.UserUpdate), and both stick in either order.
func TestAccountWritesRacingNameChange(t *testing.T) {
	const next = "a different horse, staple and battery"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *env, u authz.UserID) string // before the race: what write needs
		write func(e *env, u authz.UserID, arg string) error
		check func(t *testing.T, e *env, u authz.UserID, email string) // the write stuck
		// renameRefused: where writes take turns (SQLite), the rename may
		// wait for the write and then find the account deactivated.
		renameRefused bool
	}{
		{"DeactivateUser", nil,
			func(e *env, u authz.UserID, _ string) error { return e.svc.DeactivateUser(e.ctx, e.admin, u) },
			func(t *testing.T, e *env, u authz.UserID, _ string) {
				wantStatus(t, e, u, "deactivated")
			}, true},
		{"ChangePassword", nil,
			func(e *env, u authz.UserID, _ string) error {
				_, err := e.svc.ChangePassword(e.ctx, u, pw, next)
				return err
			},
			func(t *testing.T, e *env, _ authz.UserID, email string) { wantPassword(t, e, email, next) }, false},
		{"ResetPassword",
			func(t *testing.T, e *env, u authz.UserID) string {
				e.must(e.svc.StartPasswordReset(e.ctx, e.admin, u, ""))
				return e.mail.Next(t).Token.Reveal()
			},
			func(e *env, _ authz.UserID, token string) error {
				_, err := e.svc.ResetPassword(e.ctx, token, next)
				return err
			},
			func(t *testing.T, e *env, _ authz.UserID, email string) { wantPassword(t, e, email, next) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachKind(t, func(t *testing.T, e *env) {
				o := e.org("Seoul DC")
				// interleave runs the write twice: first on a stand-in,
				// to find its UPDATE, then on joon, with the rename racing.
				emails := []string{"stand-in@example.com", "joon@example.com"}
				users := make([]authz.UserID, len(emails))
				args := make([]string, len(emails))
				for i, email := range emails {
					users[i] = e.member(email, o, authz.Member, authz.NewCategorySet(authz.Infra))
					if tc.setup != nil {
						args[i] = tc.setup(t, e, users[i])
					}
				}
				var before string
				e.must(e.db.Table("iam_users").Where("id = ?", string(users[1])).Pluck("name", &before).Error)
				round := 0
				writeErr, renameErr := interleave(t, e, "UPDATE", "iam_users",
					func() error { round++; return tc.write(e, users[round-1], args[round-1]) },
					func() error { return e.svc.ChangeName(e.ctx, users[1], "Joon Park") })
				e.must(writeErr)
				want := "Joon Park"
				if tc.renameRefused && errors.Is(renameErr, iam.ErrUnauthenticated) {
					want = before
				} else {
					e.must(renameErr)
				}
				var name string
				e.must(e.db.Table("iam_users").Where("id = ?", string(users[1])).Pluck("name", &name).Error)
				if name != want {
					t.Fatalf("name = %q after the rename raced the %s, want %q", name, tc.name, want)
				}
				tc.check(t, e, users[1], emails[1])
				e.restartAgrees()
			})
		})
	}
}

func wantStatus(t *testing.T, e *env, u authz.UserID, want string) {
	t.Helper()
	var status string
	e.must(e.db.Table("iam_users").Where("id = ?", string(u)).Pluck("status", &status).Error)
	if status != want {
		t.Fatalf("status = %q, want %q", status, want)
	}
}

func wantPassword(t *testing.T, e *env, email, password string) {
	t.Helper()
	if _, err := e.svc.Login(e.ctx, email, password); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if _, err := e.svc.Login(e.ctx, email, pw); err == nil {
		t.Fatal("the old password still works")
	}
}
