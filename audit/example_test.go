package audit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/audit/audittest"
	"github.com/kiops/iam/authz"
)

// Recording the Save of the Permission Management page, a denied role
// change, and reading the org's audit log back, newest first.
func Example() {
	ctx := context.Background()
	store := audittest.NewStore()
	org, manager, bob := authz.NewOrgID(), authz.NewUserID(), authz.NewUserID()
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

	type grants struct {
		Categories []authz.Category `json:"categories"`
	}
	e := audit.NewEvent(now, manager, audit.MemberCategoriesSet)
	e.Target, e.Org, e.ClientAddr = bob, org, "192.0.2.10"
	_ = e.SetChange(grants{authz.NewCategorySet(authz.Infra).Slice()}, grants{authz.NewCategorySet(authz.Infra, authz.VPN).Slice()})
	_, _ = store.Append(ctx, e)

	// Bob tries to promote himself: denied, and recorded.
	e = audit.NewEvent(now.Add(time.Minute), bob, audit.MemberRoleChange)
	e.Target, e.Org = bob, org
	_ = e.SetChange(nil, map[string]authz.Role{"role": authz.Manager})
	e.Deny(fmt.Errorf("iam: change role: %w", authz.ErrSelfRoleChange))
	_, _ = store.Append(ctx, e)

	// The Manager reads the org's log: Scope asks authz what they may see.
	f, err := audit.Scope(audit.Filter{Org: org}, manager, false, func(yield func(authz.OrgID, authz.Membership) bool) {
		yield(org, authz.Membership{Role: authz.Manager})
	})
	if err != nil {
		panic(err)
	}
	events, _ := store.Events(ctx, f)
	for _, e := range events {
		fmt.Println(e.ID, e.Action, e.Outcome, e.Reason, string(e.Before), string(e.After))
	}
	// Output:
	// 2 member.role.change denied nobody may change their own role  {"role":"manager"}
	// 1 member.categories.set success  {"categories":["infra"]} {"categories":["infra","vpn"]}
}

func ExampleEvent_SetChange() {
	e := audit.NewEvent(time.Now(), authz.NewUserID(), audit.MemberRoleChange)
	type role struct {
		Role authz.Role `json:"role"`
	}
	if err := e.SetChange(role{authz.Member}, role{authz.Manager}); err != nil {
		panic(err)
	}
	fmt.Printf("%s -> %s\n", e.Before, e.After)

	// Secrets never reach the log.
	err := e.SetChange(nil, map[string]string{"new_password": "correct horse battery staple"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, authz.ErrInvalid))
	// Output:
	// {"role":"member"} -> {"role":"manager"}
	// authz: invalid audit event after "new_password": a key naming a secret: audit events never hold passwords, hashes, tokens or secrets
	// true
}

func ExampleDenialReason() {
	fmt.Println(audit.DenialReason(authz.ErrLastManager))
	fmt.Println(audit.DenialReason(&authz.InsufficientPermissionsError{Missing: authz.NewCategorySet(authz.Backup, authz.Database)}))
	fmt.Println(audit.DenialReason(fmt.Errorf("iam: remove member: %w", authz.ErrNotFound)))
	fmt.Println(audit.DenialReason(errors.New("dial tcp 10.0.0.7:5432: connection refused")))
	// Output:
	// an organization must keep at least one Manager: make another member Manager first
	// insufficient permissions: missing backup,database
	// not found
	// error
}

func ExampleScope() {
	viewer := authz.NewUserID()
	ops, dev := authz.NewOrgID(), authz.NewOrgID()
	// A Member with the audit category in ops, without it in dev.
	ms := map[authz.OrgID]authz.Membership{
		ops: {Role: authz.Member, Categories: authz.NewCategorySet(authz.Audit)},
		dev: {Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra)},
	}
	facts := func(yield func(authz.OrgID, authz.Membership) bool) {
		for o, m := range ms {
			if !yield(o, m) {
				return
			}
		}
	}

	f, err := audit.Scope(audit.Filter{}, viewer, false, facts)
	fmt.Println(f.AllOrgs, len(f.Orgs), f.Orgs[0] == ops, err)

	// In dev the answer is the product's "Insufficient permissions".
	_, err = audit.Scope(audit.Filter{Org: dev}, viewer, false, facts)
	var ipe *authz.InsufficientPermissionsError
	fmt.Println(errors.As(err, &ipe), ipe.Org == dev, ipe.Missing)

	f, _ = audit.Scope(audit.Filter{}, authz.NewUserID(), true, nil)
	fmt.Println("PlatformAdmin:", f.AllOrgs)
	// Output:
	// false 1 true <nil>
	// true true audit
	// PlatformAdmin: true
}
