package iam_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// TestAdversarial is the attack suite of issue 8, through the Service, on
// every database: one named subtest per attack. Each asserts the typed
// error, that nothing changed (every row, sessions and reset tokens
// included, the engine's rules, and the engine's decisions for the whole
// cast in both orgs), and the denied audit event where DESIGN.md records
// one: a refused management attempt or view writes exactly one, outcome
// denied with a reason; refused input (ErrInvalid) and an actor or token
// that is not a valid identity (ErrUnauthenticated) write none.
//
// Refusals change nothing, so the attacks of a group share one world;
// groups whose attacks need their own set-up (sessions, reset tokens,
// decided requests) build it per case on a world of their own.
// TestRuleTable holds the plain "who may do what" rows; this suite does
// not repeat them, except where the attacker × route matrix runs through
// them systematically.
func TestAdversarial(t *testing.T) {
	groups := []advGroup{
		{"denials", advDenials},
		{"text fields", advTextFields},
		{"emails", advEmails},
		{"registrations", advRegistrations},
		{"sessions", advSessions},
		{"reset tokens", advResetTokens},
		{"enumeration", advEnumeration},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			forEachKind(t, func(t *testing.T, e *env) { g.run(t, newWorld(e)) })
		})
	}
}

// advGroup is a group of attacks, run on one world.
type advGroup struct {
	name string
	run  func(t *testing.T, w *world)
}

// advDenials runs the groups whose attacks are all refused on one world:
// refusals change nothing, so each sees the world the others saw (and a
// refusal that wrongly succeeded fails its own case). The invariants
// group, whose set-up deactivates two people, runs last.
func advDenials(t *testing.T, w *world) {
	for _, g := range []advGroup{
		{"routes", advRoutes},
		{"escalation", advEscalation},
		{"idor", advIDOR},
		{"malformed ids", advMalformedIDs},
		{"invariants", advInvariants},
	} {
		t.Run(g.name, func(t *testing.T) { g.run(t, w.advFor(t)) })
	}
}

// advFor returns w for subtest t: the same Service and database, with
// failures reported to (and Fatal ending) t rather than the test that
// built w.
func (w *world) advFor(t *testing.T) *world {
	e := *w.env
	e.t = t
	cw := *w
	cw.env = &e
	return &cw
}

// advState is what an attack must leave as it found it: every row and
// engine rule (a snapshot), and the engine's decisions.
type advState struct {
	snap      snapshot
	decisions []string
}

func (w *world) advState() advState {
	w.t.Helper()
	return advState{w.snap(), w.advDecisions()}
}

// advDecisions is every Check answer for the cast in both orgs and every
// category, and who may use the operations screens: the engine's
// behaviour, beside its rules (which env.unchanged compares).
func (w *world) advDecisions() []string {
	var out []string
	for _, u := range []authz.UserID{w.admin, w.pa2, w.mgrA, w.mgrA2, w.memA, w.auditorA, w.mgrB, w.memB, w.pendingUser} {
		out = append(out, fmt.Sprintf("%s operations: %v", u, w.svc.CheckOperations(w.ctx, u)))
		for _, o := range []authz.OrgID{w.a, w.b} {
			for _, c := range authz.Categories() {
				out = append(out, fmt.Sprintf("%+v", w.svc.Check(w.ctx, u, o, c)))
			}
		}
	}
	return out
}

// advUnchanged fails unless nothing changed since before but the audit
// log, which grew by exactly events, and the engine decides as it did.
func (w *world) advUnchanged(before advState, events int) {
	w.t.Helper()
	w.unchanged(before.snap, events)
	if after := w.advDecisions(); !slices.Equal(before.decisions, after) {
		for i := range after {
			if before.decisions[i] != after[i] {
				w.t.Errorf("decision changed:\nbefore %s\nafter  %s", before.decisions[i], after[i])
			}
		}
	}
}

// advDenied fails unless the newest audit event is actor's denied
// attempt at action, with a reason.
func (w *world) advDenied(actor authz.UserID, action audit.Action) {
	w.t.Helper()
	if ev := w.lastEvent(); ev.Outcome != audit.Denied || ev.Reason == "" || ev.Actor != actor || ev.Action != action {
		w.t.Errorf("last event %+v, want %s's denied %s with a reason", ev, actor, action)
	}
}

// advCase is one attack on a shared world.
type advCase struct {
	name  string
	call  func(w *world) error
	want  error
	actor authz.UserID // whose denied event it records, when events is 1
	// action is the denied event's action; empty when the attack records
	// no event (refused input, no valid identity).
	action audit.Action
	// same, if set, is the attack's twin on an object that does not
	// exist: it must answer with exactly the same error text, so that
	// the attack learns nothing about the object it named.
	same func(w *world) error
}

// advIDs matches the ids this module issues, so that two answers can be
// compared up to the id the caller named itself.
var advIDs = regexp.MustCompile(`(usr|org|req)_[a-z2-7]{24}`)

// advRun runs each attack in a subtest of its own, in order, on w.
func advRun(t *testing.T, w *world, cases []advCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := w.advFor(t)
			before := w.advState()
			err := c.call(w)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			events := 0
			if c.action != "" {
				events = 1
			}
			w.advUnchanged(before, events)
			if events == 1 {
				w.advDenied(c.actor, c.action)
			}
			if c.same != nil {
				if twin := c.same(w); twin == nil || advIDs.ReplaceAllString(twin.Error(), "ID") != advIDs.ReplaceAllString(err.Error(), "ID") {
					t.Errorf("answer %q differs from the answer for an object that does not exist, %q", err, twin)
				}
			}
		})
	}
}

// advOp is one management route, called by actor on target (a person the
// actor does not hold authority over) in org, or on registration request
// req.
type advOp struct {
	name   string
	action audit.Action
	// platform: PlatformAdmins only, so any other actor is forbidden
	// wherever they belong; otherwise an actor without a role in org gets
	// ErrNotFound (the org answers like one that does not exist) and a
	// Member gets ErrForbidden.
	platform bool
	// auditView: a Member holding the audit category may use it.
	auditView bool
	// uses names the id positions the route reads besides the actor:
	// t(arget), o(rg), r(equest); O: an org where "" means none
	// (platform-wide), so that only a non-empty malformed org attacks it.
	uses string
	call func(w *world, actor, target authz.UserID, org authz.OrgID, req approval.RequestID) error
}

