// Command quickstart walks through KIOPS IAM's flows on an SQLite file, in
// the words of the product page: a PlatformAdmin creates organizations,
// people sign up into the Pending Approvals queue, a Manager approves them
// and grants permission categories, the feature pages check them (a
// denial names the missing categories: "Insufficient permissions"), a
// Manager's overreach is refused, a role changes, a member is removed, and
// the audit trail shows it all. Finally a restarted service, loading the
// file, decides exactly as the running one.
//
//	go run ./examples/quickstart [-db PATH]
//
// The database file is recreated on every run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

func main() {
	path := flag.String("db", filepath.Join(os.TempDir(), "kiops-iam-quickstart.db"), "SQLite database file (recreated on each run)")
	flag.Parse()
	if err := run(context.Background(), *path, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// walk holds the cast, with names for printing: the policy itself holds
// nothing but the ids the module issued.
type walk struct {
	ctx   context.Context
	svc   *iam.Service
	w     io.Writer
	names map[string]string // user and org ids to names
}

const password = "correct horse battery staple" // a demo passphrase; the policy refuses common ones

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
	defer closeDB(db)
	svc, err := iam.New(ctx, db)
	if err != nil {
		return err
	}
	defer svc.Close()
	k := &walk{ctx: ctx, svc: svc, w: w, names: map[string]string{}}
	fmt.Fprintf(w, "KIOPS IAM quickstart: everything is stored in %s\n\n", path)

	// Organization Management: the first PlatformAdmin creates the orgs.
	ada, err := svc.Bootstrap(ctx, "ada@example.com", "Ada", password)
	if err != nil {
		return err
	}
	k.names[string(ada)] = "Ada (PlatformAdmin)"
	seoul, err := svc.CreateOrg(ctx, ada, "Seoul DC")
	if err != nil {
		return err
	}
	busan, err := svc.CreateOrg(ctx, ada, "Busan Lab")
	if err != nil {
		return err
	}
	k.names[string(seoul.ID)], k.names[string(busan.ID)] = seoul.Name, busan.Name

	// Sign-up: people enter an org's Pending Approvals queue.
	for _, s := range []struct{ email, name, org string }{
		{"mina@example.com", "Mina", string(seoul.ID)},
		{"joon@example.com", "Joon", string(seoul.ID)},
		{"hana@example.com", "Hana", string(seoul.ID)},
		{"hana@example.com", "Hana", string(busan.ID)}, // an existing account applies to a second org
	} {
		if err := svc.SignUp(ctx, s.email, s.name, password, authz.OrgID(s.org)); err != nil {
			return err
		}
	}
	n, err := svc.PendingCount(ctx, ada, seoul.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Pending Approvals (%d) in Seoul DC\n", n)
	queue, err := svc.Registrations(ctx, ada, seoul.ID, approval.Last7Days, approval.Pending)
	if err != nil {
		return err
	}
	ids := map[string]authz.UserID{}
	for _, r := range queue {
		ids[r.Name] = r.User
		fmt.Fprintf(w, "  %-18s %-6s %-10s requested %s\n", r.Email, r.Name, seoul.Name, r.CreatedAt.Format("2006-01-02 15:04"))
	}
	mina, joon, hana := ids["Mina"], ids["Joon"], ids["Hana"]
	k.names[string(mina)], k.names[string(joon)], k.names[string(hana)] = "Mina", "Joon", "Hana"

	// Ada approves Mina and makes her Manager of Seoul; Mina handles the
	// rest of her org's queue; Ada approves Hana in Busan.
	if err := k.approveAll(ada, seoul.ID, "Mina"); err != nil {
		return err
	}
	if err := svc.ChangeRole(ctx, ada, mina, seoul.ID, authz.Manager); err != nil {
		return err
	}
	if err := k.approveAll(mina, seoul.ID, ""); err != nil {
		return err
	}
	if err := k.approveAll(ada, busan.ID, ""); err != nil {
		return err
	}

	// Permission Management: Save applies the whole set at once.
	cats := authz.NewCategorySet
	for _, g := range []struct {
		by, who authz.UserID
		org     authz.OrgID
		set     authz.CategorySet
	}{
		{mina, joon, seoul.ID, cats(authz.Infra, authz.Service, authz.VPN)},
		{mina, hana, seoul.ID, cats(authz.Audit)},
		{ada, hana, busan.ID, cats(authz.Backup, authz.Database)},
	} {
		if err := svc.SetCategories(ctx, g.by, g.who, g.org, g.set); err != nil {
			return err
		}
	}

	asks := []ask{
		{ada, busan.ID, cats(authz.Device)},
		{mina, seoul.ID, cats(authz.Database, authz.Audit)},
		{mina, busan.ID, cats(authz.Infra)},
		{joon, seoul.ID, cats(authz.VPN)},
		{joon, seoul.ID, cats(authz.Infra, authz.Backup, authz.Database)},
		{hana, seoul.ID, cats(authz.Audit)},
		{hana, busan.ID, cats(authz.Database)},
		{hana, busan.ID, cats(authz.Audit)},
	}
	fmt.Fprintln(w, "\nFeature pages")
	k.decisions(asks, true)

	// A Manager's overreach is refused with a typed error and recorded.
	fmt.Fprintln(w, "\nMina tries to make Joon a PlatformAdmin:")
	fmt.Fprintf(w, "  refused: %v\n", svc.ChangeRole(ctx, mina, joon, seoul.ID, authz.PlatformAdmin))
	fmt.Fprintln(w, "Mina tries to change her own role:")
	fmt.Fprintf(w, "  refused: %v\n", svc.ChangeRole(ctx, mina, mina, seoul.ID, authz.Member))

	// Edit Role and Remove.
	if err := svc.ChangeRole(ctx, mina, joon, seoul.ID, authz.Manager); err != nil {
		return err
	}
	if err := svc.RemoveMember(ctx, mina, hana, seoul.ID); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nMina makes Joon a Manager and removes Hana from Seoul DC:")
	k.decisions([]ask{{joon, seoul.ID, cats(authz.Database)}, {hana, seoul.ID, cats(authz.Audit)}, {hana, busan.ID, cats(authz.Database)}}, true)

	if err := k.printAudit(ada); err != nil {
		return err
	}

	// A restarted service loads the file and must decide exactly as the
	// running one.
	running := k.decisions(asks, false)
	again, err := iam.New(ctx, db)
	if err != nil {
		return err
	}
	defer again.Close()
	k.svc = again
	for i, d := range k.decisions(asks, false) {
		if d != running[i] {
			return fmt.Errorf("after restart %s in %s decides %+v, was %+v", k.name(string(asks[i].user)), k.name(string(asks[i].org)), d, running[i])
		}
	}
	fmt.Fprintf(w, "\nRestarted on the same file: all %d decisions are the same.\n", len(asks))
	return nil
}

// ask is one feature-page check.
type ask struct {
	user authz.UserID
	org  authz.OrgID
	need authz.CategorySet
}

// decisions checks every ask and, if print is set, prints a table.
func (k *walk) decisions(asks []ask, print bool) []authz.Decision {
	out := make([]authz.Decision, len(asks))
	tw := tabwriter.NewWriter(k.w, 0, 0, 2, ' ', 0)
	if print {
		fmt.Fprintln(tw, "  WHO\tORG\tNEEDS\tDECISION\tWHY")
	}
	for i, a := range asks {
		var d authz.Decision
		for c := range a.need.All() { // the page needs each of them
			if d = k.svc.Check(k.ctx, a.user, a.org, c); !d.Allowed {
				break
			}
		}
		err := k.svc.Authorize(k.ctx, a.user, a.org, a.need.Slice()...)
		out[i] = d
		verdict, why := "allowed", d.Reason.String()
		var ipe *authz.InsufficientPermissionsError
		if errors.As(err, &ipe) && d.Reason == authz.ReasonMissingCategories {
			verdict, why = "DENIED", "Insufficient permissions: ask your Manager for "+ipe.Missing.String()
		} else if !d.Allowed {
			verdict = "DENIED"
		}
		if print {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", k.name(string(a.user)), k.name(string(a.org)), a.need, verdict, why)
		}
	}
	tw.Flush()
	return out
}

// approveAll approves the pending requests of org (only the named
// person's, if name is set) as actor.
func (k *walk) approveAll(actor authz.UserID, org authz.OrgID, name string) error {
	queue, err := k.svc.Registrations(k.ctx, actor, org, approval.AllTime, approval.Pending)
	if err != nil {
		return err
	}
	for _, r := range queue {
		if name == "" || r.Name == name {
			if err := k.svc.Approve(k.ctx, actor, r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// printAudit prints the audit trail as viewer sees it, oldest first.
func (k *walk) printAudit(viewer authz.UserID) error {
	evs, err := k.svc.AuditEvents(k.ctx, viewer, audit.Filter{Limit: 100})
	if err != nil {
		return err
	}
	fmt.Fprintln(k.w, "\nAudit log (as Ada sees it, oldest first)")
	tw := tabwriter.NewWriter(k.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tACTOR\tACTION\tTARGET\tORG\tOUTCOME\tCHANGE")
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		change := strings.TrimSpace(string(e.Before) + " -> " + string(e.After))
		if e.Outcome == audit.Denied {
			change = e.Reason
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, k.name(string(e.Actor)), e.Action, k.name(string(e.Target)), k.name(string(e.Org)), e.Outcome, change)
	}
	return tw.Flush()
}

func (k *walk) name(id string) string {
	if id == "" {
		return "-"
	}
	if n, ok := k.names[id]; ok {
		return n
	}
	return id
}

// openSQLite opens the embedded default store: an SQLite file in WAL mode
// whose writers wait for each other instead of failing.
func openSQLite(path string) (*gorm.DB, error) {
	return gorm.Open(sqlite.Open("file:"+path+"?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=on"),
		&gorm.Config{Logger: logger.Discard})
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}
