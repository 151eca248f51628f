package iam

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// SignUp puts a person into org's registration approval queue (the
// Pending Approvals tab). A new email gets an account with no permissions
// and a pending request; an existing account whose password matches (a
// person rejected before, or applying to a further org) gets a new pending
// request. So that nobody learns through sign-up whether an email has an
// account, the answer is the same, and the same work is done, when an
// existing email comes with a wrong password: nothing is changed then.
//
// Errors: ErrInvalid for an unacceptable email, name or password;
// ErrNotFound for an unknown org; ErrConflict when the account already
// belongs to org or already has a pending request there (said only to the
// holder of the password).
func (s *Service) SignUp(ctx context.Context, email, name, password string, org authz.OrgID) error {
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return err
	}
	fresh, err := s.newUser(email, name, password) // hashes: the work of a new account
	if err != nil {
		return err
	}
	now := s.cfg.now()
	ev := audit.NewEvent(now, "", audit.RegistrationSubmit)
	ev.Org = org
	// Accounts and requests only: the policy changes at approval.
	return s.record(ctx, ev, func(c *change) error {
		// Held before the check, so that a DeleteOrg committing meanwhile
		// cannot leave this request behind in a deleted org.
		if err := c.tx.HoldOrg(org); err != nil {
			return err
		}
		if _, err := c.ids.Org(ctx, org); err != nil {
			return err
		}
		u, err := c.ids.UserByEmail(ctx, fresh.Email)
		switch {
		case errors.Is(err, authz.ErrNotFound):
			s.hasher.VerifyDummy(password) // the work of an existing account
			u = fresh
			if err := c.ids.CreateUser(ctx, u); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			ok, err := s.hasher.Verify(u.PasswordHash, password)
			if err != nil || !ok || u.Status != identity.Active {
				c.event.Action = "" // same answer, nothing changed, nothing to record
				return nil
			}
			p, err := c.person(u.ID)
			if err != nil {
				return err
			}
			if _, member := p.orgs[org]; member {
				return fmt.Errorf("%w: you are already a member of this organization", ErrConflict)
			}
		}
		r, err := approval.NewRequest(org, u.ID, u.Email, u.Name, now)
		if err != nil {
			return err
		}
		if err := c.reqs.CreateRequest(ctx, r); err != nil {
			return err
		}
		c.event.Actor, c.event.Target = u.ID, u.ID
		return c.event.SetChange(nil, map[string]any{"request": r.ID, "status": approval.Pending})
	})
}

// Registrations lists org's registration requests with the given status
// (approval.AnyStatus for all) made within period (the 7 days / 30 days /
// All filter), newest first: the Pending Approvals tab.
//
// Errors: ErrForbidden for a Member; ErrNotFound for an org where actor
// holds no role (as if it did not exist); ErrUnauthenticated for an
// inactive actor; ErrInvalid for a bad period or status.
func (s *Service) Registrations(ctx context.Context, actor authz.UserID, org authz.OrgID, period approval.Period, status approval.Status) ([]approval.Request, error) {
	if !period.Valid() {
		return nil, &authz.InvalidError{Field: "period", Value: period.String(), Reason: "want 7d, 30d or all"}
	}
	var out []approval.Request
	err := s.read(ctx, s.queueEvent(actor, org), func(c *change) error {
		if err := c.reviewer(actor, org); err != nil {
			return err
		}
		var err error
		out, err = c.reqs.Requests(ctx, org, period.Since(s.cfg.now()), status)
		return err
	})
	return out, err
}

// PendingCount returns the number of pending registration requests of org,
// shown next to the Pending Approvals tab's name. Errors as Registrations.
func (s *Service) PendingCount(ctx context.Context, actor authz.UserID, org authz.OrgID) (int, error) {
	var n int
	err := s.read(ctx, s.queueEvent(actor, org), func(c *change) error {
		if err := c.reviewer(actor, org); err != nil {
			return err
		}
		var err error
		n, err = c.reqs.PendingCount(ctx, org)
		return err
	})
	return n, err
}

// queueEvent is the event of a refused look at org's queue.
func (s *Service) queueEvent(actor authz.UserID, org authz.OrgID) audit.Event {
	ev := audit.NewEvent(s.cfg.now(), actor, audit.RegistrationsView)
	ev.Org = org
	return ev
}

// reviewer checks that actor may see org's registration queue.
func (c *change) reviewer(actor authz.UserID, org authz.OrgID) error {
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return err
	}
	return c.inOrg(actor, org, authz.CanReviewRegistrations)
}

// Approve approves registration request id: its requester becomes a
// Member of the request's org, with no categories.
//
// Errors: ErrNotFound for an unknown request or one of an org where actor
// holds no role; ErrForbidden for a Member, and for the requester
// (authz.ErrSelfApproval); ErrConflict for a request already approved or
// rejected (of two concurrent approvals exactly one succeeds);
// ErrUnauthenticated for an inactive actor. Refusals are recorded as
// denied attempts.
func (s *Service) Approve(ctx context.Context, actor authz.UserID, id approval.RequestID) error {
	return s.decide(ctx, actor, id, approval.Approved, "")
}

// Reject rejects registration request id with an optional reason; the
// person may apply again. Errors as Approve, plus ErrInvalid for an
// unacceptable reason.
func (s *Service) Reject(ctx context.Context, actor authz.UserID, id approval.RequestID, reason string) error {
	reason, err := approval.CleanReason(reason)
	if err != nil {
		return err
	}
	return s.decide(ctx, actor, id, approval.Rejected, reason)
}

func (s *Service) decide(ctx context.Context, actor authz.UserID, id approval.RequestID, to approval.Status, reason string) error {
	if _, err := approval.ParseRequestID(string(id)); err != nil {
		return err
	}
	action := audit.RegistrationApprove
	if to == approval.Rejected {
		action = audit.RegistrationReject
	}
	now := s.cfg.now()
	return s.mutate(ctx, audit.NewEvent(now, actor, action), func(c *change) error {
		a, err := c.actor(actor)
		if err != nil {
			return err
		}
		r, err := c.reqs.Request(ctx, id)
		if err != nil {
			return c.denyMissing(err)
		}
		c.event.Org, c.event.Target = r.Org, r.User
		if err := authz.CanDecideRegistration(a.subject(r.Org), r.User); err != nil {
			return c.deny(err)
		}
		if r.Status != approval.Pending {
			return c.deny(fmt.Errorf("%w: this request was already %v", ErrConflict, r.Status))
		}
		if err := c.reqs.DecideRequest(ctx, id, to, actor, reason, now); err != nil {
			return err
		}
		after := map[string]any{"request": id, "status": to}
		if to == approval.Approved {
			p, err := c.person(r.User)
			if err != nil {
				return err
			}
			if _, member := p.orgs[r.Org]; !member {
				m := authz.Membership{Role: authz.Member}
				if err := c.tx.SetMembership(r.User, r.Org, m); err != nil {
					return err
				}
				c.apply(func(e *authz.Engine) error { return e.SetMembership(r.User, r.Org, m) })
				after["role"] = authz.Member
			}
		}
		return c.event.SetChange(map[string]any{"request": id, "status": approval.Pending}, after)
	})
}
