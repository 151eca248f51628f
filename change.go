package iam

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// change is one management operation in progress: its transaction, the
// stores bound to it, the audit event it records, and the engine writes to
// apply once it has committed.
type change struct {
	ctx     context.Context
	tx      *gormstore.Tx
	ids     identity.Store
	reqs    approval.Store
	version int64
	event   audit.Event
	after   []func(*authz.Engine) error
}

// denial marks an error as a refused attempt: the operation rolls back and
// its event is recorded with outcome Denied, in a transaction of its own.
type denial struct{ err error }

func (d *denial) Error() string { return d.err.Error() }
func (d *denial) Unwrap() error { return d.err }

// deny returns err marked as a refusal of c's operation.
func (c *change) deny(err error) error { return &denial{err} }

// denyMissing marks a lookup's ErrNotFound as a refusal (an object of
// another org answers like a missing one, and both are recorded as denied
// attempts); any other error, such as a database failure, stays a failure.
// The refusal is the bare ErrNotFound, what the rules answer for an object
// of another org: the store's message ("no such user") would tell the two
// apart.
func (c *change) denyMissing(err error) error {
	if errors.Is(err, authz.ErrNotFound) {
		return c.deny(authz.ErrNotFound)
	}
	return err
}

// apply queues an engine write for after the commit.
func (c *change) apply(f func(*authz.Engine) error) { c.after = append(c.after, f) }

// mutate runs one management operation that may change the policy: fn
// inside one transaction that first bumps the policy version, then
// c.event (if fn left its Action set) appended in the same transaction,
// then, after the commit, the engine writes fn queued. A refusal (see
// change.deny) rolls everything back and records only the denied event. ev
// is the event as known before fn runs; fn may complete it.
func (s *Service) mutate(ctx context.Context, ev audit.Event, fn func(c *change) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.run(ctx, ev, true, fn)
	if err != nil {
		return err
	}
	s.applyCommitted(ctx, c.after)
	s.committed(ctx, c.version)
	if r := receiptFrom(ctx); r != nil {
		r.record(c.version)
	}
	return nil
}

// record is mutate for operations that change accounts but not the
// policy (sessions, profile, password resets): no version bump, nothing
// applied to the engine, no wait for management operations.
func (s *Service) record(ctx context.Context, ev audit.Event, fn func(c *change) error) error {
	_, err := s.run(ctx, ev, false, fn)
	return err
}

func (s *Service) run(ctx context.Context, ev audit.Event, policy bool, fn func(c *change) error) (*change, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	ev.ClientAddr = clientAddr(ctx)
	var c *change
	err := s.store.Transaction(ctx, func(tx *gormstore.Tx) error {
		c = &change{ctx: ctx, tx: tx, ids: tx.Identity(), reqs: tx.Approvals(), event: ev}
		if policy {
			v, err := tx.BumpVersion()
			if err != nil {
				return err
			}
			c.version = v
		}
		if err := fn(c); err != nil {
			return err
		}
		if policy {
			if err := tx.LogChanges(c.version); err != nil {
				return err
			}
		}
		if c.event.Action == "" {
			return nil
		}
		appended, err := tx.Audit().Append(ctx, c.event)
		if err != nil {
			return err
		}
		c.event = appended // with its ID, for callers that report it
		return nil
	})
	if err != nil {
		var d *denial
		if errors.As(err, &d) {
			s.recordDenied(ctx, c.event, d.err)
			return nil, d.err
		}
		return nil, err
	}
	if !policy && len(c.after) > 0 {
		panic("iam: an account-only operation queued engine writes") // a programming error of this package
	}
	return c, nil
}

// recordDenied appends ev as a denied attempt, in its own transaction:
// what the refused operation had set of ev is kept (the target and org it
// concerned), its change description is not.
func (s *Service) recordDenied(ctx context.Context, ev audit.Event, err error) {
	ev.Before, ev.After = nil, nil
	ev.Deny(err)
	if e := s.store.Transaction(ctx, func(tx *gormstore.Tx) error {
		_, e := tx.Audit().Append(ctx, ev)
		return e
	}); e != nil {
		s.cfg.log.Error("iam: recording a denied attempt failed", "action", ev.Action, "err", e)
	}
}

// applyCommitted applies committed engine writes. They were validated
// before the commit, so a failure means memory and database may disagree:
// the engine is then reloaded from the database, which is the truth.
func (s *Service) applyCommitted(ctx context.Context, writes []func(*authz.Engine) error) {
	for _, w := range writes {
		if err := w(s.engine); err != nil {
			s.cfg.log.Error("iam: applying a committed change to the engine failed; reloading", "err", err)
			if err := s.store.Load(context.WithoutCancel(ctx), s.engine); err != nil {
				s.cfg.log.Error("iam: reloading the engine failed", "err", err)
			}
			return
		}
	}
}

// person is what a transaction knows of one user: the account and the
// policy rules they hold.
type person struct {
	user  identity.User
	admin bool // holds the PlatformAdmin rule
	orgs  map[authz.OrgID]authz.Membership
}

