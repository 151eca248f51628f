package iam

import (
	"context"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// accountChange runs an account-wide operation on target (every org at
// once): it reads actor and target in the transaction, calls rule, then fn.
func (s *Service) accountChange(ctx context.Context, actor, target authz.UserID, action audit.Action,
	rule func(a authz.Subject, t authz.Target) error, fn func(c *change, p person) error) error {
	if _, err := authz.ParseUserID(string(target)); err != nil {
		return err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, action)
	ev.Target = target
	return s.mutate(ctx, ev, func(c *change) error {
		// Only a PlatformAdmin manages accounts. Anyone else is refused
		// before the target is looked up, so that the refusal is the same
		// whether the account exists or not (else it would tell them).
		a, err := c.actor(actor)
		if err != nil {
			return err
		}
		if sub := a.subject(""); !sub.PlatformAdmin {
			if err := rule(sub, authz.Target{Subject: sub}); err != nil {
				return c.deny(err)
			}
		}
		p, err := c.parties(actor, target, "", rule)
		if err != nil {
			return err
		}
		return fn(c, p)
	})
}

// DeactivateUser deactivates target's account: offboarding in one call.
// Their sessions and reset tokens end and every check for them denies at
// once; what they held is kept, for ReactivateUser.
//
// Errors: ErrForbidden for anyone but a PlatformAdmin; ErrNotFound for an
// unknown target; ErrLastPlatformAdmin; ErrLastManager when target is the
// last active Manager of an org; ErrUnauthenticated for an inactive actor.
// Refusals are recorded as denied attempts.
func (s *Service) DeactivateUser(ctx context.Context, actor, target authz.UserID) error {
	defer s.sessions.forgetUser(target)
	return s.accountChange(ctx, actor, target, audit.UserDeactivate, authz.CanManageAccount,
		func(c *change, p person) error {
			return c.setStatus(p, identity.Deactivated)
		})
}

// ReactivateUser reactivates target's account: what they held applies
// again.
//
// Errors: ErrForbidden for anyone but a PlatformAdmin; ErrNotFound for an
// unknown target; ErrUnauthenticated for an inactive actor.
func (s *Service) ReactivateUser(ctx context.Context, actor, target authz.UserID) error {
	return s.accountChange(ctx, actor, target, audit.UserReactivate, authz.CanReactivate,
		func(c *change, p person) error {
			return c.setStatus(p, identity.Active)
		})
}

// setStatus sets p's account status, with the deactivation rule that makes
// the policy agree, and ends p's sessions and reset tokens on
// deactivation.
func (c *change) setStatus(p person, to identity.Status) error {
	id := p.user.ID
	if err := c.ids.UpdateUser(c.ctx, id, identity.UserUpdate{Status: to, At: c.event.Time}); err != nil {
		return err
	}
	off := to == identity.Deactivated
	if off {
		if err := c.endSessions(id); err != nil {
			return err
		}
	}
	if err := c.tx.SetDeactivated(id, off); err != nil {
		return err
	}
	c.apply(func(e *authz.Engine) error { return e.SetDeactivated(id, off) })
	return c.event.SetChange(map[string]any{"status": p.user.Status}, map[string]any{"status": to})
}

// endSessions ends every session and outstanding reset token of user.
func (c *change) endSessions(user authz.UserID) error {
	if err := c.endLogins(user); err != nil {
		return err
	}
	return c.ids.DeleteResetTokens(c.ctx, user)
}

// endLogins ends every session of user. It first holds user's account
// exclusively, which Login and ForgotPassword hold shared: a login
// committing meanwhile is then either seen (and its session deleted) or
// made to wait and read the account as this change leaves it. Without
// it, on PostgreSQL, a login that read the account before a deactivation
// committed could keep a session through it (and use it again after a
// reactivation). See gormstore.Tx.HoldAccount.
func (c *change) endLogins(user authz.UserID) error {
	if err := c.tx.HoldUser(user); err != nil {
		return err
	}
	if err := c.ids.DeleteSessions(c.ctx, user); err != nil {
		return err
	}
	c.tx.SessionsEnded(user) // other replicas drop their cached sessions
	return nil
}

// DeleteUser deletes target's account everywhere (PlatformAdmins only):
// memberships, grants, sessions, reset tokens and registration requests
// go; the audit history stays, and the email may register again as a new
// user with nothing.
//
// Errors: ErrForbidden for anyone but a PlatformAdmin; ErrNotFound for an
// unknown target; ErrLastPlatformAdmin; ErrLastManager;
// ErrUnauthenticated for an inactive actor. Refusals are recorded as
// denied attempts.
func (s *Service) DeleteUser(ctx context.Context, actor, target authz.UserID) error {
	defer s.sessions.forgetUser(target)
	return s.accountChange(ctx, actor, target, audit.UserDelete, authz.CanManageAccount,
		func(c *change, p person) error { return c.deleteAccount(p) })
}

// deleteAccount removes p's account and everything it held.
func (c *change) deleteAccount(p person) error {
	id := p.user.ID
	if err := c.tx.RemoveUser(id); err != nil {
		return err
	}
	if err := c.reqs.DeleteUserRequests(c.ctx, id); err != nil {
		return err
	}
	if err := c.endSessions(id); err != nil {
		return err
	}
	if err := c.ids.DeleteUser(c.ctx, id, c.event.Time); err != nil {
		return err
	}
	c.apply(func(e *authz.Engine) error { return e.RemoveUser(id) })
	return c.event.SetChange(map[string]any{"platformadmin": p.admin, "orgs": len(p.orgs), "status": p.user.Status}, nil)
}
