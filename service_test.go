package iam_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// TestWalkthrough follows the product page: sign-up, the Pending Approvals
// tab, approval, a denied check with its missing categories, Permission
// Management's Save, Edit Role, Remove, and the audit trail.
func TestWalkthrough(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		seoul := e.org("Seoul DC")
		mina := e.member("mina@example.com", seoul, authz.Manager, 0)

		e.must(e.svc.SignUp(e.ctx, "Joon@Example.com ", "Joon", pw, seoul))
		n, err := e.svc.PendingCount(e.ctx, mina, seoul)
		e.must(err)
		if n != 1 {
			t.Fatalf("pending count %d, want 1", n)
		}
		reqs, err := e.svc.Registrations(e.ctx, mina, seoul, approval.Last7Days, approval.Pending)
		e.must(err)
		if len(reqs) != 1 || reqs[0].Email != "joon@example.com" {
			t.Fatalf("queue = %+v", reqs)
		}
		joon := reqs[0].User
		e.must(e.svc.Approve(e.ctx, mina, reqs[0].ID))

		err = e.svc.Authorize(e.ctx, joon, seoul, authz.Infra, authz.VPN)
		var ipe *authz.InsufficientPermissionsError
		if !errors.As(err, &ipe) || ipe.Missing != authz.NewCategorySet(authz.Infra, authz.VPN) {
			t.Fatalf("a new Member's check: %v", err)
		}
		e.must(e.svc.SetCategories(e.ctx, mina, joon, seoul, authz.NewCategorySet(authz.Infra, authz.VPN)))
		if d := e.svc.Check(e.ctx, joon, seoul, authz.VPN); !d.Allowed {
			t.Fatalf("after Save: %+v", d)
		}
		e.must(e.svc.ChangeRole(e.ctx, mina, joon, seoul, authz.Manager))
		if d := e.svc.Check(e.ctx, joon, seoul, authz.Database); !d.Allowed || d.Reason != authz.ReasonManager {
			t.Fatalf("after Edit Role: %+v", d)
		}
		e.must(e.svc.RemoveMember(e.ctx, mina, joon, seoul))
		if d := e.svc.Check(e.ctx, joon, seoul, authz.VPN); d.Allowed {
			t.Fatalf("after Remove: %+v", d)
		}
		evs, err := e.svc.AuditEvents(e.ctx, mina, audit.Filter{Org: seoul, Target: joon})
		e.must(err)
		var actions []string
		for i := len(evs) - 1; i >= 0; i-- {
			actions = append(actions, string(evs[i].Action))
		}
		want := "registration.submit registration.approve member.categories.set member.role.change member.remove"
		if got := strings.Join(actions, " "); got != want {
			t.Errorf("audit trail %q, want %q", got, want)
		}
		if ev := evs[2]; string(ev.Before) != `{"categories":[]}` || string(ev.After) != `{"categories":["infra","vpn"]}` {
			t.Errorf("categories event before %s after %s", ev.Before, ev.After)
		}
		e.restartAgrees()
	})
}

// TestLastPlatformAdmin: the only PlatformAdmin cannot deactivate, delete
// or demote themselves, and the refusal is recorded.
func TestLastPlatformAdmin(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		for name, call := range map[string]func() error{
			"deactivate": func() error { return e.svc.DeactivateUser(e.ctx, e.admin, e.admin) },
			"delete":     func() error { return e.svc.DeleteUser(e.ctx, e.admin, e.admin) },
			"own delete": func() error { return e.svc.DeleteAccount(e.ctx, e.admin, pw) },
		} {
			before := e.snap()
			if err := call(); !errors.Is(err, iam.ErrLastPlatformAdmin) || !errors.Is(err, iam.ErrConflict) {
				t.Errorf("%s: err = %v", name, err)
			}
			e.unchanged(before, 1)
		}
		o := e.org("Ops")
		before := e.snap()
		if err := e.svc.ChangeRole(e.ctx, e.admin, e.admin, o, authz.Member); !errors.Is(err, iam.ErrSelfRoleChange) {
			t.Errorf("self demotion: %v", err)
		}
		e.unchanged(before, 1)
	})
}

