package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	gormadapter "github.com/casbin/gorm-adapter/v3"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// listWorld is a policy of two orgs for the listing queries: in o, 25
// users with mixed roles and grants, some of them deactivated; in other,
// a few of the same and some others; and PlatformAdmins, one deactivated.
type listWorld struct {
	o, other     authz.OrgID
	held         map[authz.Rule][]authz.UserID // holders of each probe rule, sorted
	deactivated  map[authz.UserID]bool
	users        []authz.UserID // every user with an account, sorted
	deletedUsers []authz.UserID
}

// probes are the rules the listings ask for, with User "".
func (w *listWorld) probes() []authz.Rule {
	return []authz.Rule{
		authz.PlatformAdminRule(""),
		authz.RoleRule("", w.o, authz.Manager), authz.RoleRule("", w.o, authz.Member),
		authz.GrantRule("", w.o, authz.VPN), authz.GrantRule("", w.o, authz.Audit),
		authz.RoleRule("", w.other, authz.Member), authz.GrantRule("", w.other, authz.VPN),
	}
}

func newListWorld(t *testing.T, s *gormstore.Store) *listWorld {
	t.Helper()
	ctx := context.Background()
	w := &listWorld{o: authz.NewOrgID(), other: authz.NewOrgID(), held: map[authz.Rule][]authz.UserID{}, deactivated: map[authz.UserID]bool{}}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hold := func(r authz.Rule, u authz.UserID) { w.held[r] = append(w.held[r], u) }
	transaction(t, s, func(tx *gormstore.Tx) error {
		var errs []error
		for i := range 32 {
			u := authz.NewUserID()
			w.users = append(w.users, u)
			status := identity.Active
			if i%9 == 4 {
				status = identity.Deactivated
				w.deactivated[u] = true
				errs = append(errs, tx.SetDeactivated(u, true))
			}
			errs = append(errs, tx.Identity().CreateUser(ctx, identity.User{ID: u, Email: fmt.Sprintf("u%d.%s@example.com", i, u), Name: "U",
				Status: status, CreatedAt: at, UpdatedAt: at}))
			if i < 25 {
				m := authz.Membership{Role: authz.Member}
				if i%5 == 0 {
					m.Role = authz.Manager
				}
				if i%3 == 0 {
					m.Categories = m.Categories.With(authz.VPN)
				}
				if i%4 == 1 {
					m.Categories = m.Categories.With(authz.Audit)
				}
				errs = append(errs, tx.SetMembership(u, w.o, m))
				hold(authz.RoleRule("", w.o, m.Role), u)
				for c := range m.Categories.All() {
					hold(authz.GrantRule("", w.o, c), u)
				}
			}
			if i%6 == 2 || i >= 25 {
				errs = append(errs, tx.SetMembership(u, w.other, authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.VPN)}))
				hold(authz.RoleRule("", w.other, authz.Member), u)
				hold(authz.GrantRule("", w.other, authz.VPN), u)
			}
			if i%7 == 3 {
				errs = append(errs, tx.SetPlatformAdmin(u, true))
				hold(authz.PlatformAdminRule(""), u)
			}
		}
		// Deleted accounts hold no rules; Accounts must not return them.
		for range 3 {
			u := authz.NewUserID()
			w.deletedUsers = append(w.deletedUsers, u)
			errs = append(errs, tx.Identity().CreateUser(ctx, identity.User{ID: u, Email: "gone." + string(u) + "@example.com", Name: "Gone",
				Status: identity.Active, CreatedAt: at, UpdatedAt: at}), tx.Identity().DeleteUser(ctx, u, at))
		}
		return errors.Join(errs...)
	})
	for r := range w.held {
		slices.Sort(w.held[r])
	}
	slices.Sort(w.users)
	return w
}

