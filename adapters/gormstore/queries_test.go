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
