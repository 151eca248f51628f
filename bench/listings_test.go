package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// BenchmarkListings measures a page of 50 of each listing on Services of
// 200 and 5,000 users (organizations of UsersPerOrg users each, written
// with Populate), on every test database: the cost of a page should be
// the same at both sizes. Run:
//
//	go test -run '^$' -bench BenchmarkListings -benchmem ./bench
func BenchmarkListings(b *testing.B) {
	for _, kind := range dbtest.Kinds(b) {
		for _, n := range []int{200, 5000} {
			svc, admin, w := listingService(b, kind, n)
			org := w.Orgs[len(w.Orgs)/2]
			name := fmt.Sprintf("%s/users=%d", kind, n)
			b.Run(name+"/members", func(b *testing.B) { ListMembers(b, svc, admin, org) })
			b.Run(name+"/members-with", func(b *testing.B) { ListMembersWith(b, svc, admin, org, authz.VPN) })
			b.Run(name+"/access", func(b *testing.B) { ListAccess(b, svc, admin, org, authz.VPN) })
		}
	}
}

// listingService returns a Service on a fresh database of kind holding
// Generate(n)'s workload, and one of its PlatformAdmins.
func listingService(b *testing.B, kind dbtest.Kind, n int) (*iam.Service, authz.UserID, *Workload) {
	b.Helper()
	ctx := context.Background()
	db := dbtest.Open(b, kind)
	svc, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close() })
	w := Generate(n, 1)
	took, err := Populate(ctx, svc, db, w) // with ANALYZE: see Populate
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d users written in %v", kind, len(w.Users), took.Round(time.Millisecond))
	return svc, w.Users[len(w.Users)-1].ID, w
}

// TestListingRig: the benchmarks' Services answer every listing for the
// PlatformAdmin they act as, with full pages, so that no benchmark
// measures a refusal or an empty page.
func TestListingRig(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.SQLiteMemory)
	svc, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	w := Generate(200, 1)
	if _, err := Populate(ctx, svc, db, w); err != nil {
		t.Fatal(err)
	}
	admin, org := w.Users[len(w.Users)-1].ID, w.Orgs[1]
	members, err := svc.Members(ctx, admin, org, iam.Page{Limit: ListingPageLimit})
	if err != nil || len(members.Members) != ListingPageLimit || members.Next == "" {
		t.Fatalf("Members: %d, next %q, %v", len(members.Members), members.Next, err)
	}
	with, err := svc.MembersWith(ctx, admin, org, authz.VPN, iam.Page{Limit: ListingPageLimit})
	if err != nil || len(with.Members) == 0 {
		t.Fatalf("MembersWith: %d, %v", len(with.Members), err)
	}
	access, err := svc.Access(ctx, admin, org, authz.VPN, iam.Page{Limit: ListingPageLimit})
	if err != nil || len(access.Accessors) == 0 || access.Accessors[0].Reason == authz.ReasonInvalid {
		t.Fatalf("Access: %+v, %v", access, err)
	}
}
