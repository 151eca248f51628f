package iam

import (
	"context"
	"errors"
	"maps"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// AuditEvents returns audit events matching f, newest first, within what
// actor may see: every org for a PlatformAdmin, their own org for a
// Manager, and for a Member the orgs where they hold the audit category.
// f must come without a scope (Orgs, AllOrgs): the Service sets it. Page
// with f.Before (the ID of the last event of the previous page).
//
// Errors: ErrForbidden when actor may see no org's log (or f.Org's, for a
// Member without audit); ErrNotFound for an f.Org where actor holds no
// role; ErrInvalid for a malformed filter; ErrUnauthenticated for an
// inactive actor.
func (s *Service) AuditEvents(ctx context.Context, actor authz.UserID, f audit.Filter) ([]audit.Event, error) {
	var out []audit.Event
	ev := audit.NewEvent(s.cfg.now(), actor, audit.AuditView)
	ev.Org = f.Org
	err := s.read(ctx, ev, func(c *change) error {
		a, err := c.actor(actor)
		if err != nil {
			return err
		}
		scoped, err := audit.Scope(f, actor, a.subject("").PlatformAdmin, maps.All(a.orgs))
		if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
			return c.deny(err)
		}
		if err != nil {
			return err
		}
		out, err = c.tx.Audit().Events(ctx, scoped)
		return err
	})
	return out, err
}