// person reads user id's account and rules. A missing (or deleted) user is
// ErrNotFound.
func (c *change) person(id authz.UserID) (person, error) {
	u, err := c.ids.User(c.ctx, id)
	if err != nil {
		return person{}, err
	}
	rules, err := c.tx.UserRules(id)
	if err != nil {
		return person{}, err
	}
	p := person{user: u, orgs: make(map[authz.OrgID]authz.Membership)}
	for _, r := range rules {
		switch {
		case r.Deactivated: // the account's status says it; the rule only mirrors it for the policy
		case r.Role == authz.PlatformAdmin:
			p.admin = true
		case r.Role != authz.RoleNone:
			m := p.orgs[r.Org]
			m.Role = max(m.Role, r.Role) // two role rows: the stronger counts, as in the engine
			p.orgs[r.Org] = m
		default:
			m := p.orgs[r.Org]
			m.Categories = m.Categories.With(r.Category)
			p.orgs[r.Org] = m
		}
	}
	return p, nil
}

// actor reads the acting user. Someone who is not an active user cannot
// act: ErrUnauthenticated (not a denial: there is nobody to deny).
func (c *change) actor(id authz.UserID) (person, error) {
	p, err := c.person(id)
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrInvalid) || err == nil && p.user.Status != identity.Active {
		return person{}, fmt.Errorf("%w: the acting user is not an active account", ErrUnauthenticated)
	}
	return p, err
}

// parties reads actor and target in c's transaction and checks rule on
// them in org o ("" for an account-wide operation). An unknown target and
// a refusal are denials; it returns the target.
func (c *change) parties(actor, target authz.UserID, o authz.OrgID, rule func(authz.Subject, authz.Target) error) (person, error) {
	a, err := c.actor(actor)
	if err != nil {
		return person{}, err
	}
	// Without authority in the org, the refusal must not depend on the
	// target, or it would tell whether that id exists elsewhere: it comes
	// before the target is looked up. One's own id is no secret, so the
	// rules' checks for oneself still come first.
	if o != "" && target != actor {
		if err := authz.CanListMembers(a.subject(o)); err != nil {
			return person{}, c.deny(err)
		}
	}
	p, err := c.person(target)
	if err != nil {
		return person{}, c.denyMissing(err)
	}
	t, err := c.target(p, o)
	if err != nil {
		return person{}, err
	}
	if err := rule(a.subject(o), t); err != nil {
		return person{}, c.deny(err)
	}
	return p, nil
}

// subject is p as the management rules see them in org o.
func (p person) subject(o authz.OrgID) authz.Subject {
	m := p.orgs[o]
	return authz.Subject{
		User:          p.user.ID,
		PlatformAdmin: p.admin && p.user.Status == identity.Active,
		Role:          m.Role,
		Categories:    m.Categories,
	}
}

// target is p as the target of an operation in org o ("" for
// account-wide operations), with the invariant facts read in c's
// transaction.
func (c *change) target(p person, o authz.OrgID) (authz.Target, error) {
	t := authz.Target{Subject: p.subject(o)}
	if t.PlatformAdmin {
		n, err := c.activeAdmins()
		if err != nil {
			return t, err
		}
		t.LastPlatformAdmin = n <= 1
	}
	orgs := []authz.OrgID{o}
	if o == "" {
		orgs = nil
		for org, m := range p.orgs {
			if m.Role == authz.Manager {
				orgs = append(orgs, org)
			}
		}
	}
	for _, org := range orgs {
		if p.orgs[org].Role != authz.Manager || p.user.Status != identity.Active {
			continue
		}
		n, err := c.activeManagers(org)
		if err != nil {
			return t, err
		}
		if n <= 1 {
			t.LastManager = true
		}
	}
	return t, nil
}

// activeAdmins counts the active PlatformAdmins, in one query, up to 2:
// the invariants only ask whether there is more than one.
func (c *change) activeAdmins() (int, error) {
	return c.tx.CountActive(authz.PlatformAdminRule(""), 2)
}

// activeManagers counts the active Managers of org o, in one query, up to
// 2, as activeAdmins.
func (c *change) activeManagers(o authz.OrgID) (int, error) {
	return c.tx.CountActive(authz.RoleRule("", o, authz.Manager), 2)
}

// read runs fn in a transaction of its own for a query: no version bump,
// nothing applied, and no event unless fn's refusal is marked with
// change.deny: then ev (a view's event, or the zero Event for reads that
// record nothing) is recorded as the denied attempt.
func (s *Service) read(ctx context.Context, ev audit.Event, fn func(c *change) error) error {
	if s.closed.Load() {
		return errClosed
	}
	ev.ClientAddr = clientAddr(ctx)
	var c *change
	err := s.store.Transaction(ctx, func(tx *gormstore.Tx) error {
		c = &change{ctx: ctx, tx: tx, ids: tx.Identity(), reqs: tx.Approvals(), event: ev}
		return fn(c)
	})
	var d *denial
	if errors.As(err, &d) {
		if c.event.Action != "" {
			s.recordDenied(ctx, c.event, d.err)
		}
		return d.err
	}
	return err
}