func advOps() []advOp {
	return []advOp{
		{"create org", audit.OrgCreate, true, false, "", func(w *world, actor, _ authz.UserID, _ authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.CreateOrg(w.ctx, actor, "Hijacked")
			return err
		}},
		{"rename org", audit.OrgRename, true, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			return w.svc.RenameOrg(w.ctx, actor, org, "Hijacked")
		}},
		{"delete org", audit.OrgDelete, true, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			return w.svc.DeleteOrg(w.ctx, actor, org)
		}},
		{"approve", audit.RegistrationApprove, false, false, "r", func(w *world, actor, _ authz.UserID, _ authz.OrgID, req approval.RequestID) error {
			return w.svc.Approve(w.ctx, actor, req)
		}},
		{"reject", audit.RegistrationReject, false, false, "r", func(w *world, actor, _ authz.UserID, _ authz.OrgID, req approval.RequestID) error {
			return w.svc.Reject(w.ctx, actor, req, "go away")
		}},
		{"change role", audit.MemberRoleChange, false, false, "to", func(w *world, actor, target authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			return w.svc.ChangeRole(w.ctx, actor, target, org, authz.Manager)
		}},
		{"set categories", audit.MemberCategoriesSet, false, false, "to", func(w *world, actor, target authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			return w.svc.SetCategories(w.ctx, actor, target, org, authz.AllCategories)
		}},
		{"remove member", audit.MemberRemove, false, false, "to", func(w *world, actor, target authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			return w.svc.RemoveMember(w.ctx, actor, target, org)
		}},
		{"start password reset", audit.PasswordResetIssue, false, false, "tO", func(w *world, actor, target authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			return w.svc.StartPasswordReset(w.ctx, actor, target, org)
		}},
		{"deactivate user", audit.UserDeactivate, true, false, "t", func(w *world, actor, target authz.UserID, _ authz.OrgID, _ approval.RequestID) error {
			return w.svc.DeactivateUser(w.ctx, actor, target)
		}},
		{"reactivate user", audit.UserReactivate, true, false, "t", func(w *world, actor, target authz.UserID, _ authz.OrgID, _ approval.RequestID) error {
			return w.svc.ReactivateUser(w.ctx, actor, target)
		}},
		{"delete user", audit.UserDelete, true, false, "t", func(w *world, actor, target authz.UserID, _ authz.OrgID, _ approval.RequestID) error {
			return w.svc.DeleteUser(w.ctx, actor, target)
		}},
		{"members", audit.MembersView, false, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.Members(w.ctx, actor, org, iam.Page{})
			return err
		}},
		{"members with", audit.MembersView, false, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.MembersWith(w.ctx, actor, org, authz.Audit, iam.Page{})
			return err
		}},
		{"access", audit.MembersView, false, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.Access(w.ctx, actor, org, authz.Infra, iam.Page{})
			return err
		}},
		{"all users", audit.UsersView, true, false, "", func(w *world, actor, _ authz.UserID, _ authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.Users(w.ctx, actor, iam.Page{})
			return err
		}},
		{"registrations", audit.RegistrationsView, false, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.Registrations(w.ctx, actor, org, approval.AllTime, approval.AnyStatus)
			return err
		}},
		{"pending count", audit.RegistrationsView, false, false, "o", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			_, err := w.svc.PendingCount(w.ctx, actor, org)
			return err
		}},
		{"audit events", audit.AuditView, false, true, "O", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			evs, err := w.svc.AuditEvents(w.ctx, actor, audit.Filter{Org: org})
			if len(evs) > 0 {
				return fmt.Errorf("%d events returned with %v", len(evs), err)
			}
			return err
		}},
		{"export audit", audit.AuditExport, false, true, "O", func(w *world, actor, _ authz.UserID, org authz.OrgID, _ approval.RequestID) error {
			var buf bytes.Buffer
			err := w.svc.ExportAudit(w.ctx, actor, audit.Filter{Org: org}, audit.CSV, &buf)
			if buf.Len() > 0 {
				return fmt.Errorf("the refused export wrote %q (%v)", buf.String(), err)
			}
			return err
		}},
	}
}

// advRoutes: every management route, called in org a by everyone who
// holds no management authority there: a Manager and a Member of org b
// (outsiders: org-scoped routes answer ErrNotFound, as for an org that
// does not exist), a Member of a and a Member of a with the audit
// category (ErrForbidden). PlatformAdmin-only routes are forbidden to all
// four. Each attempt records one denied event and changes nothing.
func advRoutes(t *testing.T, w *world) {
	attackers := []struct {
		name     string
		actor    authz.UserID
		target   authz.UserID // someone in a, not the actor
		outsider bool
		auditor  bool
	}{
		{"manager of b", w.mgrB, w.memA, true, false},
		{"member of b", w.memB, w.memA, true, false},
		{"member of a", w.memA, w.auditorA, false, false},
		{"auditor of a", w.auditorA, w.memA, false, true},
	}
	var cases []advCase
	for _, a := range attackers {
		for _, op := range advOps() {
			if op.auditView && a.auditor {
				continue // allowed: the audit category grants it
			}
			want := iam.ErrForbidden
			if a.outsider && !op.platform {
				want = iam.ErrNotFound
			}
			cases = append(cases, advCase{
				name:   fmt.Sprintf("%s: %s in a", a.name, op.name),
				call:   func(w *world) error { return op.call(w, a.actor, a.target, w.a, w.pendingA) },
				want:   want,
				actor:  a.actor,
				action: op.action,
			})
		}
	}
	advRun(t, w, cases)
}

// advEscalation: attempts to gain or hand out a role, to change one's own,
// and a Manager reaching a PlatformAdmin who is a member of their org.
func advEscalation(t *testing.T, w *world) {
	var cases []advCase
	for _, r := range []struct {
		name          string
		actor, target authz.UserID
		org           authz.OrgID
		to            authz.Role
		want          error
	}{
		{"manager promotes a fellow manager to platformadmin", w.mgrA, w.mgrA2, w.a, authz.PlatformAdmin, iam.ErrForbidden},
		{"manager promotes the auditor to platformadmin", w.mgrA, w.auditorA, w.a, authz.PlatformAdmin, iam.ErrForbidden},
		{"manager promotes a member of b to platformadmin through a", w.mgrA, w.memB, w.a, authz.PlatformAdmin, iam.ErrNotFound},
		{"manager of b promotes a member of a to platformadmin through b", w.mgrB, w.memA, w.b, authz.PlatformAdmin, iam.ErrNotFound},
		{"manager promotes a pending applicant to platformadmin", w.mgrA, w.pendingUser, w.a, authz.PlatformAdmin, iam.ErrNotFound},
		{"manager adds a pending applicant as manager", w.mgrA, w.pendingUser, w.a, authz.Manager, iam.ErrNotFound},
		{"member promotes themselves to manager", w.memA, w.memA, w.a, authz.Manager, iam.ErrSelfRoleChange},
		{"member promotes themselves to platformadmin", w.memA, w.memA, w.a, authz.PlatformAdmin, iam.ErrSelfRoleChange},
		{"manager demotes themselves to member", w.mgrA, w.mgrA, w.a, authz.Member, iam.ErrSelfRoleChange},
		{"second platformadmin demotes themselves", w.pa2, w.pa2, w.a, authz.Member, iam.ErrSelfRoleChange},
		{"platformadmin makes themselves manager of b", w.admin, w.admin, w.b, authz.Manager, iam.ErrSelfRoleChange},
		{"pending applicant makes themselves a member of a", w.pendingUser, w.pendingUser, w.a, authz.Member, iam.ErrSelfRoleChange},
		{"manager makes the platformadmin of their org a manager", w.mgrA, w.pa2, w.a, authz.Manager, iam.ErrForbidden},
	} {
		cases = append(cases, advCase{name: r.name, want: r.want, actor: r.actor, action: audit.MemberRoleChange,
			call: func(w *world) error { return w.svc.ChangeRole(w.ctx, r.actor, r.target, r.org, r.to) }})
	}
	advRun(t, w, append(cases, []advCase{
		{name: "pending applicant approves their own request", call: func(w *world) error { return w.svc.Approve(w.ctx, w.pendingUser, w.pendingA) },
			want: authz.ErrSelfApproval, actor: w.pendingUser, action: audit.RegistrationApprove},
		{name: "manager deletes the platformadmin of their org", call: func(w *world) error { return w.svc.DeleteUser(w.ctx, w.mgrA, w.pa2) },
			want: iam.ErrForbidden, actor: w.mgrA, action: audit.UserDelete},
		{name: "manager deactivates the platformadmin of their org", call: func(w *world) error { return w.svc.DeactivateUser(w.ctx, w.mgrA, w.pa2) },
			want: iam.ErrForbidden, actor: w.mgrA, action: audit.UserDeactivate},
		{name: "manager resets the platformadmin's password without naming an org", call: func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.mgrA, w.pa2, "") },
			want: iam.ErrNotFound, actor: w.mgrA, action: audit.PasswordResetIssue},
		{name: "manager resets a member's password without naming an org", call: func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.mgrA, w.memA, "") },
			want: iam.ErrNotFound, actor: w.mgrA, action: audit.PasswordResetIssue},
		{name: "manager starts a reset of their own password", call: func(w *world) error { return w.svc.StartPasswordReset(w.ctx, w.mgrA, w.mgrA, w.a) },
			want: iam.ErrForbidden, actor: w.mgrA, action: audit.PasswordResetIssue},
		{name: "role number out of range", call: func(w *world) error { return w.svc.ChangeRole(w.ctx, w.admin, w.memA, w.a, authz.Role(9)) }, want: iam.ErrInvalid},
		{name: "category bits out of range", call: func(w *world) error { return w.svc.SetCategories(w.ctx, w.mgrA, w.memA, w.a, authz.CategorySet(0xff)) },
			want: iam.ErrInvalid},
	}...))
}

