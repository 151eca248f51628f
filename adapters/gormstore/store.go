// Package gormstore keeps the module's state in any database GORM supports
// (SQLite and PostgreSQL are tested): the authorization policy, in
// Casbin's rule table "casbin_rule" in the layout of
// github.com/casbin/gorm-adapter/v3, so that a plain Casbin enforcer with
// that adapter reads exactly the policy that [authz.Engine] indexes; and
// the rows of the domain packages' stores: orgs, users, sessions and
// password-reset tokens ([identity.Store]), registration requests
// ([approval.Store]) and the audit log ([audit.Store]).
//
// [Open] migrates every table and seeds the model's base rules.
// [Store.Load] streams every stored rule into an [authz.Engine].
// [Store.Transaction] runs one database transaction in which a [Tx] writes
// the policy, and [Tx.Identity], [Tx.Approvals] and [Tx.Audit] write the
// other stores' rows, so that one management operation commits all of
// them together or nothing. [Store.Identity], [Store.Approvals] and
// [Store.Audit] are the same stores outside a Tx, each method in a
// transaction of its own, for queries and for work of one statement.
//
// # Tables
//
// Besides casbin_rule and the one-row iam_policy_version: iam_orgs;
// iam_users, with a partial unique index on email over live (not deleted)
// accounts, so a deleted account's email can register again as a new
// user; iam_sessions and iam_reset_tokens, keyed by the SHA-256 of the
// token; iam_registration_requests, with a partial unique index admitting
// one pending request per person and org; iam_audit_events, with an
// auto-incrementing id, Before and After as text, read back byte for
// byte, and the hash chain's prev_hash (unique, so the chain cannot fork)
// and hash, as hex. [Store.AuditChain] streams the log oldest first,
// [Store.VerifyAudit] verifies it, and [Store.AuditHead] reads a
// checkpoint of its head. [Store.PruneAudit] deletes the oldest events
// and records the checkpoint of the last one in iam_audit_prunes, where
// the chain of the remaining events starts ([Store.AuditPruned]). Times
// are stored in UTC, truncated to whole microseconds, so that they
// compare as instants on SQLite too. Every statement uses constant SQL
// text with bound parameters; tenant conditions are explicit
// (org_id = ?), never struct conditions.
//
// # Writes are absolute and verified
//
// A Tx write says what the result must be ("u is a Member of o with
// infra and vpn") rather than what to change. The store reads the rows
// currently stored, inside the transaction, and deletes and inserts the
// difference, so that a write never depends on what some replica holds in
// memory. Every delete states the exact row, with bound parameters, and
// checks the number of rows it removed: a revoke that does not remove what
// the store just read fails with an error matching [authz.ErrConflict], and
// the transaction rolls back, rather than reporting success for a
// permission that is still stored.
//
// # Concurrency
//
// Store's methods are safe for concurrent use. A Tx belongs to the function
// it is passed to and must not be used after that function returns, nor by
// several goroutines at once. On PostgreSQL, writes take transaction-scoped
// advisory locks (the user's, and the org's for memberships and org
// removal), so that two transactions writing the same user's policy run one
// after the other instead of both computing their changes from the same
// old rows. A transaction that writes several users in varying orders can
// therefore deadlock with another; PostgreSQL detects that and fails one of
// them, which rolls back. SQLite admits one writing transaction at a time by
// itself: another waits for the busy timeout or fails ("database is
// locked"); open SQLite with _txlock=immediate and a busy timeout to make
// concurrent writers wait rather than fail.
//
// The identity, approval and audit stores keep their guarantees between
// concurrent transactions with the database's own means: inserts with ON
// CONFLICT DO NOTHING against primary keys and the partial unique
// indexes, conditional updates whose count of changed rows decides
// (deciding a request, redeeming a reset token), and on PostgreSQL two
// more advisory locks held until the transaction ends: one per user while
// a reset token is issued (so the newest voids the others), and one for
// the whole audit log while an event is appended (so events commit in the
// order of their ids, each chained to the one committed before it).
// Append the audit event last in a transaction.
package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/kiops/iam/authz"
)

// tableName is Casbin's rule table, as gorm-adapter names it by default.
const tableName = "casbin_rule"

