package iam

import (
	"context"
	"fmt"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Page sizes of the listings.
const (
	// DefaultPageLimit is the size of a page whose Limit is 0.
	DefaultPageLimit = 50
	// MaxPageLimit is the largest Limit a page may ask for.
	MaxPageLimit = 1000
)

// Page asks for one page of a listing: at most Limit entries after the
// cursor After, which is the Next of the previous page ("" for the first
// page). Limit 0 means DefaultPageLimit. The zero Page is the first page.
//
// Listings are in user-id order (keyset pagination), so paging is exact
// while the listing changes: an entry added or removed between two pages
// never makes another entry appear twice or go missing. A cursor is
// opaque: pass back Next unchanged; it is valid for any page of any
// listing, and it stays valid when the user it was taken after is gone.
type Page struct {
	After string
	Limit int
}

// check returns p's cursor and limit, or an *authz.InvalidError for a
// cursor this package did not issue or a limit outside 0..MaxPageLimit.
func (p Page) check() (authz.UserID, int, error) {
	if p.Limit < 0 || p.Limit > MaxPageLimit {
		return "", 0, &authz.InvalidError{Field: "page limit", Value: fmt.Sprint(p.Limit), Reason: fmt.Sprintf("want 0 (for %d) to %d", DefaultPageLimit, MaxPageLimit)}
	}
	limit := p.Limit
	if limit == 0 {
		limit = DefaultPageLimit
	}
	// The cursor is the last listed user's id: validated here, it reaches
	// the database only as a bound parameter.
	if p.After != "" && !authz.UserID(p.After).Valid() {
		return "", 0, &authz.InvalidError{Field: "page cursor", Value: p.After, Reason: "not a cursor of a listing's Next"}
	}
	return authz.UserID(p.After), limit, nil
}

// cut ends a page: of the up to limit+1 entries read, the first limit are
// the page, and Next is the last of them when more follow.
func cut[T any](items []T, limit int, id func(T) authz.UserID) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, string(id(items[limit-1]))
}

// MemberPage is one page of an org's members. Next is the cursor of the
// following page, "" on the last one.
type MemberPage struct {
	Members []Member
	Next    string
}

// AccountPage is one page of All Users. Next is the cursor of the
// following page, "" on the last one.
type AccountPage struct {
	Accounts []Account
	Next     string
}

// Accessor is one user the engine allows to use a category in an org, with
// their role and categories there (none for a PlatformAdmin outside the
// org) and the reason they are allowed, as authz.Decision gives it:
// authz.ReasonPlatformAdmin, authz.ReasonManager or authz.ReasonGranted.
type Accessor struct {
	Member
	Reason authz.Reason
}

// AccessPage is one page of Access. Next is the cursor of the following
// page, "" on the last one.
type AccessPage struct {
	Accessors []Accessor
	Next      string
}

// Members lists the members of org (the holders of a role there) with
// their role and categories, a page at a time, by user id (Users by
// Organization).
//
// Each page is read from indexes: its cost depends on the page's size,
// not on the number of users or of org's members. The page is recorded
// as an audit.MembersView event (After: the listing, cursor and limit).
//
// Errors: ErrInvalid for a malformed org, cursor or limit; ErrForbidden
// for a Member; ErrNotFound for an org where actor holds no role, or an
// unknown org; ErrUnauthenticated for an inactive actor. Refusals are
// recorded as denied audit.MembersView events. Safe for concurrent use.
func (s *Service) Members(ctx context.Context, actor authz.UserID, org authz.OrgID, p Page) (MemberPage, error) {
	ms, next, err := s.orgListing(ctx, actor, org, 0, p, false,
		authz.RoleRule("", org, authz.Manager), authz.RoleRule("", org, authz.Member))
	return MemberPage{Members: ms, Next: next}, err
}

// MembersWith lists the users explicitly granted category in org, a page
// at a time, by user id, with their role and categories there. Managers
// use every category of their org without a grant: they are listed only
// if category was granted to them too (Access lists everyone allowed).
// Deactivated users keep their grants and are listed.
//
// Cost, audit events and errors are those of Members; an invalid category
// is ErrInvalid.
func (s *Service) MembersWith(ctx context.Context, actor authz.UserID, org authz.OrgID, category authz.Category, p Page) (MemberPage, error) {
	if !category.Valid() {
		return MemberPage{}, &authz.InvalidError{Field: "category", Value: category.String(), Reason: "not a category"}
	}
	ms, next, err := s.orgListing(ctx, actor, org, category, p, false, authz.GrantRule("", org, category))
	return MemberPage{Members: ms, Next: next}, err
}

