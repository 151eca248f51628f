package audit

import "slices"

// Action names what an event records: a lower-case dotted name, subject
// first, then what happened to it ("org.create", "member.categories.set").
// The names are stored and exported as they are and never change meaning;
// new actions get new names. Whether the action succeeded or was denied is
// the event's Outcome, not part of the Action: a failed login is
// SessionLogin with outcome Denied.
//
// Only the constants below are valid (Valid, ParseAction): the log never
// holds an action nobody documented.
type Action string

// The actions of the Service, grouped as the product's pages are.
const (
	// PlatformBootstrap: the first PlatformAdmin was created.
	PlatformBootstrap Action = "platform.bootstrap"

	// Organization Management page (PlatformAdmin only).
	OrgCreate Action = "org.create"
	OrgRename Action = "org.rename"
	OrgDelete Action = "org.delete"

	// Sign-up and the Pending Approvals tab.
	RegistrationSubmit  Action = "registration.submit"
	RegistrationApprove Action = "registration.approve"
	RegistrationReject  Action = "registration.reject"

	// User Management and Permission Management pages, in one org.
	MemberRoleChange    Action = "member.role.change"    // Edit Role
	MemberCategoriesSet Action = "member.categories.set" // Save on Permission Management: the whole new set
	MemberRemove        Action = "member.remove"         // removal from the org: role and categories there

	// Account-wide operations of a PlatformAdmin, in every org at once.
	UserDelete     Action = "user.delete"
	UserDeactivate Action = "user.deactivate"
	UserReactivate Action = "user.reactivate"

	// The Profile page: the actor acts on their own account.
	ProfileNameChange     Action = "profile.name.change"
	ProfilePasswordChange Action = "profile.password.change"
	ProfileDelete         Action = "profile.delete" // own account deleted

	// Passwords.
	PasswordResetRequest  Action = "password.reset.request"  // Forgot Password on the login page
	PasswordResetIssue    Action = "password.reset.issue"    // a Manager or PlatformAdmin started a reset for the target
	PasswordResetComplete Action = "password.reset.complete" // a reset token was redeemed

	// Sessions: outcome Success or Denied (a failed login).
	SessionLogin  Action = "session.login"
	SessionLogout Action = "session.logout"

	// The Audit Log page itself: reading and exporting are recorded too.
	AuditView   Action = "audit.view"
	AuditExport Action = "audit.export"
	// AuditPrune: an operator pruned the oldest events; recorded by the
	// Store in the transaction that pruned them, without an actor (the
	// operator's tool acts outside any account). After holds what was
	// pruned: through which event, how many, and the cutoff.
	AuditPrune Action = "audit.prune"

	// UsersImport: an operator imported a batch of orgs, accounts and
	// their grants from another system (Service.Import), in the
	// transaction that wrote them, without an actor. After holds the
	// batch's counts and its first and last user id, never an account's
	// details.
	UsersImport Action = "users.import"

	// Views of the User Management page. The Service records their denied
	// attempts (a Member asking for the member list, a Manager for another
	// org's queue), like every other refused management attempt.
	MembersView       Action = "members.view"       // Users by Organization
	UsersView         Action = "users.view"         // All Users
	RegistrationsView Action = "registrations.view" // Pending Approvals, and its count
)

var actions = []Action{
	PlatformBootstrap,
	OrgCreate, OrgRename, OrgDelete,
	RegistrationSubmit, RegistrationApprove, RegistrationReject,
	MemberRoleChange, MemberCategoriesSet, MemberRemove,
	UserDelete, UserDeactivate, UserReactivate,
	ProfileNameChange, ProfilePasswordChange, ProfileDelete,
	PasswordResetRequest, PasswordResetIssue, PasswordResetComplete,
	SessionLogin, SessionLogout,
	AuditView, AuditExport, AuditPrune,
	UsersImport,
	MembersView, UsersView, RegistrationsView,
}

// Actions returns every valid Action, in the order of their declaration.
func Actions() []Action { return slices.Clone(actions) }

// Valid reports whether a is one of the declared actions.
func (a Action) Valid() bool { return slices.Contains(actions, a) }

// String returns a's name.
func (a Action) String() string { return string(a) }

// ParseAction returns the declared Action named s, exactly (no upper case,
// no spaces). Anything else is an *authz.InvalidError matching
// authz.ErrInvalid.
func ParseAction(s string) (Action, error) {
	if a := Action(s); a.Valid() {
		return a, nil
	}
	return "", invalid("audit action", s, "not an action this module records")
}
