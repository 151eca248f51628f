package gormstore_test

import (
	"testing"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/approval/approvaltest"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/audit/audittest"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/identity/identitytest"
	"github.com/kiops/iam/internal/dbtest"
)

// The domain packages' conformance suites, on every kind of database,
// against the stores over the Store's database (each method in a
// transaction of its own): the suites call one store from several
// goroutines at once, which a store bound to one Tx does not allow.
// TestTxStores checks that the Tx-bound stores, the same code, commit
// and roll back with their transaction.

func TestIdentityConformance(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		// Each subtest wants an empty store of its own.
		identitytest.Run(t, func(t *testing.T) identity.Store {
			_, s := openStore(t, kind)
			return s.Identity()
		})
	})
}

func TestApprovalConformance(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		// The suite's subtests work in orgs and users of their own, so
		// they share one database, closed after the last of them.
		_, s := openStore(t, kind)
		approvaltest.Run(t, func(t *testing.T) approval.Store { return s.Approvals() })
	})
}

func TestAuditConformance(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		// Each subtest reads the whole log: an empty database of its own.
		audittest.Run(t, func(t *testing.T) audit.Store {
			_, s := openStore(t, kind)
			return s.Audit()
		})
	})
}
