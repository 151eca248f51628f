package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// storeTables are the tables of the identity, approval and audit stores.
var storeTables = []string{"iam_orgs", "iam_users", "iam_sessions", "iam_reset_tokens", "iam_registration_requests", "iam_audit_events"}

// storeIndexes are their secondary indexes, by table; the partial unique
// ones are checked to be partial and unique.
var storeIndexes = []struct {
	table, name string
	partial     bool
}{
	{"iam_users", "idx_iam_users_email_live", true},
	{"iam_sessions", "idx_iam_sessions_user", false},
	{"iam_sessions", "idx_iam_sessions_expires", false},
	{"iam_reset_tokens", "idx_iam_reset_tokens_user", false},
	{"iam_reset_tokens", "idx_iam_reset_tokens_expires", false},
	{"iam_registration_requests", "idx_iam_registration_requests_org", false},
	{"iam_registration_requests", "idx_iam_registration_requests_user", false},
	{"iam_registration_requests", "idx_iam_registration_requests_pending", true},
	{"iam_audit_events", "idx_iam_audit_events_time", false},
	{"iam_audit_events", "idx_iam_audit_events_actor", false},
	{"iam_audit_events", "idx_iam_audit_events_target", false},
	{"iam_audit_events", "idx_iam_audit_events_org", false},
}

// checkSchema fails unless every store table and index exists, the
// partial ones with their WHERE clause.
func checkSchema(t *testing.T, kind dbtest.Kind, db *gorm.DB) {
	t.Helper()
	m := db.Migrator()
	for _, table := range storeTables {
		if !m.HasTable(table) {
			t.Errorf("table %s missing", table)
		}
	}
	for _, idx := range storeIndexes {
		if !m.HasIndex(idx.table, idx.name) {
			t.Errorf("index %s on %s missing", idx.name, idx.table)
			continue
		}
		if !idx.partial {
			continue
		}
		var def string
		q := "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?"
		if kind == dbtest.Postgres {
			q = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?"
		}
		if err := db.Raw(q, idx.name).Scan(&def).Error; err != nil {
			t.Fatal(err)
		}
		if up := strings.ToUpper(def); !strings.Contains(up, "UNIQUE") || !strings.Contains(up, " WHERE ") {
			t.Errorf("index %s is not a partial unique index: %s", idx.name, def)
		}
	}
}

