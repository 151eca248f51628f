package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// eachKind runs f as a parallel subtest on every kind of test database.
func eachKind(t *testing.T, f func(t *testing.T, kind dbtest.Kind)) {
	t.Helper()
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			f(t, kind)
		})
	}
}

func openStore(t *testing.T, kind dbtest.Kind) (*gorm.DB, *gormstore.Store) {
	t.Helper()
	db := dbtest.Open(t, kind)
	s, err := gormstore.Open(context.Background(), db)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db, s
}

// rawRows reads the whole rule table with plain GORM, independently of
// Store.Rows, sorted.
func rawRows(t *testing.T, db *gorm.DB) []authz.Row {
	t.Helper()
	var lines []gormadapter.CasbinRule
	if err := db.Find(&lines).Error; err != nil {
		t.Fatalf("read casbin_rule: %v", err)
	}
	rows := make([]authz.Row, 0, len(lines))
	for _, l := range lines {
		rows = append(rows, authz.Row{PType: l.Ptype, V0: l.V0, V1: l.V1, V2: l.V2, V3: l.V3, V4: l.V4, V5: l.V5})
	}
	return sortRows(rows)
}

func sortRows(rows []authz.Row) []authz.Row {
	slices.SortFunc(rows, func(a, b authz.Row) int { return strings.Compare(a.String(), b.String()) })
	return rows
}

// groupingRows is rawRows without the base rules, which it checks are
// all there exactly once.
func groupingRows(t *testing.T, db *gorm.DB) []authz.Row {
	t.Helper()
	var out []authz.Row
	base := 0
	for _, r := range rawRows(t, db) {
		if authz.IsBaseRow(r) {
			base++
			continue
		}
		out = append(out, r)
	}
	if base != len(authz.BaseRows()) {
		t.Fatalf("%d base rows stored, want %d", base, len(authz.BaseRows()))
	}
	return out
}

// rowsOf encodes rules as sorted rows.
func rowsOf(rules iter.Seq[authz.Rule]) []authz.Row {
	var rows []authz.Row
	for r := range rules {
		row, err := r.Row()
		if err != nil {
			panic(err) // test data is valid by construction
		}
		rows = append(rows, row)
	}
	return sortRows(rows)
}

// rowSeq yields rows as a store would.
func rowSeq(rows []authz.Row) iter.Seq2[authz.Row, error] {
	return func(yield func(authz.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func newEngine(t *testing.T, opts ...authz.Option) *authz.Engine {
	t.Helper()
	e, err := authz.NewEngine(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func loadEngine(t *testing.T, s *gormstore.Store, opts ...authz.Option) *authz.Engine {
	t.Helper()
	e := newEngine(t, opts...)
	if err := s.Load(context.Background(), e); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e
}

func ruleSet(rules iter.Seq[authz.Rule]) map[authz.Rule]bool {
	m := make(map[authz.Rule]bool)
	for r := range rules {
		m[r] = true
	}
	return m
}

// sameEngines requires got and want to hold the same rules and to answer
// a grid of checks identically.
func sameEngines(t *testing.T, got, want *authz.Engine, users []authz.UserID, orgs []authz.OrgID) {
	t.Helper()
	if g, w := ruleSet(got.Rules()), ruleSet(want.Rules()); !maps.Equal(g, w) {
		t.Fatalf("rules differ:\n got  %v\n want %v", rowsOf(maps.Keys(g)), rowsOf(maps.Keys(w)))
	}
	for _, u := range users {
		if got.IsPlatformAdmin(u) != want.IsPlatformAdmin(u) {
			t.Fatalf("IsPlatformAdmin(%s) differs", u)
		}
		for _, o := range orgs {
			for _, c := range authz.Categories() {
				if g, w := got.Check(u, o, c), want.Check(u, o, c); g != w {
					t.Fatalf("Check(%s, %s, %v) = %+v, want %+v", u, o, c, g, w)
				}
			}
		}
	}
}

func transaction(t *testing.T, s *gormstore.Store, fn func(tx *gormstore.Tx) error) {
	t.Helper()
	if err := s.Transaction(context.Background(), fn); err != nil {
		t.Fatalf("Transaction: %v", err)
	}
}

func cats(cs ...authz.Category) authz.CategorySet { return authz.NewCategorySet(cs...) }

func TestOpenIdempotent(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		first := rawRows(t, db)
		if want := sortRows(authz.BaseRows()); !slices.Equal(first, want) {
			t.Fatalf("after Open: %v\nwant the base rows %v", first, want)
		}
		for range 2 {
			if _, err := gormstore.Open(context.Background(), db); err != nil {
				t.Fatalf("Open again: %v", err)
			}
		}
		if again := rawRows(t, db); !slices.Equal(again, first) {
			t.Fatalf("Open again changed the table: %v", again)
		}
		for idx, want := range map[string]bool{"idx_casbin_rule": true, "idx_casbin_rule_ptype_v2_v1_v0": true, "idx_casbin_rule_v2": false} {
			if db.Migrator().HasIndex(&gormadapter.CasbinRule{}, idx) != want {
				t.Errorf("index %s present: %v", idx, !want)
			}
		}
		// A fresh store loads into an empty engine.
		sameEngines(t, loadEngine(t, s), newEngine(t), nil, nil)
	})
}

// Several Opens at once on a fresh database (several replicas starting)
// all succeed and seed the base rules once.
func TestOpenConcurrent(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db := dbtest.Open(t, kind)
		const n = 6
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = gormstore.Open(context.Background(), db)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
			}
		}
		if got, want := rawRows(t, db), sortRows(authz.BaseRows()); !slices.Equal(got, want) {
			t.Fatalf("rows %v\nwant %v", got, want)
		}
	})
}

