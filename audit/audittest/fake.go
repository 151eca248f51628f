// Package audittest helps test implementations and users of audit.Store:
// Store is a working in-memory fake, and Run is the conformance suite
// that every implementation (this fake, the GORM adapter on SQLite and on
// PostgreSQL) must pass.
package audittest

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// Store is an in-memory audit.Store, in the spirit of database/sql's
// fakedb: it keeps real state and honours the whole contract of
// audit.Store (it passes Run), with one mutex around every method, so it
// is safe for concurrent use. IDs start at 1 and events are chained as
// audit.Store requires. It has no transactions: each
// Append takes effect at once, and contexts are not consulted. Every
// error it returns itself matches authz.ErrInvalid. The zero Store is
// not usable; call NewStore.
type Store struct {
	mu     sync.Mutex
	events []audit.Event // in ID order
	nextID int64
	fail   func(op string) error
}

var _ audit.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{nextID: 1} }

// FailWith injects faults: from now on Append and Events first call f
// with their name ("Append", "Events"); if f returns an error, the method
// returns it as is and changes nothing. f is called without the Store's
// lock held, possibly from several goroutines at once. FailWith(nil)
// removes the hook. It is safe for concurrent use.
func (s *Store) FailWith(f func(op string) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// Len returns the number of stored events.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// hook runs the fault hook, if any.
func (s *Store) hook(op string) error {
	s.mu.Lock()
	f := s.fail
	s.mu.Unlock()
	if f != nil {
		return f(op)
	}
	return nil
}

// Append implements audit.Store.
func (s *Store) Append(_ context.Context, e audit.Event) (audit.Event, error) {
	if e.ID != 0 {
		return audit.Event{}, fmt.Errorf("audittest: append: %w", &authz.InvalidError{Field: "audit event id", Value: fmt.Sprint(e.ID), Reason: "assigned by the store: leave it zero"})
	}
	if !e.PrevHash.IsZero() || !e.Hash.IsZero() {
		return audit.Event{}, fmt.Errorf("audittest: append: %w", &authz.InvalidError{Field: "audit event hash", Value: e.Hash.String(), Reason: "set by the store: leave PrevHash and Hash zero"})
	}
	if err := e.Validate(); err != nil {
		return audit.Event{}, fmt.Errorf("audittest: append: %w", err)
	}
	if err := s.hook("Append"); err != nil {
		return audit.Event{}, err
	}
	e = clone(e)
	s.mu.Lock()
	e.ID = s.nextID
	s.nextID++
	prev := audit.Genesis()
	if n := len(s.events); n > 0 {
		prev = s.events[n-1].Hash
	}
	e.Link(prev)
	s.events = append(s.events, e)
	s.mu.Unlock()
	return clone(e), nil
}

// Events implements audit.Store.
func (s *Store) Events(_ context.Context, f audit.Filter) ([]audit.Event, error) {
	f, err := f.Normalize()
	if err != nil {
		return nil, fmt.Errorf("audittest: events: %w", err)
	}
	if err := s.hook("Events"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for i := len(s.events) - 1; i >= 0 && len(out) < f.Limit; i-- {
		if e := s.events[i]; f.Match(e) {
			out = append(out, clone(e))
		}
	}
	return out, nil
}

// Chain yields every stored event oldest first (ID ascending), for
// audit.Verify. It reads a snapshot taken when the iteration starts and
// never yields an error.
func (s *Store) Chain() iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		s.mu.Lock()
		es := slices.Clone(s.events)
		s.mu.Unlock()
		for _, e := range es {
			if !yield(clone(e), nil) {
				return
			}
		}
	}
}

// Tamper calls edit on the stored events, oldest first, under the
// Store's lock: tests of verification change, delete, insert or reorder
// them as an intruder with access to the storage would. edit returns the
// new log. Tamper is safe for concurrent use.
func (s *Store) Tamper(edit func([]audit.Event) []audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = edit(s.events)
}

// clone returns e with Before and After in memory of its own.
func clone(e audit.Event) audit.Event {
	e.Before, e.After = bytes.Clone(e.Before), bytes.Clone(e.After)
	return e
}