// rowColumns are the columns of a rule row, in authz.Row's order.
const rowColumns = "ptype, v0, v1, v2, v3, v4, v5"

// domainIndex declares, for GORM's migrator only, the index on the rule
// table's type, domain, role or grant, and user (ptype, v2, v1, v0). Its
// prefix (ptype, v2) serves the lookups by org (OrgRules, RemoveOrg); the
// whole of it serves the listings, which read the holders of one role or
// grant in one domain in user order (see Tx.Holders). ptype leads because
// every query binds it: with it outside the index, PostgreSQL preferred
// the adapter's index (ptype, v0, ...) for ORDER BY v0 and filtered a
// range of all users.
type domainIndex struct {
	PType string `gorm:"column:ptype;size:100;index:idx_casbin_rule_ptype_v2_v1_v0,priority:1"`
	V2    string `gorm:"size:100;index:idx_casbin_rule_ptype_v2_v1_v0,priority:2"`
	V1    string `gorm:"size:100;index:idx_casbin_rule_ptype_v2_v1_v0,priority:3"`
	V0    string `gorm:"size:100;index:idx_casbin_rule_ptype_v2_v1_v0,priority:4"`
}

const domainIndexName = "idx_casbin_rule_ptype_v2_v1_v0"

// oldDomainIndexes are indexes that earlier versions created and that
// domainIndex serves in full: the migration drops them rather than keep
// more indexes to update on every write. idx_casbin_rule_v2 is the index
// on v2 alone of released versions; idx_casbin_rule_v2_v1_v0 lived on the
// main branch for a few commits.
var oldDomainIndexes = []string{"idx_casbin_rule_v2", "idx_casbin_rule_v2_v1_v0"}

func (domainIndex) TableName() string { return tableName }

// Store keeps the authorization policy in Casbin's rule table. Create one
// with Open. It does not own the *gorm.DB it was given: closing that is the
// caller's job. All methods are safe for concurrent use.
type Store struct {
	db      *gorm.DB
	channel string // see Channel

	// beforeDelete, when set (by tests only), runs inside the transaction
	// before each verified delete, to simulate a row vanishing under it.
	beforeDelete func(tx *gorm.DB)
}

// Open prepares db for the policy and the other stores and returns a Store
// over it. It creates the rule table through gorm-adapter (with the
// adapter's unique index over all columns) and an index on
// (ptype, v2, v1, v0) if they are missing (dropping the index on v2
// alone that earlier versions created), migrates the version table and the
// tables of the identity, approval and audit stores with GORM's
// migrator (creating what is missing: tables, columns, indexes), and
// inserts the base rules of the model (authz.BaseRows) that are not
// stored yet. It never truncates or rewrites existing rows, all in one
// transaction.
//
// Open is idempotent: running it again, or in several processes at once,
// leaves one set of tables with each base rule once; on a database it
// migrated already it runs no DDL. On PostgreSQL, concurrent
// Opens on one schema are serialized by a transaction-scoped advisory
// lock. On SQLite, concurrent Opens are serialized by SQLite's write lock;
// with the default deferred BEGIN one of them may fail with "database is
// locked" (open SQLite with _txlock=immediate and a busy timeout to make
// them wait).
//
// Errors are wrapped with "gormstore: open"; nothing is committed when Open
// fails.
func Open(ctx context.Context, db *gorm.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("gormstore: open: nil *gorm.DB")
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("gormstore: open: %w", err)
	}
	if isPostgres(db) {
		var schema string
		if err := db.WithContext(ctx).Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
			return nil, fmt.Errorf("gormstore: open: current schema: %w", err)
		}
		s.channel = channelFor(schema)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if isPostgres(tx) {
			// DDL is transactional on PostgreSQL, but two transactions that
			// both find the table missing would both create it, and one
			// would fail. The lock (keyed by schema, so parallel tests in
			// their own schemas do not wait for each other) makes the second
			// wait and then find the table.
			if err := tx.Exec("SELECT pg_advisory_xact_lock(" + lockClassMigrate + ", hashtext(current_schema()))").Error; err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
		}
		a, err := gormadapter.NewAdapterByDBUseTableName(tx, "", tableName)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", tableName, err)
		}
		// RemoveOrg and the listings look rows up by domain. (Lookups by
		// user are served by the adapter's unique index, which starts with
		// ptype, v0.) GORM's migrator writes the DDL for each dialect. Each
		// step runs only when needed, so a migrated database gets no DDL.
		m := tx.Migrator()
		if !m.HasIndex(&domainIndex{}, domainIndexName) {
			if err := m.CreateIndex(&domainIndex{}, domainIndexName); err != nil {
				return fmt.Errorf("create index %s: %w", domainIndexName, err)
			}
		}
		for _, old := range oldDomainIndexes {
			if m.HasIndex(&domainIndex{}, old) {
				if err := m.DropIndex(&domainIndex{}, old); err != nil {
					return fmt.Errorf("drop index %s: %w", old, err)
				}
			}
		}
		if err := migrateVersion(tx); err != nil {
			return err
		}
		if err := migrateChanges(tx); err != nil {
			return err
		}
		for _, m := range []func(*gorm.DB) error{migrateIdentity, migrateApproval, migrateAudit} {
			if err := m(tx); err != nil {
				return err
			}
		}
		stored, err := readRows(tx.Where("ptype = ?", "p"))
		if err != nil {
			return fmt.Errorf("read base rules: %w", err)
		}
		have := make(map[authz.Row]bool, len(stored))
		for _, r := range stored {
			have[r] = true
		}
		var missing [][]string
		for _, r := range authz.BaseRows() {
			if !have[r] {
				missing = append(missing, []string{r.V0, r.V1})
			}
		}
		if len(missing) > 0 {
			// AddPolicies inserts with ON CONFLICT DO NOTHING, so a base
			// rule stored meanwhile is not duplicated either.
			if err := a.AddPolicies("p", "p", missing); err != nil {
				return fmt.Errorf("seed base rules: %w", err)
			}
		}
		return nil
	})
}