// Access lists everyone the engine allows to use category in org ("who
// can access org X with category Y"), a page at a time, by user id: the
// active PlatformAdmins, the org's Managers and the users granted
// category there, leaving out deactivated accounts. Each entry says why
// it is allowed, as Check would: a PlatformAdmin who is also a Manager is
// listed once, as a PlatformAdmin.
//
// Cost, audit events and errors are those of MembersWith.
func (s *Service) Access(ctx context.Context, actor authz.UserID, org authz.OrgID, category authz.Category, p Page) (AccessPage, error) {
	if !category.Valid() {
		return AccessPage{}, &authz.InvalidError{Field: "category", Value: category.String(), Reason: "not a category"}
	}
	ms, next, err := s.orgListing(ctx, actor, org, category, p, true,
		authz.PlatformAdminRule(""), authz.RoleRule("", org, authz.Manager), authz.GrantRule("", org, category))
	if err != nil {
		return AccessPage{}, err
	}
	out := make([]Accessor, 0, len(ms))
	for _, m := range ms {
		a := Accessor{Member: m, Reason: authz.ReasonGranted}
		switch {
		case m.PlatformAdmin:
			a.Reason = authz.ReasonPlatformAdmin
		case m.Role == authz.Manager:
			a.Reason = authz.ReasonManager
		}
		out = append(out, a)
	}
	return AccessPage{Accessors: out, Next: next}, nil
}