// Open puts back a base rule that went missing, and leaves the rest.
func TestOpenRestoresBaseRule(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		u, o := authz.NewUserID(), authz.NewOrgID()
		transaction(t, s, func(tx *gormstore.Tx) error {
			return tx.SetMembership(u, o, authz.Membership{Role: authz.Member})
		})
		before := rawRows(t, db)
		gone := authz.BaseRows()[3]
		if err := db.Where("ptype = ? AND v0 = ? AND v1 = ?", gone.PType, gone.V0, gone.V1).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
			t.Fatal(err)
		}
		if err := s.Load(context.Background(), newEngine(t)); err == nil {
			t.Fatal("Load accepted a policy without a base rule")
		}
		if _, err := gormstore.Open(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		if after := rawRows(t, db); !slices.Equal(after, before) {
			t.Fatalf("rows %v\nwant %v", after, before)
		}
	})
}

func TestOpenNilDB(t *testing.T) {
	if _, err := gormstore.Open(context.Background(), nil); err == nil {
		t.Fatal("Open(nil) succeeded")
	}
}

// Each write stores exactly the rows it means, and the policy loaded back
// from the store equals an Engine given the same writes.
func TestWrites(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		ref := newEngine(t)
		alice, bob := authz.NewUserID(), authz.NewUserID()
		acme, beta, idle := authz.NewOrgID(), authz.NewOrgID(), authz.NewOrgID()
		users, orgs := []authz.UserID{alice, bob, authz.NewUserID()}, []authz.OrgID{acme, beta, idle}
		g := func(u authz.UserID, v1 string, dom string) authz.Row {
			return authz.Row{PType: "g", V0: string(u), V1: v1, V2: dom}
		}

		steps := []struct {
			name  string
			store func(tx *gormstore.Tx) error
			ref   func(e *authz.Engine) error
			want  []authz.Row
		}{{
			name: "alice member of acme with infra and vpn",
			store: func(tx *gormstore.Tx) error {
				return tx.SetMembership(alice, acme, authz.Membership{Role: authz.Member, Categories: cats(authz.Infra, authz.VPN)})
			},
			ref: func(e *authz.Engine) error {
				return e.SetMembership(alice, acme, authz.Membership{Role: authz.Member, Categories: cats(authz.Infra, authz.VPN)})
			},
			want: []authz.Row{
				g(alice, "role:member", string(acme)), g(alice, "cat:infra", string(acme)), g(alice, "cat:vpn", string(acme)),
			},
		}, {
			name: "alice manager of acme, vpn kept, infra dropped",
			store: func(tx *gormstore.Tx) error {
				return tx.SetMembership(alice, acme, authz.Membership{Role: authz.Manager, Categories: cats(authz.VPN)})
			},
			ref: func(e *authz.Engine) error {
				return e.SetMembership(alice, acme, authz.Membership{Role: authz.Manager, Categories: cats(authz.VPN)})
			},
			want: []authz.Row{g(alice, "role:manager", string(acme)), g(alice, "cat:vpn", string(acme))},
		}, {
			name: "alice platform admin and member of beta, bob audit in acme without role",
			store: func(tx *gormstore.Tx) error {
				return errors.Join(
					tx.SetPlatformAdmin(alice, true),
					tx.SetPlatformAdmin(alice, true), // again: nothing more
					tx.SetMembership(alice, beta, authz.Membership{Role: authz.Member}),
					tx.SetMembership(bob, acme, authz.Membership{Categories: cats(authz.Audit)}),
					tx.SetMembership(bob, beta, authz.Membership{Role: authz.Member, Categories: authz.AllCategories}),
				)
			},
			ref: func(e *authz.Engine) error {
				return errors.Join(
					e.SetPlatformAdmin(alice, true),
					e.SetMembership(alice, beta, authz.Membership{Role: authz.Member}),
					e.SetMembership(bob, acme, authz.Membership{Categories: cats(authz.Audit)}),
					e.SetMembership(bob, beta, authz.Membership{Role: authz.Member, Categories: authz.AllCategories}),
				)
			},
			want: append([]authz.Row{
				g(alice, "role:platformadmin", "global"),
				g(alice, "role:manager", string(acme)), g(alice, "cat:vpn", string(acme)),
				g(alice, "role:member", string(beta)),
				g(bob, "cat:audit", string(acme)),
				g(bob, "role:member", string(beta)),
			}, func() (rows []authz.Row) {
				for _, c := range authz.Categories() {
					rows = append(rows, g(bob, "cat:"+c.String(), string(beta)))
				}
				return rows
			}()...),
		}, {
			name: "alice no longer platform admin; removing a membership she lacks is nothing",
			store: func(tx *gormstore.Tx) error {
				return errors.Join(
					tx.SetPlatformAdmin(alice, false),
					tx.SetPlatformAdmin(alice, false),
					tx.SetMembership(alice, idle, authz.Membership{}),
				)
			},
			ref: func(e *authz.Engine) error {
				return errors.Join(e.SetPlatformAdmin(alice, false), e.RemoveMembership(alice, idle))
			},
		}, {
			name: "bob removed from beta",
			store: func(tx *gormstore.Tx) error {
				return tx.SetMembership(bob, beta, authz.Membership{})
			},
			ref: func(e *authz.Engine) error { return e.RemoveMembership(bob, beta) },
		}, {
			name: "acme removed",
			store: func(tx *gormstore.Tx) error {
				got, err := tx.RemoveOrg(acme)
				if err != nil {
					return err
				}
				want := []authz.UserID{alice, bob}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					return fmt.Errorf("RemoveOrg returned %v, want %v", got, want)
				}
				if got, err := tx.RemoveOrg(idle); err != nil || len(got) != 0 {
					return fmt.Errorf("RemoveOrg(idle) = %v, %v; want nothing", got, err)
				}
				return nil
			},
			ref: func(e *authz.Engine) error {
				return errors.Join(e.RemoveMembership(alice, acme), e.RemoveMembership(bob, acme))
			},
			want: []authz.Row{g(alice, "role:member", string(beta))},
		}, {
			name: "alice removed, bob gets acme back",
			store: func(tx *gormstore.Tx) error {
				return errors.Join(
					tx.SetPlatformAdmin(alice, true),
					tx.RemoveUser(alice),
					tx.RemoveUser(alice),
					tx.SetMembership(bob, acme, authz.Membership{Role: authz.Manager}),
				)
			},
			ref: func(e *authz.Engine) error {
				return errors.Join(e.RemoveUser(alice), e.SetMembership(bob, acme, authz.Membership{Role: authz.Manager}))
			},
			want: []authz.Row{g(bob, "role:manager", string(acme))},
		}}
		for _, step := range steps {
			transaction(t, s, step.store)
			if err := step.ref(ref); err != nil {
				t.Fatalf("%s: engine: %v", step.name, err)
			}
			got := groupingRows(t, db)
			if want := rowsOf(ref.Rules()); !slices.Equal(got, want) {
				t.Fatalf("%s: stored %v\nengine holds %v", step.name, got, want)
			}
			if step.want != nil {
				if want := sortRows(step.want); !slices.Equal(got, want) {
					t.Fatalf("%s: stored %v\nwant %v", step.name, got, want)
				}
			}
			sameEngines(t, loadEngine(t, s), ref, users, orgs)
		}
	})
}

