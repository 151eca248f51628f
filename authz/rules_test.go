package authz_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/kiops/iam/authz"
)

// The people of the rules tests, seen from "the org at hand".
var (
	// Actors.
	actorPA       = authz.Subject{User: authz.NewUserID(), PlatformAdmin: true} // holds no role in the org
	actorPAMember = authz.Subject{User: authz.NewUserID(), PlatformAdmin: true, Role: authz.Member}
	actorMgr      = authz.Subject{User: authz.NewUserID(), Role: authz.Manager}
	actorMgrOther = authz.Subject{User: authz.NewUserID()} // a Manager of another org: no role in this one
	actorMember   = authz.Subject{User: authz.NewUserID(), Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra, authz.VPN)}
	actorAuditor  = authz.Subject{User: authz.NewUserID(), Role: authz.Member, Categories: authz.NewCategorySet(authz.Audit)}
	actorOutsider = authz.Subject{User: authz.NewUserID()}

	// Targets.
	tMember       = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), Role: authz.Member, Categories: authz.NewCategorySet(authz.Backup)}}
	tManager      = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), Role: authz.Manager}} // one of several Managers
	tLastManager  = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), Role: authz.Manager}, LastManager: true}
	tPA           = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), PlatformAdmin: true, Role: authz.Member}} // a PlatformAdmin who is a Member of the org
	tLastPA       = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), PlatformAdmin: true, Role: authz.Member}, LastPlatformAdmin: true}
	tNonMember    = authz.Target{Subject: authz.Subject{User: authz.NewUserID()}}
	tPANonMember  = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), PlatformAdmin: true}}
	tAcctLastMgr  = authz.Target{Subject: authz.Subject{User: authz.NewUserID()}, LastManager: true} // account-wide: the last Manager of some other org
	tLastPAAndMgr = authz.Target{Subject: authz.Subject{User: authz.NewUserID(), PlatformAdmin: true, Role: authz.Manager}, LastPlatformAdmin: true, LastManager: true}

	requester = authz.NewUserID()
)

// self is the actor as the target of their own operation.
func self(s authz.Subject) authz.Target { return authz.Target{Subject: s} }

// sentinels are every error the rules may match; kindOf gives the kind a
// specific sentinel also matches.
var (
	sentinels = []error{
		authz.ErrInvalid, authz.ErrForbidden, authz.ErrNotFound, authz.ErrConflict,
		authz.ErrSelfRoleChange, authz.ErrSelfApproval, authz.ErrLastPlatformAdmin, authz.ErrLastManager,
	}
	kindOf = map[error]error{
		authz.ErrSelfRoleChange:    authz.ErrForbidden,
		authz.ErrSelfApproval:      authz.ErrForbidden,
		authz.ErrLastPlatformAdmin: authz.ErrConflict,
		authz.ErrLastManager:       authz.ErrConflict,
	}
)

// assertExactly fails unless got matches want (and its kind) and no other
// sentinel: a plain ErrForbidden must not be ErrSelfRoleChange, an
// ErrLastManager must not be ErrLastPlatformAdmin, and so on. An
// ErrNotFound must be ErrNotFound itself, so that the caller answers exactly
// as it does for an object that does not exist.
func assertExactly(t *testing.T, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("got %v, want allowed (nil)", got)
		}
		return
	}
	if got == nil {
		t.Fatalf("got allowed (nil), want %v", want)
	}
	for _, s := range sentinels {
		wantIs := s == want || s == kindOf[want]
		if errors.Is(got, s) != wantIs {
			t.Errorf("errors.Is(%q, %q) = %v, want %v", got, s, !wantIs, wantIs)
		}
	}
	if want == authz.ErrNotFound && got != authz.ErrNotFound {
		t.Errorf("got %q, want ErrNotFound itself (indistinguishable from a missing object)", got)
	}
}

type ruleCase struct {
	name string
	call func() error
	want error
}

