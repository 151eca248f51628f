package iam_test

import (
	"errors"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// world is the cast of the rule-table test, built fresh for each case.
type world struct {
	*env
	a, b                 authz.OrgID
	pa2                  authz.UserID // a second PlatformAdmin, also a Member of a
	mgrA, mgrA2, memA    authz.UserID
	auditorA, mgrB, memB authz.UserID
	pendingA             approval.RequestID // a pending sign-up to a
	pendingUser          authz.UserID
}

func newWorld(e *env) *world {
	e.t.Helper()
	w := &world{env: e, a: e.org("Seoul DC"), b: e.org("Busan Lab")}
	w.pa2 = e.member("pa2@example.com", w.a, authz.Member, 0)
	e.must(e.svc.ChangeRole(e.ctx, e.admin, w.pa2, w.a, authz.PlatformAdmin))
	w.mgrA = e.member("mgra@example.com", w.a, authz.Manager, 0)
	w.mgrA2 = e.member("mgra2@example.com", w.a, authz.Manager, 0)
	w.memA = e.member("mema@example.com", w.a, authz.Member, authz.NewCategorySet(authz.Infra))
	w.auditorA = e.member("auditor@example.com", w.a, authz.Member, authz.NewCategorySet(authz.Audit))
	w.mgrB = e.member("mgrb@example.com", w.b, authz.Manager, 0)
	w.memB = e.member("memb@example.com", w.b, authz.Member, authz.NewCategorySet(authz.VPN))
	e.must(e.svc.SignUp(e.ctx, "newbie@example.com", "New Bie", pw, w.a))
	reqs, err := e.svc.Registrations(e.ctx, e.admin, w.a, approval.AllTime, approval.Pending)
	e.must(err)
	if len(reqs) != 1 {
		e.t.Fatalf("want 1 pending request, got %d", len(reqs))
	}
	w.pendingA, w.pendingUser = reqs[0].ID, reqs[0].User
	return w
}

type ruleCase struct {
	name string
	call func(w *world) error
	want error // nil: allowed
	// quiet: a refusal that is a permission check rather than a
	// management attempt (like every feature-page Check), which records
	// no event.
	quiet bool
}

func ruleCases() []ruleCase {
	cats := authz.NewCategorySet(authz.Backup, authz.VPN)
	return []ruleCase{
		// Organizations.
		{"create org: platformadmin", func(w *world) error { _, err := w.svc.CreateOrg(w.ctx, w.admin, "Daegu"); return err }, nil, false},
		{"create org: manager", func(w *world) error { _, err := w.svc.CreateOrg(w.ctx, w.mgrA, "Daegu"); return err }, iam.ErrForbidden, false},
		{"rename org: platformadmin", func(w *world) error { return w.svc.RenameOrg(w.ctx, w.admin, w.a, "Seoul 2") }, nil, false},
		{"rename org: manager", func(w *world) error { return w.svc.RenameOrg(w.ctx, w.mgrA, w.a, "Mine") }, iam.ErrForbidden, false},
		{"delete org: platformadmin", func(w *world) error { return w.svc.DeleteOrg(w.ctx, w.admin, w.b) }, nil, false},
		{"delete org: member", func(w *world) error { return w.svc.DeleteOrg(w.ctx, w.memA, w.a) }, iam.ErrForbidden, false},

		// Registration approval.
		{"approve: manager of the org", func(w *world) error { return w.svc.Approve(w.ctx, w.mgrA, w.pendingA) }, nil, false},
		{"approve: platformadmin", func(w *world) error { return w.svc.Approve(w.ctx, w.admin, w.pendingA) }, nil, false},
		{"approve: manager of another org", func(w *world) error { return w.svc.Approve(w.ctx, w.mgrB, w.pendingA) }, iam.ErrNotFound, false},
		{"approve: member", func(w *world) error { return w.svc.Approve(w.ctx, w.memA, w.pendingA) }, iam.ErrForbidden, false},
		{"reject: manager of the org", func(w *world) error { return w.svc.Reject(w.ctx, w.mgrA, w.pendingA, "unknown person") }, nil, false},
		{"reject: manager of another org", func(w *world) error { return w.svc.Reject(w.ctx, w.mgrB, w.pendingA, "") }, iam.ErrNotFound, false},

		// Change role.
		{"role: platformadmin makes a member manager", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.admin, w.memA, w.a, authz.Manager) }, nil, false},
		{"role: manager makes a member manager", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.mgrA, w.memA, w.a, authz.Manager) }, nil, false},
		{"role: manager demotes another manager", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.mgrA, w.mgrA2, w.a, authz.Member) }, nil, false},
		{"role: manager promotes to platformadmin", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.mgrA, w.memA, w.a, authz.PlatformAdmin) }, iam.ErrForbidden, false},
		{"role: manager promotes themselves", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.mgrA, w.mgrA, w.a, authz.PlatformAdmin) }, iam.ErrSelfRoleChange, false},
		{"role: manager in another org", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.mgrB, w.memA, w.a, authz.Manager) }, iam.ErrNotFound, false},
		{"role: manager touches a platformadmin member", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.mgrA, w.pa2, w.a, authz.Member) }, iam.ErrForbidden, false},
		{"role: member", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.memA, w.auditorA, w.a, authz.Manager) }, iam.ErrForbidden, false},
		{"role: own role, platformadmin", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.admin, w.admin, w.a, authz.Member) }, iam.ErrSelfRoleChange, false},
		{"role: platformadmin demotes another platformadmin", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.admin, w.pa2, w.a, authz.Member) }, nil, false},
		{"role: last manager of b demoted", func(w *world) error { return w.svc.ChangeRole(w.ctx, w.admin, w.mgrB, w.b, authz.Member) }, iam.ErrLastManager, false},

		// Categories.
		{"categories: manager of the org", func(w *world) error { return w.svc.SetCategories(w.ctx, w.mgrA, w.memA, w.a, cats) }, nil, false},
		{"categories: platformadmin", func(w *world) error { return w.svc.SetCategories(w.ctx, w.admin, w.memB, w.b, cats) }, nil, false},
		{"categories: manager of another org", func(w *world) error { return w.svc.SetCategories(w.ctx, w.mgrB, w.memA, w.a, cats) }, iam.ErrNotFound, false},
		{"categories: manager on a platformadmin", func(w *world) error { return w.svc.SetCategories(w.ctx, w.mgrA, w.pa2, w.a, cats) }, iam.ErrForbidden, false},
		{"categories: member", func(w *world) error { return w.svc.SetCategories(w.ctx, w.memA, w.memA, w.a, cats) }, iam.ErrForbidden, false},
		{"categories: non-member", func(w *world) error { return w.svc.SetCategories(w.ctx, w.admin, w.memB, w.a, cats) }, iam.ErrNotFound, false},

		// Removal from an org.
		{"remove: manager removes a member", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.mgrA, w.memA, w.a) }, nil, false},
		{"remove: manager leaves, another remains", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.mgrA, w.mgrA, w.a) }, nil, false},
		{"remove: last manager leaves", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.mgrB, w.mgrB, w.b) }, iam.ErrLastManager, false},
		{"remove: platformadmin removes the last manager", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.admin, w.mgrB, w.b) }, iam.ErrLastManager, false},
		{"remove: manager of another org", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.mgrB, w.memA, w.a) }, iam.ErrNotFound, false},
		{"remove: manager removes a platformadmin", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.mgrA, w.pa2, w.a) }, iam.ErrForbidden, false},
		{"remove: member", func(w *world) error { return w.svc.RemoveMember(w.ctx, w.memA, w.auditorA, w.a) }, iam.ErrForbidden, false},

		// Accounts.
		{"deactivate: platformadmin", func(w *world) error { return w.svc.DeactivateUser(w.ctx, w.admin, w.memA) }, nil, false},
		{"deactivate: manager", func(w *world) error { return w.svc.DeactivateUser(w.ctx, w.mgrA, w.memA) }, iam.ErrForbidden, false},
		{"deactivate: last manager of b", func(w *world) error { return w.svc.DeactivateUser(w.ctx, w.admin, w.mgrB) }, iam.ErrLastManager, false},
		{"delete user: platformadmin", func(w *world) error { return w.svc.DeleteUser(w.ctx, w.admin, w.memB) }, nil, false},
		{"delete user: manager", func(w *world) error { return w.svc.DeleteUser(w.ctx, w.mgrA, w.memA) }, iam.ErrForbidden, false},
		{"delete user: another platformadmin", func(w *world) error { return w.svc.DeleteUser(w.ctx, w.admin, w.pa2) }, nil, false},

		// Password resets by an administrator.
		{"reset: manager for a member", func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.mgrA, w.memA, w.a) }, nil, false},
		{"reset: platformadmin for anyone", func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.admin, w.memB, "") }, nil, false},
		{"reset: manager for a platformadmin", func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.mgrA, w.pa2, w.a) }, iam.ErrForbidden, false},
		{"reset: manager of another org", func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.mgrB, w.memA, w.a) }, iam.ErrNotFound, false},
		{"reset: member", func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.memA, w.auditorA, w.a) }, iam.ErrForbidden, false},

		// Views.
		{"members: manager of the org", func(w *world) error { _, err := w.svc.Members(w.ctx, w.mgrA, w.a, iam.Page{}); return err }, nil, false},
		{"members: platformadmin, any org", func(w *world) error { _, err := w.svc.Members(w.ctx, w.admin, w.b, iam.Page{}); return err }, nil, false},
		{"members: manager of another org", func(w *world) error { _, err := w.svc.Members(w.ctx, w.mgrB, w.a, iam.Page{}); return err }, iam.ErrNotFound, false},
		{"members: member", func(w *world) error { _, err := w.svc.Members(w.ctx, w.memA, w.a, iam.Page{}); return err }, iam.ErrForbidden, false},
		{"members with: manager of the org", func(w *world) error {
			_, err := w.svc.MembersWith(w.ctx, w.mgrA, w.a, authz.Audit, iam.Page{})
			return err
		}, nil, false},
		{"members with: manager of another org", func(w *world) error {
			_, err := w.svc.MembersWith(w.ctx, w.mgrB, w.a, authz.Audit, iam.Page{})
			return err
		}, iam.ErrNotFound, false},
		{"members with: member", func(w *world) error {
			_, err := w.svc.MembersWith(w.ctx, w.auditorA, w.a, authz.Audit, iam.Page{})
			return err
		}, iam.ErrForbidden, false},
		{"access: platformadmin, any org", func(w *world) error { _, err := w.svc.Access(w.ctx, w.admin, w.b, authz.VPN, iam.Page{}); return err }, nil, false},
		{"access: manager of another org", func(w *world) error { _, err := w.svc.Access(w.ctx, w.mgrB, w.a, authz.VPN, iam.Page{}); return err }, iam.ErrNotFound, false},
		{"access: member", func(w *world) error { _, err := w.svc.Access(w.ctx, w.memA, w.a, authz.VPN, iam.Page{}); return err }, iam.ErrForbidden, false},
		{"all users: platformadmin", func(w *world) error { _, err := w.svc.Users(w.ctx, w.admin, iam.Page{}); return err }, nil, false},
		{"all users: manager", func(w *world) error { _, err := w.svc.Users(w.ctx, w.mgrA, iam.Page{}); return err }, iam.ErrForbidden, false},
		{"queue: manager of the org", func(w *world) error {
			_, err := w.svc.Registrations(w.ctx, w.mgrA, w.a, approval.Last30Days, approval.Pending)
			return err
		}, nil, false},
		{"queue: member", func(w *world) error { _, err := w.svc.PendingCount(w.ctx, w.memA, w.a); return err }, iam.ErrForbidden, false},
		{"queue: manager of another org", func(w *world) error { _, err := w.svc.PendingCount(w.ctx, w.mgrB, w.a); return err }, iam.ErrNotFound, false},
		{"audit: member with audit", func(w *world) error {
			_, err := w.svc.AuditEvents(w.ctx, w.auditorA, audit.Filter{Org: w.a})
			return err
		}, nil, false},
		{"audit: member without audit", func(w *world) error { _, err := w.svc.AuditEvents(w.ctx, w.memA, audit.Filter{Org: w.a}); return err }, iam.ErrForbidden, false},
		{"audit: manager of another org", func(w *world) error { _, err := w.svc.AuditEvents(w.ctx, w.mgrB, audit.Filter{Org: w.a}); return err }, iam.ErrNotFound, false},
		{"audit: manager of the org", func(w *world) error { _, err := w.svc.AuditEvents(w.ctx, w.mgrA, audit.Filter{}); return err }, nil, false},
		{"reactivate: platformadmin", func(w *world) error { return w.svc.ReactivateUser(w.ctx, w.admin, w.memA) }, nil, false},
		{"reactivate: manager", func(w *world) error { return w.svc.ReactivateUser(w.ctx, w.mgrA, w.memA) }, iam.ErrForbidden, false},
		{"operations: platformadmin", func(w *world) error { return w.svc.CheckOperations(w.ctx, w.pa2) }, nil, true},
		{"operations: manager", func(w *world) error { return w.svc.CheckOperations(w.ctx, w.mgrA) }, iam.ErrForbidden, true},
	}
}

// TestRuleTable runs every row of the "Who may do what" table and its
// invariants through the Service, on every database: an allowed call
// succeeds and a restart agrees with memory; a refused one returns the
// exact error, changes no row and no engine rule, and records exactly one
// denied audit event (views record none).
func TestRuleTable(t *testing.T) {
	for _, c := range ruleCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachKind(t, func(t *testing.T, e *env) {
				w := newWorld(e)
				before := e.snap()
				err := c.call(w)
				if c.want == nil {
					if err != nil {
						t.Fatalf("allowed call failed: %v", err)
					}
					e.restartAgrees()
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				events := 1
				if c.quiet {
					events = 0
				}
				e.unchanged(before, events)
				if !c.quiet {
					if ev := e.lastEvent(); ev.Outcome != audit.Denied || ev.Reason == "" {
						t.Errorf("last event %+v is not the denial", ev)
					}
				}
			})
		})
	}
}