func TestUserRules(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		_, s := openStore(t, kind)
		u := authz.NewUserID()
		o1, o2 := authz.NewOrgID(), authz.NewOrgID()
		if o2 < o1 {
			o1, o2 = o2, o1
		}
		transaction(t, s, func(tx *gormstore.Tx) error {
			if rules, err := tx.UserRules(u); err != nil || len(rules) != 0 {
				return fmt.Errorf("UserRules of nobody = %v, %v", rules, err)
			}
			err := errors.Join(
				tx.SetMembership(u, o2, authz.Membership{Role: authz.Member, Categories: cats(authz.Backup, authz.Infra)}),
				tx.SetMembership(u, o1, authz.Membership{Role: authz.Manager}),
				tx.SetPlatformAdmin(u, true),
			)
			if err != nil {
				return err
			}
			// The transaction sees its own writes.
			got, err := tx.UserRules(u)
			if err != nil {
				return err
			}
			want := []authz.Rule{
				authz.PlatformAdminRule(u),
				authz.RoleRule(u, o1, authz.Manager),
				authz.RoleRule(u, o2, authz.Member),
				authz.GrantRule(u, o2, authz.Infra),
				authz.GrantRule(u, o2, authz.Backup),
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("UserRules = %v\nwant %v", got, want)
			}
			return nil
		})
	})
}

