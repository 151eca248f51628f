package gormstore

import (
	"cmp"
	"fmt"
	"slices"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/kiops/iam/authz"
)

// Advisory lock classes on PostgreSQL (the first key of the two-key form
// of pg_advisory_xact_lock), so that these locks never collide with other
// users of advisory locks on the same server. Both are constants of the
// SQL text; only hashtext's argument is a bound parameter.
const (
	lockClassMigrate = "1767992577" // "iam" 0x69616d01
	lockClassPolicy  = "1767992578" // "iam" 0x69616d02
)

// Tx writes the authorization policy inside one database transaction of
// Store.Transaction. Each write is absolute, like the Engine's write of the
// same name: it reads the rows stored for its user or org (inside the
// transaction), and deletes and inserts exactly the difference. A Tx is
// not safe for concurrent use and is dead once Transaction's function
// returns: every method then fails.
//
// A method that fails on invalid input returns an error matching
// authz.ErrInvalid (an *authz.InvalidError) and writes nothing; the
// transaction may go on. A method that fails in the database, or whose
// delete does not remove the rows it read (matching authz.ErrConflict),
// spoils the transaction: it will roll back even if the function returns
// nil, and later writes on the Tx fail. So does a stored row among those a
// write reads that authz.ParseRow refuses (the table holds something this
// module never writes): that error does not match authz.ErrInvalid, since
// the input was fine.
type Tx struct {
	store  *Store
	db     *gorm.DB
	pg     bool
	done   bool  // Transaction's function has returned
	failed error // a write failed after it may have written something

	// touched are the users whose rules this transaction's writes may
	// have changed, for the change log (LogChanges).
	touched map[authz.UserID]struct{}
}

// touch notes that users' rules may change in this transaction.
func (t *Tx) touch(users ...authz.UserID) {
	if t.touched == nil {
		t.touched = make(map[authz.UserID]struct{})
	}
	for _, u := range users {
		t.touched[u] = struct{}{}
	}
}

// DB returns the GORM transaction, for the other stores' rows of the same
// operation. It must not be used to write the rule table, whose writes go
// through Tx's methods. Like the Tx, it is one connection, not for
// concurrent use, and dead once Transaction's function returns.
func (t *Tx) DB() *gorm.DB { return t.db }

// SetPlatformAdmin makes u a PlatformAdmin (admin true) or ends that role
// (admin false); u's memberships in orgs are kept. Asking for the state
// already stored writes nothing and is no error.
//
// Errors: an invalid u is an *authz.InvalidError (authz.ErrInvalid);
// a revoke that did not remove the stored row matches authz.ErrConflict;
// all are wrapped with "gormstore: set platform admin".
//
// Concurrency: on PostgreSQL it holds u's advisory lock until the
// transaction ends, so other transactions writing u's policy wait.
func (t *Tx) SetPlatformAdmin(u authz.UserID, admin bool) error {
	return t.setUserRule("set platform admin", authz.PlatformAdminRule(u), admin)
}

// SetDeactivated stores the deactivation of u's account (off true: every
// check for u denies, and the rest of u's policy is kept for reactivation)
// or removes it. Asking for the state already stored writes nothing and is
// no error.
//
// Errors and concurrency: as SetPlatformAdmin, wrapped with
// "gormstore: set deactivated".
func (t *Tx) SetDeactivated(u authz.UserID, off bool) error {
	return t.setUserRule("set deactivated", authz.DeactivationRule(u), off)
}