// recordDDL registers a callback on db that collects the DDL statements
// (CREATE, ALTER, DROP) run through it, and returns what it collected so
// far.
func recordDDL(t *testing.T, db *gorm.DB) func() []string {
	t.Helper()
	var mu sync.Mutex
	var ddl []string
	err := db.Callback().Raw().After("gorm:raw").Register("test:ddl", func(tx *gorm.DB) {
		q := strings.ToUpper(strings.TrimSpace(tx.Statement.SQL.String()))
		for _, verb := range []string{"CREATE", "ALTER", "DROP"} {
			if strings.HasPrefix(q, verb) {
				mu.Lock()
				ddl = append(ddl, tx.Statement.SQL.String())
				mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ddl...)
	}
}

// fixture is one row for each store, written by write.
type fixture struct {
	org   identity.Org
	user  identity.User
	sess  identity.Session
	reset identity.ResetToken
	req   approval.Request
	event audit.Event
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	f := fixture{
		org:  identity.Org{ID: authz.NewOrgID(), Name: "Acme", CreatedAt: at},
		user: identity.User{ID: authz.NewUserID(), Name: "Ada", Status: identity.Active, CreatedAt: at, UpdatedAt: at},
	}
	f.user.Email = fmt.Sprintf("ada.%s@example.com", f.user.ID) // one account per fixture
	_, h := identity.NewToken()
	f.sess = identity.Session{Hash: h, User: f.user.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	_, h = identity.NewToken()
	f.reset = identity.ResetToken{Hash: h, User: f.user.ID, CreatedAt: at, ExpiresAt: at.Add(identity.MaxResetTokenLifetime)}
	var err error
	if f.req, err = approval.NewRequest(f.org.ID, f.user.ID, f.user.Email, f.user.Name, at); err != nil {
		t.Fatal(err)
	}
	f.event = audit.NewEvent(at, f.user.ID, audit.RegistrationSubmit)
	f.event.Org, f.event.Target = f.org.ID, f.user.ID
	return f
}

// write stores every row of f through the three stores.
func (f fixture) write(ctx context.Context, ids identity.Store, reqs approval.Store, log audit.Store) error {
	_, err := log.Append(ctx, f.event)
	return errors.Join(
		ids.CreateOrg(ctx, f.org),
		ids.CreateUser(ctx, f.user),
		ids.CreateSession(ctx, f.sess),
		ids.CreateResetToken(ctx, f.reset),
		reqs.CreateRequest(ctx, f.req),
		err,
	)
}

// stored reports which of f's rows the store holds, as committed.
func (f fixture) stored(t *testing.T, db *gorm.DB, s *gormstore.Store) map[string]bool {
	t.Helper()
	ctx := context.Background()
	found := func(err error) bool {
		if err != nil && !errors.Is(err, authz.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	got := map[string]bool{}
	_, err := s.Identity().Org(ctx, f.org.ID)
	got["org"] = found(err)
	_, err = s.Identity().User(ctx, f.user.ID)
	got["user"] = found(err)
	_, err = s.Identity().Session(ctx, f.sess.Hash)
	got["session"] = found(err)
	_, err = s.Approvals().Request(ctx, f.req.ID)
	got["request"] = found(err)
	events, err := s.Audit().Events(ctx, audit.Filter{AllOrgs: true, Actor: f.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	got["event"] = len(events) > 0
	var n int64
	if err := db.Table("iam_reset_tokens").Where("hash = ?", f.reset.Hash.String()).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	got["reset token"] = n > 0
	return got
}

func checkStored(t *testing.T, what string, got map[string]bool, want bool) {
	t.Helper()
	for k, v := range got {
		if v != want {
			t.Errorf("%s: %s stored = %v, want %v", what, k, v, want)
		}
	}
}

// Open creates the store tables and their indexes, and opening again
// (as every replica does at start) runs no DDL and keeps every row.
func TestOpenStoreTablesIdempotent(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		ctx := context.Background()
		db, s := openStore(t, kind)
		checkSchema(t, kind, db)
		f := newFixture(t)
		if err := f.write(ctx, s.Identity(), s.Approvals(), s.Audit()); err != nil {
			t.Fatal(err)
		}
		ddl := recordDDL(t, db)
		for range 2 {
			again, err := gormstore.Open(ctx, db)
			if err != nil {
				t.Fatalf("Open again: %v", err)
			}
			s = again
		}
		if stmts := ddl(); len(stmts) > 0 {
			t.Errorf("Open on a migrated database ran DDL:\n%s", strings.Join(stmts, "\n"))
		}
		checkSchema(t, kind, db)
		checkStored(t, "after Open again", f.stored(t, db, s), true)
	})
}

// Several Opens at once on a fresh database (replicas starting together)
// all succeed and leave one complete schema.
func TestOpenStoreTablesConcurrent(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db := dbtest.Open(t, kind)
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = gormstore.Open(context.Background(), db) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		checkSchema(t, kind, db)
	})
}

// The stores a Tx returns write in its transaction: their rows commit
// with it, roll back with it, and a storage failure in one of them spoils
// it like a failed policy write.
func TestTxStores(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		ctx := context.Background()
		db := dbtest.Open(t, kind)
		faults := dbtest.InjectFaults(t, db)
		s, err := gormstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}

		t.Run("RollBack", func(t *testing.T) {
			f := newFixture(t)
			err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
				if err := f.write(ctx, tx.Identity(), tx.Approvals(), tx.Audit()); err != nil {
					return err
				}
				// The transaction reads its own writes.
				checkStored(t, "inside the transaction", f.storedIn(t, tx), true)
				return errBoom
			})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Transaction = %v, want the function's error", err)
			}
			checkStored(t, "after rollback", f.stored(t, db, s), false)
		})

		t.Run("Commit", func(t *testing.T) {
			f := newFixture(t)
			err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
				return f.write(ctx, tx.Identity(), tx.Approvals(), tx.Audit())
			})
			if err != nil {
				t.Fatal(err)
			}
			checkStored(t, "after commit", f.stored(t, db, s), true)
		})

		// Outcomes of the store contracts (not found, conflicts, invalid
		// input) write nothing and leave the transaction usable, also on
		// PostgreSQL, where a failed statement would abort it.
		t.Run("OutcomesKeepTxUsable", func(t *testing.T) {
			f := newFixture(t)
			err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
				ids, reqs := tx.Identity(), tx.Approvals()
				if err := f.write(ctx, ids, reqs, tx.Audit()); err != nil {
					return err
				}
				for _, c := range []struct {
					what string
					err  error
					kind error
				}{
					{"second pending request", reqs.CreateRequest(ctx, mustRequest(t, f.org.ID, f.user.ID)), approval.ErrPending},
					{"duplicate user", ids.CreateUser(ctx, f.user), authz.ErrConflict},
					{"missing user", errOf(ids.User(ctx, authz.NewUserID())), authz.ErrNotFound},
					{"spent reset token", errOf(ids.UseResetToken(ctx, f.reset.Hash, f.reset.ExpiresAt)), authz.ErrNotFound},
					{"invalid org", ids.CreateOrg(ctx, identity.Org{}), authz.ErrInvalid},
					{"decided twice", errors.Join(
						reqs.DecideRequest(ctx, f.req.ID, approval.Approved, authz.NewUserID(), "", f.req.CreatedAt),
						reqs.DecideRequest(ctx, f.req.ID, approval.Rejected, authz.NewUserID(), "", f.req.CreatedAt)), approval.ErrDecided},
				} {
					if !errors.Is(c.err, c.kind) {
						t.Errorf("%s: %v, want %v", c.what, c.err, c.kind)
					}
				}
				return tx.Identity().RenameOrg(ctx, f.org.ID, "Acme Corp") // still usable
			})
			if err != nil {
				t.Fatalf("Transaction = %v, want it committed", err)
			}
			checkStored(t, "after commit", f.stored(t, db, s), true)
			if o, err := s.Identity().Org(ctx, f.org.ID); err != nil || o.Name != "Acme Corp" {
				t.Errorf("Org = %+v, %v; want it renamed", o, err)
			}
		})

		// A storage failure in any store spoils the transaction: it rolls
		// back although the function returns nil, and the Tx refuses
		// further work.
		for _, failing := range []string{"identity", "approval", "audit"} {
			t.Run("FailureSpoils/"+failing, func(t *testing.T) {
				f := newFixture(t)
				var storeErr, after error
				err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
					if err := tx.Identity().CreateOrg(ctx, f.org); err != nil {
						return err
					}
					faults.Reset(1) // the next statement fails
					switch failing {
					case "identity":
						storeErr = tx.Identity().CreateUser(ctx, f.user)
					case "approval":
						storeErr = tx.Approvals().CreateRequest(ctx, f.req)
					case "audit":
						_, storeErr = tx.Audit().Append(ctx, f.event)
					}
					faults.Reset(0)
					after = tx.Identity().CreateSession(ctx, f.sess)
					return nil // ignoring the failure
				})
				if !errors.Is(storeErr, dbtest.ErrInjected) {
					t.Fatalf("the failing call returned %v", storeErr)
				}
				if !errors.Is(err, dbtest.ErrInjected) {
					t.Errorf("Transaction = %v, want the store's failure", err)
				}
				if after == nil {
					t.Error("a spoiled Tx accepted another write")
				}
				checkStored(t, "after a spoiled transaction", f.stored(t, db, s), false)
			})
		}

		t.Run("DeadAfterTransaction", func(t *testing.T) {
			var ids identity.Store
			var reqs approval.Store
			var log audit.Store
			if err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
				ids, reqs, log = tx.Identity(), tx.Approvals(), tx.Audit()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t)
			if err := f.write(ctx, ids, reqs, log); err == nil || strings.Count(err.Error(), "transaction is over") != 6 {
				t.Errorf("writes after the transaction: %v", err)
			}
			checkStored(t, "after writes on a dead Tx", f.stored(t, db, s), false)
		})
	})
}