// ruleCases covers every row of DESIGN.md's "Who may do what" table that is
// a management rule, and every invariant, from both sides.
func ruleCases() []ruleCase {
	var cs []ruleCase
	add := func(name string, want error, call func() error) {
		cs = append(cs, ruleCase{name: name, call: call, want: want})
	}
	var (
		forbidden = authz.ErrForbidden
		notFound  = authz.ErrNotFound
		selfRole  = authz.ErrSelfRoleChange
		selfAppr  = authz.ErrSelfApproval
		lastPA    = authz.ErrLastPlatformAdmin
		lastMgr   = authz.ErrLastManager
	)

	// Rows "create / rename / delete an org", "list all users" and
	// "operations screens": PlatformAdmin yes, everyone else forbidden
	// (never ErrNotFound: nothing of an org is involved).
	platformRules := []struct {
		name string
		f    func(authz.Subject) error
	}{
		{"CanAdministerOrgs", authz.CanAdministerOrgs},
		{"CanListAllUsers", authz.CanListAllUsers},
		{"CanUseOperations", authz.CanUseOperations},
	}
	for _, r := range platformRules {
		for _, a := range []struct {
			name  string
			actor authz.Subject
			want  error
		}{
			{"platformadmin", actorPA, nil},
			{"platformadmin member", actorPAMember, nil},
			{"manager", actorMgr, forbidden},
			{"manager of another org", actorMgrOther, forbidden},
			{"member", actorMember, forbidden},
			{"member with audit", actorAuditor, forbidden},
			{"outsider", actorOutsider, forbidden},
		} {
			add(r.name+"/"+a.name, a.want, func() error { return r.f(a.actor) })
		}
	}

	// Rows "list an org's members" and "see registration requests, pending
	// count": any org / own org / no; another org looks like no org.
	orgRules := []struct {
		name string
		f    func(authz.Subject) error
	}{
		{"CanListMembers", authz.CanListMembers},
		{"CanReviewRegistrations", authz.CanReviewRegistrations},
	}
	for _, r := range orgRules {
		for _, a := range []struct {
			name  string
			actor authz.Subject
			want  error
		}{
			{"platformadmin", actorPA, nil},
			{"platformadmin member", actorPAMember, nil},
			{"manager", actorMgr, nil},
			{"manager of another org", actorMgrOther, notFound},
			{"member", actorMember, forbidden},
			{"member with audit", actorAuditor, forbidden},
			{"outsider", actorOutsider, notFound},
		} {
			add(r.name+"/"+a.name, a.want, func() error { return r.f(a.actor) })
		}
	}

	// Row "approve / reject registration requests", and separation of duty.
	decide := func(name string, actor authz.Subject, req authz.UserID, want error) {
		add("CanDecideRegistration/"+name, want, func() error { return authz.CanDecideRegistration(actor, req) })
	}
	decide("platformadmin", actorPA, requester, nil)
	decide("manager", actorMgr, requester, nil)
	decide("manager of another org", actorMgrOther, requester, notFound)
	decide("member", actorMember, requester, forbidden)
	decide("outsider", actorOutsider, requester, notFound)
	decide("platformadmin own request", actorPA, actorPA.User, selfAppr)
	decide("manager own request", actorMgr, actorMgr.User, selfAppr)
	decide("outsider own request", actorOutsider, actorOutsider.User, selfAppr)

	// Row "change a user's role", separation of duty and both invariants.
	role := func(name string, actor authz.Subject, target authz.Target, to authz.Role, want error) {
		add("CanChangeRole/"+name, want, func() error { return authz.CanChangeRole(actor, target, to) })
	}
	// PlatformAdmin: anyone, to any role.
	role("platformadmin member to manager", actorPA, tMember, authz.Manager, nil)
	role("platformadmin member to platformadmin", actorPA, tMember, authz.PlatformAdmin, nil)
	role("platformadmin member to member (no change)", actorPA, tMember, authz.Member, nil)
	role("platformadmin manager to member", actorPA, tManager, authz.Member, nil)
	role("platformadmin platformadmin to member", actorPA, tPA, authz.Member, nil)
	role("platformadmin platformadmin to manager", actorPA, tPA, authz.Manager, nil)
	role("platformadmin non-member to member", actorPA, tNonMember, authz.Member, nil)
	role("platformadmin non-member to platformadmin", actorPA, tNonMember, authz.PlatformAdmin, nil)
	role("platformadmin own role", actorPAMember, self(actorPAMember), authz.Manager, selfRole)
	// Invariants, whoever asks.
	role("last platformadmin to member", actorPA, tLastPA, authz.Member, lastPA)
	role("last platformadmin to manager", actorPA, tLastPA, authz.Manager, lastPA)
	role("last platformadmin stays platformadmin", actorPA, tLastPA, authz.PlatformAdmin, nil)
	role("last manager to member", actorPA, tLastManager, authz.Member, lastMgr)
	role("last manager to platformadmin keeps the org role", actorPA, tLastManager, authz.PlatformAdmin, nil)
	role("last manager to manager (no change)", actorPA, tLastManager, authz.Manager, nil)
	role("last platformadmin demoting themselves", actorPA, authz.Target{Subject: actorPA, LastPlatformAdmin: true}, authz.Member, selfRole)
	// Manager: members of own org, to Manager or Member, never a PlatformAdmin.
	role("manager member to manager", actorMgr, tMember, authz.Manager, nil)
	role("manager manager to member", actorMgr, tManager, authz.Member, nil)
	role("manager member to platformadmin", actorMgr, tMember, authz.PlatformAdmin, forbidden)
	role("manager platformadmin to member", actorMgr, tPA, authz.Member, forbidden)
	role("manager platformadmin to manager", actorMgr, tPA, authz.Manager, forbidden)
	role("manager non-member to member", actorMgr, tNonMember, authz.Member, notFound)
	role("manager platformadmin of no org to member", actorMgr, tPANonMember, authz.Member, notFound)
	role("manager own role", actorMgr, self(actorMgr), authz.Member, selfRole)
	role("manager own role unchanged", actorMgr, self(actorMgr), authz.Manager, selfRole)
	role("last manager demoting themselves", actorMgr, authz.Target{Subject: actorMgr, LastManager: true}, authz.Member, selfRole)
	// Everyone else: no.
	role("manager of another org", actorMgrOther, tMember, authz.Manager, notFound)
	role("manager of another org on last manager", actorMgrOther, tLastManager, authz.Member, notFound)
	role("member", actorMember, tMember, authz.Manager, forbidden)
	role("member with audit", actorAuditor, tMember, authz.Manager, forbidden)
	role("member own role", actorMember, self(actorMember), authz.Manager, selfRole)
	role("outsider", actorOutsider, tMember, authz.Member, notFound)
	role("outsider own role", actorOutsider, self(actorOutsider), authz.Member, selfRole)

	// Row "set a member's categories".
	cats := func(name string, actor authz.Subject, target authz.Target, want error) {
		add("CanSetCategories/"+name, want, func() error { return authz.CanSetCategories(actor, target) })
	}
	cats("platformadmin member", actorPA, tMember, nil)
	cats("platformadmin manager", actorPA, tManager, nil)
	cats("platformadmin platformadmin", actorPA, tPA, nil)
	cats("platformadmin own", actorPAMember, self(actorPAMember), nil)
	cats("platformadmin non-member", actorPA, tNonMember, notFound)
	cats("manager member", actorMgr, tMember, nil)
	cats("manager manager", actorMgr, tManager, nil)
	cats("manager own", actorMgr, self(actorMgr), nil)
	cats("manager platformadmin", actorMgr, tPA, forbidden)
	cats("manager non-member", actorMgr, tNonMember, notFound)
	cats("manager platformadmin of no org", actorMgr, tPANonMember, notFound)
	cats("manager of another org", actorMgrOther, tMember, notFound)
	cats("member", actorMember, tMember, forbidden)
	cats("member own", actorMember, self(actorMember), forbidden)
	cats("member with audit", actorAuditor, tMember, forbidden)
	cats("outsider", actorOutsider, tMember, notFound)

	// Row "remove a user from an org" and the last-Manager invariant.
	remove := func(name string, actor authz.Subject, target authz.Target, want error) {
		add("CanRemoveFromOrg/"+name, want, func() error { return authz.CanRemoveFromOrg(actor, target) })
	}
	remove("platformadmin member", actorPA, tMember, nil)
	remove("platformadmin manager", actorPA, tManager, nil)
	remove("platformadmin platformadmin", actorPA, tPA, nil)
	remove("platformadmin last platformadmin keeps platform role", actorPA, tLastPA, nil)
	remove("platformadmin non-member", actorPA, tNonMember, notFound)
	remove("platformadmin last manager", actorPA, tLastManager, lastMgr)
	remove("manager member", actorMgr, tMember, nil)
	remove("manager manager", actorMgr, tManager, nil)
	remove("manager leaves", actorMgr, self(actorMgr), nil)
	remove("last manager leaves", actorMgr, authz.Target{Subject: actorMgr, LastManager: true}, lastMgr)
	remove("manager platformadmin", actorMgr, tPA, forbidden)
	remove("manager non-member", actorMgr, tNonMember, notFound)
	remove("manager platformadmin of no org", actorMgr, tPANonMember, notFound)
	remove("manager of another org", actorMgrOther, tMember, notFound)
	remove("manager of another org on last manager", actorMgrOther, tLastManager, notFound)
	remove("member", actorMember, tMember, forbidden)
	remove("member leaves", actorMember, self(actorMember), forbidden)
	remove("member on last manager", actorMember, tLastManager, forbidden)
	remove("outsider", actorOutsider, tMember, notFound)

	// Row "delete, deactivate or reactivate a user account" and the
	// account-wide invariants.
	account := func(name string, actor authz.Subject, target authz.Target, want error) {
		add("CanManageAccount/"+name, want, func() error { return authz.CanManageAccount(actor, target) })
	}
	account("platformadmin member", actorPA, tMember, nil)
	account("platformadmin manager", actorPA, tManager, nil)
	account("platformadmin platformadmin", actorPA, tPA, nil)
	account("platformadmin non-member", actorPA, tNonMember, nil)
	account("platformadmin themselves", actorPA, self(actorPA), nil)
	account("last platformadmin", actorPA, tLastPA, lastPA)
	account("last platformadmin themselves", actorPA, authz.Target{Subject: actorPA, LastPlatformAdmin: true}, lastPA)
	account("last manager of the org", actorPA, tLastManager, lastMgr)
	account("last manager of another org", actorPA, tAcctLastMgr, lastMgr)
	account("last platformadmin and last manager", actorPA, tLastPAAndMgr, lastPA)
	account("manager", actorMgr, tMember, forbidden)
	account("manager on last manager", actorMgr, tLastManager, forbidden)
	account("manager of another org", actorMgrOther, tMember, forbidden)
	account("member", actorMember, tMember, forbidden)
	account("outsider", actorOutsider, tMember, forbidden)
	reactivate := func(name string, actor authz.Subject, target authz.Target, want error) {
		add("CanReactivate/"+name, want, func() error { return authz.CanReactivate(actor, target) })
	}
	reactivate("platformadmin member", actorPA, tMember, nil)
	reactivate("platformadmin platformadmin", actorPA, tPA, nil)
	reactivate("platformadmin last manager", actorPA, tLastManager, nil)
	reactivate("manager", actorMgr, tMember, forbidden)
	reactivate("manager of another org", actorMgrOther, tMember, forbidden)
	reactivate("member", actorMember, tMember, forbidden)
	reactivate("outsider", actorOutsider, tMember, forbidden)

	// Row "reset another user's password".
	reset := func(name string, actor authz.Subject, target authz.Target, want error) {
		add("CanResetPassword/"+name, want, func() error { return authz.CanResetPassword(actor, target) })
	}
	reset("platformadmin member", actorPA, tMember, nil)
	reset("platformadmin platformadmin", actorPA, tPA, nil)
	reset("platformadmin non-member", actorPA, tNonMember, nil)
	reset("platformadmin own", actorPA, self(actorPA), forbidden)
	reset("manager member", actorMgr, tMember, nil)
	reset("manager manager", actorMgr, tManager, nil)
	reset("manager platformadmin", actorMgr, tPA, forbidden)
	reset("manager non-member", actorMgr, tNonMember, notFound)
	reset("manager platformadmin of no org", actorMgr, tPANonMember, notFound)
	reset("manager own", actorMgr, self(actorMgr), forbidden)
	reset("manager of another org", actorMgrOther, tMember, notFound)
	reset("member", actorMember, tMember, forbidden)
	reset("member with audit", actorAuditor, tMember, forbidden)
	reset("outsider", actorOutsider, tMember, notFound)

	// Row "view / export the audit log".
	audit := func(name string, actor authz.Subject, want error) {
		add("CanViewAudit/"+name, want, func() error { return authz.CanViewAudit(actor) })
	}
	audit("platformadmin", actorPA, nil)
	audit("platformadmin member without audit", actorPAMember, nil)
	audit("manager", actorMgr, nil)
	audit("manager of another org", actorMgrOther, notFound)
	audit("member without audit", actorMember, forbidden) // and TestCanViewAuditNamesCategory
	audit("member with audit", actorAuditor, nil)
	audit("outsider", actorOutsider, notFound)

	// Row "own profile: delete own account", with both invariants.
	own := func(name string, s authz.Target, want error) {
		add("CanDeleteOwnAccount/"+name, want, func() error { return authz.CanDeleteOwnAccount(s) })
	}
	own("member", tMember, nil)
	own("manager", tManager, nil)
	own("platformadmin", tPA, nil)
	own("user of no org", tNonMember, nil)
	own("last manager", tLastManager, lastMgr)
	own("last manager of another org", tAcctLastMgr, lastMgr)
	own("last platformadmin", tLastPA, lastPA)
	own("last platformadmin and last manager", tLastPAAndMgr, lastPA)

	return cs
}

