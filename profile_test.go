package iam_test

import (
	"errors"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// TestSelfApproval: the approver of a registration is never its
// requester, even a PlatformAdmin applying to an org with their own
// account.
func TestSelfApproval(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		e.must(e.svc.SignUp(e.ctx, "ada@example.com", "Ada Admin", pw, o))
		reqs, err := e.svc.Registrations(e.ctx, e.admin, o, approval.AllTime, approval.Pending)
		e.must(err)
		if len(reqs) != 1 || reqs[0].User != e.admin {
			t.Fatalf("queue %+v", reqs)
		}
		before := e.snap()
		if err := e.svc.Approve(e.ctx, e.admin, reqs[0].ID); !errors.Is(err, authz.ErrSelfApproval) || !errors.Is(err, iam.ErrForbidden) {
			t.Fatalf("self approval: %v", err)
		}
		e.unchanged(before, 1)
		// Another PlatformAdmin may approve it.
		pa2 := e.member("pa2@example.com", o, authz.Member, 0)
		e.must(e.svc.ChangeRole(e.ctx, e.admin, pa2, o, authz.PlatformAdmin))
		e.must(e.svc.Approve(e.ctx, pa2, reqs[0].ID))
		if err := e.svc.Approve(e.ctx, pa2, reqs[0].ID); !errors.Is(err, iam.ErrConflict) {
			t.Fatalf("approving an approved request: %v", err)
		}
		e.restartAgrees()
	})
}

// TestProfile covers the Profile page's rows: anyone changes their own
// name and password and deletes their own account (with the password).
func TestProfile(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		e.member("keep@example.com", o, authz.Manager, 0) // so that the next one is not the last Manager
		u := e.member("me@example.com", o, authz.Manager, authz.NewCategorySet(authz.VPN))

		e.must(e.svc.ChangeName(e.ctx, u, "  Minji Kim "))
		p, err := e.svc.Profile(e.ctx, u)
		e.must(err)
		if p.Name != "Minji Kim" || p.Memberships[o].Role != authz.Manager {
			t.Fatalf("profile %+v", p)
		}
		if ev := e.lastEvent(); ev.Action != audit.ProfileNameChange || string(ev.After) != `{"name":"Minji Kim"}` {
			t.Errorf("name change event %+v", ev)
		}
		if err := e.svc.ChangeName(e.ctx, u, "\x00"); !errors.Is(err, iam.ErrInvalid) {
			t.Errorf("bad name: %v", err)
		}

		before := e.snap()
		if err := e.svc.DeleteAccount(e.ctx, u, "not my passphrase at all"); !errors.Is(err, iam.ErrForbidden) {
			t.Fatalf("delete with a wrong password: %v", err)
		}
		e.unchanged(before, 1)
		e.must(e.svc.DeleteAccount(e.ctx, u, pw))
		if _, err := e.svc.Profile(e.ctx, u); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("deleted account still acts: %v", err)
		}
		if d := e.svc.Check(e.ctx, u, o, authz.VPN); d.Allowed {
			t.Errorf("deleted account still allowed: %+v", d)
		}
		if _, err := e.svc.Login(e.ctx, "me@example.com", pw); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("deleted account logs in: %v", err)
		}
		evs, err := e.svc.AuditEvents(e.ctx, e.admin, audit.Filter{Target: u})
		e.must(err)
		if len(evs) == 0 || evs[0].Action != audit.ProfileDelete {
			t.Errorf("the audit history of a deleted account must stay: %+v", evs)
		}
		e.restartAgrees()
	})
}

// TestLoginThrottle: repeated failures throttle an account whether or not
// it exists, a correct password is then refused too until the delay
// passes, and forgot-password requests never lock an account.
func TestLoginThrottle(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		e.member("victim@example.com", o, authz.Member, 0)
		for _, email := range []string{"victim@example.com", "ghost@example.com"} {
			var last error
			for range 6 {
				_, last = e.svc.Login(e.ctx, email, "wrong passphrase here")
			}
			var te *identity.ThrottledError
			if !errors.As(last, &te) || !errors.Is(last, iam.ErrUnauthenticated) {
				t.Fatalf("%s: sixth failure: %v", email, last)
			}
		}
		if _, err := e.svc.Login(e.ctx, "victim@example.com", pw); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Fatalf("right password while throttled: %v", err)
		}
		for range 10 {
			e.must(e.svc.ForgotPassword(e.ctx, "victim@example.com"))
			e.mail.Next(t)
		}
		e.clock.Advance(16 * time.Minute)
		if _, err := e.svc.Login(e.ctx, "victim@example.com", pw); err != nil {
			t.Fatalf("after the delay: %v", err)
		}
	})
}

// TestAdminStartedReset: a Manager's reset of a member's password ends
// the member's sessions and sends the token to the member, never to the
// Manager.
func TestAdminStartedReset(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		mgr := e.member("mgr@example.com", o, authz.Manager, 0)
		u := e.member("forgetful@example.com", o, authz.Member, 0)
		sess, err := e.svc.Login(e.ctx, "forgetful@example.com", pw)
		e.must(err)
		e.must(e.svc.StartPasswordReset(e.ctx, mgr, u, o))
		msg := e.mail.Next(t)
		if msg.User != u || msg.Email != "forgetful@example.com" || !msg.ByAdmin {
			t.Fatalf("reset message %+v", msg)
		}
		if _, err := e.svc.Authenticate(e.ctx, sess.Reveal()); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("the member's session survived: %v", err)
		}
		if _, err := e.svc.ResetPassword(e.ctx, msg.Token.Reveal(), "my own fresh passphrase"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Login(e.ctx, "forgetful@example.com", "my own fresh passphrase"); err != nil {
			t.Errorf("login with the new password: %v", err)
		}
		if err := e.svc.StartPasswordReset(e.ctx, mgr, mgr, o); !errors.Is(err, iam.ErrForbidden) {
			t.Errorf("a Manager resetting their own password through the admin path: %v", err)
		}
	})
}
