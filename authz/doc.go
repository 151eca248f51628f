// Package authz is the authorization core of KIOPS IAM: the vocabulary
// (Role, Category, CategorySet, UserID, OrgID), the Casbin model that
// specifies every decision, the Engine that answers checks from an exact
// in-memory index of that model's rules, and the management rules of the
// "Who may do what" table as pure functions.
//
// # The model is the truth
//
// The policy is Casbin RBAC with domains (Model). Role assignments and
// category grants are Casbin grouping rules scoped to an org:
//
//	g, usr_…, role:manager, org_…        a Manager of the org
//	g, usr_…, role:member, org_…         a Member of the org
//	g, usr_…, cat:vpn, org_…             the vpn category granted in the org
//	g, usr_…, role:platformadmin, global a PlatformAdmin, platform-wide
//	g, usr_…, status:deactivated, global a deactivated account (denied everything)
//
// and a fixed set of policy rules (BaseRows) says what each confers:
// PlatformAdmin and Manager every category, a grant its own category,
// Member nothing. Identifiers in rules are always ids this package issued
// (NewUserID, NewOrgID): opaque, canonical, never a name, an email or a
// wildcard. Rule, Row, ParseRow and BaseRows are the only bridge between
// typed values and Casbin's strings; storage adapters use them.
//
// # The Engine
//
// Casbin's Enforce evaluates its matcher against policy rules for every
// check: microseconds and about a hundred allocations per check with this
// encoding, far more with one rule per grant. The Engine compiles the same
// rules into a hash table holding, per user, the PlatformAdmin flag and a
// role and a 7-bit category mask per org. Check answers from it with no
// lock and no allocation, in time independent of the number of rules.
//
// The Engine is exact with respect to the model: Load refuses any stored
// row it cannot represent (an unknown policy rule, a role given to a role,
// a wildcard id) instead of guessing, a differential test compares it with
// Casbin's Enforce on random policies and writes, and WithCasbinCrossCheck
// keeps a Casbin enforcer beside it at run time, denying and logging on any
// disagreement.
//
// Writes (SetPlatformAdmin, AssignRole, RevokeRole, SetCategories,
// SetMembership, RemoveMembership, RemoveUser) set absolute state, so
// applying one twice is harmless. The caller persists the same change in
// its database transaction first and applies it to the Engine only after
// the commit succeeds.
//
// # Decisions and errors
//
// A denial is a Decision, not an error: Allowed, the Reason, the role and
// grants that decided, and the Missing categories that the "Insufficient
// permissions" answer names. Decision.Err turns a denial into an
// *InsufficientPermissionsError. Every error of this package matches one of
// ErrInvalid, ErrForbidden, ErrNotFound and ErrConflict with errors.Is.
package authz
