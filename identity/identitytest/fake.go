// Package identitytest helps test code that uses package identity: Store
// is a working in-memory identity.Store, and Run is the conformance suite
// that every identity.Store implementation must pass (the GORM adapter
// runs it on SQLite and PostgreSQL, and this package runs it on Store).
package identitytest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Store is an in-memory identity.Store, in the manner of database/sql's
// fakedb: it keeps every contract of the interface (soft deletion, unique
// live emails, single-use reset tokens, …) under one mutex, so tests of
// code above it behave as on a database, and it lets a test inject
// failures through Fail. It has no transactions: each call applies at once.
//
// The zero Store is ready to use. A Store is safe for concurrent use.
type Store struct {
	// Fail, if set, is called with the method's name ("CreateUser", …)
	// before every call; a non-nil result is returned as that call's
	// error and nothing changes. Set it before the Store is shared.
	Fail func(op string) error

	mu       sync.Mutex
	orgs     map[authz.OrgID]identity.Org
	users    map[authz.UserID]*userRow
	sessions map[identity.TokenHash]identity.Session
	resets   map[identity.TokenHash]*resetRow
}

type userRow struct {
	identity.User
	deleted   bool
	deletedAt time.Time
}

type resetRow struct {
	identity.ResetToken
	used bool
}

var _ identity.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{} }