var errBoom = errors.New("boom")

// A failing function rolls everything back, whatever it wrote.
func TestTransactionRollsBack(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		u, o := authz.NewUserID(), authz.NewOrgID()
		transaction(t, s, func(tx *gormstore.Tx) error {
			return tx.SetMembership(u, o, authz.Membership{Role: authz.Member, Categories: cats(authz.Device)})
		})
		before := rawRows(t, db)

		type other struct {
			ID   uint
			Note string
		}
		if err := db.AutoMigrate(&other{}); err != nil {
			t.Fatal(err)
		}
		err := s.Transaction(context.Background(), func(tx *gormstore.Tx) error {
			if err := errors.Join(
				tx.SetMembership(u, o, authz.Membership{Role: authz.Manager}),
				tx.SetPlatformAdmin(u, true),
				tx.SetMembership(authz.NewUserID(), o, authz.Membership{Role: authz.Member}),
				tx.DB().Create(&other{Note: "written in the same transaction"}).Error,
			); err != nil {
				return err
			}
			if _, err := tx.RemoveOrg(o); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Transaction returned %v, want the function's error", err)
		}
		if after := rawRows(t, db); !slices.Equal(after, before) {
			t.Fatalf("rows after rollback %v\nwant %v", after, before)
		}
		var n int64
		if err := db.Model(&other{}).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("other table holds %d rows (%v) after rollback", n, err)
		}

		// A panic rolls back too, and goes on.
		func() {
			defer func() {
				if recover() == nil {
					t.Error("panic was swallowed")
				}
			}()
			_ = s.Transaction(context.Background(), func(tx *gormstore.Tx) error {
				if err := tx.RemoveUser(u); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if after := rawRows(t, db); !slices.Equal(after, before) {
			t.Fatalf("rows after panic %v\nwant %v", after, before)
		}
	})
}

// Invalid input is refused with an *authz.InvalidError before anything is
// written, and leaves the transaction usable.
func TestInvalidInput(t *testing.T) {
	u, o := authz.NewUserID(), authz.NewOrgID()
	badUsers := []authz.UserID{"", "*", "usr_*", authz.UserID(strings.ToUpper(string(u))), u + " ", "global", authz.UserID(o)}
	badOrgs := []authz.OrgID{"", "*", "global", authz.OrgID(strings.ToUpper(string(o))), "org_" + "x,y", authz.OrgID(u)}
	type op struct {
		name string
		do   func(tx *gormstore.Tx) error
	}
	var ops []op
	for _, bu := range badUsers {
		ops = append(ops,
			op{fmt.Sprintf("SetPlatformAdmin(%q)", bu), func(tx *gormstore.Tx) error { return tx.SetPlatformAdmin(bu, true) }},
			op{fmt.Sprintf("SetMembership(%q)", bu), func(tx *gormstore.Tx) error {
				return tx.SetMembership(bu, o, authz.Membership{Role: authz.Member})
			}},
			op{fmt.Sprintf("RemoveUser(%q)", bu), func(tx *gormstore.Tx) error { return tx.RemoveUser(bu) }},
			op{fmt.Sprintf("UserRules(%q)", bu), func(tx *gormstore.Tx) error { _, err := tx.UserRules(bu); return err }},
		)
	}
	for _, bo := range badOrgs {
		ops = append(ops,
			op{fmt.Sprintf("SetMembership(org %q)", bo), func(tx *gormstore.Tx) error {
				return tx.SetMembership(u, bo, authz.Membership{Role: authz.Manager})
			}},
			op{fmt.Sprintf("RemoveOrg(%q)", bo), func(tx *gormstore.Tx) error { _, err := tx.RemoveOrg(bo); return err }},
		)
	}
	for _, m := range []authz.Membership{
		{Role: authz.PlatformAdmin},
		{Role: authz.Role(9)},
		{Role: authz.Member, Categories: 0x80},
		{Categories: authz.AllCategories + 1},
	} {
		ops = append(ops, op{fmt.Sprintf("SetMembership(%+v)", m), func(tx *gormstore.Tx) error { return tx.SetMembership(u, o, m) }})
	}

	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		before := rawRows(t, db)
		for _, op := range ops {
			err := s.Transaction(context.Background(), func(tx *gormstore.Tx) error {
				err := op.do(tx)
				var inv *authz.InvalidError
				if !errors.Is(err, authz.ErrInvalid) || !errors.As(err, &inv) {
					t.Errorf("%s: error %v, want an *authz.InvalidError", op.name, err)
				} else if !strings.HasPrefix(err.Error(), "gormstore: ") {
					t.Errorf("%s: error %q lacks the operation", op.name, err)
				}
				// The transaction may go on: a valid read still works, and
				// committing writes nothing.
				_, err = tx.UserRules(u)
				return err
			})
			if err != nil {
				t.Errorf("%s: Transaction: %v", op.name, err)
			}
		}
		if after := rawRows(t, db); !slices.Equal(after, before) {
			t.Fatalf("invalid input changed the table: %v", after)
		}
	})
}

