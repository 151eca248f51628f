package gormstore

import (
	"cmp"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Bulk is what one Tx.Import writes: new orgs, new accounts, and the
// policy rules of those accounts (their roles, grants and PlatformAdmin
// rules). A rule may name an org of the Bulk or one already stored.
type Bulk struct {
	Orgs  []identity.Org
	Users []identity.User
	Rules []authz.Rule
}

// BulkError says which record of a Bulk made Tx.Import refuse it. Err
// matches the kind of the fault: authz.ErrInvalid (an *authz.InvalidError
// saying which field), authz.ErrConflict (an id or email repeated in the
// Bulk or already stored) or authz.ErrNotFound (a rule's org is neither in
// the Bulk nor stored).
type BulkError struct {
	User authz.UserID // the account at fault or whose rule it is; empty for an org's fault
	Org  authz.OrgID  // the org at fault or that the rule names; empty for an account's own fault
	Err  error
}

func (e *BulkError) Error() string {
	var who []string
	if e.User != "" {
		who = append(who, "user "+string(e.User))
	}
	if e.Org != "" {
		who = append(who, "org "+string(e.Org))
	}
	return strings.Join(who, ", ") + ": " + e.Err.Error()
}

// Unwrap returns the fault's error, which matches its kind.
func (e *BulkError) Unwrap() error { return e.Err }

// bulkChunk is the number of values one lookup binds on dialects other
// than PostgreSQL (where an array is one parameter).
const bulkChunk = 1000

// Import inserts b's orgs, accounts and rules, for a bulk migration from
// another system: a few statements per table rather than a few per
// record. It checks everything before it writes: every record valid
// (identity.Org.Validate, identity.User.Validate, authz.Rule.Validate),
// no org id, user id, email or rule repeated in b, every rule of an
// account of b, every org a rule names in b or stored, and no org id, user
// id (deleted accounts' included: ids are never issued twice) or live
// account's email of b stored already. A refusal is a *BulkError, wraps
// "gormstore: import", writes nothing and leaves the Tx usable.
//
// On PostgreSQL each table gets one INSERT … SELECT FROM unnest(…) whose
// parameters are arrays, on SQLite one INSERT … SELECT FROM json_each(?)
// whose parameter is a JSON array: constant statements with bound
// parameters, without GORM's per-row reflection. Other dialects are
// refused (an error that is none of the kinds). The inserts have no ON
// CONFLICT clause, which costs PostgreSQL a speculative insertion per
// row: a row stored by a concurrent transaction since the checks fails
// the statement with a unique violation (matching authz.ErrConflict),
// which spoils the Tx (it rolls back), as does a statement that inserted
// fewer rows than given.
//
// Concurrency: on PostgreSQL it holds a shared advisory lock on every
// stored org a rule names until the transaction ends, as SetMembership
// does, so that RemoveOrg of that org waits for the import's commit and
// then removes its rules too. The accounts are new, so no other
// transaction writes their policy through the Service meanwhile (it reads
// the account first and finds none until the commit); it takes no user
// locks.
func (t *Tx) Import(b Bulk) error {
	const op = "import"
	if err := t.usable(op); err != nil {
		return err
	}
	if !t.pg && !t.sqlite() {
		return wrap(op, fmt.Errorf("bulk import supports PostgreSQL and SQLite, not %s", t.db.Dialector.Name()))
	}
	rows, stored, err := planBulk(b)
	if err != nil {
		return wrap(op, err)
	}
	if err := t.checkBulk(op, b, stored); err != nil {
		return err
	}
	for _, u := range b.Users {
		t.touch(u.ID)
	}
	if err := t.insertOrgs(op, b.Orgs); err != nil {
		return err
	}
	// In the order of the primary key (and the rules in the order of the
	// rule table's unique index), so that consecutive rows go to the same
	// index pages: random ids would otherwise touch a page per row.
	users := slices.SortedFunc(slices.Values(b.Users), func(a, b identity.User) int { return strings.Compare(string(a.ID), string(b.ID)) })
	if err := t.insertUsers(op, users); err != nil {
		return err
	}
	return t.insertRules(op, rows)
}

// planBulk checks b in memory and returns its rules as rows, and for each
// stored org (one that b's rules name but b does not hold) the first
// account with a rule in it.
func planBulk(b Bulk) ([]authz.Row, map[authz.OrgID]authz.UserID, error) {
	orgs := make(map[authz.OrgID]bool, len(b.Orgs))
	for _, o := range b.Orgs {
		if err := o.Validate(); err != nil {
			return nil, nil, &BulkError{Org: o.ID, Err: err}
		}
		if orgs[o.ID] {
			return nil, nil, &BulkError{Org: o.ID, Err: conflict("org id repeated in the batch")}
		}
		orgs[o.ID] = true
	}
	users := make(map[authz.UserID]bool, len(b.Users))
	emails := make(map[string]bool, len(b.Users))
	for _, u := range b.Users {
		if err := u.Validate(); err != nil {
			return nil, nil, &BulkError{User: u.ID, Err: err}
		}
		if users[u.ID] {
			return nil, nil, &BulkError{User: u.ID, Err: conflict("user id repeated in the batch")}
		}
		if emails[u.Email] {
			return nil, nil, &BulkError{User: u.ID, Err: conflict("email repeated in the batch")}
		}
		users[u.ID], emails[u.Email] = true, true
	}
	rows := make([]authz.Row, 0, len(b.Rules))
	seen := make(map[authz.Row]bool, len(b.Rules))
	stored := make(map[authz.OrgID]authz.UserID)
	for _, r := range b.Rules {
		row, err := r.Row()
		if err != nil {
			return nil, nil, &BulkError{User: r.User, Org: r.Org, Err: err}
		}
		if !users[r.User] {
			return nil, nil, &BulkError{User: r.User, Org: r.Org, Err: &authz.InvalidError{Field: "rule", Value: r.String(), Reason: "not of an account of the batch"}}
		}
		if seen[row] {
			return nil, nil, &BulkError{User: r.User, Org: r.Org, Err: &authz.InvalidError{Field: "rule", Value: r.String(), Reason: "repeated in the batch"}}
		}
		seen[row] = true
		rows = append(rows, row)
		if _, ok := stored[r.Org]; r.Org != "" && !orgs[r.Org] && !ok {
			stored[r.Org] = r.User
		}
	}
	slices.SortFunc(rows, func(a, b authz.Row) int {
		return cmp.Or(strings.Compare(a.V0, b.V0), strings.Compare(a.V1, b.V1), strings.Compare(a.V2, b.V2))
	})
	return rows, stored, nil
}

// checkBulk checks b against the stored rows: the orgs b's rules name
// outside b exist (on PostgreSQL, locked shared first), and no id or live
// email of b is taken.
func (t *Tx) checkBulk(op string, b Bulk, stored map[authz.OrgID]authz.UserID) error {
	keys := make([]string, 0, len(stored))
	ids := make([]string, 0, len(stored))
	for o := range stored {
		keys = append(keys, "org:"+string(o))
		ids = append(ids, string(o))
	}
	if t.pg && len(keys) > 0 {
		// Sorted, so that two imports lock shared orgs in the same order.
		slices.Sort(keys)
		q := "SELECT pg_advisory_xact_lock_shared(" + lockClassPolicy + ", hashtext(k)) FROM unnest(?::text[]) AS k"
		if err := t.db.Exec(q, pgTextArray(keys)).Error; err != nil {
			return t.fail(op, fmt.Errorf("lock orgs: %w", err))
		}
	}
	found, err := t.present(&orgRow{}, "id", "", ids)
	if err != nil {
		return t.fail(op, err)
	}
	for _, id := range ids {
		if !found[id] {
			o := authz.OrgID(id)
			return wrap(op, &BulkError{User: stored[o], Org: o, Err: notFound("no such org")})
		}
	}
	ids = ids[:0]
	for _, o := range b.Orgs {
		ids = append(ids, string(o.ID))
	}
	if found, err = t.present(&orgRow{}, "id", "", ids); err != nil {
		return t.fail(op, err)
	}
	for _, o := range b.Orgs {
		if found[string(o.ID)] {
			return wrap(op, &BulkError{Org: o.ID, Err: conflict("the org id is stored already")})
		}
	}
	ids, emails := make([]string, len(b.Users)), make([]string, len(b.Users))
	for i, u := range b.Users {
		ids[i], emails[i] = string(u.ID), u.Email
	}
	if found, err = t.present(&userRow{}, "id", "", ids); err != nil {
		return t.fail(op, err)
	}
	taken, err := t.present(&userRow{}, "email", "deleted_at IS NULL", emails)
	if err != nil {
		return t.fail(op, err)
	}
	for _, u := range b.Users {
		switch {
		case found[string(u.ID)]:
			return wrap(op, &BulkError{User: u.ID, Err: conflict("the user id was issued before")})
		case taken[u.Email]:
			return wrap(op, &BulkError{User: u.ID, Err: conflict("a user with this email exists")})
		}
	}
	return nil
}

// present returns which of vals the column (a constant of this file) of
// model's table holds, in rows where cond (a constant condition, or "")
// holds too: one statement with an array parameter on PostgreSQL, one per
// bulkChunk values elsewhere.
func (t *Tx) present(model any, column, cond string, vals []string) (map[string]bool, error) {
	found := make(map[string]bool)
	pluck := func(where string, arg any) error {
		q := t.db.Model(model).Where(where, arg)
		if cond != "" {
			q = q.Where(cond)
		}
		var got []string
		if err := q.Pluck(column, &got).Error; err != nil {
			return fmt.Errorf("read %s: %w", column, err)
		}
		for _, v := range got {
			found[v] = true
		}
		return nil
	}
	if len(vals) == 0 {
		return found, nil
	}
	if t.pg {
		return found, pluck(column+" = ANY(?::text[])", pgTextArray(vals))
	}
	for chunk := range slices.Chunk(vals, bulkChunk) {
		if err := pluck(column+" IN ?", chunk); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// insertOrgs inserts orgs, checked by checkBulk.
func (t *Tx) insertOrgs(op string, orgs []identity.Org) error {
	n := len(orgs)
	if t.pg {
		ids, names, created := make(pgTextArray, n), make(pgTextArray, n), make(pgTimeArray, n)
		for i, o := range orgs {
			ids[i], names[i], created[i] = string(o.ID), o.Name, o.CreatedAt
		}
		return t.insertArrays(op, "orgs", n,
			"INSERT INTO iam_orgs (id, name, created_at) SELECT * FROM unnest(?::text[], ?::text[], ?::timestamptz[])",
			ids, names, created)
	}
	rows := make([][3]string, n)
	for i, o := range orgs {
		rows[i] = [3]string{string(o.ID), o.Name, sqliteTime(o.CreatedAt)}
	}
	return t.insertJSON(op, "orgs", n, rows, "INSERT INTO iam_orgs (id, name, created_at) "+
		"SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true")
}

// insertUsers inserts users, checked by checkBulk.
func (t *Tx) insertUsers(op string, users []identity.User) error {
	n := len(users)
	if t.pg {
		ids, emails, names, hashes, status := make(pgTextArray, n), make(pgTextArray, n), make(pgTextArray, n), make(pgTextArray, n), make(pgTextArray, n)
		created, updated := make(pgTimeArray, n), make(pgTimeArray, n)
		for i, u := range users {
			ids[i], emails[i], names[i], hashes[i], status[i] = string(u.ID), u.Email, u.Name, u.PasswordHash, u.Status.String()
			created[i], updated[i] = u.CreatedAt, u.UpdatedAt
		}
		return t.insertArrays(op, "users", n,
			"INSERT INTO iam_users (id, email, name, password_hash, status, created_at, updated_at) "+
				"SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::timestamptz[])",
			ids, emails, names, hashes, status, created, updated)
	}
	rows := make([][7]string, n)
	for i, u := range users {
		rows[i] = [7]string{string(u.ID), u.Email, u.Name, u.PasswordHash, u.Status.String(), sqliteTime(u.CreatedAt), sqliteTime(u.UpdatedAt)}
	}
	return t.insertJSON(op, "users", n, rows, "INSERT INTO iam_users (id, email, name, password_hash, status, created_at, updated_at) "+
		"SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 FROM json_each(?) WHERE true")
}

// insertRules inserts rule rows (grouping rules, of new accounts) in the
// layout gorm-adapter writes: v3 to v5 empty strings, not NULL, so that
// the adapter's unique index over every column sees them.
func (t *Tx) insertRules(op string, rows []authz.Row) error {
	n := len(rows)
	if t.pg {
		v0, v1, v2 := make(pgTextArray, n), make(pgTextArray, n), make(pgTextArray, n)
		for i, r := range rows {
			v0[i], v1[i], v2[i] = r.V0, r.V1, r.V2
		}
		return t.insertArrays(op, "rules", n,
			"INSERT INTO "+tableName+" (ptype, v0, v1, v2, v3, v4, v5) "+
				"SELECT 'g', v0, v1, v2, '', '', '' FROM unnest(?::text[], ?::text[], ?::text[]) AS r(v0, v1, v2)",
			v0, v1, v2)
	}
	recs := make([][3]string, n)
	for i, r := range rows {
		recs[i] = [3]string{r.V0, r.V1, r.V2}
	}
	return t.insertJSON(op, "rules", n, recs, "INSERT INTO "+tableName+" (ptype, v0, v1, v2, v3, v4, v5) "+
		"SELECT 'g', value ->> 0, value ->> 1, value ->> 2, '', '', '' FROM json_each(?) WHERE true")
}

// insertArrays runs q, a constant INSERT … SELECT FROM unnest of the
// array parameters args (PostgreSQL), and requires it to insert want
// rows.
func (t *Tx) insertArrays(op, what string, want int, q string, args ...any) error {
	if want == 0 {
		return nil
	}
	res := t.db.Exec(q, args...)
	return t.inserted(op, what, want, res.Error, res.RowsAffected)
}

func (t *Tx) sqlite() bool { return t.db.Dialector.Name() == "sqlite" }

// insertJSON runs q, a constant INSERT … SELECT FROM json_each(?) (SQLite),
// with rows (n of them, each an array of strings) as one JSON array
// parameter, and requires it to insert n rows. One small statement
// instead of thousands of bound parameters: SQLite prepares it at no cost
// and reads the array in C.
func (t *Tx) insertJSON(op, what string, n int, rows any, q string) error {
	if n == 0 {
		return nil
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return t.fail(op, fmt.Errorf("encode %s: %w", what, err))
	}
	res := t.db.Exec(q, string(b))
	return t.inserted(op, what, n, res.Error, res.RowsAffected)
}

// sqliteTime is t as the SQLite drivers store a bound time.Time (the
// first of go-sqlite3's SQLiteTimestampFormats), UTC in whole
// microseconds (see dbTime), so that imported rows read back and compare
// like the rows the stores write.
func sqliteTime(t time.Time) string { return dbTime(t).Format("2006-01-02 15:04:05.999999999-07:00") }

// inserted checks the outcome of inserting want rows: a failed statement
// (a unique violation, matching authz.ErrConflict, when a concurrent
// transaction stored a row since the checks) or fewer rows than given
// spoils the Tx, which rolls back.
func (t *Tx) inserted(op, what string, want int, err error, got int64) error {
	if err != nil {
		return t.fail(op, fmt.Errorf("insert %s: %w", what, failed(err))) // a unique violation matches authz.ErrConflict
	}
	if got != int64(want) {
		return t.fail(op, fmt.Errorf("inserted %d of %d %s: some were stored meanwhile: %w", got, want, what, authz.ErrConflict))
	}
	return nil
}

// pgTextArray is a text[] parameter for PostgreSQL, bound as one array
// literal ({"a","b"}, every element quoted and escaped), so that GORM
// binds it as one parameter instead of expanding it into a list.
type pgTextArray []string

// Value implements driver.Valuer.
func (a pgTextArray) Value() (driver.Value, error) {
	n := 2
	for _, s := range a {
		n += len(s) + 3
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, errors.New("gormstore: a NUL byte in a text array element")
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if c := s[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// pgTimeArray is a timestamptz[] parameter for PostgreSQL, bound as one
// array literal of UTC times in whole microseconds (see dbTime).
type pgTimeArray []time.Time

// Value implements driver.Valuer.
func (a pgTimeArray) Value() (driver.Value, error) {
	s := make(pgTextArray, len(a))
	for i, t := range a {
		s[i] = dbTime(t).Format("2006-01-02 15:04:05.999999Z07:00")
	}
	return s.Value()
}
