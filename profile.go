package iam

import (
	"context"
	"fmt"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Profile is the Profile page: the actor's account and memberships.
type Profile struct {
	Account
	Memberships map[authz.OrgID]authz.Membership
}

// Profile returns actor's own account and what they hold in each org.
//
// Errors: ErrUnauthenticated for an inactive actor.
func (s *Service) Profile(ctx context.Context, actor authz.UserID) (Profile, error) {
	var out Profile
	err := s.read(ctx, audit.Event{}, func(c *change) error {
		p, err := c.actor(actor)
		if err != nil {
			return err
		}
		out = Profile{Account: accountOf(p.user, p.admin), Memberships: p.orgs}
		return nil
	})
	return out, err
}

// ChangeName changes actor's display name.
//
// Errors: ErrInvalid for an unacceptable name; ErrUnauthenticated for an
// inactive actor.
func (s *Service) ChangeName(ctx context.Context, actor authz.UserID, name string) error {
	name, err := identity.CleanName(name)
	if err != nil {
		return err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.ProfileNameChange)
	ev.Target = actor
	return s.record(ctx, ev, func(c *change) error {
		// Held before the read, so that the event's "before" is the name
		// this change replaces: two name changes take turns. (A malformed
		// actor is refused by c.actor as unauthenticated.)
		if actor.Valid() {
			if err := c.tx.HoldUser(actor); err != nil {
				return err
			}
		}
		p, err := c.actor(actor)
		if err != nil {
			return err
		}
		if err := c.ids.UpdateUser(ctx, actor, identity.UserUpdate{Name: name, At: c.event.Time}); err != nil {
			return err
		}
		return c.event.SetChange(map[string]string{"name": p.user.Name}, map[string]string{"name": name})
	})
}

// ChangePassword changes actor's password; it needs the current one. It
// ends every session and outstanding reset token of actor, and returns a
// fresh session token so that the person stays logged in where they are.
//
// Errors: ErrForbidden for a wrong current password (throttled like a
// login: an *identity.ThrottledError then); ErrUnauthenticated for an
// inactive actor; ErrInvalid for an unacceptable new password (an
// *identity.PasswordError says why).
func (s *Service) ChangePassword(ctx context.Context, actor authz.UserID, current, next string) (identity.Token, error) {
	defer s.sessions.forgetUser(actor)
	var tok identity.Token
	ev := audit.NewEvent(s.cfg.now(), actor, audit.ProfilePasswordChange)
	ev.Target = actor
	err := s.mutate(ctx, ev, func(c *change) error { // ends sessions: see Logout
		p, err := c.actor(actor)
		if err != nil {
			return err
		}
		if err := s.verifyOwnPassword(ctx, p.user, current); err != nil {
			return c.deny(err)
		}
		if err := identity.CheckPassword(next, p.user.Email, p.user.Name); err != nil {
			return err
		}
		tok, err = c.setPassword(s, p.user, next)
		return err
	})
	return tok, err
}

// errWrongPassword refuses an action confirmed with a wrong password. It
// is not ErrUnauthenticated: the session is fine, the confirmation is not.
var errWrongPassword = fmt.Errorf("%w: the password you entered is wrong", ErrForbidden)

// verifyOwnPassword checks a password a person gave to confirm an action,
// throttled like a login.
func (s *Service) verifyOwnPassword(ctx context.Context, u identity.User, password string) error {
	addr := clientAddr(ctx)
	if err := s.throttle.Attempt(u.Email, addr); err != nil {
		return err
	}
	ok, err := s.hasher.Verify(u.PasswordHash, password)
	if err != nil || !ok {
		return errWrongPassword
	}
	s.throttle.Succeeded(u.Email, addr)
	return nil
}

// setPassword stores u's new password, ends u's sessions and reset tokens
// and returns a fresh session.
func (c *change) setPassword(s *Service, u identity.User, password string) (identity.Token, error) {
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return identity.Token{}, err
	}
	if err := c.ids.UpdateUser(c.ctx, u.ID, identity.UserUpdate{PasswordHash: hash, At: c.event.Time}); err != nil {
		return identity.Token{}, err
	}
	if err := c.endSessions(u.ID); err != nil {
		return identity.Token{}, err
	}
	tok, sess, err := identity.NewSession(u.ID, c.event.Time, s.cfg.sessionTTL)
	if err != nil {
		return identity.Token{}, err
	}
	return tok, c.ids.CreateSession(c.ctx, sess)
}

// DeleteAccount deletes actor's own account; it needs their password. The
// last PlatformAdmin and the last Manager of an org cannot.
//
// Errors: ErrForbidden for a wrong password; ErrUnauthenticated for an
// inactive actor; ErrLastPlatformAdmin; ErrLastManager. Refusals are
// recorded as denied attempts.
func (s *Service) DeleteAccount(ctx context.Context, actor authz.UserID, password string) error {
	defer s.sessions.forgetUser(actor)
	ev := audit.NewEvent(s.cfg.now(), actor, audit.ProfileDelete)
	ev.Target = actor
	return s.mutate(ctx, ev, func(c *change) error {
		p, err := c.actor(actor)
		if err != nil {
			return err
		}
		if err := s.verifyOwnPassword(ctx, p.user, password); err != nil {
			return c.deny(err)
		}
		t, err := c.target(p, "")
		if err != nil {
			return err
		}
		if err := authz.CanDeleteOwnAccount(t); err != nil {
			return c.deny(err)
		}
		return c.deleteAccount(p)
	})
}
