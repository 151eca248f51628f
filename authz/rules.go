package authz

import "fmt"

// This file holds the management rules: the "Who may do what" table of the
// design as pure functions. They read no store and no Engine; the caller
// (the Service) reads the facts inside the same database transaction as the
// write and passes them in, so the decision and the write see one state.
//
// Every rule checks, in this order, and returns the first failure:
//
//  1. its inputs: malformed facts are an *InvalidError (ErrInvalid), a
//     programming error of the caller, never an allow;
//  2. separation of duty (your own role, your own registration): it
//     depends only on who the actor is, so it reveals nothing;
//  3. authority: may this actor do this to this target at all? An actor
//     without a role in the org (an outsider, or a Manager of another org)
//     gets ErrNotFound, exactly as for an object that does not exist, and a
//     Manager gets ErrNotFound for a target outside their org;
//  4. the invariants (last PlatformAdmin, last Manager), which only an
//     actor with authority ever learns about.
//
// A nil error means allowed. Every denial matches exactly one of
// ErrInvalid, ErrForbidden, ErrNotFound and ErrConflict with errors.Is.

// Subject is what the rules need to know about one person, relative to the
// org at hand (the org whose members, queue or audit log is concerned).
// Platform-wide and account-wide rules decide on User and PlatformAdmin
// only, but every rule refuses malformed facts.
type Subject struct {
	User UserID
	// PlatformAdmin: the person is an active PlatformAdmin.
	PlatformAdmin bool
	// Role in the org at hand: Member, Manager, or RoleNone when the
	// person holds no role there (an outsider, or a member of other orgs
	// only). PlatformAdmin is never an org role: it is the field above.
	Role Role
	// Categories granted in the org at hand (empty without a Role).
	Categories CategorySet
}

// Target is the person an operation acts on, with the facts the
// invariants need. The caller reads them in the same transaction as the
// write, so that two concurrent demotions cannot both see "not the last".
type Target struct {
	Subject
	// LastPlatformAdmin: the target is the only active PlatformAdmin.
	// It implies PlatformAdmin.
	LastPlatformAdmin bool
	// LastManager: for an operation in the org at hand, the target is
	// its only Manager (this implies Role == Manager); for an account-wide
	// operation (CanManageAccount, CanDeleteOwnAccount), the target is
	// the only Manager of at least one org.
	LastManager bool
}

// The separation-of-duty and invariant errors. Each matches its kind with
// errors.Is as well as itself: ErrSelfRoleChange and ErrSelfApproval match
// ErrForbidden, ErrLastPlatformAdmin and ErrLastManager match ErrConflict.
var (
	// ErrSelfRoleChange: nobody may change their own role, whoever they
	// are.
	ErrSelfRoleChange error = &RuleError{"authz: nobody may change their own role", ErrForbidden}
	// ErrSelfApproval: the approver of a registration request is never its
	// requester.
	ErrSelfApproval error = &RuleError{"authz: nobody may approve or reject their own registration request", ErrForbidden}
	// ErrLastPlatformAdmin: the platform must keep at least one active
	// PlatformAdmin, so the last one cannot be demoted, deactivated or
	// deleted, not even by themselves.
	ErrLastPlatformAdmin error = &RuleError{"authz: the platform must keep at least one active PlatformAdmin: make another user PlatformAdmin first", ErrConflict}
	// ErrLastManager: an org that has a Manager must keep one, so its last
	// Manager cannot be demoted, removed, deactivated or deleted, nor leave.
	ErrLastManager error = &RuleError{"authz: an organization must keep at least one Manager: make another member Manager first", ErrConflict}
)

// RuleError is a refusal by one of the management rules. Its message names
// the rule in words for people (never internals), so an audit log may
// record it; it matches its kind (ErrForbidden or ErrConflict) with
// errors.Is. Every refusal of this file except ErrNotFound (which must
// answer exactly like a missing object) is a *RuleError.
type RuleError struct {
	msg  string
	kind error
}

func (e *RuleError) Error() string { return e.msg }

// Unwrap returns the error's kind.
func (e *RuleError) Unwrap() error { return e.kind }

