package gormstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// TestOrgRulesAndPlatformAdmins checks the two reads the Service takes its
// invariant facts from.
func TestOrgRulesAndPlatformAdmins(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := gormstore.Open(ctx, dbtest.Open(t, kind))
			if err != nil {
				t.Fatal(err)
			}
			o, other := authz.NewOrgID(), authz.NewOrgID()
			a, b, c := authz.NewUserID(), authz.NewUserID(), authz.NewUserID()
			err = s.Transaction(ctx, func(tx *gormstore.Tx) error {
				return errors.Join(
					tx.SetPlatformAdmin(a, true),
					tx.SetPlatformAdmin(c, true),
					tx.SetMembership(a, o, authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.VPN)}),
					tx.SetMembership(b, o, authz.Membership{Role: authz.Manager}),
					tx.SetMembership(b, other, authz.Membership{Role: authz.Member}),
				)
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Transaction(ctx, func(tx *gormstore.Tx) error {
				admins, err := tx.PlatformAdmins()
				if err != nil {
					return err
				}
				want := []authz.UserID{a, c}
				slices.Sort(want)
				if !slices.Equal(admins, want) {
					t.Errorf("PlatformAdmins = %v, want %v", admins, want)
				}
				rules, err := tx.OrgRules(o)
				if err != nil {
					return err
				}
				wantRules := []authz.Rule{authz.RoleRule(a, o, authz.Member), authz.GrantRule(a, o, authz.VPN), authz.RoleRule(b, o, authz.Manager)}
				if a > b {
					wantRules = []authz.Rule{wantRules[2], wantRules[0], wantRules[1]}
				}
				if !slices.Equal(rules, wantRules) {
					t.Errorf("OrgRules = %v, want %v", rules, wantRules)
				}
				if _, err := tx.OrgRules("*"); !errors.Is(err, authz.ErrInvalid) {
					t.Errorf("OrgRules(*) = %v, want ErrInvalid", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSetDeactivated checks that a stored deactivation denies every check
// after a load, keeps the rest of the policy, and goes away on
// reactivation.
func TestSetDeactivated(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := gormstore.Open(ctx, dbtest.Open(t, kind))
			if err != nil {
				t.Fatal(err)
			}
			u, o := authz.NewUserID(), authz.NewOrgID()
			write := func(fn func(tx *gormstore.Tx) error) {
				t.Helper()
				if err := s.Transaction(ctx, fn); err != nil {
					t.Fatal(err)
				}
			}
			check := func() authz.Decision {
				t.Helper()
				e, err := authz.NewEngine()
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Load(ctx, e); err != nil {
					t.Fatal(err)
				}
				return e.Check(u, o, authz.Audit)
			}
			write(func(tx *gormstore.Tx) error {
				return tx.SetMembership(u, o, authz.Membership{Role: authz.Manager})
			})
			write(func(tx *gormstore.Tx) error { return tx.SetDeactivated(u, true) })
			write(func(tx *gormstore.Tx) error { return tx.SetDeactivated(u, true) }) // idempotent
			if d := check(); d.Allowed || d.Reason != authz.ReasonDeactivated {
				t.Fatalf("deactivated Manager after load: %+v", d)
			}
			write(func(tx *gormstore.Tx) error { return tx.SetDeactivated(u, false) })
			if d := check(); !d.Allowed || d.Reason != authz.ReasonManager {
				t.Fatalf("reactivated Manager after load: %+v", d)
			}
			if err := s.Transaction(ctx, func(tx *gormstore.Tx) error { return tx.SetDeactivated("*", true) }); !errors.Is(err, authz.ErrInvalid) {
				t.Fatalf("SetDeactivated(*) = %v", err)
			}
		})
	}
}
