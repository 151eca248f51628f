package audit

import "context"

// Store keeps the audit log. The GORM adapter implements it over the
// database; audittest.Store is an in-memory fake; every implementation
// must pass audittest.Run.
//
// The Service appends inside the one transaction of each operation, so the
// event commits with the change it records or not at all; a denied
// attempt appends its event in a small transaction of its own.
// Implementations must be safe for concurrent use by the transactions of
// several goroutines and several replicas.
//
// Every error matches one of the module's kinds: authz.ErrInvalid for
// malformed input (nothing is written), and otherwise a storage failure,
// which the Service treats as a failure to act and rolls back.
type Store interface {
	// Append stores e, a new event, and returns it with its ID, PrevHash
	// and Hash set. e.ID, e.PrevHash and e.Hash must be zero and
	// e.Validate must accept e, else Append returns an error matching
	// authz.ErrInvalid and stores nothing. Appends are chained (see
	// ChainHash): PrevHash is the Hash of the event with the greatest ID
	// before e's (Genesis for the first), decided under the same
	// exclusion that orders the IDs, so that concurrent appends, from
	// several goroutines or replicas, never fork the chain and the log
	// read oldest first passes Verify. The ID is
	// positive and greater than that of every event appended before
	// (IDs need not be consecutive). Every field reads back equal: Time
	// as the same instant, and Before and After byte for byte (store
	// them as text or bytes, not as a type that normalizes JSON, such as
	// PostgreSQL's jsonb). Append does not retain e's slices.
	Append(ctx context.Context, e Event) (Event, error)

	// Events returns the events that f selects (see Filter.Match), newest
	// first (ID descending), at most f's limit. It calls f.Normalize
	// first and returns its error for an invalid filter. The events
	// returned share no memory with the store.
	Events(ctx context.Context, f Filter) ([]Event, error)
}