// walkHolders pages through Holders with limit and returns every user.
func walkHolders(t *testing.T, s *gormstore.Store, limit int, active bool, rules ...authz.Rule) []authz.UserID {
	t.Helper()
	var all []authz.UserID
	var after authz.UserID
	for {
		var page []authz.UserID
		transaction(t, s, func(tx *gormstore.Tx) error {
			var err error
			page, err = tx.Holders(after, limit, active, rules...)
			return err
		})
		if len(page) > limit {
			t.Fatalf("a page of %d holders for limit %d", len(page), limit)
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		after = page[len(page)-1]
	}
}

// TestHolders pages through the holders of each rule and of unions of
// rules, with and without deactivated users, for several page sizes: each
// walk lists every holder exactly once, in id order, and nobody else.
func TestHolders(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		_, s := openStore(t, kind)
		w := newListWorld(t, s)
		p := w.probes()
		sets := [][]authz.Rule{{p[0]}, {p[1]}, {p[2]}, {p[3]}, {p[5]}, {p[1], p[2]}, {p[0], p[1], p[3]}, {p[0], p[5], p[6], p[4]}}
		for _, rules := range sets {
			for _, active := range []bool{false, true} {
				var want []authz.UserID
				for _, r := range rules {
					for _, u := range w.held[r] {
						if !active || !w.deactivated[u] {
							want = append(want, u)
						}
					}
				}
				slices.Sort(want)
				want = slices.Compact(want)
				if len(want) == 0 {
					t.Fatalf("%v: the world holds nobody, the test would prove nothing", rules)
				}
				for _, limit := range []int{1, 2, 7, 50} {
					if got := walkHolders(t, s, limit, active, rules...); !slices.Equal(got, want) {
						t.Errorf("%v active=%v limit %d:\n got %v\nwant %v", rules, active, limit, got, want)
					}
				}
			}
		}
	})
}

// TestHolderRulesAndAccounts checks the lookups of a page's users: their
// rules in one org and platform-wide, and their live accounts.
func TestHolderRulesAndAccounts(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		_, s := openStore(t, kind)
		w := newListWorld(t, s)
		page := append(slices.Clone(w.users[3:12]), w.deletedUsers...)
		transaction(t, s, func(tx *gormstore.Tx) error {
			for _, o := range []authz.OrgID{w.o, ""} {
				got, err := tx.HolderRules(page, o)
				if err != nil {
					return err
				}
				var want []authz.Rule
				for _, u := range page {
					rules, err := tx.UserRules(u)
					if err != nil {
						return err
					}
					for _, r := range rules {
						if r.Org == "" || r.Org == o {
							want = append(want, r)
						}
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("HolderRules(%q):\n got %v\nwant %v", o, got, want)
				}
			}
			accts, err := tx.Accounts(page)
			if err != nil {
				return err
			}
			var ids []authz.UserID
			for _, a := range accts {
				ids = append(ids, a.ID)
			}
			if want := w.users[3:12]; !slices.Equal(ids, want) {
				t.Errorf("Accounts = %v, want the live ones %v", ids, want)
			}
			var all []authz.UserID
			for after := authz.UserID(""); ; {
				accts, err := tx.AccountsAfter(after, 7)
				if err != nil {
					return err
				}
				for _, a := range accts {
					all = append(all, a.ID)
				}
				if len(accts) < 7 {
					break
				}
				after = accts[len(accts)-1].ID
			}
			if !slices.Equal(all, w.users) {
				t.Errorf("AccountsAfter walk = %v, want %v", all, w.users)
			}
			want := 0
			for _, u := range w.held[authz.RoleRule("", w.o, authz.Manager)] {
				if !w.deactivated[u] {
					want++
				}
			}
			for _, upTo := range []int{1, 2, 100} {
				n, err := tx.CountActive(authz.RoleRule("", w.o, authz.Manager), upTo)
				if err != nil {
					return err
				}
				if n != min(want, upTo) || want < 3 {
					t.Errorf("CountActive(managers, %d) = %d, want %d of %d (> 2)", upTo, n, min(want, upTo), want)
				}
			}
			return nil
		})
	})
}