func TestRules(t *testing.T) {
	t.Parallel()
	cases := ruleCases()
	seen := make(map[string]bool, len(cases))
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			assertExactly(t, c.call(), c.want)
		})
	}
}

// TestRuleErrors checks the new sentinels match their kind, and only it,
// also when a caller wraps them, and read as sentences.
func TestRuleErrors(t *testing.T) {
	t.Parallel()
	for _, want := range []error{authz.ErrSelfRoleChange, authz.ErrSelfApproval, authz.ErrLastPlatformAdmin, authz.ErrLastManager} {
		t.Run(want.Error(), func(t *testing.T) {
			t.Parallel()
			assertExactly(t, want, want)
			assertExactly(t, fmt.Errorf("change role of %s: %w", authz.NewUserID(), want), want)
			if len(want.Error()) < len("authz: ")+20 {
				t.Errorf("message %q says too little", want)
			}
		})
	}
}

// TestRulesInvalid checks that every rule refuses malformed facts with an
// *InvalidError. Each mutation starts from a call that is allowed, so only
// the malformed field can make it fail.
func TestRulesInvalid(t *testing.T) {
	t.Parallel()
	type rule struct {
		name   string
		actor  bool // reads the actor
		target bool // reads a target
		inOrg  bool // the target's LastManager is about the org at hand
		call   func(actor authz.Subject, target authz.Target) error
	}
	rules := []rule{
		{"CanAdministerOrgs", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanAdministerOrgs(a) }},
		{"CanListAllUsers", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanListAllUsers(a) }},
		{"CanUseOperations", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanUseOperations(a) }},
		{"CanListMembers", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanListMembers(a) }},
		{"CanReviewRegistrations", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanReviewRegistrations(a) }},
		{"CanDecideRegistration", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanDecideRegistration(a, requester) }},
		{"CanViewAudit", true, false, false, func(a authz.Subject, _ authz.Target) error { return authz.CanViewAudit(a) }},
		{"CanChangeRole", true, true, true, func(a authz.Subject, t authz.Target) error { return authz.CanChangeRole(a, t, authz.Manager) }},
		{"CanSetCategories", true, true, true, authz.CanSetCategories},
		{"CanRemoveFromOrg", true, true, true, authz.CanRemoveFromOrg},
		{"CanResetPassword", true, true, true, authz.CanResetPassword},
		{"CanManageAccount", true, true, false, authz.CanManageAccount},
		{"CanReactivate", true, true, false, authz.CanReactivate},
		{"CanDeleteOwnAccount", false, true, false, func(_ authz.Subject, t authz.Target) error { return authz.CanDeleteOwnAccount(t) }},
	}
	subjectBugs := []struct {
		name string
		bug  func(*authz.Subject)
	}{
		{"empty user id", func(s *authz.Subject) { s.User = "" }},
		{"user id not issued here", func(s *authz.Subject) { s.User = "usr_admin" }},
		{"user id in upper case", func(s *authz.Subject) { s.User = authz.UserID("USR_" + string(s.User[4:])) }},
		{"unknown role", func(s *authz.Subject) { s.Role = authz.Role(99) }},
		{"platformadmin as org role", func(s *authz.Subject) { s.Role = authz.PlatformAdmin }},
		{"unknown category bits", func(s *authz.Subject) { s.Categories |= 0x80 }},
		{"categories without a role", func(s *authz.Subject) { s.Role, s.Categories = authz.RoleNone, authz.NewCategorySet(authz.Audit) }},
	}
	targetBugs := []struct {
		name  string
		inOrg bool // a bug only where LastManager is about the org at hand
		bug   func(*authz.Target)
	}{
		{"last platformadmin who is none", false, func(t *authz.Target) { t.PlatformAdmin, t.LastPlatformAdmin = false, true }},
		{"last manager who is a member", true, func(t *authz.Target) { t.Role, t.LastManager = authz.Member, true }},
	}
	type invalidCase struct {
		name   string
		actor  authz.Subject
		target authz.Target
		call   func(authz.Subject, authz.Target) error
	}

	var cases []invalidCase
	for _, r := range rules {
		// The base call, allowed: a PlatformAdmin who is a Member of the
		// org, on a Member who is nobody's last anything.
		baseActor, baseTarget := actorPAMember, tMember
		if err := r.call(baseActor, baseTarget); err != nil {
			t.Fatalf("%s: base call: %v, want allowed", r.name, err)
		}
		if r.actor {
			for _, b := range subjectBugs {
				a := baseActor
				b.bug(&a)
				cases = append(cases, invalidCase{r.name + "/actor " + b.name, a, baseTarget, r.call})
			}
		}
		if r.target {
			for _, b := range subjectBugs {
				tg := baseTarget
				b.bug(&tg.Subject)
				cases = append(cases, invalidCase{r.name + "/target " + b.name, baseActor, tg, r.call})
			}
			for _, b := range targetBugs {
				if b.inOrg && !r.inOrg {
					continue
				}
				tg := baseTarget
				b.bug(&tg)
				cases = append(cases, invalidCase{r.name + "/target " + b.name, baseActor, tg, r.call})
			}
		}
	}
	// Arguments of their own.
	for _, to := range []authz.Role{authz.RoleNone, authz.Role(4), authz.Role(99)} {
		cases = append(cases, invalidCase{"CanChangeRole/to " + to.String(), actorPA, tMember,
			func(a authz.Subject, t authz.Target) error { return authz.CanChangeRole(a, t, to) }})
	}
	for _, req := range []authz.UserID{"", "usr_", "*", authz.UserID(authz.NewOrgID())} {
		cases = append(cases, invalidCase{fmt.Sprintf("CanDecideRegistration/requester %q", req), actorPA, tMember,
			func(a authz.Subject, _ authz.Target) error { return authz.CanDecideRegistration(a, req) }})
	}
	// Malformed input beats separation of duty and authority: an outsider
	// sending a nonsense role learns nothing about the target either.
	cases = append(cases,
		invalidCase{"CanChangeRole/own role to none", actorMgr, self(actorMgr),
			func(a authz.Subject, t authz.Target) error { return authz.CanChangeRole(a, t, authz.RoleNone) }},
		invalidCase{"CanChangeRole/outsider to 99", actorOutsider, tMember,
			func(a authz.Subject, t authz.Target) error { return authz.CanChangeRole(a, t, authz.Role(99)) }},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.call(c.actor, c.target)
			assertExactly(t, err, authz.ErrInvalid)
			var ie *authz.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("got %T %v, want an *authz.InvalidError", err, err)
			}
			if ie.Field == "" || ie.Reason == "" {
				t.Errorf("InvalidError %+v does not say what and why", ie)
			}
		})
	}

	// Where LastManager is account-wide, a LastManager without a Manager
	// role in the org at hand is a fact, not a bug.
	t.Run("CanManageAccount/last manager of another org is no bug", func(t *testing.T) {
		t.Parallel()
		tg := tMember
		tg.LastManager = true
		assertExactly(t, authz.CanManageAccount(actorPA, tg), authz.ErrLastManager)
		assertExactly(t, authz.CanDeleteOwnAccount(tg), authz.ErrLastManager)
	})
}

// TestCanViewAuditNamesCategory: the Audit Log is the audit category's
// page, so a Member without the category gets the product's
// "Insufficient permissions" answer naming it, like any feature page.
func TestCanViewAuditNamesCategory(t *testing.T) {
	u := authz.NewUserID()
	err := authz.CanViewAudit(authz.Subject{User: u, Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra, authz.VPN)})
	var ipe *authz.InsufficientPermissionsError
	if !errors.As(err, &ipe) {
		t.Fatalf("CanViewAudit = %v, want an *InsufficientPermissionsError", err)
	}
	need := authz.NewCategorySet(authz.Audit)
	if ipe.User != u || ipe.Org != "" || ipe.Required != need || ipe.Missing != need {
		t.Errorf("CanViewAudit = %+v", ipe)
	}
	if p := authz.ProblemFor(err); p.Title != "Insufficient permissions" || !slices.Equal(p.MissingCategories, []authz.Category{authz.Audit}) {
		t.Errorf("ProblemFor = %+v", p)
	}
	if got := err.Error(); got != "insufficient permissions: missing category audit" {
		t.Errorf("Error() = %q", got)
	}
}