// advIDOR: ids of one org used under another org's path. The object of
// the other org answers exactly like one that does not exist, text
// included.
func advIDOR(t *testing.T, w *world) {
	type call func(w *world, actor, target authz.UserID, org authz.OrgID) error
	routes := []struct {
		name   string
		action audit.Action
		call   call
	}{
		{"sets categories of", audit.MemberCategoriesSet, func(w *world, actor, target authz.UserID, org authz.OrgID) error {
			return w.svc.SetCategories(w.ctx, actor, target, org, authz.AllCategories)
		}},
		{"changes the role of", audit.MemberRoleChange, func(w *world, actor, target authz.UserID, org authz.OrgID) error {
			return w.svc.ChangeRole(w.ctx, actor, target, org, authz.Manager)
		}},
		{"removes", audit.MemberRemove, func(w *world, actor, target authz.UserID, org authz.OrgID) error {
			return w.svc.RemoveMember(w.ctx, actor, target, org)
		}},
		{"resets the password of", audit.PasswordResetIssue, func(w *world, actor, target authz.UserID, org authz.OrgID) error {
			return w.svc.StartPasswordReset(w.ctx, actor, target, org)
		}},
	}
	var cases []advCase
	for _, r := range routes {
		for _, p := range []struct {
			who, whom, path string
			actor, target   authz.UserID
			org             authz.OrgID
		}{
			{"manager of b", "a member of a", "b", w.mgrB, w.memA, w.b},
			{"manager of a", "a member of b", "a", w.mgrA, w.memB, w.a},
			{"manager of b", "the manager of a", "b", w.mgrB, w.mgrA, w.b},
		} {
			cases = append(cases, advCase{
				name:   fmt.Sprintf("%s %s %s under %s's path", p.who, r.name, p.whom, p.path),
				call:   func(w *world) error { return r.call(w, p.actor, p.target, p.org) },
				want:   iam.ErrNotFound,
				actor:  p.actor,
				action: r.action,
				same:   func(w *world) error { return r.call(w, p.actor, authz.NewUserID(), p.org) },
			})
		}
	}
	cases = append(cases,
		advCase{name: "manager of b approves a's request: answers like an unknown request",
			call: func(w *world) error { return w.svc.Approve(w.ctx, w.mgrB, w.pendingA) }, want: iam.ErrNotFound, actor: w.mgrB, action: audit.RegistrationApprove,
			same: func(w *world) error { return w.svc.Approve(w.ctx, w.mgrB, approval.NewRequestID()) }},
		advCase{name: "manager of b rejects a's request: answers like an unknown request",
			call: func(w *world) error { return w.svc.Reject(w.ctx, w.mgrB, w.pendingA, "") }, want: iam.ErrNotFound, actor: w.mgrB, action: audit.RegistrationReject,
			same: func(w *world) error { return w.svc.Reject(w.ctx, w.mgrB, approval.NewRequestID(), "") }},
		advCase{name: "manager of b lists a's members: answers like an unknown org",
			call: func(w *world) error { _, err := w.svc.Members(w.ctx, w.mgrB, w.a, iam.Page{}); return err }, want: iam.ErrNotFound, actor: w.mgrB, action: audit.MembersView,
			same: func(w *world) error { _, err := w.svc.Members(w.ctx, w.mgrB, authz.NewOrgID(), iam.Page{}); return err }},
		advCase{name: "auditor of a reads b's audit log: answers like an unknown org",
			call: func(w *world) error {
				_, err := w.svc.AuditEvents(w.ctx, w.auditorA, audit.Filter{Org: w.b})
				return err
			}, want: iam.ErrNotFound, actor: w.auditorA, action: audit.AuditView,
			same: func(w *world) error {
				_, err := w.svc.AuditEvents(w.ctx, w.auditorA, audit.Filter{Org: authz.NewOrgID()})
				return err
			}},
	)
	advRun(t, w, cases)

	// Filters naming people of another org return nothing of that org:
	// the audit view is scoped to the viewer's own orgs whatever it asks.
	t.Run("manager of b filters the audit log by a's people", func(t *testing.T) {
		w := w.advFor(t)
		for _, f := range []audit.Filter{{Target: w.memA}, {Actor: w.mgrA}, {}, {Org: w.b, Target: w.memA}} {
			evs, err := w.svc.AuditEvents(w.ctx, w.mgrB, f)
			w.must(err)
			for _, ev := range evs {
				if ev.Org != w.b {
					t.Errorf("filter %+v returned an event of org %q: %+v", f, ev.Org, ev)
				}
			}
		}
	})
}

// advInvariants: the last active PlatformAdmin and an org's last active
// Manager, when the others are deactivated (the invariants count active
// accounts), and what a deactivated PlatformAdmin can still do (nothing).
func advInvariants(t *testing.T, w *world) {
	w.must(w.svc.DeactivateUser(w.ctx, w.admin, w.pa2))   // admin is now the last active PlatformAdmin
	w.must(w.svc.DeactivateUser(w.ctx, w.admin, w.mgrA2)) // mgrA is now a's last active Manager
	deleteUser := func(actor, target authz.UserID) func(*world) error {
		return func(w *world) error { return w.svc.DeleteUser(w.ctx, actor, target) }
	}
	deleteOwn := func(actor authz.UserID, password string) func(*world) error {
		return func(w *world) error { return w.svc.DeleteAccount(w.ctx, actor, password) }
	}
	advRun(t, w, []advCase{
		{name: "last active platformadmin deactivates themselves, another deactivated", call: func(w *world) error { return w.svc.DeactivateUser(w.ctx, w.admin, w.admin) },
			want: iam.ErrLastPlatformAdmin, actor: w.admin, action: audit.UserDeactivate},
		{name: "last active platformadmin deletes themselves, another deactivated", call: deleteUser(w.admin, w.admin), want: iam.ErrLastPlatformAdmin, actor: w.admin, action: audit.UserDelete},
		{name: "last active platformadmin deletes own account, another deactivated", call: deleteOwn(w.admin, pw), want: iam.ErrLastPlatformAdmin, actor: w.admin, action: audit.ProfileDelete},
		{name: "last active platformadmin deletes own account with a wrong password", call: deleteOwn(w.admin, "not my passphrase at all"), want: iam.ErrForbidden, actor: w.admin, action: audit.ProfileDelete},
		{name: "deactivated platformadmin demotes the last active one", call: func(w *world) error { return w.svc.ChangeRole(w.ctx, w.pa2, w.admin, w.a, authz.Member) },
			want: iam.ErrUnauthenticated},
		{name: "deactivated platformadmin deletes the last active one", call: deleteUser(w.pa2, w.admin), want: iam.ErrUnauthenticated},
		{name: "deactivated platformadmin reactivates themselves", call: func(w *world) error { return w.svc.ReactivateUser(w.ctx, w.pa2, w.pa2) },
			want: iam.ErrUnauthenticated},
		{name: "last active manager of a leaves, the other deactivated", call: func(w *world) error { return w.svc.RemoveMember(w.ctx, w.mgrA, w.mgrA, w.a) },
			want: iam.ErrLastManager, actor: w.mgrA, action: audit.MemberRemove},
		{name: "last active manager of a deletes own account", call: deleteOwn(w.mgrA, pw), want: iam.ErrLastManager, actor: w.mgrA, action: audit.ProfileDelete},
		{name: "platformadmin deletes the last active manager of a", call: deleteUser(w.admin, w.mgrA), want: iam.ErrLastManager, actor: w.admin, action: audit.UserDelete},
		{name: "platformadmin demotes the last active manager of a", call: func(w *world) error { return w.svc.ChangeRole(w.ctx, w.admin, w.mgrA, w.a, authz.Member) },
			want: iam.ErrLastManager, actor: w.admin, action: audit.MemberRoleChange},
		{name: "last manager of b deletes own account", call: deleteOwn(w.mgrB, pw), want: iam.ErrLastManager, actor: w.mgrB, action: audit.ProfileDelete},
		{name: "platformadmin deletes the last manager of b", call: deleteUser(w.admin, w.mgrB), want: iam.ErrLastManager, actor: w.admin, action: audit.UserDelete},
		{name: "deactivated manager acts in their org", call: func(w *world) error { return w.svc.SetCategories(w.ctx, w.mgrA2, w.memA, w.a, authz.AllCategories) },
			want: iam.ErrUnauthenticated},
	})
}