// storedIn is stored, read through the Tx's own stores.
func (f fixture) storedIn(t *testing.T, tx *gormstore.Tx) map[string]bool {
	t.Helper()
	ctx := context.Background()
	got := map[string]bool{}
	_, err := tx.Identity().Org(ctx, f.org.ID)
	got["org"] = err == nil
	_, err = tx.Identity().User(ctx, f.user.ID)
	got["user"] = err == nil
	_, err = tx.Identity().Session(ctx, f.sess.Hash)
	got["session"] = err == nil
	_, err = tx.Approvals().Request(ctx, f.req.ID)
	got["request"] = err == nil
	events, err := tx.Audit().Events(ctx, audit.Filter{AllOrgs: true, Actor: f.user.ID})
	got["event"] = err == nil && len(events) == 1
	return got
}

func mustRequest(t *testing.T, org authz.OrgID, user authz.UserID) approval.Request {
	t.Helper()
	r, err := approval.NewRequest(org, user, "ada@example.com", "Ada", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func errOf[T any](_ T, err error) error { return err }

// dump reads every row of the store tables, to compare states.
func dump(t *testing.T, db *gorm.DB) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, table := range storeTables {
		var rows []map[string]any
		if err := db.Table(table).Order("1").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		out[table] = rows
	}
	return out
}

// A method of several statements, on the Store's database, runs in a
// transaction of its own: whichever of its statements fails, nothing of
// it stays.
func TestStoreMethodsAtomic(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		ctx := context.Background()
		db := dbtest.Open(t, kind)
		faults := dbtest.InjectFaults(t, db)
		s, err := gormstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		f := newFixture(t)
		if err := f.write(ctx, s.Identity(), s.Approvals(), s.Audit()); err != nil {
			t.Fatal(err)
		}
		_, h := identity.NewToken()
		newer := identity.ResetToken{Hash: h, User: f.user.ID, CreatedAt: f.reset.CreatedAt.Add(time.Minute), ExpiresAt: f.reset.ExpiresAt}
		ids := s.Identity()
		for _, c := range []struct {
			name string
			op   func() error
		}{
			{"CreateResetToken", func() error { return ids.CreateResetToken(ctx, newer) }},
			{"UseResetToken", func() error { return errOf(ids.UseResetToken(ctx, newer.Hash, newer.CreatedAt)) }},
			{"DeleteExpired", func() error { return ids.DeleteExpired(ctx, f.sess.ExpiresAt) }},
			{"CreateRequest", func() error { return s.Approvals().CreateRequest(ctx, mustRequest(t, f.org.ID, authz.NewUserID())) }},
			{"DecideRequest", func() error {
				return s.Approvals().DecideRequest(ctx, f.req.ID, approval.Approved, authz.NewUserID(), "", f.req.CreatedAt)
			}},
			{"Append", func() error { return errOf(s.Audit().Append(ctx, f.event)) }},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := dump(t, db)
				for n := 1; ; n++ {
					if n > 10 {
						t.Fatal("the operation never succeeded")
					}
					faults.Reset(n)
					err := c.op()
					faults.Reset(0)
					if err == nil {
						break // n is past its last statement
					}
					if !errors.Is(err, dbtest.ErrInjected) {
						t.Fatalf("statement %d failing: %v", n, err)
					}
					if after := dump(t, db); !reflect.DeepEqual(after, before) {
						t.Fatalf("statement %d failing left changes:\n%v\nwant\n%v", n, after, before)
					}
				}
			})
		}
	})
}

