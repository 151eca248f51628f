package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// casbinEnforcer returns a plain Casbin enforcer over authz.Model reading
// the rule table of db through gorm-adapter: the reference for what the
// stored policy means.
func casbinEnforcer(t *testing.T, db *gorm.DB) *casbin.Enforcer {
	t.Helper()
	m, err := model.NewModelFromString(authz.Model)
	if err != nil {
		t.Fatal(err)
	}
	a, err := gormadapter.NewAdapterByDBUseTableName(db, "", "casbin_rule")
	if err != nil {
		t.Fatal(err)
	}
	e, err := casbin.NewEnforcer(m, a)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// agreeWithCasbin requires e (loaded by Store.Load) and Casbin to allow
// exactly the same requests of a grid, unknown user and org included.
func agreeWithCasbin(t *testing.T, db *gorm.DB, e *authz.Engine, users []authz.UserID, orgs []authz.OrgID) {
	t.Helper()
	enf := casbinEnforcer(t, db)
	users = append(slices.Clip(users), authz.NewUserID())
	orgs = append(slices.Clip(orgs), authz.NewOrgID())
	for _, u := range users {
		for _, o := range orgs {
			for _, c := range authz.Categories() {
				want, err := enf.Enforce(string(u), string(o), c.String())
				if err != nil {
					t.Fatalf("casbin Enforce: %v", err)
				}
				if got := e.Check(u, o, c); got.Allowed != want {
					t.Fatalf("Check(%s, %s, %v) = %+v; casbin says %v", u, o, c, got, want)
				}
			}
		}
	}
}

// After a series of random transactions (some failing), the stored rows,
// an Engine loaded from them, an Engine given the same writes, an Engine
// with the Casbin cross-check, and plain Casbin over the table all agree.
func TestRandomWritesAgreeWithCasbin(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, uint64(kind)))
		db, s := openStore(t, kind)
		ctx := context.Background()

		users := make([]authz.UserID, 7)
		for i := range users {
			users[i] = authz.NewUserID()
		}
		orgs := []authz.OrgID{authz.NewOrgID(), authz.NewOrgID(), authz.NewOrgID()}
		want := newEngine(t) // the policy as the committed writes make it

		const steps = 60
		for step := range steps {
			snapshot := append(authz.BaseRows(), rowsOf(want.Rules())...)
			fail := rng.IntN(6) == 0
			var trace []string
			err := s.Transaction(ctx, func(tx *gormstore.Tx) error {
				for range 1 + rng.IntN(3) {
					desc, err := randomWrite(rng, tx, want, users, orgs)
					trace = append(trace, desc)
					if err != nil {
						return fmt.Errorf("%s: %w", desc, err)
					}
				}
				if fail {
					return errBoom
				}
				return nil
			})
			switch {
			case fail && !errors.Is(err, errBoom):
				t.Fatalf("step %d %v: Transaction = %v, want errBoom", step, trace, err)
			case fail:
				// Rolled back: forget the writes.
				if err := want.Load(rowSeq(snapshot)); err != nil {
					t.Fatal(err)
				}
			case err != nil:
				t.Fatalf("step %d %v: %v", step, trace, err)
			}

			if got, w := groupingRows(t, db), rowsOf(want.Rules()); !slices.Equal(got, w) {
				t.Fatalf("step %d %v: stored %v\nwant %v", step, trace, got, w)
			}
			if step%20 == 19 || step == steps-1 {
				loaded := loadEngine(t, s)
				sameEngines(t, loaded, want, users, orgs)
				agreeWithCasbin(t, db, loaded, users, orgs)
				checked := loadEngine(t, s, authz.WithCasbinCrossCheck())
				sameEngines(t, checked, want, users, orgs)
			}
		}
	})
}

// randomWrite makes one random write on tx and the same on e (which the
// caller resets if the transaction fails), and describes it.
func randomWrite(rng *rand.Rand, tx *gormstore.Tx, e *authz.Engine, users []authz.UserID, orgs []authz.OrgID) (string, error) {
	u := users[rng.IntN(len(users))]
	o := orgs[rng.IntN(len(orgs))]
	switch n := rng.IntN(10); {
	case n == 0:
		admin := rng.IntN(2) == 0
		return fmt.Sprintf("SetPlatformAdmin(%d, %v)", slices.Index(users, u), admin),
			errors.Join(tx.SetPlatformAdmin(u, admin), e.SetPlatformAdmin(u, admin))
	case n == 1:
		return fmt.Sprintf("RemoveUser(%d)", slices.Index(users, u)),
			errors.Join(tx.RemoveUser(u), e.RemoveUser(u))
	case n == 2:
		desc := fmt.Sprintf("RemoveOrg(%d)", slices.Index(orgs, o))
		var members []authz.UserID
		for _, m := range users {
			if _, ok := e.Membership(m, o); ok {
				members = append(members, m)
			}
		}
		slices.Sort(members)
		got, err := tx.RemoveOrg(o)
		if err != nil {
			return desc, err
		}
		if !slices.Equal(got, members) {
			return desc, fmt.Errorf("returned %v, want %v", got, members)
		}
		for _, m := range got {
			if err := e.RemoveMembership(m, o); err != nil {
				return desc, err
			}
		}
		return desc, nil
	default:
		m := authz.Membership{
			Role:       []authz.Role{authz.RoleNone, authz.Member, authz.Member, authz.Manager}[rng.IntN(4)],
			Categories: authz.CategorySet(rng.Uint32()) & authz.AllCategories,
		}
		if rng.IntN(5) == 0 {
			m = authz.Membership{}
		}
		return fmt.Sprintf("SetMembership(%d, %d, %v %v)", slices.Index(users, u), slices.Index(orgs, o), m.Role, m.Categories),
			errors.Join(tx.SetMembership(u, o, m), e.SetMembership(u, o, m))
	}
}