// advBadIDs are the shapes of malformed ids, each made from a valid id of
// the kind wanted (so that a case-insensitive or trimming comparison
// would find the real object).
var advBadIDs = []struct {
	name string
	of   func(valid string) string
}{
	{"star", func(string) string { return "*" }},
	{"prefix and star", func(id string) string { return id[:4] + "*" }},
	{"double colon", func(string) string { return "::" }},
	{"comma list", func(id string) string { return id + "," + id }},
	{"empty", func(string) string { return "" }},
	{"10 KB", func(id string) string { return id + strings.Repeat(id[4:5], 10<<10) }},
	{"cyrillic look-alike", advConfusable},
	{"fullwidth character", func(id string) string { return id[:len(id)-1] + string(rune(0xFEE0+rune(id[len(id)-1]))) }},
	{"NUL inside", func(id string) string { return id[:len(id)/2] + "\x00" + id[len(id)/2+1:] }},
	{"NUL after", func(id string) string { return id + "\x00" }},
	{"upper case", strings.ToUpper},
	{"trailing space", func(id string) string { return id + " " }},
	{"leading space", func(id string) string { return " " + id }},
	{"percent wildcard", func(id string) string { return id[:len(id)-1] + "%" }},
}

// advConfusable replaces the first Latin letter of id that has a Cyrillic
// twin with the twin: an id that reads the same and is not.
func advConfusable(id string) string {
	twins := map[rune]rune{'a': 'а', 'c': 'с', 'e': 'е', 'o': 'о', 'p': 'р', 's': 'ѕ', 'x': 'х', 'y': 'у', 'i': 'і'}
	for i, r := range id {
		if twin, ok := twins[r]; ok {
			return id[:i] + string(twin) + id[i+1:]
		}
	}
	panic("advConfusable: no letter with a twin in " + id)
}

// advMalformedIDs sends each malformed id through every method in every
// id position, as the PlatformAdmin (so that no permission refusal hides
// the input check): a target, org or request id is ErrInvalid, an actor
// id ErrUnauthenticated, a token ErrUnauthenticated, and none of them
// records an event or changes anything. Checks with such ids deny.
func advMalformedIDs(t *testing.T, w *world) {
	for _, shape := range advBadIDs {
		t.Run(shape.name, func(t *testing.T) {
			w := w.advFor(t)
			user := authz.UserID(shape.of(string(w.memA)))
			org := authz.OrgID(shape.of(string(w.a)))
			req := approval.RequestID(shape.of(string(w.pendingA)))
			before := w.advState()
			expect := func(what string, want error, err error) {
				t.Helper()
				if !errors.Is(err, want) {
					t.Errorf("%s: err = %v, want %v", what, err, want)
				}
			}
			for _, op := range advOps() {
				// The malformed id as the acting user: nobody to act.
				expect(op.name+", as actor", iam.ErrUnauthenticated, op.call(w, authz.UserID(shape.of(string(w.admin))), w.memA, w.a, w.pendingA))
				if strings.Contains(op.uses, "t") {
					expect(op.name+", as target", iam.ErrInvalid, op.call(w, w.admin, user, w.a, w.pendingA))
				}
				if strings.Contains(op.uses, "r") {
					expect(op.name+", as request", iam.ErrInvalid, op.call(w, w.admin, w.memA, w.a, req))
				}
				if strings.Contains(op.uses, "o") || strings.Contains(op.uses, "O") && org != "" {
					expect(op.name+", as org", iam.ErrInvalid, op.call(w, w.admin, w.memA, org, w.pendingA))
				}
			}
			expect("sign up, as org", iam.ErrInvalid, w.svc.SignUp(w.ctx, "mallory@example.com", "Mallory", pw, org))
			for name, f := range map[string]audit.Filter{"actor": {Actor: user}, "target": {Target: user}} {
				if user == "" {
					break // no filter: not an attack
				}
				_, err := w.svc.AuditEvents(w.ctx, w.admin, f)
				expect("audit filter "+name, iam.ErrInvalid, err)
			}
			_, err := w.svc.Authenticate(w.ctx, shape.of(string(w.memA)))
			expect("authenticate", iam.ErrUnauthenticated, err)
			_, err = w.svc.ResetPassword(w.ctx, shape.of(string(w.memA)), "a perfectly fine passphrase")
			expect("reset password", iam.ErrUnauthenticated, err)
			expect("logout", iam.ErrUnauthenticated, w.svc.Logout(w.ctx, shape.of(string(w.memA))))
			expect("change name, as actor", iam.ErrUnauthenticated, w.svc.ChangeName(w.ctx, user, "Mallory"))
			_, err = w.svc.ChangePassword(w.ctx, user, pw, "a perfectly fine passphrase")
			expect("change password, as actor", iam.ErrUnauthenticated, err)
			expect("delete account, as actor", iam.ErrUnauthenticated, w.svc.DeleteAccount(w.ctx, user, pw))
			expect("operations, as actor", iam.ErrForbidden, w.svc.CheckOperations(w.ctx, user))
			for _, c := range authz.Categories() {
				if d := w.svc.Check(w.ctx, user, w.a, c); d.Allowed {
					t.Errorf("check of user %q allowed: %+v", user, d)
				}
				if d := w.svc.Check(w.ctx, w.memA, org, c); d.Allowed {
					t.Errorf("check in org %q allowed: %+v", org, d)
				}
			}
			w.advUnchanged(before, 0)
		})
	}
}