// TestListingInvalidInput: malformed cursors, limits, ids and rules are
// refused with ErrInvalid before any SQL, and leave the Tx usable.
func TestListingInvalidInput(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		_, s := openStore(t, kind)
		o := authz.NewOrgID()
		transaction(t, s, func(tx *gormstore.Tx) error {
			errOf := func(_ any, err error) error { return err }
			for _, c := range []struct {
				what string
				err  error
			}{
				{"cursor", errOf(tx.Holders("usr_' OR 1=1 --", 5, false, authz.RoleRule("", o, authz.Member)))},
				{"zero limit", errOf(tx.Holders("", 0, false, authz.RoleRule("", o, authz.Member)))},
				{"huge limit", errOf(tx.Holders("", gormstore.MaxListLimit+1, false, authz.RoleRule("", o, authz.Member)))},
				{"bad org", errOf(tx.Holders("", 5, false, authz.RoleRule("", "org_*", authz.Member)))},
				{"deactivation rule", errOf(tx.Holders("", 5, false, authz.DeactivationRule("")))},
				{"accounts after cursor", errOf(tx.AccountsAfter("x", 5))},
				{"accounts after limit", errOf(tx.AccountsAfter("", -1))},
				{"accounts id", errOf(tx.Accounts([]authz.UserID{"usr_*"}))},
				{"holder rules id", errOf(tx.HolderRules([]authz.UserID{"*"}, o))},
				{"holder rules org", errOf(tx.HolderRules([]authz.UserID{authz.NewUserID()}, "org_x"))},
				{"count bad org", errOf(tx.CountActive(authz.RoleRule("", "nope", authz.Manager), 2))},
				{"count up to 0", errOf(tx.CountActive(authz.PlatformAdminRule(""), 0))},
			} {
				if !errors.Is(c.err, authz.ErrInvalid) {
					t.Errorf("%s: %v, want ErrInvalid", c.what, c.err)
				}
			}
			_, err := tx.Holders("", 5, true, authz.RoleRule("", o, authz.Member)) // still usable
			return err
		})
	})
}

// oldDomainIndex is the index on v2 alone that earlier versions of Open
// created.
type oldDomainIndex struct {
	V2 string `gorm:"size:100;index:idx_casbin_rule_v2"`
}

func (oldDomainIndex) TableName() string { return "casbin_rule" }

// TestOpenMigratesDomainIndex opens a database migrated by the previous
// version (the index on v2 alone): Open replaces it with the index on
// (ptype, v2, v1, v0), keeps every row, and a further Open changes
// nothing.
func TestOpenMigratesDomainIndex(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		newListWorld(t, s)
		m := db.Migrator()
		if err := errors.Join(m.DropIndex(&gormadapter.CasbinRule{}, "idx_casbin_rule_ptype_v2_v1_v0"), m.CreateIndex(&oldDomainIndex{}, "idx_casbin_rule_v2")); err != nil {
			t.Fatal(err)
		}
		hasIndexes := func(want map[string]bool) {
			t.Helper()
			for idx, has := range want {
				if got := m.HasIndex(&gormadapter.CasbinRule{}, idx); got != has {
					t.Errorf("index %s present: %v, want %v", idx, got, has)
				}
			}
		}
		hasIndexes(map[string]bool{"idx_casbin_rule_v2": true, "idx_casbin_rule_ptype_v2_v1_v0": false})
		before := rawRows(t, db)
		for range 2 {
			if _, err := gormstore.Open(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			hasIndexes(map[string]bool{"idx_casbin_rule": true, "idx_casbin_rule_v2": false, "idx_casbin_rule_ptype_v2_v1_v0": true})
			if after := rawRows(t, db); !slices.Equal(after, before) {
				t.Fatal("Open changed the rows")
			}
		}
	})
}