// A delete that does not remove the row the write just read (here: a
// concurrent removal, simulated inside the transaction) fails with
// ErrConflict, spoils the transaction, and rolls everything back even if
// the function ignores the error.
func TestRevokeOfMissingRowFails(t *testing.T) {
	u, o := authz.NewUserID(), authz.NewOrgID()
	revokes := []struct {
		name string
		do   func(tx *gormstore.Tx) error
	}{
		{"SetMembership", func(tx *gormstore.Tx) error {
			return tx.SetMembership(u, o, authz.Membership{Role: authz.Member})
		}},
		{"SetMembership zero", func(tx *gormstore.Tx) error { return tx.SetMembership(u, o, authz.Membership{}) }},
		{"SetPlatformAdmin", func(tx *gormstore.Tx) error { return tx.SetPlatformAdmin(u, false) }},
		{"RemoveUser", func(tx *gormstore.Tx) error { return tx.RemoveUser(u) }},
		{"RemoveOrg", func(tx *gormstore.Tx) error { _, err := tx.RemoveOrg(o); return err }},
	}
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		transaction(t, s, func(tx *gormstore.Tx) error {
			return errors.Join(
				tx.SetPlatformAdmin(u, true),
				tx.SetMembership(u, o, authz.Membership{Role: authz.Manager, Categories: cats(authz.Service)}),
			)
		})
		before := rawRows(t, db)
		for _, rv := range revokes {
			for _, ignore := range []bool{false, true} {
				s.SetBeforeDelete(func(tx *gorm.DB) {
					if err := tx.Where("ptype = ? AND v0 = ?", "g", string(u)).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
						t.Errorf("hook: %v", err)
					}
				})
				var writeErr, laterErr error
				err := s.Transaction(context.Background(), func(tx *gormstore.Tx) error {
					writeErr = rv.do(tx)
					laterErr = tx.SetMembership(authz.NewUserID(), o, authz.Membership{Role: authz.Member})
					if ignore {
						return nil
					}
					return writeErr
				})
				s.SetBeforeDelete(nil)
				if !errors.Is(writeErr, authz.ErrConflict) {
					t.Errorf("%s: write error %v, want ErrConflict", rv.name, writeErr)
				}
				if laterErr == nil {
					t.Errorf("%s: a write after the failed one succeeded", rv.name)
				}
				if !errors.Is(err, authz.ErrConflict) {
					t.Errorf("%s (ignored %v): Transaction returned %v, want ErrConflict", rv.name, ignore, err)
				}
				if after := rawRows(t, db); !slices.Equal(after, before) {
					t.Fatalf("%s (ignored %v): rows %v\nwant %v", rv.name, ignore, after, before)
				}
			}
		}
	})
}