// advPolicyClean fails unless every value of every policy row is a
// server-generated id or a word of the model's closed vocabulary: no
// name, email, org title or other chosen text reaches the policy.
func (w *world) advPolicyClean(chosen string) {
	w.t.Helper()
	vocab := map[string]bool{"": true, "global": true}
	for _, r := range []authz.Role{authz.Member, authz.Manager, authz.PlatformAdmin} {
		vocab["role:"+r.String()] = true
	}
	for _, c := range authz.Categories() {
		vocab[c.String()], vocab["cat:"+c.String()] = true, true
	}
	var rows []struct{ Ptype, V0, V1, V2, V3, V4, V5 string }
	w.must(w.db.Table("casbin_rule").Find(&rows).Error)
	if len(rows) == 0 {
		w.t.Fatal("no policy rows")
	}
	for _, r := range rows {
		for _, v := range []string{r.V0, r.V1, r.V2, r.V3, r.V4, r.V5} {
			if !vocab[v] && !authz.UserID(v).Valid() && !authz.OrgID(v).Valid() {
				w.t.Errorf("policy row %+v holds %q, neither an id nor a word of the model", r, v)
			}
			if v == chosen && !vocab[v] && !authz.UserID(v).Valid() && !authz.OrgID(v).Valid() {
				w.t.Errorf("policy row %+v holds the chosen text %q", r, chosen)
			}
		}
	}
}

// advTextFields: names, org titles and a rejection reason that are
// hostile (NUL, control characters, 10 KB: refused with ErrInvalid, no
// event, nothing changed) or merely look dangerous (SQL, roles, a
// wildcard, ids, the policy's own words: stored verbatim, granting
// nothing: the policy holds no chosen text and every decision stays).
func advTextFields(t *testing.T, w *world) {
	for i, c := range []struct {
		name, text string
		refused    bool
	}{
		{"NUL", "Eve\x00Admin", true},
		{"escape and newline", "Eve\x1b[31m\r\nAdmin", true},
		{"bidi override", "Eve\u202eAdmin", true},
		{"10 KB", strings.Repeat("E", 10<<10), true},
		{"only spaces", "   ", true},
		{"SQL quote", "'; DROP TABLE iam_users; --", false},
		{"SQL or", `" OR 1=1 --`, false},
		{"SQL union", "x' UNION SELECT password_hash FROM iam_users --", false},
		{"role name", "PlatformAdmin", false},
		{"policy word", "role:platformadmin", false},
		{"wildcard", "*", false},
		{"casbin separators", "usr_a, org_b :: global", false},
		{"org id", string(w.b), false},
		{"user id", string(w.admin), false},
		{"cyrillic look-alike of a name", "Аda Аdmin", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := w.advFor(t)
			before := w.advState()
			// A fresh org and applicant for this case, so that accepted
			// text lands on objects nobody else looks at.
			org, err := w.svc.CreateOrg(w.ctx, w.admin, c.text)
			if c.refused {
				if !errors.Is(err, iam.ErrInvalid) {
					t.Fatalf("create org: %v, want ErrInvalid", err)
				}
				refusals := map[string]error{
					"rename org":  w.svc.RenameOrg(w.ctx, w.admin, w.b, c.text),
					"change name": w.svc.ChangeName(w.ctx, w.memB, c.text),
					"sign up":     w.svc.SignUp(w.ctx, "text@example.com", c.text, pw, w.b),
				}
				if strings.TrimSpace(c.text) != "" { // a blank reason is no reason, which Reject accepts
					refusals["reject"] = w.svc.Reject(w.ctx, w.mgrA, w.pendingA, c.text)
				}
				for what, err := range refusals {
					if !errors.Is(err, iam.ErrInvalid) {
						t.Errorf("%s: %v, want ErrInvalid", what, err)
					}
				}
				w.advUnchanged(before, 0)
				return
			}
			w.must(err)
			w.advPolicyClean(c.text)
			w.must(w.svc.RenameOrg(w.ctx, w.admin, org.ID, c.text+" 2"))
			email := fmt.Sprintf("text%d@example.com", i)
			w.must(w.svc.SignUp(w.ctx, email, c.text, pw, org.ID))
			reqs, err := w.svc.Registrations(w.ctx, w.admin, org.ID, approval.AllTime, approval.Pending)
			w.must(err)
			if len(reqs) != 1 || reqs[0].Name != c.text {
				t.Fatalf("requests %+v, want one by %q", reqs, c.text)
			}
			w.must(w.svc.Approve(w.ctx, w.admin, reqs[0].ID))
			orgs, err := w.svc.Orgs(w.ctx, w.admin)
			w.must(err)
			if !slices.ContainsFunc(orgs, func(o identity.Org) bool { return o.ID == org.ID && o.Name == c.text+" 2" }) {
				t.Errorf("org %s not stored as %q: %+v", org.ID, c.text+" 2", orgs)
			}
			// The applicant is a Member of the new org with nothing, and
			// holds nothing anywhere else.
			for _, cat := range authz.Categories() {
				for _, o := range []authz.OrgID{org.ID, w.a, w.b} {
					if d := w.svc.Check(w.ctx, reqs[0].User, o, cat); d.Allowed {
						t.Errorf("applicant named %q allowed %s in %s: %+v", c.text, cat, o, d)
					}
				}
			}
			if err := w.svc.CheckOperations(w.ctx, reqs[0].User); err == nil {
				t.Errorf("applicant named %q may use the operations screens", c.text)
			}
			// A display name changed to the text grants nothing either.
			w.must(w.svc.ChangeName(w.ctx, w.memB, c.text))
			p, err := w.svc.Profile(w.ctx, w.memB)
			w.must(err)
			if p.Name != c.text {
				t.Errorf("name stored as %q, want %q", p.Name, c.text)
			}
			w.advPolicyClean(c.text)
			if after := w.advDecisions(); !slices.Equal(before.decisions, after) {
				t.Errorf("decisions changed after text %q", c.text)
			}
			// Undo the name, for the next case's "nothing changed".
			w.must(w.svc.ChangeName(w.ctx, w.memB, "Person memb"))
		})
	}
}

// advLogin logs email in with pw and returns the session token's secret.
func (w *world) advLogin(email string) string {
	w.t.Helper()
	tok, err := w.svc.Login(w.ctx, email, pw)
	w.must(err)
	return tok.Reveal()
}

// advMail returns the next reset message, which must be for user.
func (w *world) advMail(user authz.UserID) iam.ResetMessage {
	w.t.Helper()
	m := w.mail.Next(w.t)
	if m.User != user {
		w.t.Fatalf("reset message for %s, want %s", m.User, user)
	}
	return m
}

// advRefusedToken fails unless token authenticates nobody.
func (w *world) advRefusedToken(token string) {
	w.t.Helper()
	if u, err := w.svc.Authenticate(w.ctx, token); !errors.Is(err, iam.ErrUnauthenticated) {
		w.t.Errorf("Authenticate = %q, %v; want ErrUnauthenticated", u, err)
	}
}

