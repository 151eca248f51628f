package identitytest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/identity/identitytest"
)

// TestStore runs the conformance suite on the in-memory fake.
func TestStore(t *testing.T) {
	t.Parallel()
	identitytest.Run(t, func(*testing.T) identity.Store { return identitytest.NewStore() })
}

// TestZeroStore checks that the zero Store works as NewStore's.
func TestZeroStore(t *testing.T) {
	t.Parallel()
	identitytest.Run(t, func(*testing.T) identity.Store { return new(identitytest.Store) })
}

func TestFailHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	boom := errors.New("injected")
	s := identitytest.NewStore()
	var ops []string
	s.Fail = func(op string) error {
		ops = append(ops, op)
		if op == "CreateOrg" {
			return boom
		}
		return nil
	}
	o := identity.Org{ID: authz.NewOrgID(), Name: "Acme", CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if err := s.CreateOrg(ctx, o); !errors.Is(err, boom) {
		t.Fatalf("CreateOrg with a failing hook = %v, want the injected error", err)
	}
	if _, err := s.Org(ctx, o.ID); !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("a failed CreateOrg stored the org: Org = %v", err)
	}
	if len(ops) != 2 || ops[0] != "CreateOrg" || ops[1] != "Org" {
		t.Fatalf("hook saw %v, want [CreateOrg Org]", ops)
	}
}