// Load replaces e's index with the stored policy: e.Load(s.Rows(ctx)). A
// row that the Engine refuses (a "p" rule that is not one of
// authz.BaseRows, a grouping rule authz.ParseRow rejects, a missing base
// rule) or a database failure is an error, and e keeps its previous index.
// Load is safe for concurrent use; e serializes its own loads and writes.
func (s *Store) Load(ctx context.Context, e *authz.Engine) error {
	return e.Load(s.Rows(ctx))
}

// Transaction runs fn in one database transaction (GORM's db.Transaction)
// and commits it if fn returns nil, or rolls it back if fn returns an error
// or panics (the panic goes on). fn writes the policy through tx, and other
// rows through tx.DB().
//
// It returns fn's error unchanged, so that callers can match their own
// errors; if fn returned nil although one of tx's writes failed, the
// transaction is rolled back all the same and that write's error is
// returned. Failures to begin or commit are wrapped with
// "gormstore: transaction". Only after Transaction returns nil is the
// policy change committed; that is the moment to apply it to an
// authz.Engine.
//
// Transaction is safe for concurrent use; each call has its own Tx.
func (s *Store) Transaction(ctx context.Context, fn func(tx *Tx) error) error {
	var fnErr error
	err := s.db.WithContext(ctx).Transaction(func(gtx *gorm.DB) error {
		t := &Tx{store: s, db: gtx, pg: isPostgres(gtx)}
		defer func() { t.done = true }()
		fnErr = fn(t)
		if fnErr == nil && t.failed != nil {
			fnErr = t.failed
		}
		return fnErr
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil:
		return fnErr
	default:
		return fmt.Errorf("gormstore: transaction: %w", err)
	}
}

func isPostgres(db *gorm.DB) bool { return db.Dialector.Name() == "postgres" }

// readRows runs q (a query whose conditions the caller set, with bound
// parameters only) over the rule table and returns the rows it selects.
func readRows(q *gorm.DB) ([]authz.Row, error) {
	rows, err := q.Model(&gormadapter.CasbinRule{}).Select(rowColumns).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []authz.Row
	for rows.Next() {
		row, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func scanRow(rows *sql.Rows) (authz.Row, error) {
	var v [7]sql.NullString
	if err := rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]); err != nil {
		return authz.Row{}, err
	}
	return authz.Row{
		PType: v[0].String,
		V0:    v[1].String, V1: v[2].String, V2: v[3].String,
		V3: v[4].String, V4: v[5].String, V5: v[6].String,
	}, nil
}