// advEmails: one account per email whatever its case or surrounding
// space; look-alike and SQL-looking addresses are other accounts or
// refused, and reach nobody else's account.
func advEmails(t *testing.T, w *world) {
	t.Run("known email in another case and with spaces, wrong password, creates nothing", func(t *testing.T) {
		w := w.advFor(t)
		before := w.advState()
		w.must(w.svc.SignUp(w.ctx, "  MemA@EXAMPLE.com ", "Mem Twin", "an impostor's passphrase", w.b)) // a new email's answer
		w.advUnchanged(before, 0)
	})
	t.Run("known email in another case, right password, is the same account", func(t *testing.T) {
		w := w.advFor(t)
		w.must(w.svc.SignUp(w.ctx, " MEMA@example.COM", "Mem Twin", pw, w.b))
		reqs, err := w.svc.Registrations(w.ctx, w.admin, w.b, approval.AllTime, approval.Pending)
		w.must(err)
		if len(reqs) != 1 || reqs[0].User != w.memA || reqs[0].Email != "mema@example.com" {
			t.Fatalf("requests %+v, want one by %s as mema@example.com", reqs, w.memA)
		}
		w.must(w.svc.Reject(w.ctx, w.mgrB, reqs[0].ID, "")) // back to no pending request in b
	})
	t.Run("login and forgot password with the email in another case reach the same account", func(t *testing.T) {
		w := w.advFor(t)
		u, err := w.svc.Authenticate(w.ctx, w.advLogin("\tMEMA@Example.Com "))
		w.must(err)
		if u != w.memA {
			t.Errorf("logged in as %s, want %s", u, w.memA)
		}
		w.must(w.svc.ForgotPassword(w.ctx, " MemA@Example.COM"))
		if m := w.advMail(w.memA); m.Email != "mema@example.com" {
			t.Errorf("reset message to %q", m.Email)
		}
	})
	for _, c := range []struct{ name, email string }{
		{"cyrillic look-alike", "аda@example.com"},
		{"fullwidth look-alike", "ａｄａ@example.com"},
		{"SQL-looking but valid", "ada'--@example.com"},
		{"policy-looking", "role:platformadmin@example.com"},
		{"wildcard", "*@example.com"},
	} {
		t.Run(c.name+" email is another account or refused", func(t *testing.T) {
			w := w.advFor(t)
			const theirs = "mallory's own passphrase"
			err := w.svc.SignUp(w.ctx, c.email, "Ada Admin", theirs, w.b)
			if errors.Is(err, iam.ErrInvalid) {
				return
			}
			w.must(err)
			if _, err := w.svc.Login(w.ctx, c.email, pw); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("the admin's password opened %q: %v", c.email, err)
			}
			tok, err := w.svc.Login(w.ctx, c.email, theirs)
			w.must(err)
			u, err := w.svc.Authenticate(w.ctx, tok.Reveal())
			w.must(err)
			if u == w.admin || w.svc.CheckOperations(w.ctx, u) == nil {
				t.Errorf("%q reached the PlatformAdmin's rights as %s", c.email, u)
			}
			w.advPolicyClean(c.email)
		})
	}
	t.Run("hostile emails are refused", func(t *testing.T) {
		w := w.advFor(t)
		before := w.advState()
		for _, email := range []string{
			"x'; DROP TABLE iam_users; --@example.com", `" OR 1=1 --@example.com`, "ada@example.com\x00", "ada\x00@example.com",
			"ada@exa\nmple.com", strings.Repeat("a", 10<<10) + "@example.com", "", "   ", "ada@example.com, eve@example.com",
		} {
			if err := w.svc.SignUp(w.ctx, email, "Eve", pw, w.b); !errors.Is(err, iam.ErrInvalid) {
				t.Errorf("sign up %q: %v, want ErrInvalid", email, err)
			}
			if err := w.svc.ForgotPassword(w.ctx, email); !errors.Is(err, iam.ErrInvalid) {
				t.Errorf("forgot password %q: %v, want ErrInvalid", email, err)
			}
		}
		w.advUnchanged(before, 0)
	})
	t.Run("SQL-looking login answers like an unknown email", func(t *testing.T) {
		w := w.advFor(t)
		before := w.advState()
		_, unknown := w.svc.Login(w.ctx, "nobody@example.com", pw)
		for _, email := range []string{"' OR '1'='1", `ada@example.com' --`, "*", "%"} {
			_, err := w.svc.Login(w.ctx, email, pw)
			if !errors.Is(err, iam.ErrUnauthenticated) || err.Error() != unknown.Error() {
				t.Errorf("login %q: %v, want %v", email, err, unknown)
			}
		}
		w.advUnchanged(before, 5) // each failed login is a denied session.login
		w.advDenied("", audit.SessionLogin)
	})
}

// advRegistrations: decided requests stay decided, and sign-ups for an org
// that is gone or never was answer alike and leave nothing behind.
func advRegistrations(t *testing.T, w *world) {
	pending := func(org authz.OrgID, email string) approval.Request {
		w.t.Helper()
		w.must(w.svc.SignUp(w.ctx, email, "Applicant", pw, org))
		reqs, err := w.svc.Registrations(w.ctx, w.admin, org, approval.AllTime, approval.Pending)
		w.must(err)
		for _, r := range reqs {
			if r.Email == email {
				return r
			}
		}
		w.t.Fatalf("no pending request by %s", email)
		return approval.Request{}
	}
	approved := w.pendingA
	w.must(w.svc.Approve(w.ctx, w.mgrA, approved))
	rejected := pending(w.a, "rejected@example.com").ID
	w.must(w.svc.Reject(w.ctx, w.mgrA, rejected, "unknown person"))
	ofDeleted := pending(w.b, "deleted@example.com")
	w.must(w.svc.DeleteUser(w.ctx, w.admin, ofDeleted.User))
	gone := w.org("Gone Lab")
	ofGoneOrg := pending(gone, "goneorg@example.com").ID
	w.must(w.svc.DeleteOrg(w.ctx, w.admin, gone))

	approve := func(actor authz.UserID, id approval.RequestID) func(*world) error {
		return func(w *world) error { return w.svc.Approve(w.ctx, actor, id) }
	}
	reject := func(actor authz.UserID, id approval.RequestID) func(*world) error {
		return func(w *world) error { return w.svc.Reject(w.ctx, actor, id, "changed my mind") }
	}
	signUp := func(email string, org func() authz.OrgID) func(*world) error {
		return func(w *world) error { return w.svc.SignUp(w.ctx, email, "Late Comer", pw, org()) }
	}
	unknownOrg := func() authz.OrgID { return authz.NewOrgID() }
	goneOrg := func() authz.OrgID { return gone }
	ra, rr := audit.RegistrationApprove, audit.RegistrationReject
	advRun(t, w, []advCase{
		{name: "manager approves an approved request", call: approve(w.mgrA, approved), want: iam.ErrConflict, actor: w.mgrA, action: ra},
		{name: "manager rejects an approved request", call: reject(w.mgrA, approved), want: iam.ErrConflict, actor: w.mgrA, action: rr},
		{name: "manager approves a rejected request", call: approve(w.mgrA, rejected), want: iam.ErrConflict, actor: w.mgrA, action: ra},
		{name: "platformadmin approves a rejected request", call: approve(w.admin, rejected), want: iam.ErrConflict, actor: w.admin, action: ra},
		{name: "manager rejects a rejected request", call: reject(w.mgrA, rejected), want: iam.ErrConflict, actor: w.mgrA, action: rr},
		{name: "manager of b approves the request of a deleted account", call: approve(w.mgrB, ofDeleted.ID), want: iam.ErrNotFound, actor: w.mgrB, action: ra,
			same: approve(w.mgrB, approval.NewRequestID())},
		{name: "platformadmin approves a request of a deleted org", call: approve(w.admin, ofGoneOrg), want: iam.ErrNotFound, actor: w.admin, action: ra,
			same: approve(w.admin, approval.NewRequestID())},
		{name: "sign-up for a deleted org answers like an unknown org", call: signUp("late@example.com", goneOrg), want: iam.ErrNotFound,
			same: signUp("late@example.com", unknownOrg)},
		{name: "sign-up of a known email for a deleted org answers like an unknown org", call: signUp("mema@example.com", goneOrg), want: iam.ErrNotFound,
			same: signUp("late@example.com", unknownOrg)},
		{name: "sign-up of a deleted account's email for a deleted org", call: signUp("deleted@example.com", goneOrg), want: iam.ErrNotFound,
			same: signUp("late@example.com", unknownOrg)},
	})
}