// On PostgreSQL, transactions that append audit events commit in the
// order of their IDs: a transaction appending while another holds an
// uncommitted event waits for it. (SQLite admits one writing transaction
// at a time anyway.) So a reader paging with audit.Filter.Before never
// skips an event that commits later below its cursor.
func TestAuditAppendsCommitInIDOrder(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		ctx := context.Background()
		_, s := openStore(t, kind)
		e := audit.NewEvent(time.Now(), authz.NewUserID(), audit.SessionLogin)
		appended, release, firstDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
		releaseOnce := sync.OnceFunc(func() { close(release) })
		defer func() { releaseOnce(); <-firstDone }()
		var first audit.Event
		go func() {
			defer close(firstDone)
			err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
				var err error
				first, err = tx.Audit().Append(ctx, e)
				close(appended)
				<-release
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
		<-appended
		secondDone := make(chan error, 1)
		var second audit.Event
		go func() {
			var err error
			second, err = s.Audit().Append(ctx, e)
			secondDone <- err
		}()
		// Give the second append the time to overtake, if it could.
		select {
		case err := <-secondDone:
			t.Fatalf("an append returned (err %v) while an earlier one was uncommitted", err)
		case <-time.After(300 * time.Millisecond):
		}
		releaseOnce()
		if err := <-secondDone; err != nil {
			t.Fatal(err)
		}
		<-firstDone
		if second.ID <= first.ID {
			t.Errorf("IDs %d then %d, want increasing", first.ID, second.ID)
		}
	})
}

