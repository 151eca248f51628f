// Package audittest helps test implementations and users of audit.Store:
// Store is a working in-memory fake, and Run is the conformance suite
// that every implementation (this fake, the GORM adapter on SQLite and on
// PostgreSQL) must pass.
package audittest

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// Store is an in-memory audit.Store, in the spirit of database/sql's
// fakedb: it keeps real state and honours the whole contract of
// audit.Store (it passes Run), with one mutex around every method, so it
// is safe for concurrent use. IDs start at 1. It has no transactions: each
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

// clone returns e with Before and After in memory of its own.
func clone(e audit.Event) audit.Event {
	e.Before, e.After = bytes.Clone(e.Before), bytes.Clone(e.After)
	return e
}
