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
			if u.PasswordHash, err = s.hasher.Hash(password); err != nil {
				return err
			}
			if err := c.ids.UpdateUser(ctx, u); err != nil {
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
// Errors: ErrUnauthenticated for every refusal.
func (s *Service) Authenticate(ctx context.Context, token string) (authz.UserID, error) {
	var user authz.UserID
	err := s.read(ctx, audit.Event{}, func(c *change) error {
		sess, err := c.ids.Session(ctx, identity.HashToken(token))
		if err != nil {
			return err
		}
		if sess.Expired(s.cfg.now()) {
			return errNoSession
		}
		u, err := c.ids.User(ctx, sess.User)
		if err != nil {
			return err
		}
		if u.Status != identity.Active {
			return errNoSession
		}
		user = u.ID
		return nil
	})
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrInvalid) {
		return "", errNoSession
	}
	return user, err
}

var errNoSession = fmt.Errorf("%w: no valid session", ErrUnauthenticated)

// Logout ends the session of token.
//
// Errors: ErrUnauthenticated for an unknown or ended session.
func (s *Service) Logout(ctx context.Context, token string) error {
	h := identity.HashToken(token)
	err := s.record(ctx, audit.NewEvent(s.cfg.now(), "", audit.SessionLogout), func(c *change) error {
		sess, err := c.ids.Session(ctx, h)
		if err != nil {
			return err
		}
		c.event.Actor, c.event.Target = sess.User, sess.User
		return c.ids.DeleteSession(ctx, h)
	})
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrInvalid) {
		return errNoSession
	}
	return err
}
