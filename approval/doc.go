// Package approval holds registration requests: the queue behind the
// Pending Approvals tab of the User Management page.
//
// # The flow
//
// A person signs up directly, naming an organization. The Service creates
// their account and a [Request] with [NewRequest]: it is Pending and sits
// in that org's queue, with a snapshot of the person's email and name as
// the tab shows them. The tab lists the queue, newest first, narrowed by
// the request period filter ([Period]: 7 days, 30 days, All), and shows the
// pending count next to its name ([Store.PendingCount]).
//
// A Manager of the org, or a PlatformAdmin, then decides:
//
//   - Approve ([Request.Approve]): the person becomes a Member of the org,
//     with no categories yet.
//   - Reject ([Request.Reject], with an optional reason): the request stays
//     on record as rejected, and the user can apply again, which makes a
//     new Request.
//
// A request is decided once. Approving or rejecting a request that is no
// longer Pending is refused with [ErrDecided]; a second Pending request of
// the same person for the same org is refused with [ErrPending]. Both match
// [authz.ErrConflict]. Who may see and decide requests is not this
// package's business: [authz.CanReviewRegistrations] and
// [authz.CanDecideRegistration] decide it (nobody decides their own
// request), and the Service asks them before it calls this package.
//
// # Pure rules, small store
//
// The types and functions of this package are pure: they validate input
// and compute the next state of a request, read or write nothing, and are
// safe for concurrent use.
// [Store] is the storage interface. The Service calls it inside the one
// database transaction of each operation, together with the identity rows,
// the policy rules and the audit event; the GORM adapter implements it, and
// package [github.com/kiops/iam/approval/approvaltest] holds an in-memory
// fake and the conformance suite every implementation must pass.
//
// A decision is written with a conditional update ([Store.DecideRequest]
// succeeds only on a request that is still Pending), so of two Managers
// approving the same request at once exactly one succeeds and the other
// gets ErrDecided, whatever each read before.
//
// # Errors
//
// Every error of this package matches one of the module's error kinds with
// errors.Is: malformed input is an [*authz.InvalidError] ([authz.ErrInvalid]),
// a missing request [authz.ErrNotFound], a clash with the current state
// [ErrPending] or [ErrDecided] ([authz.ErrConflict]).
package approval
