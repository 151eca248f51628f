package iam

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Bootstrap creates the first PlatformAdmin of a fresh platform and
// returns their id. It refuses with ErrConflict once an active
// PlatformAdmin exists, so it can run at every start of a host.
//
// Errors: an unacceptable email, name or password is ErrInvalid (an
// *identity.PasswordError says why a password was refused); ErrConflict
// when a PlatformAdmin exists or the email is taken.
func (s *Service) Bootstrap(ctx context.Context, email, name, password string) (authz.UserID, error) {
	u, err := s.newUser(email, name, password)
	if err != nil {
		return "", err
	}
	ev := audit.NewEvent(s.cfg.now(), u.ID, audit.PlatformBootstrap)
	ev.Target = u.ID
	err = s.mutate(ctx, ev, func(c *change) error {
		n, err := c.activeAdmins()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: the platform already has a PlatformAdmin", ErrConflict)
		}
		if err := c.ids.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := c.tx.SetPlatformAdmin(u.ID, true); err != nil {
			return err
		}
		c.apply(func(e *authz.Engine) error { return e.SetPlatformAdmin(u.ID, true) })
		return c.event.SetChange(nil, map[string]any{"role": authz.PlatformAdmin})
	})
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

// newUser checks a new account's email, name and password and returns
// the account, its password hashed.
func (s *Service) newUser(email, name, password string) (identity.User, error) {
	email, err := identity.CanonicalEmail(email)
	if err != nil {
		return identity.User{}, err
	}
	name, err = identity.CleanName(name)
	if err != nil {
		return identity.User{}, err
	}
	if err := identity.CheckPassword(password, email, name); err != nil {
		return identity.User{}, err
	}
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return identity.User{}, err
	}
	now := s.cfg.now()
	return identity.User{ID: authz.NewUserID(), Email: email, Name: name, PasswordHash: hash, Status: identity.Active, CreatedAt: now, UpdatedAt: now}, nil
}

// CreateOrg creates an organization named name (Organization Management:
// PlatformAdmins only) and returns it.
//
// Errors: ErrInvalid for an unacceptable name; ErrForbidden when actor is
// not a PlatformAdmin (recorded as a denied attempt); ErrUnauthenticated
// when actor is not an active account.
func (s *Service) CreateOrg(ctx context.Context, actor authz.UserID, name string) (identity.Org, error) {
	name, err := identity.CleanOrgName(name)
	if err != nil {
		return identity.Org{}, err
	}
	org := identity.Org{ID: authz.NewOrgID(), Name: name, CreatedAt: s.cfg.now()}
	err = s.mutate(ctx, audit.NewEvent(org.CreatedAt, actor, audit.OrgCreate), func(c *change) error {
		a, err := c.actor(actor)
		if err != nil {
			return err
		}
		if err := authz.CanAdministerOrgs(a.subject("")); err != nil {
			return c.deny(err)
		}
		c.event.Org = org.ID
		if err := c.ids.CreateOrg(ctx, org); err != nil {
			return err
		}
		return c.event.SetChange(nil, map[string]string{"name": name})
	})
	if err != nil {
		return identity.Org{}, err
	}
	return org, nil
}

// RenameOrg renames organization org (PlatformAdmins only).
//
// Errors: ErrInvalid for an unacceptable name or a malformed org id;
// ErrForbidden for anyone but a PlatformAdmin (denied attempt recorded);
// ErrNotFound for an unknown org; ErrUnauthenticated for an inactive actor.
func (s *Service) RenameOrg(ctx context.Context, actor authz.UserID, org authz.OrgID, name string) error {
	// A malformed id is refused before it reaches the denied event's Org,
	// which the audit store would refuse (the denial would go unrecorded).
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return err
	}
	name, err := identity.CleanOrgName(name)
	if err != nil {
		return err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.OrgRename)
	ev.Org = org
	return s.mutate(ctx, ev, func(c *change) error {
		old, err := c.orgAdmin(actor, org)
		if err != nil {
			return err
		}
		if err := c.ids.RenameOrg(ctx, org, name); err != nil {
			return err
		}
		return c.event.SetChange(map[string]string{"name": old.Name}, map[string]string{"name": name})
	})
}

// DeleteOrg deletes organization org with its memberships, category
// grants and registration requests (PlatformAdmins only). The audit
// history of the org stays.
//
// Errors: ErrInvalid for a malformed org id; ErrForbidden for anyone but
// a PlatformAdmin (denied attempt recorded); ErrNotFound for an unknown
// org; ErrUnauthenticated for an inactive actor.
func (s *Service) DeleteOrg(ctx context.Context, actor authz.UserID, org authz.OrgID) error {
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return err // as RenameOrg
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.OrgDelete)
	ev.Org = org
	return s.mutate(ctx, ev, func(c *change) error {
		old, err := c.orgAdmin(actor, org)
		if err != nil {
			return err
		}
		users, err := c.tx.RemoveOrg(org)
		if err != nil {
			return err
		}
		if err := c.reqs.DeleteOrgRequests(ctx, org); err != nil {
			return err
		}
		if err := c.ids.DeleteOrg(ctx, org); err != nil {
			return err
		}
		c.apply(func(e *authz.Engine) error {
			var errs []error
			for _, u := range users {
				errs = append(errs, e.RemoveMembership(u, org))
			}
			return errors.Join(errs...)
		})
		return c.event.SetChange(map[string]any{"name": old.Name, "members": len(users)}, nil)
	})
}

// orgAdmin checks that actor may administer orgs and reads org: a refusal
// and an unknown org are denials.
func (c *change) orgAdmin(actor authz.UserID, org authz.OrgID) (identity.Org, error) {
	a, err := c.actor(actor)
	if err != nil {
		return identity.Org{}, err
	}
	if err := authz.CanAdministerOrgs(a.subject(org)); err != nil {
		return identity.Org{}, c.deny(err)
	}
	o, err := c.ids.Org(c.ctx, org)
	if err != nil {
		return identity.Org{}, c.denyMissing(err)
	}
	return o, nil
}

// Orgs lists organizations by name: every one for a PlatformAdmin, the
// ones actor belongs to for anyone else.
//
// Errors: ErrUnauthenticated for an inactive actor.
func (s *Service) Orgs(ctx context.Context, actor authz.UserID) ([]identity.Org, error) {
	var out []identity.Org
	err := s.read(ctx, audit.Event{}, func(c *change) error {
		a, err := c.actor(actor)
		if err != nil {
			return err
		}
		all, err := c.ids.Orgs(ctx)
		if err != nil {
			return err
		}
		for _, o := range all {
			if _, member := a.orgs[o.ID]; a.subject(o.ID).PlatformAdmin || member {
				out = append(out, o)
			}
		}
		return nil
	})
	return out, err
}
