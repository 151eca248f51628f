// Package approvaltest helps test implementations and users of
// approval.Store: Store is a working in-memory fake, and Run is the
// conformance suite that every implementation (this fake, the GORM adapter
// on SQLite and on PostgreSQL) must pass.
package approvaltest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
)

// Store is an in-memory approval.Store, in the spirit of database/sql's
// fakedb: it keeps real state and honours the whole contract of
// approval.Store (it passes Run), with one mutex around every method, so
// it is safe for concurrent use. It has no transactions: each method takes
// effect at once, and contexts are not consulted. Every error it returns
// itself matches one of the module's kinds (authz.ErrInvalid,
// authz.ErrNotFound, authz.ErrConflict). The zero Store is not usable;
// call NewStore.
type Store struct {
	mu   sync.Mutex
	reqs map[approval.RequestID]approval.Request
	fail func(op string) error
}

var _ approval.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{reqs: make(map[approval.RequestID]approval.Request)}
}

// FailWith injects faults: from now on every method first calls f with
// its own name ("CreateRequest", "Request", "Requests", "PendingCount",
// "DecideRequest", "DeleteUserRequests", "DeleteOrgRequests"); if f
// returns an error, the method returns it as is and changes nothing. f is
// called without the Store's lock held, possibly from several goroutines
// at once. FailWith(nil) removes the hook. It is safe for concurrent use.
func (s *Store) FailWith(f func(op string) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// Len returns the number of stored requests, of every org and status.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// enter runs the fault hook, then takes the lock; on a nil error the
// caller must unlock.
func (s *Store) enter(_ context.Context, op string) error {
	s.mu.Lock()
	f := s.fail
	s.mu.Unlock()
	if f != nil {
		if err := f(op); err != nil {
			return err
		}
	}
	s.mu.Lock()
	return nil
}

// CreateRequest implements approval.Store.
func (s *Store) CreateRequest(ctx context.Context, r approval.Request) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("approvaltest: create request: %w", err)
	}
	if r.Status != approval.Pending {
		return fmt.Errorf("approvaltest: create request: %w", &authz.InvalidError{Field: "request status", Value: r.Status.String(), Reason: "a new request is pending"})
	}
	if err := s.enter(ctx, "CreateRequest"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.reqs[r.ID]; ok {
		return fmt.Errorf("approvaltest: create request: %w: id %s exists", authz.ErrConflict, r.ID)
	}
	for _, o := range s.reqs {
		if o.User == r.User && o.Org == r.Org && o.Status == approval.Pending {
			return fmt.Errorf("approvaltest: create request: %w", approval.ErrPending)
		}
	}
	s.reqs[r.ID] = r
	return nil
}

// Request implements approval.Store.
func (s *Store) Request(ctx context.Context, id approval.RequestID) (approval.Request, error) {
	if err := s.enter(ctx, "Request"); err != nil {
		return approval.Request{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return approval.Request{}, fmt.Errorf("approvaltest: request %q: %w", id, authz.ErrNotFound)
	}
	return r, nil
}

// Requests implements approval.Store.
func (s *Store) Requests(ctx context.Context, org authz.OrgID, since time.Time, status approval.Status) ([]approval.Request, error) {
	if status != approval.AnyStatus && !status.Valid() {
		return nil, fmt.Errorf("approvaltest: requests: %w", &authz.InvalidError{Field: "request status", Value: status.String(), Reason: "want any, pending, approved or rejected"})
	}
	if err := s.enter(ctx, "Requests"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []approval.Request
	for _, r := range s.reqs {
		if r.Org == org && !r.CreatedAt.Before(since) && (status == approval.AnyStatus || r.Status == status) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b approval.Request) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out, nil
}

// PendingCount implements approval.Store.
func (s *Store) PendingCount(ctx context.Context, org authz.OrgID) (int, error) {
	if err := s.enter(ctx, "PendingCount"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqs {
		if r.Org == org && r.Status == approval.Pending {
			n++
		}
	}
	return n, nil
}

// DecideRequest implements approval.Store.
func (s *Store) DecideRequest(ctx context.Context, id approval.RequestID, to approval.Status, by authz.UserID, reason string, at time.Time) error {
	if err := approval.ValidateDecision(to, by, reason, at); err != nil {
		return fmt.Errorf("approvaltest: decide request: %w", err)
	}
	if err := s.enter(ctx, "DecideRequest"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return fmt.Errorf("approvaltest: decide request %q: %w", id, authz.ErrNotFound)
	}
	if r.Status != approval.Pending {
		return fmt.Errorf("approvaltest: decide request: %w (%s)", approval.ErrDecided, r.Status)
	}
	r.Status, r.DecidedBy, r.Reason, r.DecidedAt = to, by, reason, at
	s.reqs[id] = r
	return nil
}

// DeleteUserRequests implements approval.Store.
func (s *Store) DeleteUserRequests(ctx context.Context, user authz.UserID) error {
	if err := s.enter(ctx, "DeleteUserRequests"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for id, r := range s.reqs {
		if r.User == user {
			delete(s.reqs, id)
		}
	}
	return nil
}

// DeleteOrgRequests implements approval.Store.
func (s *Store) DeleteOrgRequests(ctx context.Context, org authz.OrgID) error {
	if err := s.enter(ctx, "DeleteOrgRequests"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for id, r := range s.reqs {
		if r.Org == org {
			delete(s.reqs, id)
		}
	}
	return nil
}