// advSessions: a token outlives nothing it should not. Each case sets up
// its own victim, then checks the old token and that the attempt with it
// changed nothing.
func advSessions(t *testing.T, w *world) {
	t.Run("removed member's old token authenticates but opens nothing in the org", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("mema@example.com")
		w.must(w.svc.RemoveMember(w.ctx, w.mgrA, w.memA, w.a))
		before := w.advState()
		u, err := w.svc.Authenticate(w.ctx, tok)
		w.must(err)
		for _, c := range authz.Categories() {
			if d := w.svc.Check(w.ctx, u, w.a, c); d.Allowed {
				t.Errorf("removed member allowed %s in a: %+v", c, d)
			}
		}
		if _, err := w.svc.AuditEvents(w.ctx, u, audit.Filter{Org: w.a}); !errors.Is(err, iam.ErrNotFound) {
			t.Errorf("removed member reads a's audit log: %v", err)
		}
		w.advUnchanged(before, 1)
		w.advDenied(w.memA, audit.AuditView)
	})
	t.Run("deactivated user's old token", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("memb@example.com")
		w.must(w.svc.DeactivateUser(w.ctx, w.admin, w.memB))
		before := w.advState()
		w.advRefusedToken(tok)
		if err := w.svc.ChangeName(w.ctx, w.memB, "Still Here"); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("deactivated user changes their name: %v", err)
		}
		if _, err := w.svc.Login(w.ctx, "memb@example.com", pw); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("deactivated user logs in: %v", err)
		}
		w.advUnchanged(before, 1)
		w.advDenied("", audit.SessionLogin)
		// Reactivation restores the account, not the sessions it had.
		w.must(w.svc.ReactivateUser(w.ctx, w.admin, w.memB))
		before = w.advState()
		w.advRefusedToken(tok)
		w.advUnchanged(before, 0)
	})
	t.Run("deleted user's old token, also after the email signs up again", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("auditor@example.com")
		w.must(w.svc.DeleteUser(w.ctx, w.admin, w.auditorA))
		before := w.advState()
		w.advRefusedToken(tok)
		if err := w.svc.Logout(w.ctx, tok); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("logout with a deleted user's token: %v", err)
		}
		if _, err := w.svc.AuditEvents(w.ctx, w.auditorA, audit.Filter{Org: w.a}); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("deleted auditor reads the audit log: %v", err)
		}
		w.advUnchanged(before, 0)
		w.must(w.svc.SignUp(w.ctx, "auditor@example.com", "Auditor Again", pw, w.a))
		w.advRefusedToken(tok)
	})
	t.Run("old token after a password reset by token", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("mgra2@example.com")
		w.must(w.svc.ForgotPassword(w.ctx, "mgra2@example.com"))
		fresh, err := w.svc.ResetPassword(w.ctx, w.advMail(w.mgrA2).Token.Reveal(), "a reset passphrase here")
		w.must(err)
		w.advRefusedToken(tok)
		if u, err := w.svc.Authenticate(w.ctx, fresh.Reveal()); err != nil || u != w.mgrA2 {
			t.Errorf("fresh session: %s, %v", u, err)
		}
	})
	t.Run("old token after a reset started by an administrator", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("mgrb@example.com")
		w.must(w.svc.StartPasswordReset(w.ctx, w.pa2, w.mgrB, ""))
		w.advMail(w.mgrB)
		w.advRefusedToken(tok)
	})
	t.Run("token after logout, and a second logout", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("pa2@example.com")
		w.must(w.svc.Logout(w.ctx, tok))
		before := w.advState()
		w.advRefusedToken(tok)
		if err := w.svc.Logout(w.ctx, tok); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("second logout: %v", err)
		}
		w.advUnchanged(before, 0)
	})
	t.Run("token after its lifetime", func(t *testing.T) {
		w := w.advFor(t)
		tok := w.advLogin("mgra@example.com")
		w.clock.Advance(identity.DefaultSessionLifetime + time.Second)
		before := w.advState()
		w.advRefusedToken(tok)
		w.advUnchanged(before, 0)
	})
}

// advResetTokens: a reset token works once, for its own user, while it is
// the newest and young, and for an active account only; anything else is
// ErrUnauthenticated and changes nothing.
func advResetTokens(t *testing.T, w *world) {
	forgot := func(w *world, email string, user authz.UserID) string {
		w.t.Helper()
		w.must(w.svc.ForgotPassword(w.ctx, email))
		return w.advMail(user).Token.Reveal()
	}
	refused := func(w *world, token string) {
		w.t.Helper()
		before := w.advState()
		if _, err := w.svc.ResetPassword(w.ctx, token, "an attacker's passphrase"); !errors.Is(err, iam.ErrUnauthenticated) {
			w.t.Errorf("reset with the token: %v, want ErrUnauthenticated", err)
		}
		w.advUnchanged(before, 0)
	}
	canLogin := func(w *world, email, password string, want bool) {
		w.t.Helper()
		if _, err := w.svc.Login(w.ctx, email, password); (err == nil) != want {
			w.t.Errorf("login %s: %v, want success %v", email, err, want)
		}
	}
	victim := func(w *world, name string) (string, authz.UserID) {
		w.t.Helper()
		email := name + "@example.com"
		return email, w.member(email, w.b, authz.Member, authz.NewCategorySet(authz.Device))
	}
	t.Run("used twice", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "twice")
		tok := forgot(w, email, u)
		_, err := w.svc.ResetPassword(w.ctx, tok, "the first new passphrase")
		w.must(err)
		refused(w, tok)
		canLogin(w, email, "the first new passphrase", true)
	})
	t.Run("expired after 30 minutes", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "late")
		w.must(w.svc.ForgotPassword(w.ctx, email))
		m := w.advMail(u)
		if life := m.Expires.Sub(w.clock.Now()); life > 30*time.Minute {
			t.Errorf("reset token lives %v, want at most 30 minutes", life)
		}
		w.clock.Advance(30*time.Minute + time.Second)
		refused(w, m.Token.Reveal())
		canLogin(w, email, pw, true)
	})
	t.Run("redeems its own user only", func(t *testing.T) {
		w := w.advFor(t)
		xEmail, x := victim(w, "xavier")
		yEmail, y := victim(w, "yvonne")
		xTok, yTok := forgot(w, xEmail, x), forgot(w, yEmail, y)
		s, err := w.svc.ResetPassword(w.ctx, xTok, "the first renewed passphrase")
		w.must(err)
		if u, err := w.svc.Authenticate(w.ctx, s.Reveal()); err != nil || u != x {
			t.Errorf("x's token gave a session of %s (%v), want %s", u, err, x)
		}
		canLogin(w, yEmail, pw, true)
		canLogin(w, yEmail, "the first renewed passphrase", false)
		canLogin(w, xEmail, pw, false)
		// x's reset did not void y's token.
		if _, err := w.svc.ResetPassword(w.ctx, yTok, "the second renewed passphrase"); err != nil {
			t.Errorf("y's token after x's reset: %v", err)
		}
	})
	t.Run("older token after a newer one started by an administrator", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "older")
		old := forgot(w, email, u)
		w.must(w.svc.StartPasswordReset(w.ctx, w.mgrB, u, w.b))
		newer := w.advMail(u).Token.Reveal()
		refused(w, old)
		_, err := w.svc.ResetPassword(w.ctx, newer, "the newest passphrase")
		w.must(err)
	})
	t.Run("token of a deleted user", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "deleted")
		tok := forgot(w, email, u)
		w.must(w.svc.DeleteUser(w.ctx, w.admin, u))
		refused(w, tok)
		// Nor does it open the account of whoever takes the email next.
		w.must(w.svc.SignUp(w.ctx, email, "Next Owner", pw, w.b))
		refused(w, tok)
	})
	t.Run("token of a deactivated user, also after reactivation", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "paused")
		tok := forgot(w, email, u)
		w.must(w.svc.DeactivateUser(w.ctx, w.admin, u))
		refused(w, tok)
		w.must(w.svc.ReactivateUser(w.ctx, w.admin, u))
		refused(w, tok)
	})
	t.Run("refused new password leaves the token usable and nothing changed", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "weak")
		tok := forgot(w, email, u)
		before := w.advState()
		for _, bad := range []string{"short", "password1234", email, strings.Repeat("x", 129)} {
			if _, err := w.svc.ResetPassword(w.ctx, tok, bad); !errors.Is(err, iam.ErrInvalid) {
				t.Errorf("new password %.20q: %v, want ErrInvalid", bad, err)
			}
		}
		w.advUnchanged(before, 0)
		_, err := w.svc.ResetPassword(w.ctx, tok, "a good passphrase at last")
		w.must(err)
	})
	t.Run("session token used as a reset token, and the other way round", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "mixup")
		refused(w, w.advLogin(email))
		tok := forgot(w, email, u)
		before := w.advState()
		w.advRefusedToken(tok)
		w.advUnchanged(before, 0)
	})
	t.Run("forged tokens", func(t *testing.T) {
		w := w.advFor(t)
		for _, tok := range []string{"", "*", "%", strings.Repeat("A", 10<<10), "\x00", "' OR 1=1 --"} {
			refused(w, tok)
			w.advRefusedToken(tok)
		}
	})
	t.Run("forgot password for a deactivated account issues nothing", func(t *testing.T) {
		w := w.advFor(t)
		email, u := victim(w, "dormant")
		w.must(w.svc.DeactivateUser(w.ctx, w.admin, u))
		before := w.advState()
		w.must(w.svc.ForgotPassword(w.ctx, email))
		w.advUnchanged(before, 1) // the request is recorded, without a token
		if ev := w.lastEvent(); ev.Action != audit.PasswordResetRequest || ev.Target != "" {
			t.Errorf("last event %+v, want a password.reset request without a target", ev)
		}
	})
}