func TestTxDeadAfterTransaction(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		var kept *gormstore.Tx
		transaction(t, s, func(tx *gormstore.Tx) error { kept = tx; return nil })
		u, o := authz.NewUserID(), authz.NewOrgID()
		_, removeErr := kept.RemoveOrg(o)
		_, rulesErr := kept.UserRules(u)
		for i, err := range []error{
			kept.SetPlatformAdmin(u, true),
			kept.SetMembership(u, o, authz.Membership{Role: authz.Member}),
			kept.RemoveUser(u),
			removeErr,
			rulesErr,
		} {
			if err == nil {
				t.Errorf("write %d on a finished Tx succeeded", i)
			}
		}
		if got := groupingRows(t, db); len(got) != 0 {
			t.Fatalf("rows written after the transaction: %v", got)
		}
	})
}

// Rows streams a large table into the Engine, and stopping early releases
// the query.
func TestRowsStreaming(t *testing.T) {
	const n = 20000
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		orgs := []authz.OrgID{authz.NewOrgID(), authz.NewOrgID(), authz.NewOrgID()}
		var (
			lines []gormadapter.CasbinRule
			rows  = authz.BaseRows()
			users []authz.UserID
		)
		for len(lines) < n {
			u := authz.NewUserID()
			users = append(users, u)
			m := authz.Membership{Role: authz.Member, Categories: authz.CategorySet(len(users)) & authz.AllCategories}
			if len(users)%10 == 0 {
				m.Role = authz.Manager
			}
			rules, err := authz.MembershipRules(u, orgs[len(users)%len(orgs)], m)
			if err != nil {
				t.Fatal(err)
			}
			if len(users)%1000 == 0 {
				rules = append(rules, authz.PlatformAdminRule(u))
			}
			rules = rules[:min(len(rules), n-len(lines))]
			for _, row := range rowsOf(slices.Values(rules)) {
				rows = append(rows, row)
				lines = append(lines, gormadapter.CasbinRule{Ptype: row.PType, V0: row.V0, V1: row.V1, V2: row.V2})
			}
		}
		// The reference: the same rows, loaded from memory.
		ref := newEngine(t)
		if err := ref.Load(rowSeq(rows)); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateInBatches(lines, 1000).Error; err != nil {
			t.Fatal(err)
		}

		count := 0
		for _, err := range s.Rows(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			count++
		}
		if want := n + len(authz.BaseRows()); count != want {
			t.Fatalf("Rows yielded %d rows, want %d", count, want)
		}
		e := loadEngine(t, s)
		if got := len(ruleSet(e.Rules())); got != n {
			t.Fatalf("engine holds %d rules, want %d", got, n)
		}
		sample := users[:50]
		sample = append(sample, users[len(users)-50:]...)
		sameEngines(t, e, ref, sample, orgs)

		// Stop early, then use the database again: the query must have
		// been closed (with one connection, a leaked one would block).
		for range 3 {
			for _, err := range s.Rows(context.Background()) {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var total int64
		if err := db.WithContext(ctx).Model(&gormadapter.CasbinRule{}).Count(&total).Error; err != nil {
			t.Fatalf("database unusable after an early stop: %v", err)
		}
	})
}

// A failing query yields one error and stops.
func TestRowsError(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		_, s := openStore(t, kind)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var errs int
		for _, err := range s.Rows(ctx) {
			if err == nil {
				t.Fatal("a row from a cancelled query")
			}
			errs++
		}
		if errs != 1 {
			t.Fatalf("%d errors, want 1", errs)
		}
		if err := s.Load(ctx, newEngine(t)); err == nil {
			t.Fatal("Load with a cancelled context succeeded")
		}
	})
}

