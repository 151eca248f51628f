package approval

import (
	"context"
	"time"

	"github.com/kiops/iam/authz"
)

// Store keeps registration requests. The GORM adapter implements it over
// the database; approvaltest.Store is an in-memory fake; every
// implementation must pass approvaltest.Run.
//
// The Service calls a Store inside the one transaction of each operation,
// so a Store bound to a transaction sees and writes that transaction's
// state. Implementations must be safe for concurrent use by the
// transactions of several goroutines and several replicas: the guarantees
// below hold for concurrent calls, not just sequential ones.
//
// Times are stored to the microsecond and read back equal (time.Time.Equal;
// the Location may differ). Every error matches one of the module's kinds:
// authz.ErrInvalid for malformed input (nothing is written),
// authz.ErrNotFound, authz.ErrConflict (ErrPending, ErrDecided), and
// otherwise a storage failure, which the Service treats as a failure to
// act and rolls back.
type Store interface {
	// CreateRequest stores r, a new Pending request (Request.Validate must
	// accept it, else ErrInvalid). If r.User already has a Pending request
	// in r.Org it fails with an error matching ErrPending; of two
	// concurrent calls for the same person and org, exactly one succeeds.
	// A person whose requests were all decided may have a new one. An ID
	// that is already stored is an authz.ErrConflict too.
	CreateRequest(ctx context.Context, r Request) error

	// Request returns the request with the given id, or an error matching
	// authz.ErrNotFound (also for an id that is not canonical).
	Request(ctx context.Context, id RequestID) (Request, error)

	// Requests returns org's requests created at or after since (the zero
	// time: however old), newest first: by CreatedAt descending, then by ID
	// descending among requests created at the same instant. status
	// AnyStatus returns every status; Pending, Approved or Rejected that
	// status only. A non-canonical org matches nothing (an empty result);
	// an invalid status is ErrInvalid.
	Requests(ctx context.Context, org authz.OrgID, since time.Time, status Status) ([]Request, error)

	// PendingCount returns the number of org's Pending requests, of any
	// age: the count shown next to the Pending Approvals tab's name.
	PendingCount(ctx context.Context, org authz.OrgID) (int, error)

	// DecideRequest records the decision on the request id: to (Approved
	// or Rejected), by whom, the rejection reason and when, as
	// ValidateDecision accepts them (else ErrInvalid). It changes the
	// request only if it is still Pending, with one conditional write
	// ("UPDATE … WHERE id = ? AND status = 'pending'"), never a read then
	// a write: a request that is not Pending is an error matching
	// ErrDecided, so of two concurrent decisions exactly one succeeds. A
	// missing id is authz.ErrNotFound.
	DecideRequest(ctx context.Context, id RequestID, to Status, by authz.UserID, reason string, at time.Time) error

	// DeleteUserRequests deletes every request of user, in every org and
	// of every status (the request rows hold the person's email and name;
	// the audit log keeps the history). Used when the account is deleted.
	// Deleting none is no error.
	DeleteUserRequests(ctx context.Context, user authz.UserID) error

	// DeleteOrgRequests deletes every request of org, of every status.
	// Used when the org is deleted. Deleting none is no error.
	DeleteOrgRequests(ctx context.Context, org authz.OrgID) error
}
