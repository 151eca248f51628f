package iam

import (
	"context"
	"errors"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Account is a user as the Service shows them: never their password hash.
type Account struct {
	ID            authz.UserID
	Email         string
	Name          string
	Status        identity.Status
	PlatformAdmin bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func accountOf(u identity.User, platformAdmin bool) Account {
	return Account{ID: u.ID, Email: u.Email, Name: u.Name, Status: u.Status, PlatformAdmin: platformAdmin, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// Member is one row of the Users by Organization tab: an account with its
// role and categories in the org.
type Member struct {
	Account
	Role       authz.Role
	Categories authz.CategorySet
}

// memberChange runs an operation on target's membership of org: it reads
// actor and target inside the transaction (an unknown target is refused
// as not found), and calls rule, then fn.
func (s *Service) memberChange(ctx context.Context, actor, target authz.UserID, org authz.OrgID, action audit.Action,
	rule func(a authz.Subject, t authz.Target) error, fn func(c *change, p person) error) error {
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return err
	}
	if _, err := authz.ParseUserID(string(target)); err != nil {
		return err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, action)
	ev.Target, ev.Org = target, org
	return s.mutate(ctx, ev, func(c *change) error {
		p, err := c.parties(actor, target, org, rule)
		if err != nil {
			return err
		}
		if _, err := c.ids.Org(ctx, org); err != nil {
			return c.denyMissing(err)
		}
		return fn(c, p)
	})
}

// ChangeRole gives target the role to, from the Edit Role button of org's
// Users by Organization tab. To PlatformAdmin makes target a PlatformAdmin
// and keeps their role in org; to Member or Manager sets their role in org
// (adding them to org if they held none there, PlatformAdmins only) and
// ends a PlatformAdmin role. Categories are kept.
//
// Errors: ErrSelfRoleChange for one's own role; ErrForbidden for a Member,
// for a Manager touching a PlatformAdmin or promoting to PlatformAdmin;
// ErrNotFound for a target outside a Manager's org or unknown;
// ErrLastPlatformAdmin, ErrLastManager; ErrInvalid for a bad role or id;
// ErrUnauthenticated for an inactive actor. Refusals are recorded as
// denied attempts.
func (s *Service) ChangeRole(ctx context.Context, actor, target authz.UserID, org authz.OrgID, to authz.Role) error {
	if !to.Valid() {
		return &authz.InvalidError{Field: "role", Value: to.String(), Reason: "want member, manager or platformadmin"}
	}
	return s.memberChange(ctx, actor, target, org, audit.MemberRoleChange,
		func(a authz.Subject, t authz.Target) error { return authz.CanChangeRole(a, t, to) },
		func(c *change, p person) error {
			m := p.orgs[org]
			before := map[string]any{"role": roleField(m.Role), "platformadmin": p.admin}
			if to == authz.PlatformAdmin {
				if err := c.tx.SetPlatformAdmin(target, true); err != nil {
					return err
				}
				c.apply(func(e *authz.Engine) error { return e.SetPlatformAdmin(target, true) })
			} else {
				m.Role = to
				if err := c.tx.SetMembership(target, org, m); err != nil {
					return err
				}
				if err := c.tx.SetPlatformAdmin(target, false); err != nil {
					return err
				}
				c.apply(func(e *authz.Engine) error {
					return errors.Join(e.SetMembership(target, org, m), e.SetPlatformAdmin(target, false))
				})
			}
			return c.event.SetChange(before, map[string]any{"role": roleField(m.Role), "platformadmin": to == authz.PlatformAdmin})
		})
}

// roleField describes an org role in an audit event: its name, or null
// for none.
func roleField(r authz.Role) any {
	if r == authz.RoleNone {
		return nil
	}
	return r
}

// SetCategories replaces target's categories in org with cats: the Save of
// the Permission Management page, applied at once. The audit event
// records the set before and after.
//
// Errors: ErrForbidden for a Member or a Manager touching a PlatformAdmin;
// ErrNotFound for a target that is not a member of org (or outside a
// Manager's org); ErrInvalid for unknown category bits or ids;
// ErrUnauthenticated for an inactive actor. Refusals are recorded as
// denied attempts.
func (s *Service) SetCategories(ctx context.Context, actor, target authz.UserID, org authz.OrgID, cats authz.CategorySet) error {
	if !cats.Valid() {
		return &authz.InvalidError{Field: "categories", Value: cats.String(), Reason: "unknown category bits"}
	}
	return s.memberChange(ctx, actor, target, org, audit.MemberCategoriesSet, authz.CanSetCategories,
		func(c *change, p person) error {
			m := p.orgs[org]
			before := m.Categories
			m.Categories = cats
			if err := c.tx.SetMembership(target, org, m); err != nil {
				return err
			}
			c.apply(func(e *authz.Engine) error { return e.SetMembership(target, org, m) })
			return c.event.SetChange(map[string]any{"categories": before.Slice()}, map[string]any{"categories": cats.Slice()})
		})
}

// RemoveMember takes target out of org: their role and categories there
// are revoked (the Remove icon of Users by Organization). A Manager may
// remove themselves, unless they are org's last Manager.
//
// Errors: ErrForbidden for a Member or a Manager touching a PlatformAdmin;
// ErrNotFound for a target not in org (or outside a Manager's org);
// ErrLastManager; ErrUnauthenticated for an inactive actor. Refusals are
// recorded as denied attempts.
func (s *Service) RemoveMember(ctx context.Context, actor, target authz.UserID, org authz.OrgID) error {
	return s.memberChange(ctx, actor, target, org, audit.MemberRemove, authz.CanRemoveFromOrg,
		func(c *change, p person) error {
			m := p.orgs[org]
			if err := c.tx.SetMembership(target, org, authz.Membership{}); err != nil {
				return err
			}
			c.apply(func(e *authz.Engine) error { return e.RemoveMembership(target, org) })
			return c.event.SetChange(map[string]any{"role": roleField(m.Role), "categories": m.Categories.Slice()}, nil)
		})
}