// orgListing reads one page of the users holding any of rules (roles or
// grants; see gormstore.Tx.Holders), only those not deactivated when
// active, for Members, MembersWith (category set) and Access (active):
// the holders' ids from the index, then their accounts and their rules in
// org and platform-wide, each in one query.
func (s *Service) orgListing(ctx context.Context, actor authz.UserID, org authz.OrgID, category authz.Category, p Page, active bool, rules ...authz.Rule) ([]Member, string, error) {
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return nil, "", err
	}
	after, limit, err := p.check()
	if err != nil {
		return nil, "", err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.MembersView)
	ev.Org = org
	view := map[string]any{"listing": "members", "after": p.After, "limit": limit}
	switch {
	case active:
		view["listing"], view["category"] = "access", category
	case category != 0:
		view["listing"], view["category"] = "members_with", category
	}
	if err := ev.SetChange(nil, view); err != nil {
		return nil, "", err
	}
	var out []Member
	err = s.record(ctx, ev, func(c *change) error {
		if err := c.inOrg(actor, org, authz.CanListMembers); err != nil {
			return err
		}
		ids, err := c.tx.Holders(after, limit+1, active, rules...)
		if err != nil {
			return err
		}
		accts, err := c.tx.Accounts(ids)
		if err != nil {
			return err
		}
		out, err = c.members(ids, accts, org)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	out, next := cut(out, limit, func(m Member) authz.UserID { return m.ID })
	return out, next, nil
}

// Member returns user's account with their role and categories in org,
// as Members lists them, read by id: the user picked on Permission
// Management, however many members org has. The read is recorded as an
// audit.MembersView event with user as its target (After: listing
// "member").
//
// Errors: ErrInvalid for a malformed org or user; ErrForbidden for a
// Member; ErrNotFound for an org where actor holds no role, an unknown
// org, and a user who holds no role in org (whether or not the account
// exists: the answer tells nothing of other orgs); ErrUnauthenticated for
// an inactive actor. Refusals are recorded as denied audit.MembersView
// events. Safe for concurrent use.
func (s *Service) Member(ctx context.Context, actor, user authz.UserID, org authz.OrgID) (Member, error) {
	if _, err := authz.ParseOrgID(string(org)); err != nil {
		return Member{}, err
	}
	if _, err := authz.ParseUserID(string(user)); err != nil {
		return Member{}, err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.MembersView)
	ev.Org, ev.Target = org, user
	if err := ev.SetChange(nil, map[string]any{"listing": "member"}); err != nil {
		return Member{}, err
	}
	var out Member
	err := s.record(ctx, ev, func(c *change) error {
		if err := c.inOrg(actor, org, authz.CanListMembers); err != nil {
			return err
		}
		ids := []authz.UserID{user}
		accts, err := c.tx.Accounts(ids)
		if err != nil {
			return err
		}
		if len(accts) == 0 {
			return c.deny(authz.ErrNotFound)
		}
		ms, err := c.members(ids, accts, org)
		if err != nil {
			return err
		}
		if ms[0].Role == authz.RoleNone {
			return c.deny(authz.ErrNotFound)
		}
		out = ms[0]
		return nil
	})
	return out, err
}

// inOrg lets actor go on in org only if rule allows them there and org
// exists; either refusal is recorded.
func (c *change) inOrg(actor authz.UserID, org authz.OrgID, rule func(authz.Subject) error) error {
	a, err := c.actor(actor)
	if err != nil {
		return err
	}
	if err := rule(a.subject(org)); err != nil {
		return c.deny(err)
	}
	if _, err := c.ids.Org(c.ctx, org); err != nil {
		return c.denyMissing(err)
	}
	return nil
}

// members completes accts, the accounts of the users ids, with their
// role and categories in org (none for org "") and their PlatformAdmin
// rule, read in one query, in the order of ids. A user of ids without an
// account is an error: accounts are deleted together with their rules, so
// the database is inconsistent.
func (c *change) members(ids []authz.UserID, accts []identity.User, org authz.OrgID) ([]Member, error) {
	rules, err := c.tx.HolderRules(ids, org)
	if err != nil {
		return nil, err
	}
	byID := make(map[authz.UserID]*Member, len(ids))
	for _, u := range accts {
		byID[u.ID] = &Member{Account: accountOf(u, false)}
	}
	for _, r := range rules {
		m := byID[r.User]
		switch {
		case m == nil, r.Deactivated: // the account's status says it
		case r.Role == authz.PlatformAdmin:
			m.PlatformAdmin = true
		case r.Role != authz.RoleNone:
			m.Role = max(m.Role, r.Role) // two role rows: the stronger counts, as in the engine
		default:
			m.Categories = m.Categories.With(r.Category)
		}
	}
	out := make([]Member, 0, len(ids))
	for _, id := range ids {
		m := byID[id]
		if m == nil {
			return nil, fmt.Errorf("iam: user %s holds rules but has no account", id)
		}
		out = append(out, *m)
	}
	return out, nil
}

// Users lists every live account of the platform, a page at a time, by
// user id (All Users: PlatformAdmins only), deactivated ones included.
// Each page is read from the accounts' primary key and costs what the
// page holds, whatever the number of users; it is recorded as an
// audit.UsersView event (After: cursor and limit).
//
// Errors: ErrInvalid for a malformed cursor or limit; ErrForbidden for
// anyone but a PlatformAdmin; ErrUnauthenticated for an inactive actor.
// Refusals are recorded as denied audit.UsersView events. Safe for
// concurrent use.
func (s *Service) Users(ctx context.Context, actor authz.UserID, p Page) (AccountPage, error) {
	after, limit, err := p.check()
	if err != nil {
		return AccountPage{}, err
	}
	ev := audit.NewEvent(s.cfg.now(), actor, audit.UsersView)
	if err := ev.SetChange(nil, map[string]any{"listing": "users", "after": p.After, "limit": limit}); err != nil {
		return AccountPage{}, err
	}
	var out []Account
	err = s.record(ctx, ev, func(c *change) error {
		a, err := c.actor(actor)
		if err != nil {
			return err
		}
		if err := authz.CanListAllUsers(a.subject("")); err != nil {
			return c.deny(err)
		}
		users, err := c.tx.AccountsAfter(after, limit+1)
		if err != nil {
			return err
		}
		ids := make([]authz.UserID, 0, len(users))
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		ms, err := c.members(ids, users, "")
		for _, m := range ms {
			out = append(out, m.Account)
		}
		return err
	})
	if err != nil {
		return AccountPage{}, err
	}
	out, next := cut(out, limit, func(a Account) authz.UserID { return a.ID })
	return AccountPage{Accounts: out, Next: next}, nil
}