// advWork counts what a call costs: argon2id derivations and SQL
// statements.
type advWork struct {
	err        error
	hashes     int64
	statements int
}

// advEnumeration: sign-up, login and forgot-password answer alike for an
// email with an account and one without (and for an org deleted or never
// created), with the same error text and the same number of password
// hashes. Wall-clock timing is not asserted; the work is counted instead:
// argon2id derivations (the cost that dominates a login by orders of
// magnitude) through an observed hasher, and SQL statements through the
// fault injector, disarmed.
func advEnumeration(t *testing.T, w *world) {
	w.must(w.svc.DeactivateUser(w.ctx, w.admin, w.memB))
	var hashes atomic.Int64
	svc, err := iam.New(w.ctx, w.db, iam.WithClock(w.clock.Now), iam.WithNotifier(w.mail),
		iam.WithPasswordHasher(identity.ObservedTestingHasherConfig(t, func() { hashes.Add(1) })))
	w.must(err)
	t.Cleanup(func() { svc.Close() })
	faults := dbtest.InjectFaults(t, w.db)
	work := func(call func() error) advWork {
		hashes.Store(0)
		faults.Reset(0)
		err := call()
		return advWork{err, hashes.Load(), faults.Count()}
	}
	// alike fails unless a and b answer alike after hashes derivations each.
	alike := func(t *testing.T, what string, hashes int64, a, b advWork) {
		t.Helper()
		if (a.err == nil) != (b.err == nil) || a.err != nil && advIDs.ReplaceAllString(a.err.Error(), "ID") != advIDs.ReplaceAllString(b.err.Error(), "ID") {
			t.Errorf("%s: answers differ: %v / %v", what, a.err, b.err)
		}
		if a.hashes != hashes || b.hashes != hashes {
			t.Errorf("%s: %d and %d password hashes, want %d each", what, a.hashes, b.hashes, hashes)
		}
		t.Logf("%s: %d / %d SQL statements, %d / %d hashes", what, a.statements, b.statements, a.hashes, b.hashes)
	}
	const wrong = "not the account's passphrase"

	t.Run("sign-up: known email, wrong password, answers like a new email", func(t *testing.T) {
		w := w.advFor(t)
		before := w.advState()
		known := work(func() error { return svc.SignUp(w.ctx, "mema@example.com", "Someone", wrong, w.b) })
		cased := work(func() error { return svc.SignUp(w.ctx, " MEMA@example.com", "Someone", wrong, w.b) })
		deactivated := work(func() error { return svc.SignUp(w.ctx, "memb@example.com", "Someone", pw, w.a) })
		w.advUnchanged(before, 0) // nothing for a known email without its password
		unknown := work(func() error { return svc.SignUp(w.ctx, "nobody1@example.com", "Someone", wrong, w.b) })
		alike(t, "sign-up", 2, known, unknown)
		alike(t, "sign-up, email in another case", 2, cased, unknown)
		alike(t, "sign-up, deactivated account", 2, deactivated, unknown)
	})
	t.Run("login: wrong password, unknown email and deactivated account answer alike", func(t *testing.T) {
		w := w.advFor(t)
		before := w.advState()
		known := work(func() error { _, err := svc.Login(w.ctx, "mgra@example.com", wrong); return err })
		unknown := work(func() error { _, err := svc.Login(w.ctx, "nobody2@example.com", wrong); return err })
		deactivated := work(func() error { _, err := svc.Login(w.ctx, "memb@example.com", pw); return err })
		w.advUnchanged(before, 3) // three denied session.login events
		alike(t, "login", 1, known, unknown)
		alike(t, "login, deactivated account", 1, deactivated, unknown)
		if known.statements != unknown.statements || deactivated.statements != unknown.statements {
			t.Errorf("login statements: known %d, unknown %d, deactivated %d; want the same",
				known.statements, unknown.statements, deactivated.statements)
		}
	})
	t.Run("forgot password: known and unknown emails answer alike", func(t *testing.T) {
		w := w.advFor(t)
		known := work(func() error { return svc.ForgotPassword(w.ctx, "mgra2@example.com") })
		w.advMail(w.mgrA2)
		unknown := work(func() error { return svc.ForgotPassword(w.ctx, "nobody3@example.com") })
		deactivated := work(func() error { return svc.ForgotPassword(w.ctx, "memb@example.com") })
		alike(t, "forgot password", 0, known, unknown)
		alike(t, "forgot password, deactivated account", 0, deactivated, unknown)
	})
	t.Run("sign-up: deleted and unknown org answer alike", func(t *testing.T) {
		w := w.advFor(t)
		gone := w.org("Gone Lab")
		w.must(w.svc.DeleteOrg(w.ctx, w.admin, gone))
		before := w.advState()
		deleted := work(func() error { return svc.SignUp(w.ctx, "mema@example.com", "Someone", pw, gone) })
		unknown := work(func() error { return svc.SignUp(w.ctx, "nobody4@example.com", "Someone", pw, authz.NewOrgID()) })
		w.advUnchanged(before, 0)
		if !errors.Is(deleted.err, iam.ErrNotFound) {
			t.Errorf("sign-up to a deleted org: %v, want ErrNotFound", deleted.err)
		}
		alike(t, "sign-up to a deleted org", 1, deleted, unknown)
		if deleted.statements != unknown.statements {
			t.Errorf("statements: deleted org %d, unknown org %d; want the same", deleted.statements, unknown.statements)
		}
	})
}
