package bench

import (
	"context"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

// ListingPageLimit is the page size the listing benchmarks ask for.
const ListingPageLimit = 50

// ListMembers measures one page (limit ListingPageLimit) of
// Service.Members on svc for org, as actor (a PlatformAdmin). Successive
// iterations walk the listing page after page, starting over after the
// last, so every page is measured, not only the first. Each page includes
// the audit.MembersView event it records. It fails on an error or an
// empty page, so it never measures a refusal.
func ListMembers(b *testing.B, svc *iam.Service, actor authz.UserID, org authz.OrgID) {
	listing(b, func(ctx context.Context, p iam.Page) (int, string, error) {
		page, err := svc.Members(ctx, actor, org, p)
		return len(page.Members), page.Next, err
	})
}

// ListMembersWith measures one page of Service.MembersWith (the members
// of org granted c) as ListMembers does.
func ListMembersWith(b *testing.B, svc *iam.Service, actor authz.UserID, org authz.OrgID, c authz.Category) {
	listing(b, func(ctx context.Context, p iam.Page) (int, string, error) {
		page, err := svc.MembersWith(ctx, actor, org, c, p)
		return len(page.Members), page.Next, err
	})
}

// ListAccess measures one page of Service.Access (everyone allowed to use
// c in org) as ListMembers does.
func ListAccess(b *testing.B, svc *iam.Service, actor authz.UserID, org authz.OrgID, c authz.Category) {
	listing(b, func(ctx context.Context, p iam.Page) (int, string, error) {
		page, err := svc.Access(ctx, actor, org, c, p)
		return len(page.Accessors), page.Next, err
	})
}

// listing runs list a page per iteration, following Next and starting
// over after the last page, and reports the entries per page.
func listing(b *testing.B, list func(ctx context.Context, p iam.Page) (n int, next string, err error)) {
	b.Helper()
	ctx := context.Background()
	p := iam.Page{Limit: ListingPageLimit}
	entries := 0
	b.ReportAllocs()
	for b.Loop() {
		n, next, err := list(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatal("an empty page: the benchmark would measure nothing")
		}
		entries += n
		p.After = next
	}
	b.ReportMetric(float64(entries)/float64(b.N), "entries/op")
}