// The reasons of plain ErrForbidden denials, built once so that a denial
// allocates nothing.
var (
	errNeedPlatformAdmin = forbidden("only a PlatformAdmin may do this")
	errNeedManager       = forbidden("only a Manager of the organization or a PlatformAdmin may do this")
	errManagerOverAdmin  = forbidden("a Manager cannot manage a PlatformAdmin")
	errManagerGrantAdmin = forbidden("a Manager may assign only the Member and Manager roles")
	errResetOwnPassword  = forbidden("change your own password from your profile")
)

// forbidden returns a plain refusal: its message is the rule, its kind
// ErrForbidden, like the named rules above.
func forbidden(why string) error { return &RuleError{"authz: " + why, ErrForbidden} }

// CanAdministerOrgs reports whether actor may create, rename or delete an
// org: only a PlatformAdmin may. Otherwise it returns ErrForbidden, whatever
// the org, so the answer says nothing about which orgs exist; call it
// before looking the org up. A malformed actor is ErrInvalid.
func CanAdministerOrgs(actor Subject) error { return platformOnly(actor) }

// CanListAllUsers reports whether actor may list every user of the
// platform (the All Users tab): only a PlatformAdmin may; otherwise
// ErrForbidden. A malformed actor is ErrInvalid.
func CanListAllUsers(actor Subject) error { return platformOnly(actor) }

// CanUseOperations reports whether actor may use the operations screens
// (DB Explorer, DB Monitoring): only a PlatformAdmin may; otherwise
// ErrForbidden. A malformed actor is ErrInvalid.
func CanUseOperations(actor Subject) error { return platformOnly(actor) }

// CanListMembers reports whether actor may list the members of the org at
// hand (the Users by Organization tab). A PlatformAdmin may, in any org; a
// Manager may in their org. A Member gets ErrForbidden, and an actor with
// no role in the org ErrNotFound, as if the org did not exist. A malformed
// actor is ErrInvalid.
func CanListMembers(actor Subject) error {
	if err := actor.check("actor"); err != nil {
		return err
	}
	return orgAuthority(actor)
}

// CanReviewRegistrations reports whether actor may see the registration
// queue of the org at hand and its pending count. The answers are those of
// CanListMembers.
func CanReviewRegistrations(actor Subject) error { return CanListMembers(actor) }

// CanDecideRegistration reports whether actor may approve or reject a
// registration request of the org at hand made by requester. Nobody may
// decide their own request (ErrSelfApproval, checked first: the requester
// knows the request exists); otherwise the answers are those of
// CanListMembers. A malformed actor or requester is ErrInvalid.
func CanDecideRegistration(actor Subject, requester UserID) error {
	if err := actor.check("actor"); err != nil {
		return err
	}
	if !requester.Valid() {
		return invalid("requester user id", string(requester), "not an id this module issued")
	}
	if actor.User == requester {
		return ErrSelfApproval
	}
	return orgAuthority(actor)
}

// CanChangeRole reports whether actor may give target the role to in the
// org at hand.
//
// What the change means: to PlatformAdmin makes the target a PlatformAdmin
// and leaves their role in the org as it is (a Manager stays Manager, so
// no org loses its Manager). To Member or Manager sets that role in the org
// (adding the target to it if they held no role there) and, for a
// PlatformAdmin target, also ends their PlatformAdmin role. A change to the
// role the target already holds is allowed and changes nothing.
//
// Checks, in order:
//   - to must be Member, Manager or PlatformAdmin, and actor and target well
//     formed, else an *InvalidError (ErrInvalid);
//   - nobody changes their own role: ErrSelfRoleChange, whoever they are;
//   - a PlatformAdmin may change anyone's role, to any role;
//   - a Manager may change the role of a person who holds a role in their
//     org (else ErrNotFound), never a PlatformAdmin's (ErrForbidden), and
//     only to Member or Manager (to PlatformAdmin is ErrForbidden);
//   - a Member gets ErrForbidden; an actor with no role in the org
//     ErrNotFound;
//   - demoting the last PlatformAdmin is ErrLastPlatformAdmin; demoting the
//     org's last Manager to Member is ErrLastManager.
func CanChangeRole(actor Subject, target Target, to Role) error {
	if !to.Valid() {
		return invalid("role", to.String(), "want member, manager or platformadmin")
	}
	if err := checkPair(actor, target, true); err != nil {
		return err
	}
	if actor.User == target.User {
		return ErrSelfRoleChange
	}
	if !actor.PlatformAdmin {
		if err := managerOver(actor, target); err != nil {
			return err
		}
		if to == PlatformAdmin {
			return errManagerGrantAdmin
		}
	}
	if target.PlatformAdmin && to != PlatformAdmin && target.LastPlatformAdmin {
		return ErrLastPlatformAdmin
	}
	if target.Role == Manager && to == Member && target.LastManager {
		return ErrLastManager
	}
	return nil
}

