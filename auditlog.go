package iam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"time"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// AuditEvents returns audit events matching f, newest first, within what
// actor may see: every org for a PlatformAdmin, their own org for a
// Manager, and for a Member the orgs where they hold the audit category.
// f must come without a scope (Orgs, AllOrgs): the Service sets it. Page
// with f.Before (the ID of the last event of the previous page).
//
// Reading the log is itself audited: once the page is read, an
// audit.AuditView event (outcome success, After the filter used, see
// auditQuery) is appended in a small transaction of its own, and only
// once it has committed are the events returned; if it cannot be
// recorded, AuditEvents fails and returns none. The page never holds its
// own view event. A refused read records a denied audit.AuditView event
// instead, as every refusal does.
//
// Errors: for a Member without the audit category (in f.Org, or in each
// of their orgs without f.Org), an *authz.InsufficientPermissionsError
// naming it, the product's "Insufficient permissions"; ErrForbidden when
// actor holds no role anywhere; ErrNotFound for an f.Org where actor
// holds no role; ErrInvalid for a malformed filter; ErrUnauthenticated for an
// inactive actor; a storage failure, also while recording the view.
func (s *Service) AuditEvents(ctx context.Context, actor authz.UserID, f audit.Filter) ([]audit.Event, error) {
	var out []audit.Event
	ev := audit.NewEvent(s.cfg.now(), actor, audit.AuditView)
	ev.Org = f.Org
	var scoped audit.Filter
	err := s.read(ctx, ev, func(c *change) error {
		var err error
		if scoped, err = c.auditScope(actor, f); err != nil {
			return err
		}
		out, err = c.tx.Audit().Events(ctx, scoped)
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.recordAuditRead(ctx, ev, f, scoped, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// ExportAudit writes to w, in format (audit.CSV or audit.JSONLines, see
// audit.Export), the audit events matching f, newest first, scoped exactly
// as AuditEvents scopes them: every org for a PlatformAdmin, their own org
// for a Manager, for a Member the orgs where they hold the audit category.
// f must come without a scope. f.Limit caps the number of events exported
// (0: all of them); f.Before starts below that event ID.
//
// The export streams: the store is read a page (audit.MaxLimit events) at
// a time, following the f.Before cursor, and each page goes to the
// exporter before the next is read, so memory does not grow with the log.
// The scope is decided once, when the export starts.
//
// Exporting is itself audited. Once actor is found allowed, and before
// anything is written to w, an audit.AuditExport event (outcome success;
// After the filter used and the format, e.g. {"org":"org_…",
// "action":"member.role.change","format":"csv"}) is appended in a small
// transaction of its own; if it cannot be recorded, nothing is exported.
// The export then holds the events recorded before that event (its own
// ID is the cursor where it starts), so what it holds is fixed when it
// starts, whatever is appended meanwhile. A refused export records a
// denied audit.AuditExport event and writes nothing.
//
// Errors: ErrInvalid for an invalid format or a malformed filter;
// the refusals of AuditEvents (*authz.InsufficientPermissionsError,
// ErrForbidden, ErrNotFound, ErrUnauthenticated); all of
// these before anything is written. A storage failure while reading the
// log or an error writing to w ends the export midway and is wrapped with
// "iam: export audit": treat what was written as incomplete. w is not
// closed. Safe for concurrent use.
func (s *Service) ExportAudit(ctx context.Context, actor authz.UserID, f audit.Filter, format audit.Format, w io.Writer) error {
	if !format.Valid() {
		return &authz.InvalidError{Field: "audit export format", Value: format.String(), Reason: "want csv or jsonl"}
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.AuditExport)
	ev.Org = f.Org
	var scoped audit.Filter
	err := s.read(ctx, ev, func(c *change) error {
		var err error
		scoped, err = c.auditScope(actor, f)
		return err
	})
	if err != nil {
		return err
	}
	rec, err := s.recordAuditRead(ctx, ev, f, scoped, format)
	if err != nil {
		return err
	}
	if err := audit.Export(w, format, s.auditPages(ctx, scoped, f.Limit, rec.ID)); err != nil {
		return fmt.Errorf("iam: export audit: %w", err)
	}
	return nil
}

// auditPages yields the events scoped selects below the event ID upTo,
// newest first, reading the store a page at a time; at most limit events
// (0: all).
func (s *Service) auditPages(ctx context.Context, scoped audit.Filter, limit int, upTo int64) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		page := scoped
		if page.Before == 0 || upTo < page.Before {
			page.Before = upTo
		}
		remaining := limit
		for {
			page.Limit = audit.MaxLimit
			if limit > 0 {
				page.Limit = min(remaining, audit.MaxLimit)
			}
			if s.closed.Load() {
				yield(audit.Event{}, errClosed)
				return
			}
			evs, err := s.store.Audit().Events(ctx, page)
			if err != nil {
				yield(audit.Event{}, err)
				return
			}
			for _, e := range evs {
				if !yield(e, nil) {
					return
				}
			}
			if limit > 0 {
				if remaining -= len(evs); remaining <= 0 {
					return
				}
			}
			if len(evs) < page.Limit {
				return
			}
			page.Before = evs[len(evs)-1].ID
		}
	}
}

// auditScope returns f scoped to what actor may read (audit.Scope) and
// checked (audit.Filter.Normalize); a refusal is a denial.
func (c *change) auditScope(actor authz.UserID, f audit.Filter) (audit.Filter, error) {
	a, err := c.actor(actor)
	if err != nil {
		return audit.Filter{}, err
	}
	scoped, err := audit.Scope(f, actor, a.subject("").PlatformAdmin, maps.All(a.orgs))
	if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
		return audit.Filter{}, c.deny(err)
	}
	if err != nil {
		return audit.Filter{}, err
	}
	if _, err := scoped.Normalize(); err != nil {
		return audit.Filter{}, err
	}
	return scoped, nil
}

// auditQuery is the After of an audit.view or audit.export event: the
// filter the reader asked for (f as given, not its scope), and the
// export's format. It names no secret.
type auditQuery struct {
	Org     authz.OrgID  `json:"org,omitempty"`
	Actor   authz.UserID `json:"actor,omitempty"`
	Target  authz.UserID `json:"target,omitempty"`
	Action  audit.Action `json:"action,omitempty"`
	Outcome string       `json:"outcome,omitempty"`
	Since   string       `json:"since,omitempty"`
	Until   string       `json:"until,omitempty"`
	Limit   int          `json:"limit,omitempty"`
	Before  int64        `json:"before,omitempty"`
	Format  string       `json:"format,omitempty"`
}

// recordAuditRead appends ev, a successful read of the log with filter f
// (scoped to scoped) in format (0 for a view), in a small transaction of
// its own, and returns it as stored. Its Org is f.Org, or the one org of
// the scope when there is exactly one (so a Manager sees their own reads);
// a read across several orgs or all of them has none.
func (s *Service) recordAuditRead(ctx context.Context, ev audit.Event, f, scoped audit.Filter, format audit.Format) (audit.Event, error) {
	if ev.Org == "" && len(scoped.Orgs) == 1 {
		ev.Org = scoped.Orgs[0]
	}
	ev.ClientAddr = clientAddr(ctx)
	q := auditQuery{Org: f.Org, Actor: f.Actor, Target: f.Target, Action: f.Action, Limit: f.Limit, Before: f.Before}
	if f.Outcome != audit.AnyOutcome {
		q.Outcome = f.Outcome.String()
	}
	if !f.Since.IsZero() {
		q.Since = f.Since.UTC().Format(time.RFC3339Nano)
	}
	if !f.Until.IsZero() {
		q.Until = f.Until.UTC().Format(time.RFC3339Nano)
	}
	if format != 0 {
		q.Format = format.String()
	}
	if err := ev.SetChange(nil, q); err != nil {
		return audit.Event{}, err
	}
	var rec audit.Event
	err := s.store.Transaction(ctx, func(tx *gormstore.Tx) error {
		var err error
		rec, err = tx.Audit().Append(ctx, ev)
		return err
	})
	if err != nil {
		return audit.Event{}, fmt.Errorf("iam: recording the audit log read: %w", err)
	}
	return rec, nil
}
