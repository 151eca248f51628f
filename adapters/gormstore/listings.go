package gormstore

import (
	"fmt"
	"slices"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// The listings of the Service (an org's members, the holders of a grant,
// who can use a category in an org, every account) are read here a page
// at a time, from indexes, so that the cost of a page does not grow with
// the number of users: every query is a range of an index read in order
// and cut off by LIMIT, or a lookup of a page's users by id.
//
// Pages are keyed by user id (keyset pagination: v0 > cursor ORDER BY v0).
// Ids are a fixed prefix and 24 characters of [a-z2-7] (see authz), which
// every collation orders as bytes, so the database's order and Go's agree.

// MaxListLimit is the largest number of users one listing query of a Tx
// returns, so that the lists of ids a page binds stay far below the
// parameter limits of every dialect (PostgreSQL 65,535, SQLite 32,766).
const MaxListLimit = 10_000

// Holders returns, in user-id order, the first limit distinct users after
// the id after ("" for the start) who hold at least one of rules: each
// rule names a role or grant in its domain (a PlatformAdminRule, a
// RoleRule or a GrantRule); its User is ignored and may be "". With
// active, users holding the deactivation rule are left out, as the
// Engine denies them everything.
//
// Each rule is one query: a range of the index (ptype, v2, v1, v0) read
// in order from (rule, after) and cut off by LIMIT; the lists are merged
// here. With active, one more query looks up which of the merged users are
// deactivated (the adapter's unique index, by user), and when some are,
// the next users are read the same way until the page is full. So a page
// costs O(len(rules) * limit), plus the deactivated users it skips,
// whatever the number of users. (A NOT EXISTS in the range query would be
// one query, but PostgreSQL plans it as an anti join that reads every
// deactivated user.)
//
// Errors: an invalid rule, an after that is neither "" nor a user id, or
// a limit outside 1..MaxListLimit is an *authz.InvalidError
// (authz.ErrInvalid); a database failure spoils the transaction; wrapped
// with "gormstore: holders".
func (t *Tx) Holders(after authz.UserID, limit int, active bool, rules ...authz.Rule) ([]authz.UserID, error) {
	const op = "holders"
	if err := t.listArgs(op, after, limit); err != nil {
		return nil, err
	}
	rows := make([]authz.Row, 0, len(rules))
	for _, r := range rules {
		if r.Deactivated {
			return nil, fmt.Errorf("gormstore: %s: %w", op, &authz.InvalidError{Field: "rule", Value: r.String(), Reason: "want a role or a grant"})
		}
		if r.User == "" {
			r.User = probeUser
		}
		row, err := r.Row()
		if err != nil {
			return nil, fmt.Errorf("gormstore: %s: %w", op, err)
		}
		rows = append(rows, row)
	}
	var out []authz.UserID
	for {
		var next []authz.UserID
		for _, row := range rows {
			var ids []authz.UserID
			err := t.db.Model(&gormadapter.CasbinRule{}).
				Where("ptype = ? AND v2 = ? AND v1 = ? AND v0 > ?", row.PType, row.V2, row.V1, string(after)).
				Order("v0").Limit(limit).Pluck("v0", &ids).Error
			if err != nil {
				return nil, t.fail(op, fmt.Errorf("read: %w", err))
			}
			next = append(next, ids...)
		}
		slices.Sort(next)
		next = slices.Compact(next)
		next = next[:min(len(next), limit)]
		if len(next) == 0 {
			return out, nil
		}
		kept := next
		if active {
			var err error
			if kept, err = t.withoutDeactivated(op, next); err != nil {
				return nil, err
			}
		}
		out = append(out, kept...)
		if len(out) >= limit || len(next) < limit {
			return out[:min(len(out), limit)], nil
		}
		after = next[len(next)-1]
	}
}

// withoutDeactivated returns users (sorted) without those holding the
// deactivation rule.
func (t *Tx) withoutDeactivated(op string, users []authz.UserID) ([]authz.UserID, error) {
	off := probeRow(authz.DeactivationRule(""))
	var ids []authz.UserID
	err := t.db.Model(&gormadapter.CasbinRule{}).
		Where("ptype = ? AND v0 IN ? AND v1 = ? AND v2 = ?", off.PType, users, off.V1, off.V2).
		Pluck("v0", &ids).Error
	if err != nil {
		return nil, t.fail(op, fmt.Errorf("read: %w", err))
	}
	if len(ids) == 0 {
		return users, nil
	}
	return slices.DeleteFunc(slices.Clone(users), func(u authz.UserID) bool { return slices.Contains(ids, u) }), nil
}

// HolderRules returns the rules that users hold in org o together with
// their platform-wide rules (PlatformAdmin, deactivation), sorted as
// UserRules sorts them, user by user; o "" returns the platform-wide
// rules only. It is one query served by the adapter's unique index
// (ptype, v0, ...), so it costs what those users hold, whatever the
// number of users.
//
// Errors: an invalid o or user id, or more than MaxListLimit users, is an
// *authz.InvalidError (authz.ErrInvalid); a stored row authz.ParseRow
// refuses, or a database failure, spoils the transaction; wrapped with
// "gormstore: holder rules".
func (t *Tx) HolderRules(users []authz.UserID, o authz.OrgID) ([]authz.Rule, error) {
	const op = "holder rules"
	ids, err := t.idList(op, users)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	domains := []string{probeRow(authz.PlatformAdminRule("")).V2}
	if o != "" {
		if _, err := authz.ParseOrgID(string(o)); err != nil {
			return nil, fmt.Errorf("gormstore: %s: %w", op, err)
		}
		domains = append(domains, string(o))
	}
	rules, err := t.readRules(op, t.db.Where("ptype = ? AND v0 IN ? AND v2 IN ?", "g", ids, domains))
	if err != nil {
		return nil, err
	}
	sortRules(rules)
	return rules, nil
}

// Accounts returns the live (not deleted) accounts among users, by id; an
// id without a live account is left out. One query, by primary key.
//
// Errors: an invalid user id or more than MaxListLimit users is an
// *authz.InvalidError (authz.ErrInvalid); a stored row this module never
// writes, or a database failure, spoils the transaction; wrapped with
// "gormstore: accounts".
func (t *Tx) Accounts(users []authz.UserID) ([]identity.User, error) {
	const op = "accounts"
	ids, err := t.idList(op, users)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return t.readUsers(op, t.db.Where("id IN ? AND deleted_at IS NULL", ids))
}

// AccountsAfter returns the first limit live accounts whose id follows
// after ("" for the start), by id: a range of the primary key read in
// order, so a page costs O(limit) plus the deleted rows it skips.
//
// Errors: an after that is neither "" nor a user id, or a limit outside
// 1..MaxListLimit, is an *authz.InvalidError (authz.ErrInvalid); a stored
// row this module never writes, or a database failure, spoils the
// transaction; wrapped with "gormstore: accounts after".
func (t *Tx) AccountsAfter(after authz.UserID, limit int) ([]identity.User, error) {
	const op = "accounts after"
	if err := t.listArgs(op, after, limit); err != nil {
		return nil, err
	}
	return t.readUsers(op, t.db.Where("id > ? AND deleted_at IS NULL", string(after)).Limit(limit))
}

// CountActive counts the live, active accounts holding rule (a
// PlatformAdminRule or a RoleRule; its User is ignored and may be ""), up
// to upTo: whether an org keeps another active Manager, or the platform
// another active PlatformAdmin, is CountActive(rule, 2) > 1. The
// account's status decides, as it does for the management rules. One
// query: the rule's range of the index (ptype, v2, v1, v0) joined to the
// accounts by primary key, stopping at upTo, so it costs O(upTo) plus
// the inactive holders it skips, however many hold the rule.
//
// Errors: an invalid rule or an upTo below 1 is an *authz.InvalidError
// (authz.ErrInvalid); a database failure spoils the transaction; wrapped
// with "gormstore: count active".
func (t *Tx) CountActive(rule authz.Rule, upTo int) (int, error) {
	const op = "count active"
	if err := t.usable(op); err != nil {
		return 0, err
	}
	if rule.User == "" {
		rule.User = probeUser
	}
	row, err := rule.Row()
	if err == nil && upTo < 1 {
		err = &authz.InvalidError{Field: "count limit", Value: fmt.Sprint(upTo), Reason: "want 1 or more"}
	}
	if err != nil {
		return 0, fmt.Errorf("gormstore: %s: %w", op, err)
	}
	holders := t.db.Table(tableName).Select("1").
		Joins("JOIN iam_users u ON u.id = casbin_rule.v0").
		Where("casbin_rule.ptype = ? AND casbin_rule.v2 = ? AND casbin_rule.v1 = ?", row.PType, row.V2, row.V1).
		Where("u.deleted_at IS NULL AND u.status = ?", identity.Active.String()).
		Limit(upTo)
	var n int64
	if err := t.db.Table("(?) AS holders", holders).Count(&n).Error; err != nil {
		return 0, t.fail(op, fmt.Errorf("read: %w", err))
	}
	return int(n), nil
}

// probeUser stands for "any user" where a rule is only used for its role
// or grant and domain.
var probeUser = authz.NewUserID()

// probeRow is the row of r (a rule of a constant kind) for probeUser.
func probeRow(r authz.Rule) authz.Row {
	r.User = probeUser
	row, err := r.Row()
	if err != nil {
		panic("gormstore: " + err.Error()) // r is a constant of this package
	}
	return row
}

// listArgs checks a listing's cursor and limit.
func (t *Tx) listArgs(op string, after authz.UserID, limit int) error {
	if err := t.usable(op); err != nil {
		return err
	}
	if after != "" {
		if _, err := authz.ParseUserID(string(after)); err != nil {
			return fmt.Errorf("gormstore: %s: %w", op, err)
		}
	}
	if limit < 1 || limit > MaxListLimit {
		return fmt.Errorf("gormstore: %s: %w", op, &authz.InvalidError{Field: "limit", Value: fmt.Sprint(limit), Reason: fmt.Sprintf("want 1 to %d", MaxListLimit)})
	}
	return nil
}

// idList checks users for a lookup by id and returns them as strings.
func (t *Tx) idList(op string, users []authz.UserID) ([]string, error) {
	if err := t.usable(op); err != nil {
		return nil, err
	}
	if len(users) > MaxListLimit {
		return nil, fmt.Errorf("gormstore: %s: %w", op, &authz.InvalidError{Field: "users", Value: fmt.Sprint(len(users)), Reason: fmt.Sprintf("at most %d at once", MaxListLimit)})
	}
	ids := make([]string, 0, len(users))
	for _, u := range users {
		if _, err := authz.ParseUserID(string(u)); err != nil {
			return nil, fmt.Errorf("gormstore: %s: %w", op, err)
		}
		ids = append(ids, string(u))
	}
	return ids, nil
}

// readUsers reads the accounts q selects, by id.
func (t *Tx) readUsers(op string, q *gorm.DB) ([]identity.User, error) {
	var rows []userRow
	if err := q.Order("id").Find(&rows).Error; err != nil {
		return nil, t.fail(op, fmt.Errorf("read: %w", err))
	}
	out := make([]identity.User, 0, len(rows))
	for _, row := range rows {
		u, err := row.user()
		if err != nil {
			return nil, t.fail(op, err)
		}
		out = append(out, u)
	}
	return out, nil
}
