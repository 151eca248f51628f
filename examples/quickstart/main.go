// Command quickstart shows the core of KIOPS IAM on an SQLite file: it
// stores two organizations, a PlatformAdmin, a Manager and Members with
// different categories, prints a table of permission decisions (a denied
// one names the missing categories), then reloads the policy from the file
// as a restarted service would and shows that it decides the same.
//
//	go run ./examples/quickstart [-db PATH]
//
// The database file is recreated on every run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"text/tabwriter"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/authz"
)

func main() {
	path := flag.String("db", filepath.Join(os.TempDir(), "kiops-iam-quickstart.db"), "SQLite database file (recreated on each run)")
	flag.Parse()
	if err := run(context.Background(), *path, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// person is someone of the walk-through. Names live here only: the policy
// holds nothing but the ids the module issued.
type person struct {
	name string
	id   authz.UserID
}

func run(ctx context.Context, path string, w io.Writer) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	db, err := openSQLite(path)
	if err != nil {
		return err
	}
	store, err := gormstore.Open(ctx, db)
	if err != nil {
		return err
	}
	engine, err := authz.NewEngine()
	if err != nil {
		return err
	}
	if err := store.Load(ctx, engine); err != nil {
		return err
	}

	seoul, busan := authz.NewOrgID(), authz.NewOrgID()
	orgName := map[authz.OrgID]string{seoul: "Seoul DC", busan: "Busan Lab"}
	admin := person{"Ada (PlatformAdmin)", authz.NewUserID()}
	mina := person{"Mina (Manager, Seoul)", authz.NewUserID()}
	joon := person{"Joon (Member, Seoul)", authz.NewUserID()}
	hana := person{"Hana (Member, both)", authz.NewUserID()}

	// Each change is written in one transaction, then applied to the
	// engine with the same absolute write once the commit has succeeded.
	grant := func(p person, o authz.OrgID, m authz.Membership) error {
		if err := store.Transaction(ctx, func(tx *gormstore.Tx) error { return tx.SetMembership(p.id, o, m) }); err != nil {
			return err
		}
		return engine.SetMembership(p.id, o, m)
	}
	if err := store.Transaction(ctx, func(tx *gormstore.Tx) error { return tx.SetPlatformAdmin(admin.id, true) }); err != nil {
		return err
	}
	if err := engine.SetPlatformAdmin(admin.id, true); err != nil {
		return err
	}
	cats := authz.NewCategorySet
	for _, g := range []struct {
		p person
		o authz.OrgID
		m authz.Membership
	}{
		{mina, seoul, authz.Membership{Role: authz.Manager}},
		{joon, seoul, authz.Membership{Role: authz.Member, Categories: cats(authz.Infra, authz.Service, authz.VPN)}},
		{hana, seoul, authz.Membership{Role: authz.Member, Categories: cats(authz.Audit)}},
		{hana, busan, authz.Membership{Role: authz.Member, Categories: cats(authz.Backup, authz.Database)}},
	} {
		if err := grant(g.p, g.o, g.m); err != nil {
			return err
		}
	}

	type ask struct {
		p    person
		o    authz.OrgID
		need authz.CategorySet
	}
	asks := []ask{
		{admin, busan, cats(authz.Device)},
		{mina, seoul, cats(authz.Database, authz.Audit)},
		{mina, busan, cats(authz.Infra)},
		{joon, seoul, cats(authz.VPN)},
		{joon, seoul, cats(authz.Infra, authz.Backup, authz.Database)},
		{hana, seoul, cats(authz.Audit)},
		{hana, busan, cats(authz.Database)},
		{hana, busan, cats(authz.Audit)},
	}
	fmt.Fprintf(w, "KIOPS IAM quickstart: policy stored in %s\n\n", path)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHO\tORG\tNEEDS\tDECISION\tWHY")
	decisions := make([]authz.Decision, len(asks))
	for i, a := range asks {
		d := engine.CheckAll(a.p.id, a.o, a.need)
		decisions[i] = d
		verdict, why := "allowed", d.Reason.String()
		if !d.Allowed {
			verdict = "DENIED"
			if !d.Missing.Empty() && d.Reason == authz.ReasonMissingCategories {
				why = "Insufficient permissions: ask your Manager for " + d.Missing.String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.p.name, orgName[a.o], a.need, verdict, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// A restarted service loads the stored rules into a fresh engine; it
	// must decide exactly as the running one.
	fresh, err := authz.NewEngine()
	if err != nil {
		return err
	}
	if err := store.Load(ctx, fresh); err != nil {
		return err
	}
	for i, a := range asks {
		if d := fresh.CheckAll(a.p.id, a.o, a.need); d != decisions[i] {
			return fmt.Errorf("after reload, %s in %s decides %+v, was %+v", a.p.name, orgName[a.o], d, decisions[i])
		}
	}
	var rules int
	for range fresh.Rules() {
		rules++
	}
	fmt.Fprintf(w, "\nReloaded %d rules from the database into a fresh engine: all %d decisions are the same.\n", rules, len(asks))
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// openSQLite opens the embedded default store: an SQLite file in WAL mode
// that waits for a busy lock instead of failing at once.
func openSQLite(path string) (*gorm.DB, error) {
	return gorm.Open(sqlite.Open("file:"+path+"?_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on"),
		&gorm.Config{Logger: logger.Discard})
}
