package iam_test

import (
	"context"
	"fmt"
	"log"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

// exampleReplicas opens two Services on one new database: two replicas.
func exampleReplicas(ctx context.Context, name string) (a, b *iam.Service) {
	db := openExampleDB(name)
	a, err := iam.New(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	if b, err = iam.New(ctx, db); err != nil {
		log.Fatal(err)
	}
	return a, b
}

// Two Services on one database, as two replicas of a host: what one
// commits, the other applies with Sync (or by itself, with
// WithReplicaSync).
func ExampleService_Sync() {
	ctx := context.Background()
	a, b := exampleReplicas(ctx, "example_sync")
	defer a.Close()
	defer b.Close()

	admin, err := a.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	org, err := a.CreateOrg(ctx, admin, "Seoul DC")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("b before Sync:", b.Check(ctx, admin, org.ID, authz.VPN).Allowed, b.Version() < a.Version())
	if err := b.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("b after Sync:", b.Check(ctx, admin, org.ID, authz.VPN).Allowed, b.Version() == a.Version())
	// Output:
	// b before Sync: false true
	// b after Sync: true true
}

// A consistency token: the version a write committed on one replica,
// waited for on another before it reads.
func ExampleWithReceipt() {
	ctx := context.Background()
	a, b := exampleReplicas(ctx, "example_receipt")
	defer a.Close()
	defer b.Close()

	var receipt iam.Receipt
	admin, err := a.Bootstrap(iam.WithReceipt(ctx, &receipt), "ada@example.com", "Ada", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	// The token travels with the next request, to whichever replica
	// serves it (through the Guard: the Iam-Min-Version header).
	if err := b.WaitVersion(ctx, receipt.Version()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("operations screens on b:", b.CheckOperations(ctx, admin) == nil)
	// Output:
	// operations screens on b: true
}
