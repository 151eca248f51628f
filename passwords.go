package iam

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// ForgotPassword issues a password-reset token for the account of email
// and hands it to the Notifier (Forgot Password on the login page). The
// answer is nil for every well-formed email, known or not, after the same
// work: a transaction that records the request. A newer token voids older
// ones; a request never locks an account.
//
// Errors: ErrInvalid for a malformed email.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	email, err := identity.CanonicalEmail(email)
	if err != nil {
		return err
	}
	var msg *ResetMessage
	err = s.record(ctx, audit.NewEvent(s.cfg.now(), "", audit.PasswordResetRequest), func(c *change) error {
		if err := c.tx.HoldAccount(email); err != nil { // as Login's
			return err
		}
		u, err := c.ids.UserByEmail(ctx, email)
		if errors.Is(err, authz.ErrNotFound) {
			return nil // recorded without a target: "someone asked for an unknown address"
		}
		if err != nil {
			return err
		}
		if u.Status != identity.Active {
			return nil
		}
		c.event.Target = u.ID
		msg, err = c.issueReset(s, u, false)
		return err
	})
	if err != nil {
		return err
	}
	s.notify(ctx, msg)
	return nil
}

// StartPasswordReset is a reset of target's password started by a Manager
// (members of their org, given as org) or a PlatformAdmin (anyone; org may
// be empty): target's sessions end and a reset token goes to target
// through the Notifier. The administrator never sets or sees the password.
//
// Errors: ErrForbidden for a Member, for a Manager touching a
// PlatformAdmin, and for one's own password (use ChangePassword);
// ErrNotFound for a target outside a Manager's org or unknown;
// ErrUnauthenticated for an inactive actor. Refusals are recorded as
// denied attempts.
func (s *Service) StartPasswordReset(ctx context.Context, actor, target authz.UserID, org authz.OrgID) error {
	defer s.sessions.forgetUser(target)
	if _, err := authz.ParseUserID(string(target)); err != nil {
		return err
	}
	if org != "" {
		if _, err := authz.ParseOrgID(string(org)); err != nil {
			return err
		}
	}
	var msg *ResetMessage
	ev := audit.NewEvent(s.cfg.now(), actor, audit.PasswordResetIssue)
	ev.Target, ev.Org = target, org
	err := s.mutate(ctx, ev, func(c *change) error { // ends sessions: see Logout
		p, err := c.parties(actor, target, org, resetRule(org))
		if err != nil {
			return err
		}
		if p.user.Status != identity.Active {
			return c.deny(fmt.Errorf("%w: the account is deactivated", ErrConflict))
		}
		if err := c.endLogins(target); err != nil {
			return err
		}
		msg, err = c.issueReset(s, p.user, true)
		return err
	})
	if err != nil {
		return err
	}
	s.notify(ctx, msg)
	return nil
}

// resetRule is the management rule of StartPasswordReset in org. Without
// an org (a PlatformAdmin's reset), the target's facts are account-wide:
// LastManager then says "the last Manager of some org", which the rule,
// written for one org, would refuse as malformed for someone who holds no
// role in "" (so a PlatformAdmin could not reset the password of any
// org's last Manager). The rule never reads that fact: it is dropped.
func resetRule(org authz.OrgID) func(authz.Subject, authz.Target) error {
	if org != "" {
		return authz.CanResetPassword
	}
	return func(a authz.Subject, t authz.Target) error {
		t.LastManager = false
		return authz.CanResetPassword(a, t)
	}
}

// issueReset stores a new reset token for u (voiding older ones) and
// returns the message to deliver once the transaction has committed.
func (c *change) issueReset(s *Service, u identity.User, byAdmin bool) (*ResetMessage, error) {
	tok, rt, err := identity.NewResetToken(u.ID, c.event.Time, 0)
	if err != nil {
		return nil, err
	}
	if err := c.ids.CreateResetToken(c.ctx, rt); err != nil {
		return nil, err
	}
	return &ResetMessage{User: u.ID, Email: u.Email, Name: u.Name, Token: tok, Expires: rt.ExpiresAt, ByAdmin: byAdmin}, nil
}

// notify hands msg to the Notifier in the background, so that the answer
// does not wait for (or reveal anything through) the delivery.
func (s *Service) notify(ctx context.Context, msg *ResetMessage) {
	if msg == nil {
		return
	}
	if s.cfg.notifier == nil {
		s.cfg.log.Warn("iam: a password-reset token was issued but no Notifier is configured", "user", msg.User)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	go func() {
		defer cancel()
		if err := s.cfg.notifier.PasswordReset(ctx, *msg); err != nil {
			s.cfg.log.Error("iam: delivering a password-reset token failed", "user", msg.User, "err", err)
		}
	}()
}

// ResetPassword sets a new password with a reset token: the token works
// once (of two concurrent redemptions exactly one succeeds), within its
// lifetime, and only if it is the user's newest. Every session and reset
// token of the user ends; a fresh session token is returned.
//
// Errors: ErrUnauthenticated for an unknown, spent, voided or expired
// token or an inactive account; ErrInvalid for an unacceptable password
// (the token stays usable then).
func (s *Service) ResetPassword(ctx context.Context, token, password string) (identity.Token, error) {
	var tok identity.Token
	var user authz.UserID // whose sessions may end, once known
	defer func() { s.sessions.forgetUser(user) }()
	err := s.mutate(ctx, audit.NewEvent(s.cfg.now(), "", audit.PasswordResetComplete), func(c *change) error { // ends sessions: see Logout
		rt, err := c.ids.UseResetToken(ctx, identity.HashToken(token), c.event.Time)
		if err != nil {
			return err
		}
		user = rt.User
		u, err := c.ids.User(ctx, rt.User)
		if err != nil {
			return err
		}
		if u.Status != identity.Active {
			return errBadToken
		}
		c.event.Actor, c.event.Target = u.ID, u.ID
		if err := identity.CheckPassword(password, u.Email, u.Name); err != nil {
			return err
		}
		tok, err = c.setPassword(s, u, password)
		return err
	})
	if errors.Is(err, authz.ErrNotFound) {
		return identity.Token{}, errBadToken
	}
	return tok, err
}

var errBadToken = fmt.Errorf("%w: the reset link is invalid or has expired", ErrUnauthenticated)
