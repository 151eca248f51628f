package iam

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// errBadLogin is the one answer to every failed login, whatever failed.
var errBadLogin = fmt.Errorf("%w: wrong email or password", ErrUnauthenticated)

// Login checks email and password and starts a session, returning its
// token (the only copy: only its hash is stored). Failed logins are
// throttled per account and per client address (see WithClientAddr).
//
// An unknown email, a wrong password and a deactivated account get the
// same answer after the same work, so a login reveals nothing about which
// accounts exist.
//
// Errors: ErrUnauthenticated for every failure, an *identity.ThrottledError
// (matching it) while throttled.
func (s *Service) Login(ctx context.Context, email, password string) (identity.Token, error) {
	key, err := identity.CanonicalEmail(email)
	if err != nil {
		key = strings.TrimSpace(email) // throttled all the same
	}
	addr := clientAddr(ctx)
	if err := s.throttle.Attempt(key, addr); err != nil {
		return identity.Token{}, err
	}
	var tok identity.Token
	ev := audit.NewEvent(s.cfg.now(), "", audit.SessionLogin)
	err = s.record(ctx, ev, func(c *change) error {
		// Held until commit, so that a deactivation, deletion or password
		// change committing meanwhile cannot miss this session: see
		// gormstore.Tx.HoldAccount.
		if err := c.tx.HoldAccount(key); err != nil {
			return err
		}
		u, err := c.ids.UserByEmail(ctx, key)
		if errors.Is(err, authz.ErrNotFound) {
			s.hasher.VerifyDummy(password)
			return c.deny(errBadLogin)
		}
		if err != nil {
			return err
		}
		c.event.Target = u.ID
		ok, err := s.hasher.Verify(u.PasswordHash, password)
		if err != nil || !ok || u.Status != identity.Active {
			return c.deny(errBadLogin)
		}
		c.event.Actor = u.ID
		if s.hasher.NeedsRehash(u.PasswordHash) {
			hash, err := s.hasher.Hash(password)
			if err != nil {
				return err
			}
			if err := c.ids.UpdateUser(ctx, u.ID, identity.UserUpdate{PasswordHash: hash, At: c.event.Time}); err != nil {
				return err
			}
		}
		t, sess, err := identity.NewSession(u.ID, c.event.Time, s.cfg.sessionTTL)
		if err != nil {
			return err
		}
		tok = t
		return c.ids.CreateSession(ctx, sess)
	})
	if err != nil {
		return identity.Token{}, err
	}
	s.throttle.Succeeded(key, addr)
	return tok, nil
}

// Authenticate resolves a session token to its user: the identity behind
// a request. It refuses expired and ended sessions and inactive accounts.
//
// A session found valid in the database is kept in memory (see
// WithSessionCache): later calls with the same token hash it, find it in
// memory and check only its end and the account's status in the engine,
// with no database read, no global lock and no allocation. An entry is
// trusted until the session ends or for the cache's maximum age (a minute
// by default), whichever comes first; then the database is read again.
// Unknown and refused tokens are never cached: each one costs a database
// read, so a flood of made-up tokens cannot fill memory.
//
// The promise is per Service (per replica). On this Service, a session is
// refused as soon as the call that ended it has returned: Logout,
// ChangePassword, ResetPassword, StartPasswordReset, DeactivateUser,
// DeleteUser and DeleteAccount drop what the cache holds for it after
// their transaction commits (and an Authenticate that read the database
// before that commit cannot put it back). Those calls also enter the
// change log, so another Service on the same database (another replica)
// drops its cached entries at its next Sync (at once with
// WithReplicaSync on PostgreSQL, within its interval elsewhere); without
// syncing, it refuses an ended session when its cached entry reaches the
// maximum age, which bounds the delay in every case.
//
// Errors: ErrUnauthenticated for every refusal; a database error when the
// token is not in memory and the database cannot be read.
func (s *Service) Authenticate(ctx context.Context, token string) (authz.UserID, error) {
	if s.closed.Load() {
		return "", errClosed
	}
	h := identity.HashToken(token)
	now := s.cfg.now()
	if u, ok := s.sessions.get(h, now); ok && !s.engine.IsDeactivated(u) {
		return u, nil
	}
	gen := s.sessions.generation() // before the read: see sessionCache.put
	var sess identity.Session
	err := s.read(ctx, audit.Event{}, func(c *change) error {
		var err error
		if sess, err = c.ids.Session(ctx, h); err != nil {
			return err
		}
		if sess.Expired(now) {
			return errNoSession
		}
		u, err := c.ids.User(ctx, sess.User)
		if err != nil {
			return err
		}
		if u.Status != identity.Active {
			return errNoSession
		}
		return nil
	})
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrInvalid) {
		return "", errNoSession
	}
	if err != nil {
		return "", err
	}
	s.sessions.put(sess, now, gen)
	return sess.User, nil
}

var errNoSession = fmt.Errorf("%w: no valid session", ErrUnauthenticated)

// Logout ends the session of token.
//
// Errors: ErrUnauthenticated for an unknown or ended session.
func (s *Service) Logout(ctx context.Context, token string) error {
	h := identity.HashToken(token)
	defer s.sessions.forget(h)
	// A mutate, not a record: it takes a policy version and the change
	// log, so that other replicas drop the session they cached.
	err := s.mutate(ctx, audit.NewEvent(s.cfg.now(), "", audit.SessionLogout), func(c *change) error {
		sess, err := c.ids.Session(ctx, h)
		if err != nil {
			return err
		}
		c.event.Actor, c.event.Target = sess.User, sess.User
		c.tx.SessionsEnded(sess.User)
		return c.ids.DeleteSession(ctx, h)
	})
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrInvalid) {
		return errNoSession
	}
	return err
}