// race runs the calls at once and returns their errors.
func race(calls ...func() error) []error {
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call() })
	}
	wg.Wait()
	return errs
}

func countNil(errs []error) int {
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	return n
}

func TestConcurrentApprovals(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		m1 := e.member("m1@example.com", o, authz.Manager, 0)
		e.must(e.svc.SignUp(e.ctx, "new@example.com", "New", pw, o))
		reqs, err := e.svc.Registrations(e.ctx, m1, o, approval.AllTime, approval.Pending)
		e.must(err)
		errs := race(
			func() error { return e.svc.Approve(e.ctx, m1, reqs[0].ID) },
			func() error { return e.svc.Approve(e.ctx, e.admin, reqs[0].ID) },
		)
		if countNil(errs) != 1 || !errors.Is(errors.Join(errs...), iam.ErrConflict) {
			t.Fatalf("two approvals: %v", errs)
		}
		e.restartAgrees()
	})
}

func TestConcurrentRemovalOfManagers(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		m1 := e.member("m1@example.com", o, authz.Manager, 0)
		m2 := e.member("m2@example.com", o, authz.Manager, 0)
		errs := race(
			func() error { return e.svc.RemoveMember(e.ctx, e.admin, m1, o) },
			func() error { return e.svc.RemoveMember(e.ctx, e.admin, m2, o) },
		)
		if countNil(errs) != 1 || !errors.Is(errors.Join(errs...), iam.ErrLastManager) {
			t.Fatalf("two removals: %v", errs)
		}
		page, err := e.svc.Members(e.ctx, e.admin, o, iam.Page{})
		e.must(err)
		members := page.Members
		if len(members) != 1 || members[0].Role != authz.Manager {
			t.Fatalf("org left with %+v", members)
		}
		e.restartAgrees()
	})
}

func TestConcurrentDemotionOfPlatformAdmins(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Ops")
		pa2 := e.member("pa2@example.com", o, authz.Member, 0)
		e.must(e.svc.ChangeRole(e.ctx, e.admin, pa2, o, authz.PlatformAdmin))
		errs := race(
			func() error { return e.svc.ChangeRole(e.ctx, e.admin, pa2, o, authz.Member) },
			func() error { return e.svc.DeactivateUser(e.ctx, pa2, e.admin) },
		)
		if countNil(errs) != 1 {
			t.Fatalf("two demotions: %v", errs)
		}
		users, err := e.svc.Users(e.ctx, pickActive(t, e, e.admin, pa2), iam.Page{})
		e.must(err)
		admins := 0
		for _, u := range users.Accounts {
			if u.PlatformAdmin && u.Status.String() == "active" {
				admins++
			}
		}
		if admins != 1 {
			t.Fatalf("%d active PlatformAdmins left", admins)
		}
		e.restartAgrees()
	})
}

// pickActive returns whichever of the users is still an active
// PlatformAdmin.
func pickActive(t *testing.T, e *env, users ...authz.UserID) authz.UserID {
	t.Helper()
	for _, u := range users {
		if e.svc.CheckOperations(e.ctx, u) == nil {
			return u
		}
	}
	t.Fatal("no active PlatformAdmin left")
	return ""
}

func TestConcurrentRoleChanges(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		u := e.member("u@example.com", o, authz.Member, authz.NewCategorySet(authz.Audit))
		mgr := e.member("m@example.com", o, authz.Manager, 0)
		errs := race(
			func() error { return e.svc.ChangeRole(e.ctx, e.admin, u, o, authz.Manager) },
			func() error { return e.svc.ChangeRole(e.ctx, mgr, u, o, authz.Manager) },
		)
		if countNil(errs) != 2 {
			t.Fatalf("two compatible role changes: %v", errs)
		}
		if m, ok := e.svc.Engine().Membership(u, o); !ok || m.Role != authz.Manager || m.Categories != authz.NewCategorySet(authz.Audit) {
			t.Fatalf("membership after: %+v", m)
		}
		e.restartAgrees()
	})
}