// begin takes the lock, initializes the maps and runs the Fail hook; the
// caller must call s.mu.Unlock when err is nil.
func (s *Store) begin(op string) error {
	if s.Fail != nil {
		if err := s.Fail(op); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.orgs == nil {
		s.orgs = make(map[authz.OrgID]identity.Org)
		s.users = make(map[authz.UserID]*userRow)
		s.sessions = make(map[identity.TokenHash]identity.Session)
		s.resets = make(map[identity.TokenHash]*resetRow)
	}
	return nil
}

func notFound(what string) error   { return &kindError{authz.ErrNotFound, what} }
func conflict(what string) error   { return &kindError{authz.ErrConflict, what} }
func (e *kindError) Error() string { return "identitytest: " + e.msg }
func (e *kindError) Unwrap() error { return e.kind }

type kindError struct {
	kind error
	msg  string
}

// CreateOrg implements identity.Store.
func (s *Store) CreateOrg(_ context.Context, o identity.Org) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := s.begin("CreateOrg"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.orgs[o.ID]; ok {
		return conflict("org " + string(o.ID) + " exists")
	}
	s.orgs[o.ID] = o
	return nil
}

// Org implements identity.Store.
func (s *Store) Org(_ context.Context, id authz.OrgID) (identity.Org, error) {
	if err := s.begin("Org"); err != nil {
		return identity.Org{}, err
	}
	defer s.mu.Unlock()
	o, ok := s.orgs[id]
	if !ok {
		return identity.Org{}, notFound("no org " + string(id))
	}
	return o, nil
}

// Orgs implements identity.Store.
func (s *Store) Orgs(context.Context) ([]identity.Org, error) {
	if err := s.begin("Orgs"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]identity.Org, 0, len(s.orgs))
	for _, o := range s.orgs {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b identity.Org) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RenameOrg implements identity.Store.
func (s *Store) RenameOrg(_ context.Context, id authz.OrgID, name string) error {
	if n, err := identity.CleanOrgName(name); err != nil {
		return err
	} else if n != name {
		return &authz.InvalidError{Field: "org name", Value: name, Reason: "not in clean form"}
	}
	if err := s.begin("RenameOrg"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	o, ok := s.orgs[id]
	if !ok {
		return notFound("no org " + string(id))
	}
	o.Name = name
	s.orgs[id] = o
	return nil
}

// DeleteOrg implements identity.Store.
func (s *Store) DeleteOrg(_ context.Context, id authz.OrgID) error {
	if err := s.begin("DeleteOrg"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.orgs[id]; !ok {
		return notFound("no org " + string(id))
	}
	delete(s.orgs, id)
	return nil
}

// CreateUser implements identity.Store.
func (s *Store) CreateUser(_ context.Context, u identity.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if err := s.begin("CreateUser"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return conflict("user " + string(u.ID) + " exists")
	}
	if s.byEmail(u.Email) != nil {
		return conflict("a user with this email exists")
	}
	s.users[u.ID] = &userRow{User: u}
	return nil
}

func (s *Store) byEmail(email string) *userRow {
	for _, r := range s.users {
		if !r.deleted && r.Email == email {
			return r
		}
	}
	return nil
}

func (s *Store) live(id authz.UserID) *userRow {
	if r := s.users[id]; r != nil && !r.deleted {
		return r
	}
	return nil
}

// User implements identity.Store.
func (s *Store) User(_ context.Context, id authz.UserID) (identity.User, error) {
	if err := s.begin("User"); err != nil {
		return identity.User{}, err
	}
	defer s.mu.Unlock()
	r := s.live(id)
	if r == nil {
		return identity.User{}, notFound("no user " + string(id))
	}
	return r.User, nil
}

// UserByEmail implements identity.Store.
func (s *Store) UserByEmail(_ context.Context, email string) (identity.User, error) {
	if err := s.begin("UserByEmail"); err != nil {
		return identity.User{}, err
	}
	defer s.mu.Unlock()
	r := s.byEmail(email)
	if r == nil {
		return identity.User{}, notFound("no user with this email")
	}
	return r.User, nil
}

// Users implements identity.Store.
func (s *Store) Users(context.Context) ([]identity.User, error) {
	if err := s.begin("Users"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]identity.User, 0, len(s.users))
	for _, r := range s.users {
		if !r.deleted {
			out = append(out, r.User)
		}
	}
	slices.SortFunc(out, func(a, b identity.User) int { return cmp.Compare(a.Email, b.Email) })
	return out, nil
}

// UpdateUser implements identity.Store.
func (s *Store) UpdateUser(_ context.Context, id authz.UserID, up identity.UserUpdate) error {
	if err := up.Validate(); err != nil {
		return err
	}
	if err := s.begin("UpdateUser"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r := s.live(id)
	if r == nil {
		return notFound("no user " + string(id))
	}
	r.User = up.Apply(r.User)
	return nil
}

// DeleteUser implements identity.Store.
func (s *Store) DeleteUser(_ context.Context, id authz.UserID, at time.Time) error {
	if err := s.begin("DeleteUser"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r := s.live(id)
	if r == nil {
		return notFound("no user " + string(id))
	}
	r.deleted, r.deletedAt = true, at
	return nil
}

// CreateSession implements identity.Store.
func (s *Store) CreateSession(_ context.Context, se identity.Session) error {
	if err := se.Validate(); err != nil {
		return err
	}
	if err := s.begin("CreateSession"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.sessions[se.Hash]; ok {
		return conflict("session exists")
	}
	s.sessions[se.Hash] = se
	return nil
}

// Session implements identity.Store.
func (s *Store) Session(_ context.Context, h identity.TokenHash) (identity.Session, error) {
	if err := s.begin("Session"); err != nil {
		return identity.Session{}, err
	}
	defer s.mu.Unlock()
	se, ok := s.sessions[h]
	if !ok {
		return identity.Session{}, notFound("no such session")
	}
	return se, nil
}

// DeleteSession implements identity.Store.
func (s *Store) DeleteSession(_ context.Context, h identity.TokenHash) error {
	if err := s.begin("DeleteSession"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.sessions[h]; !ok {
		return notFound("no such session")
	}
	delete(s.sessions, h)
	return nil
}

// DeleteSessions implements identity.Store.
func (s *Store) DeleteSessions(_ context.Context, user authz.UserID) error {
	if err := s.begin("DeleteSessions"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for h, se := range s.sessions {
		if se.User == user {
			delete(s.sessions, h)
		}
	}
	return nil
}

// CreateResetToken implements identity.Store.
func (s *Store) CreateResetToken(_ context.Context, t identity.ResetToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if err := s.begin("CreateResetToken"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.resets[t.Hash]; ok {
		return conflict("reset token exists")
	}
	for h, r := range s.resets {
		if r.User == t.User {
			delete(s.resets, h)
		}
	}
	s.resets[t.Hash] = &resetRow{ResetToken: t}
	return nil
}

// UseResetToken implements identity.Store.
func (s *Store) UseResetToken(_ context.Context, h identity.TokenHash, now time.Time) (identity.ResetToken, error) {
	if err := s.begin("UseResetToken"); err != nil {
		return identity.ResetToken{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.resets[h]
	if !ok || r.used || r.Expired(now) {
		return identity.ResetToken{}, notFound("no usable reset token")
	}
	r.used = true
	return r.ResetToken, nil
}

// DeleteResetTokens implements identity.Store.
func (s *Store) DeleteResetTokens(_ context.Context, user authz.UserID) error {
	if err := s.begin("DeleteResetTokens"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for h, r := range s.resets {
		if r.User == user {
			delete(s.resets, h)
		}
	}
	return nil
}

// DeleteExpired implements identity.Store.
func (s *Store) DeleteExpired(_ context.Context, now time.Time) error {
	if err := s.begin("DeleteExpired"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for h, se := range s.sessions {
		if se.Expired(now) {
			delete(s.sessions, h)
		}
	}
	for h, r := range s.resets {
		if r.used || r.Expired(now) {
			delete(s.resets, h)
		}
	}
	return nil
}
