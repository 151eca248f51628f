package gormstore_test

import (
	"context"
	"fmt"
	"log"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/authz"
)

// Open a store on SQLite in memory, load an Engine from it, give a user a
// membership in one transaction, and apply the same write to the Engine
// once the transaction has committed.
func Example() {
	ctx := context.Background()

	// A named shared-cache memory database lives as long as a connection
	// to it is open; one connection keeps it alive and serializes access.
	db, err := gorm.Open(sqlite.Open("file:example?mode=memory&cache=shared&_busy_timeout=5000"),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	sqlDB.SetMaxOpenConns(1)

	store, err := gormstore.Open(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := authz.NewEngine()
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Load(ctx, engine); err != nil {
		log.Fatal(err)
	}

	user, org := authz.NewUserID(), authz.NewOrgID()
	m := authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra, authz.VPN)}
	err = store.Transaction(ctx, func(tx *gormstore.Tx) error {
		// Other stores' rows of the same operation go through tx.DB().
		return tx.SetMembership(user, org, m)
	})
	if err != nil {
		log.Fatal(err)
	}
	// Committed: now the Engine may change.
	if err := engine.SetMembership(user, org, m); err != nil {
		log.Fatal(err)
	}

	for _, c := range []authz.Category{authz.VPN, authz.Backup} {
		d := engine.Check(user, org, c)
		fmt.Printf("%v: allowed=%v (%v) missing=%q\n", c, d.Allowed, d.Reason, d.Missing)
	}

	// Another replica loading the store answers the same.
	fresh, err := authz.NewEngine()
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Load(ctx, fresh); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reloaded:", fresh.Check(user, org, authz.VPN).Allowed)

	// Output:
	// vpn: allowed=true (granted) missing=""
	// backup: allowed=false (missing categories) missing="backup"
	// reloaded: true
}