// TestPasswordAndTokenRules checks DESIGN.md section 5 one rule at a time
// through the Service.
func TestPasswordAndTokenRules(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		t.Run("length bounds in code points", func(t *testing.T) {
			// Passwords of n distinct-looking Hangul syllables: multi-byte,
			// no repeats, no runs, so only the length can refuse them.
			hangul := func(n int) string {
				r := make([]rune, n)
				for i := range r {
					r[i] = rune(0xAC00 + (i*7919)%11172)
				}
				return string(r)
			}
			for _, c := range []struct {
				pw string
				ok bool
			}{
				{hangul(11), false},
				{hangul(12), true},
				{hangul(64), true},
				{hangul(128), true},
				{hangul(129), false},
			} {
				email := "len" + strings.Repeat("x", len(c.pw)%7) + "@example.com"
				err := e.svc.SignUp(e.ctx, email, "Len Test", c.pw, o)
				if c.ok != (err == nil) || !c.ok && !errors.Is(err, iam.ErrInvalid) {
					t.Errorf("%d code points: %v", len([]rune(c.pw)), err)
				}
			}
		})
		t.Run("blocklist and own email", func(t *testing.T) {
			for _, bad := range []string{"password1234", "qwertyuiop123", "bob.smith@example.com"} {
				if err := e.svc.SignUp(e.ctx, "bob.smith@example.com", "Bob Smith", bad, o); !errors.Is(err, iam.ErrInvalid) {
					t.Errorf("%q accepted: %v", bad, err)
				}
			}
		})
		t.Run("NFC and NFD forms verify", func(t *testing.T) {
			nfc := norm.NFC.String("crème brûlée au café")
			nfd := norm.NFD.String(nfc)
			if nfc == nfd {
				t.Fatal("test strings are equal")
			}
			e.member("nfc@example.com", o, authz.Member, 0)
			u, err := e.svc.Login(e.ctx, "nfc@example.com", pw)
			e.must(err)
			id, err := e.svc.Authenticate(e.ctx, u.Reveal())
			e.must(err)
			_, err = e.svc.ChangePassword(e.ctx, id, pw, nfc)
			e.must(err)
			if _, err := e.svc.Login(e.ctx, "nfc@example.com", nfd); err != nil {
				t.Errorf("NFD form refused: %v", err)
			}
		})
		t.Run("reset token: once, newest only, expires", func(t *testing.T) {
			u := e.member("reset@example.com", o, authz.Member, 0)
			e.must(e.svc.ForgotPassword(e.ctx, "reset@example.com"))
			first := e.mail.Next(t)
			e.must(e.svc.ForgotPassword(e.ctx, "RESET@example.com"))
			second := e.mail.Next(t)
			if first.User != u || second.User != u {
				t.Fatalf("messages for %s, %s", first.User, second.User)
			}
			if _, err := e.svc.ResetPassword(e.ctx, first.Token.Reveal(), "a brand new passphrase"); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("older token: %v", err)
			}
			errs := race(
				func() error {
					_, err := e.svc.ResetPassword(e.ctx, second.Token.Reveal(), "a brand new passphrase")
					return err
				},
				func() error {
					_, err := e.svc.ResetPassword(e.ctx, second.Token.Reveal(), "another new passphrase")
					return err
				},
			)
			if countNil(errs) != 1 {
				t.Errorf("two redemptions: %v", errs)
			}
			e.must(e.svc.ForgotPassword(e.ctx, "reset@example.com"))
			third := e.mail.Next(t)
			e.clock.Advance(31 * time.Minute)
			if _, err := e.svc.ResetPassword(e.ctx, third.Token.Reveal(), "yet another passphrase"); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("expired token: %v", err)
			}
		})
		t.Run("password change ends sessions and reset tokens", func(t *testing.T) {
			e.member("change@example.com", o, authz.Member, 0)
			s1, err := e.svc.Login(e.ctx, "change@example.com", pw)
			e.must(err)
			id, err := e.svc.Authenticate(e.ctx, s1.Reveal())
			e.must(err)
			e.must(e.svc.ForgotPassword(e.ctx, "change@example.com"))
			reset := e.mail.Next(t)
			fresh, err := e.svc.ChangePassword(e.ctx, id, pw, "an entirely new passphrase")
			e.must(err)
			if _, err := e.svc.Authenticate(e.ctx, s1.Reveal()); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("old session survived: %v", err)
			}
			if _, err := e.svc.Authenticate(e.ctx, fresh.Reveal()); err != nil {
				t.Errorf("fresh session: %v", err)
			}
			if _, err := e.svc.ResetPassword(e.ctx, reset.Token.Reveal(), "one more passphrase ok"); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("reset token survived: %v", err)
			}
			if _, err := e.svc.ChangePassword(e.ctx, id, "wrong current password", "whatever passphrase"); !errors.Is(err, iam.ErrForbidden) {
				t.Errorf("wrong current password: %v", err)
			}
		})
		t.Run("deactivated user", func(t *testing.T) {
			u := e.member("gone@example.com", o, authz.Member, authz.NewCategorySet(authz.Infra))
			s1, err := e.svc.Login(e.ctx, "gone@example.com", pw)
			e.must(err)
			e.must(e.svc.DeactivateUser(e.ctx, e.admin, u))
			if _, err := e.svc.Authenticate(e.ctx, s1.Reveal()); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("session of a deactivated user: %v", err)
			}
			if d := e.svc.Check(e.ctx, u, o, authz.Infra); d.Allowed {
				t.Errorf("check of a deactivated user: %+v", d)
			}
			if _, err := e.svc.Login(e.ctx, "gone@example.com", pw); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("login of a deactivated user: %v", err)
			}
			e.must(e.svc.ReactivateUser(e.ctx, e.admin, u))
			if d := e.svc.Check(e.ctx, u, o, authz.Infra); !d.Allowed {
				t.Errorf("reactivated user: %+v", d)
			}
			e.restartAgrees()
		})
		t.Run("deleted email signs up again with nothing", func(t *testing.T) {
			u := e.member("again@example.com", o, authz.Member, authz.AllCategories)
			e.must(e.svc.DeleteUser(e.ctx, e.admin, u))
			e.must(e.svc.SignUp(e.ctx, "again@example.com", "Again", "violet tugboat mirrors at dusk", o))
			reqs, err := e.svc.Registrations(e.ctx, e.admin, o, approval.AllTime, approval.Pending)
			e.must(err)
			var fresh authz.UserID
			for _, r := range reqs {
				if r.Email == "again@example.com" {
					fresh = r.User
				}
			}
			if fresh == "" || fresh == u {
				t.Fatalf("new account %q (old %q)", fresh, u)
			}
			if d := e.svc.Check(e.ctx, fresh, o, authz.Infra); d.Allowed {
				t.Errorf("new account inherited rights: %+v", d)
			}
		})
		t.Run("no enumeration through sign-up and login", func(t *testing.T) {
			e.member("known@example.com", o, authz.Member, 0)
			before := e.snap()
			if err := e.svc.SignUp(e.ctx, "known@example.com", "Impostor", "not the right passphrase", o); err != nil {
				t.Errorf("sign-up with a known email and a wrong password: %v", err)
			}
			e.unchanged(before, 0)
			_, errKnown := e.svc.Login(e.ctx, "known@example.com", "not the right passphrase")
			_, errUnknown := e.svc.Login(e.ctx, "nobody@example.com", "not the right passphrase")
			if errKnown == nil || errUnknown == nil || errKnown.Error() != errUnknown.Error() {
				t.Errorf("login answers differ: %v / %v", errKnown, errUnknown)
			}
			if err := e.svc.ForgotPassword(e.ctx, "nobody@example.com"); err != nil {
				t.Errorf("forgot password for an unknown email: %v", err)
			}
		})
	})
}