// CanSetCategories reports whether actor may set the categories granted to
// target in the org at hand. The target must hold a role in the org, else
// ErrNotFound (there is no membership to grant on). A PlatformAdmin may set
// anyone's; a Manager those of the people of their org, never a
// PlatformAdmin's (ErrForbidden), their own included (a Manager holds every
// category anyway, the grants only matter should they become a Member). A
// Member gets ErrForbidden, an actor with no role in the org ErrNotFound.
// Malformed facts are ErrInvalid.
func CanSetCategories(actor Subject, target Target) error {
	if err := checkPair(actor, target, true); err != nil {
		return err
	}
	return memberAuthority(actor, target)
}

// CanRemoveFromOrg reports whether actor may remove target from the org at
// hand, revoking their role and categories there. The target must hold a
// role in the org, else ErrNotFound. A PlatformAdmin may remove anyone; a
// Manager the people of their org, themselves included (a Manager may
// leave), never a PlatformAdmin (ErrForbidden). A Member gets ErrForbidden,
// even for themselves; an actor with no role in the org ErrNotFound. The
// org's last Manager cannot be removed, whoever asks: ErrLastManager. The
// target's PlatformAdmin role is untouched, so the last PlatformAdmin may
// be removed from an org. Malformed facts are ErrInvalid.
func CanRemoveFromOrg(actor Subject, target Target) error {
	if err := checkPair(actor, target, true); err != nil {
		return err
	}
	if err := memberAuthority(actor, target); err != nil {
		return err
	}
	if target.Role == Manager && target.LastManager {
		return ErrLastManager
	}
	return nil
}

// CanResetPassword reports whether actor may reset another user's
// password (which issues a reset token to that user; nobody ever sets
// another's password). A PlatformAdmin may reset anyone's; a Manager those
// of the people of their org (else ErrNotFound), never a PlatformAdmin's
// (ErrForbidden). A Member gets ErrForbidden, an actor with no role in the
// org ErrNotFound. Your own password is changed from your profile, with the
// current one: resetting it here is ErrForbidden. Malformed facts are
// ErrInvalid.
func CanResetPassword(actor Subject, target Target) error {
	if err := checkPair(actor, target, true); err != nil {
		return err
	}
	if actor.User == target.User {
		return errResetOwnPassword
	}
	if actor.PlatformAdmin {
		return nil
	}
	return managerOver(actor, target)
}

// CanManageAccount reports whether actor may delete or deactivate target's
// account, in every org at once. Only a PlatformAdmin may (otherwise
// ErrForbidden, whatever the target). The last active PlatformAdmin cannot
// be deactivated or deleted, by themselves either: ErrLastPlatformAdmin;
// nor can the last Manager of any org: ErrLastManager (target.LastManager
// is read account-wide). Malformed facts are ErrInvalid.
func CanManageAccount(actor Subject, target Target) error {
	if err := checkPair(actor, target, false); err != nil {
		return err
	}
	if !actor.PlatformAdmin {
		return errNeedPlatformAdmin
	}
	return accountInvariants(target)
}

// CanReactivate reports whether actor may reactivate target's deactivated
// account: only a PlatformAdmin may, otherwise ErrForbidden. Reactivating
// breaks no invariant. Malformed facts are ErrInvalid.
func CanReactivate(actor Subject, target Target) error {
	if err := checkPair(actor, target, false); err != nil {
		return err
	}
	if !actor.PlatformAdmin {
		return errNeedPlatformAdmin
	}
	return nil
}

