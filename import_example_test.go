package iam_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

// A migration tool moves teams and people from another system: each
// team becomes an org, each person an account with their role and
// categories, their argon2id hash carried over (or none, and they reset
// it). Every Import call is one transaction with one audit event; a
// batch with one bad record is refused whole, naming the record.
func ExampleService_Import() {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB("example_import"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	ops := authz.NewOrgID()
	lena, omar := authz.NewUserID(), authz.NewUserID()
	res, err := svc.Import(ctx, iam.ImportBatch{
		Orgs: []iam.ImportOrg{{ID: ops, Name: "Operations"}},
		Users: []iam.ImportUser{
			{ID: lena, Email: "Lena@Example.com", Name: "Lena", PlatformAdmin: true,
				// The other system's hash, in the PHC format; it is checked, never recomputed.
				PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$R6qKc9lB0e1lfH1hLqVwJ6fAq0wGmQ0oR8WmQ5o4XbU"},
			{ID: omar, Email: "omar@example.com", Name: "Omar", // no password until a reset
				Memberships: map[authz.OrgID]authz.Membership{
					ops: {Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra, authz.Backup)},
				}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("imported %d orgs, %d users, %d rules\n", res.Orgs, res.Users, res.Rules)
	fmt.Println("omar may use backup:", svc.Check(ctx, omar, ops, authz.Backup).Allowed)
	fmt.Println("omar may use vpn:", svc.Check(ctx, omar, ops, authz.VPN).Allowed)
	fmt.Println("lena runs the platform:", svc.CheckOperations(ctx, lena) == nil)

	// The same email again (in another case) refuses the whole batch.
	_, err = svc.Import(ctx, iam.ImportBatch{Users: []iam.ImportUser{
		{ID: authz.NewUserID(), Email: "new@example.com", Name: "New"},
		{ID: authz.NewUserID(), Email: "OMAR@example.com", Name: "Omar Again"},
	}})
	var ie *iam.ImportError
	fmt.Println("refused:", errors.Is(err, iam.ErrConflict), errors.As(err, &ie) && ie.Index == 1)
	// Output:
	// imported 1 orgs, 2 users, 4 rules
	// omar may use backup: true
	// omar may use vpn: false
	// lena runs the platform: true
	// refused: true true
}