// Load refuses a policy holding a row this module never writes, and the
// Engine keeps what it had; writes refuse to work from such a row.
func TestLoadRejectsForeignRows(t *testing.T) {
	u, o := authz.NewUserID(), authz.NewOrgID()
	foreign := []authz.Row{
		{PType: "p", V0: "role:member", V1: "infra"},
		{PType: "p", V0: "cat:infra", V1: "vpn"},
		{PType: "p", V0: "role:manager", V1: "infra", V2: "extra"},
		{PType: "p", V0: "*", V1: "infra"},
		{PType: "g", V0: "*", V1: "role:manager", V2: string(o)},
		{PType: "g", V0: string(u), V1: "role:manager", V2: "*"},
		{PType: "g", V0: string(u), V1: "*", V2: string(o)},
		{PType: "g", V0: string(u), V1: "role:platformadmin", V2: string(o)},
		{PType: "g", V0: string(u), V1: "role:manager", V2: "global"},
		{PType: "g", V0: string(u), V1: "role:owner", V2: string(o)},
		{PType: "g", V0: string(u), V1: "cat:infra", V2: string(o), V3: "x"},
		{PType: "g", V0: strings.ToUpper(string(u)), V1: "role:member", V2: string(o)},
		{PType: "g2", V0: string(u), V1: "role:member", V2: string(o)},
		// Rows reads a row as one text of fields joined by 0x1f: a field
		// holding one must not shift the others into a valid rule.
		{PType: "g", V0: string(u) + "\x1frole:member\x1f" + string(o), V1: "", V2: ""},
		{PType: "g\x1f" + string(u), V0: "role:member", V1: string(o)},
	}
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		for i, row := range foreign {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				db, s := openStore(t, kind)
				transaction(t, s, func(tx *gormstore.Tx) error {
					return tx.SetMembership(u, o, authz.Membership{Role: authz.Member, Categories: cats(authz.Infra)})
				})
				e := loadEngine(t, s)
				ref := loadEngine(t, s)
				line := gormadapter.CasbinRule{Ptype: row.PType, V0: row.V0, V1: row.V1, V2: row.V2, V3: row.V3, V4: row.V4, V5: row.V5}
				if err := db.Create(&line).Error; err != nil {
					t.Fatal(err)
				}
				if err := s.Load(context.Background(), e); err == nil {
					t.Fatalf("Load accepted %v", row)
				}
				sameEngines(t, e, ref, []authz.UserID{u}, []authz.OrgID{o})
				if !e.Check(u, o, authz.Infra).Allowed || e.Check(u, o, authz.VPN).Allowed {
					t.Fatal("engine changed by a refused Load")
				}
				// A write over the user's rows refuses a foreign row among
				// them, without calling it invalid input.
				if row.PType == "g" && row.V0 == string(u) {
					err := s.Transaction(context.Background(), func(tx *gormstore.Tx) error { return tx.RemoveUser(u) })
					if err == nil || errors.Is(err, authz.ErrInvalid) {
						t.Fatalf("RemoveUser over %v: %v", row, err)
					}
				}
			})
		}
	})
}

// Concurrent transactions setting one user's membership each leave one
// whole membership stored, never a mixture of two.
func TestConcurrentWrites(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		u, o := authz.NewUserID(), authz.NewOrgID()
		ms := []authz.Membership{
			{Role: authz.Member, Categories: cats(authz.Infra)},
			{Role: authz.Manager},
			{Role: authz.Member, Categories: cats(authz.VPN, authz.Audit)},
			{Categories: cats(authz.Backup)},
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4*len(ms))
		for i := range 4 * len(ms) {
			wg.Go(func() {
				errs <- s.Transaction(context.Background(), func(tx *gormstore.Tx) error {
					return errors.Join(
						tx.SetMembership(u, o, ms[i%len(ms)]),
						tx.SetMembership(authz.NewUserID(), o, ms[i%len(ms)]),
					)
				})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var got []authz.Row
		for _, r := range groupingRows(t, db) {
			if r.V0 == string(u) {
				got = append(got, r)
			}
		}
		for _, m := range ms {
			want, err := authz.MembershipRules(u, o, m)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(got, rowsOf(slices.Values(want))) {
				return
			}
		}
		t.Fatalf("stored %v: not one of the memberships written", got)
	})
}