// CanViewAudit reports whether actor may view and export the audit log of
// the org at hand. A PlatformAdmin may in every org, a Manager in their
// org, a Member in their org if granted the audit category; without it
// the answer is an *InsufficientPermissionsError naming that category (the
// Audit Log is the audit category's page), whose Org the caller, who
// knows the org at hand, fills in. An actor with no role in the org gets
// ErrNotFound. A malformed actor is ErrInvalid.
func CanViewAudit(actor Subject) error {
	if err := actor.check("actor"); err != nil {
		return err
	}
	if actor.Role == Member && !actor.PlatformAdmin {
		if actor.Categories.Has(Audit) {
			return nil
		}
		need := NewCategorySet(Audit)
		return &InsufficientPermissionsError{User: actor.User, Required: need, Missing: need}
	}
	return orgAuthority(actor)
}

// CanDeleteOwnAccount reports whether self may delete their own account.
// Anyone may, except the last active PlatformAdmin (ErrLastPlatformAdmin)
// and the last Manager of any org (ErrLastManager, self.LastManager read
// account-wide). Malformed facts are ErrInvalid.
func CanDeleteOwnAccount(self Target) error {
	if err := self.check("self", false); err != nil {
		return err
	}
	return accountInvariants(self)
}

// platformOnly allows PlatformAdmins and forbids everyone else.
func platformOnly(actor Subject) error {
	if err := actor.check("actor"); err != nil {
		return err
	}
	if !actor.PlatformAdmin {
		return errNeedPlatformAdmin
	}
	return nil
}

// orgAuthority allows a PlatformAdmin and a Manager of the org at hand,
// forbids a Member and hides the org from anyone else.
func orgAuthority(actor Subject) error {
	switch {
	case actor.PlatformAdmin, actor.Role == Manager:
		return nil
	case actor.Role == Member:
		return errNeedManager
	default:
		return ErrNotFound
	}
}

// managerOver is the authority of a non-PlatformAdmin actor over a target
// in the org at hand: the actor must be its Manager (Member: ErrForbidden;
// no role: ErrNotFound), the target must hold a role there (ErrNotFound)
// and must not be a PlatformAdmin (ErrForbidden).
func managerOver(actor Subject, target Target) error {
	if err := orgAuthority(actor); err != nil {
		return err
	}
	if target.Role == RoleNone {
		return ErrNotFound
	}
	if target.PlatformAdmin {
		return errManagerOverAdmin
	}
	return nil
}

// memberAuthority is managerOver for operations on a membership, which a
// target without a role in the org does not have, whoever the actor.
func memberAuthority(actor Subject, target Target) error {
	if actor.PlatformAdmin {
		if target.Role == RoleNone {
			return ErrNotFound
		}
		return nil
	}
	return managerOver(actor, target)
}

// accountInvariants are the invariants of removing an account from every
// org and from the platform.
func accountInvariants(t Target) error {
	if t.PlatformAdmin && t.LastPlatformAdmin {
		return ErrLastPlatformAdmin
	}
	if t.LastManager {
		return ErrLastManager
	}
	return nil
}

// check reports malformed facts about a subject as an *InvalidError; who
// names it in the error ("actor", "target", "self").
func (s Subject) check(who string) error {
	if !s.User.Valid() {
		return invalid(who+" user id", string(s.User), "not an id this module issued")
	}
	if s.Role != RoleNone && !s.Role.OrgScoped() {
		return invalid(who+" role", s.Role.String(), "want member, manager or none in an org (PlatformAdmin is not an org role)")
	}
	if !s.Categories.Valid() {
		return invalid(who+" categories", fmt.Sprintf("%#x", uint8(s.Categories)), "unknown bits")
	}
	if s.Role == RoleNone && !s.Categories.Empty() {
		return invalid(who+" categories", s.Categories.String(), "granted without a role in the org")
	}
	return nil
}

// check is Subject.check plus the consistency of the invariant facts;
// inOrg says whether LastManager is about the org at hand.
func (t Target) check(who string, inOrg bool) error {
	if err := t.Subject.check(who); err != nil {
		return err
	}
	if t.LastPlatformAdmin && !t.PlatformAdmin {
		return invalid(who+" facts", "last platformadmin", "set for someone who is not a PlatformAdmin")
	}
	if inOrg && t.LastManager && t.Role != Manager {
		return invalid(who+" facts", "last manager", "set for someone who is not a Manager of the org")
	}
	return nil
}

func checkPair(actor Subject, target Target, inOrg bool) error {
	if err := actor.check("actor"); err != nil {
		return err
	}
	return target.check("target", inOrg)
}