// setUserRule stores rule (a platform-wide rule of one user) when on, and
// removes it otherwise.
func (t *Tx) setUserRule(op string, rule authz.Rule, on bool) error {
	if err := t.usable(op); err != nil {
		return err
	}
	row, err := rule.Row()
	if err != nil {
		return fmt.Errorf("gormstore: %s: %w", op, err)
	}
	t.touch(rule.User)
	if err := t.lock(op, "user:"+string(rule.User), false); err != nil {
		return err
	}
	stored, err := t.readRules(op, t.db.Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ?", row.PType, row.V0, row.V1, row.V2))
	if err != nil {
		return err
	}
	switch has := len(stored) > 0; {
	case on && !has:
		return t.insert(op, []authz.Row{row})
	case !on && has:
		return t.deleteRow(op, row)
	}
	return nil
}

// SetMembership sets u's role and categories in org o to exactly m,
// deleting the stored rows m does not hold and inserting those it adds;
// the zero Membership removes u from o. PlatformAdmin is not an org role
// (use SetPlatformAdmin), and a membership may hold categories without a
// role, as the Engine allows.
//
// Errors: an invalid u or o, a role other than RoleNone, Member and
// Manager, or unknown category bits are an *authz.InvalidError
// (authz.ErrInvalid); a revoke that did not remove a stored row matches
// authz.ErrConflict; all are wrapped with "gormstore: set membership".
//
// Concurrency: on PostgreSQL it holds u's advisory lock and a shared lock
// on o until the transaction ends, so other writes of u's policy and
// RemoveOrg(o) wait, while other users' memberships in o proceed.
func (t *Tx) SetMembership(u authz.UserID, o authz.OrgID, m authz.Membership) error {
	const op = "set membership"
	if err := t.usable(op); err != nil {
		return err
	}
	want, err := authz.MembershipRules(u, o, m) // validates u, o and m
	if err != nil {
		return fmt.Errorf("gormstore: %s: %w", op, err)
	}
	t.touch(u)
	// The org's lock is shared, so that memberships of different users in
	// one org are written in parallel while RemoveOrg waits for them all.
	if err := t.lock(op, "org:"+string(o), true); err != nil {
		return err
	}
	if err := t.lock(op, "user:"+string(u), false); err != nil {
		return err
	}
	stored, err := t.readRules(op, t.db.Where("ptype = ? AND v0 = ? AND v2 = ?", "g", string(u), string(o)))
	if err != nil {
		return err
	}
	var add []authz.Row
	for _, r := range want {
		if !slices.Contains(stored, r) {
			row, err := r.Row()
			if err != nil {
				return t.fail(op, err)
			}
			add = append(add, row)
		}
	}
	for _, r := range stored {
		if !slices.Contains(want, r) {
			row, err := r.Row()
			if err != nil {
				return t.fail(op, err)
			}
			if err := t.deleteRow(op, row); err != nil {
				return err
			}
		}
	}
	return t.insert(op, add)
}

// RemoveUser deletes every rule of u: PlatformAdmin and every membership.
// A user without rules writes nothing and is no error.
//
// Errors: an invalid u is an *authz.InvalidError (authz.ErrInvalid); a
// delete that did not remove exactly the rows read matches
// authz.ErrConflict; all are wrapped with "gormstore: remove user".
//
// Concurrency: on PostgreSQL it holds u's advisory lock until the
// transaction ends. A RemoveOrg committed meanwhile that removed one of
// u's rows makes it fail with authz.ErrConflict; retrying the operation
// is safe.
func (t *Tx) RemoveUser(u authz.UserID) error {
	const op = "remove user"
	if err := t.usable(op); err != nil {
		return err
	}
	if _, err := authz.ParseUserID(string(u)); err != nil {
		return fmt.Errorf("gormstore: %s: %w", op, err)
	}
	t.touch(u)
	if err := t.lock(op, "user:"+string(u), false); err != nil {
		return err
	}
	stored, err := t.readRules(op, t.db.Where("ptype = ? AND v0 = ?", "g", string(u)))
	if err != nil || len(stored) == 0 {
		return err
	}
	return t.deleteWhere(op, len(stored), "ptype = ? AND v0 = ?", "g", string(u))
}

// RemoveOrg deletes every rule held in org o (roles and grants of all its
// members) and returns the users who held any, sorted, so that the caller
// can update each in its Engine after commit. An org without rules writes
// nothing and returns no users.
//
// Errors: an invalid o is an *authz.InvalidError (authz.ErrInvalid); a
// delete that did not remove exactly the rows read matches
// authz.ErrConflict; all are wrapped with "gormstore: remove org".
//
// Concurrency: on PostgreSQL it holds o's advisory lock exclusively until
// the transaction ends, waiting for and then excluding SetMembership in o.
// A RemoveUser committed meanwhile that removed one of o's rows makes it
// fail with authz.ErrConflict; retrying the operation is safe.
func (t *Tx) RemoveOrg(o authz.OrgID) ([]authz.UserID, error) {
	const op = "remove org"
	if err := t.usable(op); err != nil {
		return nil, err
	}
	if _, err := authz.ParseOrgID(string(o)); err != nil {
		return nil, fmt.Errorf("gormstore: %s: %w", op, err)
	}
	if err := t.lock(op, "org:"+string(o), false); err != nil {
		return nil, err
	}
	stored, err := t.readRules(op, t.db.Where("ptype = ? AND v2 = ?", "g", string(o)))
	if err != nil || len(stored) == 0 {
		return nil, err
	}
	var users []authz.UserID
	for _, r := range stored {
		users = append(users, r.User)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	t.touch(users...)
	if err := t.deleteWhere(op, len(stored), "ptype = ? AND v2 = ?", "g", string(o)); err != nil {
		return nil, err
	}
	return users, nil
}

// OrgRules returns the rules stored in org o (every member's role and
// grants), sorted by user, each user's role before their grants. An org
// without rules has none, which is no error.
//
// Errors: an invalid o is an *authz.InvalidError (authz.ErrInvalid); a
// database failure spoils the transaction; wrapped with
// "gormstore: org rules".
func (t *Tx) OrgRules(o authz.OrgID) ([]authz.Rule, error) {
	const op = "org rules"
	if err := t.usable(op); err != nil {
		return nil, err
	}
	if _, err := authz.ParseOrgID(string(o)); err != nil {
		return nil, fmt.Errorf("gormstore: %s: %w", op, err)
	}
	rules, err := t.readRules(op, t.db.Where("ptype = ? AND v2 = ?", "g", string(o)))
	if err != nil {
		return nil, err
	}
	sortRules(rules)
	return rules, nil
}

// PlatformAdmins returns the users holding the PlatformAdmin rule, sorted.
//
// Errors: a database failure spoils the transaction; wrapped with
// "gormstore: platform admins".
func (t *Tx) PlatformAdmins() ([]authz.UserID, error) {
	const op = "platform admins"
	if err := t.usable(op); err != nil {
		return nil, err
	}
	probe, err := authz.PlatformAdminRule(authz.NewUserID()).Row()
	if err != nil {
		return nil, t.fail(op, err)
	}
	rules, err := t.readRules(op, t.db.Where("ptype = ? AND v1 = ? AND v2 = ?", probe.PType, probe.V1, probe.V2))
	if err != nil {
		return nil, err
	}
	users := make([]authz.UserID, 0, len(rules))
	for _, r := range rules {
		users = append(users, r.User)
	}
	slices.Sort(users)
	return users, nil
}

// sortRules orders rules by user, then org, each org's role before its
// grants.
func sortRules(rules []authz.Rule) {
	slices.SortFunc(rules, func(a, b authz.Rule) int {
		return cmp.Or(
			cmp.Compare(a.User, b.User),
			cmp.Compare(a.Org, b.Org),
			cmp.Compare(a.Category, b.Category), // the role (Category 0) first
			cmp.Compare(a.Role, b.Role),
		)
	})
}

// UserRules returns the rules stored for u, as this transaction sees them:
// the PlatformAdmin rule first, then by org, each org's role before its
// grants, in the order of authz.MembershipRules. A user without rules has
// none, which is no error.
//
// Errors: an invalid u is an *authz.InvalidError (authz.ErrInvalid); a
// stored row that authz.ParseRow refuses is an error (not matching
// authz.ErrInvalid: the input was fine, the table is not); all are
// wrapped with "gormstore: user rules".
//
// Concurrency: it takes no lock; it sees the rows committed before the
// statement (PostgreSQL, read committed) or the transaction's snapshot
// (SQLite), and this transaction's own writes.
func (t *Tx) UserRules(u authz.UserID) ([]authz.Rule, error) {
	const op = "user rules"
	if err := t.usable(op); err != nil {
		return nil, err
	}
	if _, err := authz.ParseUserID(string(u)); err != nil {
		return nil, fmt.Errorf("gormstore: %s: %w", op, err)
	}
	rules, err := t.readRules(op, t.db.Where("ptype = ? AND v0 = ?", "g", string(u)))
	if err != nil {
		return nil, err
	}
	sortRules(rules) // one user: by org, role before grants
	return rules, nil
}

// usable refuses a Tx whose transaction is over or already spoiled.
func (t *Tx) usable(op string) error {
	switch {
	case t.done:
		return fmt.Errorf("gormstore: %s: transaction is over", op)
	case t.failed != nil:
		return fmt.Errorf("gormstore: %s: an earlier write failed, the transaction will roll back: %w", op, t.failed)
	}
	return nil
}

// fail records that the transaction is spoiled and returns err, wrapped.
func (t *Tx) fail(op string, err error) error {
	err = fmt.Errorf("gormstore: %s: %w", op, err)
	if t.failed == nil {
		t.failed = err
	}
	return err
}

// HoldOrg keeps org o from being deleted (RemoveOrg waits) until the
// transaction ends, without excluding other writers in o: o's lock,
// shared, as SetMembership takes it. Call it before checking that o
// exists in a transaction that adds rows of o outside the policy (a
// registration request): a concurrent deletion of o then either waits
// for the transaction (and deletes its rows too) or committed before the
// check, which finds o gone. On other databases, whose writing
// transactions are serialized, it does nothing.
//
// Errors: an invalid o is an *authz.InvalidError; a database failure
// spoils the transaction; wrapped with "gormstore: hold org".
func (t *Tx) HoldOrg(o authz.OrgID) error {
	const op = "hold org"
	if err := t.usable(op); err != nil {
		return err
	}
	if _, err := authz.ParseOrgID(string(o)); err != nil {
		return fmt.Errorf("gormstore: %s: %w", op, err)
	}
	return t.lock(op, "org:"+string(o), true)
}

// HoldAccount locks the account of the canonical email address email, if
// there is one, in shared mode until the transaction ends; HoldUser locks
// user u's account exclusively. Calls that create a session or a reset
// token for an account they looked up outside the management lock (a
// login, a forgotten password) hold it shared before the lookup; calls
// that end an account's sessions and tokens hold it exclusively before
// deleting them. So a login committing meanwhile has either committed
// before the deletion, which then sees its session and deletes it, or
// waits for the ending call and then reads the account as it left it
// (deactivated, deleted, another password). Both run one statement,
// whether the account exists or not (so a login's work does not tell),
// on PostgreSQL; other databases serialize writing transactions, and
// there they do nothing.
//
// Errors: a database failure spoils the transaction; wrapped with
// "gormstore: hold account" or "gormstore: hold user".
func (t *Tx) HoldAccount(email string) error {
	return t.holdAccount("hold account", "email = ?", email, "SHARE")
}

// HoldUser: see HoldAccount. An invalid u is an *authz.InvalidError.
func (t *Tx) HoldUser(u authz.UserID) error {
	if _, err := authz.ParseUserID(string(u)); err != nil {
		return fmt.Errorf("gormstore: hold user: %w", err)
	}
	return t.holdAccount("hold user", "id = ?", string(u), "UPDATE")
}

func (t *Tx) holdAccount(op, cond, arg, strength string) error {
	if err := t.usable(op); err != nil {
		return err
	}
	if !t.pg {
		return nil
	}
	var ids []string
	err := t.db.Model(&userRow{}).Clauses(clause.Locking{Strength: strength}).
		Where(cond, arg).Where("deleted_at IS NULL").Pluck("id", &ids).Error
	if err != nil {
		return t.fail(op, err)
	}
	return nil
}

// lock takes a transaction-scoped advisory lock on PostgreSQL (shared or
// exclusive) for key. Keys are built from validated ids and bound as
// parameters; hash collisions only make unrelated writes wait.
func (t *Tx) lock(op, key string, shared bool) error {
	if !t.pg {
		return nil
	}
	q := "SELECT pg_advisory_xact_lock(" + lockClassPolicy + ", hashtext(?))"
	if shared {
		q = "SELECT pg_advisory_xact_lock_shared(" + lockClassPolicy + ", hashtext(?))"
	}
	if err := t.db.Exec(q, key).Error; err != nil {
		return t.fail(op, fmt.Errorf("lock %s: %w", key, err))
	}
	return nil
}

// readRules reads the rows q selects and parses them. A stored row that
// ParseRow refuses means the table holds something this module never
// writes; the write refuses to work from it (fail closed).
func (t *Tx) readRules(op string, q *gorm.DB) ([]authz.Rule, error) {
	rows, err := readRows(q)
	if err != nil {
		return nil, t.fail(op, fmt.Errorf("read: %w", err))
	}
	rules := make([]authz.Rule, 0, len(rows))
	for _, row := range rows {
		r, err := authz.ParseRow(row)
		if err != nil {
			// %v, not %w: the caller's input was valid, so this must not
			// match authz.ErrInvalid.
			return nil, t.fail(op, fmt.Errorf("stored policy row %q is not one this module writes: %v", row.String(), err))
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// insert adds rows through gorm-adapter, bound to this transaction.
func (t *Tx) insert(op string, rows []authz.Row) error {
	if len(rows) == 0 {
		return nil
	}
	// A session copy, because TurnOffAutoMigrate rewrites the *gorm.DB it
	// is given; with migration off, the adapter only wraps the
	// transaction (Open migrated the table already).
	db := t.db.Session(&gorm.Session{})
	gormadapter.TurnOffAutoMigrate(db)
	a, err := gormadapter.NewAdapterByDBUseTableName(db, "", tableName)
	if err != nil {
		return t.fail(op, err)
	}
	rules := make([][]string, 0, len(rows))
	for _, r := range rows {
		rules = append(rules, []string{r.V0, r.V1, r.V2})
	}
	// The adapter inserts with ON CONFLICT DO NOTHING: a row that is
	// already stored stays as it is, which is the state asked for.
	if err := a.AddPolicies("g", "g", rules); err != nil {
		return t.fail(op, fmt.Errorf("insert: %w", err))
	}
	return nil
}

// deleteRow deletes exactly one stored grouping row and checks that one
// row went.
//
// Deletes are done here rather than through gorm-adapter: its
// RemovePoliciesCtx ignores the error of each delete, and none of its
// removals report how many rows they deleted, so a revoke could fail
// silently and the caller would believe a permission gone that is still
// stored (DESIGN.md section 5: a revoke is checked to have persisted). The
// conditions are constant strings with bound parameters.
func (t *Tx) deleteRow(op string, row authz.Row) error {
	return t.deleteWhere(op, 1, "ptype = ? AND v0 = ? AND v1 = ? AND v2 = ?", row.PType, row.V0, row.V1, row.V2)
}

// deleteWhere deletes the rows matching cond (a constant of this file)
// with args bound, and requires exactly want of them to go: the rows the
// operation just read. Anything else means the table changed under the
// transaction (or a delete silently failed); the write fails with
// authz.ErrConflict and the transaction rolls back.
func (t *Tx) deleteWhere(op string, want int, cond string, args ...any) error {
	if t.store.beforeDelete != nil {
		t.store.beforeDelete(t.db)
	}
	res := t.db.Where(cond, args...).Delete(&gormadapter.CasbinRule{})
	if res.Error != nil {
		return t.fail(op, fmt.Errorf("delete: %w", res.Error))
	}
	if res.RowsAffected != int64(want) {
		return t.fail(op, fmt.Errorf("delete removed %d rows, want %d: %w", res.RowsAffected, want, authz.ErrConflict))
	}
	return nil
}