// The identity store compares instants, not wall clocks: times given in
// any zone are stored in UTC. (identitytest uses UTC only; approvaltest
// and audittest check zones for their stores.)
func TestIdentityTimeZones(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		ctx := context.Background()
		_, s := openStore(t, kind)
		ids := s.Identity()
		east, west := time.FixedZone("UTC+9", 9*3600), time.FixedZone("UTC-5", -5*3600)
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		user := authz.NewUserID()
		_, h := identity.NewToken()
		tok := identity.ResetToken{Hash: h, User: user, CreatedAt: at.In(east), ExpiresAt: at.Add(30 * time.Minute).In(east)}
		if err := ids.CreateResetToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// 12:31 UTC is after the expiry (12:30 UTC), though as wall
		// clocks 07:31 in UTC-5 reads before 21:30 in UTC+9.
		if _, err := ids.UseResetToken(ctx, h, at.Add(31*time.Minute).In(west)); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("UseResetToken after expiry (given in UTC-5) = %v, want ErrNotFound", err)
		}
		got, err := ids.UseResetToken(ctx, h, at.Add(29*time.Minute).In(east))
		if err != nil {
			t.Fatalf("UseResetToken before expiry = %v", err)
		}
		if !got.ExpiresAt.Equal(tok.ExpiresAt) || !got.CreatedAt.Equal(tok.CreatedAt) {
			t.Errorf("token read back as %+v, want %+v", got, tok)
		}

		_, h = identity.NewToken()
		se := identity.Session{Hash: h, User: user, CreatedAt: at.In(west), ExpiresAt: at.Add(time.Hour).In(west)}
		if err := ids.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		// Half an hour before expiry (13:00 UTC), given in UTC+9 (21:30,
		// a wall clock later than 08:00 in UTC-5): the session stays.
		if err := ids.DeleteExpired(ctx, at.Add(30*time.Minute).In(east)); err != nil {
			t.Fatal(err)
		}
		if _, err := ids.Session(ctx, h); err != nil {
			t.Fatalf("a live session was deleted as expired: %v", err)
		}
		// At expiry, given in UTC-5: it goes.
		if err := ids.DeleteExpired(ctx, at.Add(time.Hour).In(west)); err != nil {
			t.Fatal(err)
		}
		if _, err := ids.Session(ctx, h); !errors.Is(err, authz.ErrNotFound) {
			t.Fatalf("an expired session stayed: %v", err)
		}
	})
}

// Deleting every row of an owner whose id is not canonical is refused as
// invalid input: no stored row can hold such an id, so it can only be a
// caller's mistake, which a silent "deleted nothing" would hide.
func TestDeleteByMalformedOwner(t *testing.T) {
	_, s := openStore(t, dbtest.SQLiteMemory)
	ctx := context.Background()
	for _, err := range []error{
		s.Identity().DeleteSessions(ctx, "usr_*"),
		s.Identity().DeleteResetTokens(ctx, ""),
		s.Approvals().DeleteUserRequests(ctx, "ada@example.com"),
		s.Approvals().DeleteOrgRequests(ctx, "org_*"),
		s.Identity().DeleteUser(ctx, authz.NewUserID(), time.Time{}),
	} {
		if !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("got %v, want ErrInvalid", err)
		}
	}
}

// A deleted account keeps its row (its id is never issued again) but not
// its password hash.
func TestDeletedUserLosesPasswordHash(t *testing.T) {
	db, s := openStore(t, dbtest.SQLiteMemory)
	ctx := context.Background()
	f := newFixture(t)
	f.user.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	if err := s.Identity().CreateUser(ctx, f.user); err != nil {
		t.Fatal(err)
	}
	if err := s.Identity().DeleteUser(ctx, f.user.ID, f.user.CreatedAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var row struct {
		PasswordHash string
		DeletedAt    *time.Time
	}
	if err := db.Table("iam_users").Select("password_hash", "deleted_at").Where("id = ?", string(f.user.ID)).Take(&row).Error; err != nil {
		t.Fatal(err)
	}
	if row.PasswordHash != "" || row.DeletedAt == nil || !row.DeletedAt.Equal(f.user.CreatedAt.Add(time.Hour)) {
		t.Errorf("deleted user's row: %+v", row)
	}
}

// Of several reset tokens issued to one user at once, exactly one stays:
// a newer token voids older ones under concurrency too (on PostgreSQL
// through the user's advisory lock).
func TestConcurrentResetTokensLeaveOne(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		ctx := context.Background()
		db, s := openStore(t, kind)
		ids := s.Identity()
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for round := range 5 {
			user := authz.NewUserID()
			const n = 4
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				_, h := identity.NewToken()
				tok := identity.ResetToken{Hash: h, User: user, CreatedAt: at, ExpiresAt: at.Add(time.Minute)}
				wg.Go(func() { errs[i] = ids.CreateResetToken(ctx, tok) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			var stored int64
			if err := db.Table("iam_reset_tokens").Where("user_id = ?", string(user)).Count(&stored).Error; err != nil {
				t.Fatal(err)
			}
			if stored != 1 {
				t.Fatalf("round %d: %d of %d concurrently issued reset tokens stayed, want 1", round, stored, n)
			}
		}
	})
}
