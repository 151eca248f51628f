package iam_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
	"github.com/kiops/iam/internal/iamtest"
)

// faultWorld is a world under fault injection: the injector on its
// database and the Services whose state counts.
type faultWorld struct {
	*world
	faults *dbtest.Faults
	// replica is a second Service on the same database: after every
	// attempt, once synced, it must agree with svc on every check.
	replica *iam.Service
	// lagging is a Service one change behind the others, for the calls
	// that catch up (Sync, WaitVersion, CheckAt); nil for the rest.
	lagging *iam.Service
	session string // a session token of memA, for Logout and Authenticate
	reset   string // a reset token of memA, for ResetPassword
}

// faultOp is one Service call under fault injection.
type faultOp struct {
	name string
	// prep makes what call needs (a session, a reset token, a Service
	// behind), before the state is taken; nil for nothing.
	prep func(w *faultWorld)
	call func(ctx context.Context, w *faultWorld) error
	// want is the typed error of a refusal, nil for a call that succeeds.
	want error
	// bare runs the call on a platform with no PlatformAdmin (Bootstrap).
	bare bool
	// throttled: each attempt counts against the login throttle (an
	// attempt is counted when it starts), so the clock moves past its
	// delays before each.
	throttled bool
	// recordsFirst: the call commits its audit event and only then reads
	// what it discloses (ExportAudit); a failure after that commit leaves
	// that event, and nothing else.
	recordsFirst bool
}

// faultOps is every Service method that touches the database, with its
// refusals: TestFaultOpsCoverService fails when the Service gains an
// exported method missing here (or exempted in faultExempt).
func faultOps() []faultOp {
	cats := authz.NewCategorySet(authz.Backup, authz.Device)
	login := func(w *faultWorld) {
		tok, err := w.svc.Login(w.ctx, "mema@example.com", pw)
		w.must(err)
		w.session = tok.Reveal()
	}
	forgot := func(w *faultWorld) {
		w.must(w.svc.ForgotPassword(w.ctx, "mema@example.com"))
		w.reset = w.mail.Next(w.t).Token.Reveal()
	}
	// behind opens the lagging Service, then commits a change it has not
	// seen.
	behind := func(w *faultWorld) {
		w.lagging = w.open()
		w.must(w.svc.SetCategories(w.ctx, w.mgrA, w.memA, w.a, cats))
	}
	page := iam.Page{}
	ok := func(_ any, err error) error { return err }
	return []faultOp{
		{name: "Bootstrap", bare: true, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Bootstrap(ctx, "root@example.com", "Root", pw))
		}},
		{name: "Bootstrap refused", want: iam.ErrConflict, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Bootstrap(ctx, "root@example.com", "Root", pw))
		}},
		{name: "CreateOrg", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.CreateOrg(ctx, w.admin, "Daegu")) }},
		{name: "CreateOrg denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.CreateOrg(ctx, w.mgrA, "Daegu"))
		}},
		{name: "RenameOrg", call: func(ctx context.Context, w *faultWorld) error { return w.svc.RenameOrg(ctx, w.admin, w.a, "Seoul 2") }},
		{name: "RenameOrg denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.RenameOrg(ctx, w.mgrA, w.a, "Mine")
		}},
		{name: "DeleteOrg", call: func(ctx context.Context, w *faultWorld) error { return w.svc.DeleteOrg(ctx, w.admin, w.b) }},
		{name: "DeleteOrg denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.DeleteOrg(ctx, w.memA, w.a)
		}},
		{name: "SignUp", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.SignUp(ctx, "late@example.com", "Late", pw, w.b)
		}},
		{name: "SignUp refused", want: iam.ErrConflict, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.SignUp(ctx, "mema@example.com", "Person mema", pw, w.a)
		}},
		{name: "Approve", call: func(ctx context.Context, w *faultWorld) error { return w.svc.Approve(ctx, w.mgrA, w.pendingA) }},
		{name: "Approve denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.Approve(ctx, w.memA, w.pendingA)
		}},
		{name: "Reject", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.Reject(ctx, w.mgrA, w.pendingA, "unknown person")
		}},
		{name: "Reject denied", want: iam.ErrNotFound, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.Reject(ctx, w.mgrB, w.pendingA, "")
		}},
		{name: "ChangeRole to Manager", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ChangeRole(ctx, w.mgrA, w.memA, w.a, authz.Manager)
		}},
		{name: "ChangeRole to Member", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ChangeRole(ctx, w.mgrA, w.mgrA2, w.a, authz.Member)
		}},
		{name: "ChangeRole to PlatformAdmin", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ChangeRole(ctx, w.admin, w.memA, w.a, authz.PlatformAdmin)
		}},
		{name: "ChangeRole denied", want: iam.ErrSelfRoleChange, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ChangeRole(ctx, w.mgrA, w.mgrA, w.a, authz.PlatformAdmin)
		}},
		{name: "SetCategories", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.SetCategories(ctx, w.mgrA, w.memA, w.a, cats)
		}},
		{name: "SetCategories denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.SetCategories(ctx, w.mgrA, w.pa2, w.a, cats)
		}},
		{name: "RemoveMember", call: func(ctx context.Context, w *faultWorld) error { return w.svc.RemoveMember(ctx, w.mgrA, w.memA, w.a) }},
		{name: "RemoveMember denied", want: iam.ErrLastManager, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.RemoveMember(ctx, w.admin, w.mgrB, w.b)
		}},
		{name: "DeactivateUser", call: func(ctx context.Context, w *faultWorld) error { return w.svc.DeactivateUser(ctx, w.admin, w.memB) }},
		{name: "DeactivateUser denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.DeactivateUser(ctx, w.mgrA, w.memA)
		}},
		{name: "ReactivateUser", prep: func(w *faultWorld) { w.must(w.svc.DeactivateUser(w.ctx, w.admin, w.memA)) },
			call: func(ctx context.Context, w *faultWorld) error { return w.svc.ReactivateUser(ctx, w.admin, w.memA) }},
		{name: "ReactivateUser denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ReactivateUser(ctx, w.mgrA, w.memA)
		}},
		{name: "DeleteUser", call: func(ctx context.Context, w *faultWorld) error { return w.svc.DeleteUser(ctx, w.admin, w.mgrA2) }},
		{name: "DeleteUser denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.DeleteUser(ctx, w.mgrA, w.memA)
		}},
		{name: "StartPasswordReset", prep: login, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.StartPasswordReset(ctx, w.mgrA, w.memA, w.a)
		}},
		{name: "StartPasswordReset denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.StartPasswordReset(ctx, w.mgrA, w.pa2, w.a)
		}},
		{name: "ForgotPassword", call: func(ctx context.Context, w *faultWorld) error { return w.svc.ForgotPassword(ctx, "mema@example.com") }},
		{name: "ForgotPassword unknown", call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ForgotPassword(ctx, "nobody@example.com")
		}},
		{name: "ResetPassword", prep: forgot, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.ResetPassword(ctx, w.reset, "a brand new passphrase"))
		}},
		{name: "ResetPassword refused", want: iam.ErrUnauthenticated, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.ResetPassword(ctx, "no such token", "a brand new passphrase"))
		}},
		{name: "Login", throttled: true, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Login(ctx, "mema@example.com", pw))
		}},
		{name: "Login denied", throttled: true, want: iam.ErrUnauthenticated, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Login(ctx, "mema@example.com", "not the password at all"))
		}},
		{name: "Logout", prep: login, call: func(ctx context.Context, w *faultWorld) error { return w.svc.Logout(ctx, w.session) }},
		{name: "Logout refused", want: iam.ErrUnauthenticated, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.Logout(ctx, "no such session")
		}},
		{name: "Authenticate", prep: login, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Authenticate(ctx, w.session))
		}},
		{name: "Authenticate refused", want: iam.ErrUnauthenticated, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Authenticate(ctx, "no such session"))
		}},
		{name: "ChangeName", call: func(ctx context.Context, w *faultWorld) error { return w.svc.ChangeName(ctx, w.memA, "Mema Renamed") }},
		{name: "ChangeName refused", want: iam.ErrUnauthenticated, prep: func(w *faultWorld) { w.must(w.svc.DeactivateUser(w.ctx, w.admin, w.memA)) },
			call: func(ctx context.Context, w *faultWorld) error { return w.svc.ChangeName(ctx, w.memA, "Mema Renamed") }},
		{name: "ChangePassword", throttled: true, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.ChangePassword(ctx, w.memA, pw, "a brand new passphrase"))
		}},
		{name: "ChangePassword denied", throttled: true, want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.ChangePassword(ctx, w.memA, "not the password at all", "a brand new passphrase"))
		}},
		{name: "DeleteAccount", throttled: true, call: func(ctx context.Context, w *faultWorld) error { return w.svc.DeleteAccount(ctx, w.memA, pw) }},
		{name: "DeleteAccount denied", throttled: true, want: iam.ErrLastManager, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.DeleteAccount(ctx, w.mgrB, pw)
		}},
		{name: "Import", call: func(ctx context.Context, w *faultWorld) error {
			o := authz.NewOrgID()
			return ok(w.svc.Import(ctx, iam.ImportBatch{
				Orgs: []iam.ImportOrg{{ID: o, Name: "Imported"}},
				Users: []iam.ImportUser{
					{ID: authz.NewUserID(), Email: "imp1@example.com", Name: "Imp One", Memberships: map[authz.OrgID]authz.Membership{o: {Role: authz.Manager}}},
					{ID: authz.NewUserID(), Email: "imp2@example.com", Name: "Imp Two", Memberships: map[authz.OrgID]authz.Membership{
						o: {Role: authz.Member, Categories: cats}, w.a: {Role: authz.Member}}},
				},
			}))
		}},
		{name: "Import refused", want: iam.ErrConflict, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Import(ctx, iam.ImportBatch{Users: []iam.ImportUser{{ID: authz.NewUserID(), Email: "mema@example.com", Name: "Twin"}}}))
		}},
		{name: "Members", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.Members(ctx, w.mgrA, w.a, page)) }},
		{name: "Members denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Members(ctx, w.memA, w.a, page))
		}},
		{name: "Member", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.Member(ctx, w.mgrA, w.memA, w.a)) }},
		{name: "Member denied", want: iam.ErrNotFound, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Member(ctx, w.mgrB, w.memA, w.a))
		}},
		{name: "MembersWith", call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.MembersWith(ctx, w.mgrA, w.a, authz.Audit, page))
		}},
		{name: "MembersWith denied", want: iam.ErrNotFound, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.MembersWith(ctx, w.mgrB, w.a, authz.Audit, page))
		}},
		{name: "Access", call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Access(ctx, w.admin, w.b, authz.VPN, page))
		}},
		{name: "Access denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Access(ctx, w.memA, w.a, authz.VPN, page))
		}},
		{name: "Users", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.Users(ctx, w.admin, page)) }},
		{name: "Users denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Users(ctx, w.mgrA, page))
		}},
		{name: "Registrations", call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Registrations(ctx, w.mgrA, w.a, approval.Last30Days, approval.Pending))
		}},
		{name: "Registrations denied", want: iam.ErrNotFound, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.Registrations(ctx, w.mgrB, w.a, approval.AllTime, approval.Pending))
		}},
		{name: "PendingCount", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.PendingCount(ctx, w.mgrA, w.a)) }},
		{name: "PendingCount denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.PendingCount(ctx, w.memA, w.a))
		}},
		{name: "Orgs", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.Orgs(ctx, w.mgrA)) }},
		{name: "Profile", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.Profile(ctx, w.memA)) }},
		{name: "AuditEvents", call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.AuditEvents(ctx, w.auditorA, audit.Filter{Org: w.a}))
		}},
		{name: "AuditEvents denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.AuditEvents(ctx, w.memA, audit.Filter{Org: w.a}))
		}},
		{name: "ExportAudit", recordsFirst: true, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ExportAudit(ctx, w.mgrA, audit.Filter{}, audit.CSV, io.Discard)
		}},
		{name: "ExportAudit denied", want: iam.ErrForbidden, call: func(ctx context.Context, w *faultWorld) error {
			return w.svc.ExportAudit(ctx, w.memA, audit.Filter{Org: w.a}, audit.JSONLines, io.Discard)
		}},
		{name: "AuditCheckpoint", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.AuditCheckpoint(ctx)) }},
		{name: "VerifyAudit", call: func(ctx context.Context, w *faultWorld) error { return ok(w.svc.VerifyAudit(ctx)) }},
		{name: "VerifyAuditCheckpoint", call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.svc.VerifyAuditCheckpoint(ctx, audit.Checkpoint{ID: 1}))
		}},
		{name: "Sync", prep: behind, call: func(ctx context.Context, w *faultWorld) error { return w.lagging.Sync(ctx) }},
		{name: "WaitVersion", prep: behind, call: func(ctx context.Context, w *faultWorld) error {
			return w.lagging.WaitVersion(ctx, w.svc.Version())
		}},
		{name: "CheckAt", prep: behind, call: func(ctx context.Context, w *faultWorld) error {
			return ok(w.lagging.CheckAt(ctx, w.svc.Version(), w.memA, w.a, authz.Backup))
		}},
	}
}

// faultExempt are the exported methods of *iam.Service that touch no
// database (they answer from memory or hand out a value), and those of
// export_test.go.
var faultExempt = []string{
	"Authorize", "Check", "CheckOperations", "Close", "Guard", "SyncState", "Version",
	"Engine", "EngineRules", "SyncChannel", "UnrecordedAuditEvents",
}

// TestFaultOpsCoverService fails when *iam.Service has an exported
// method that is neither in faultOps nor exempted: a new method must get
// its fault-injection row.
func TestFaultOpsCoverService(t *testing.T) {
	covered := map[string]bool{}
	for _, op := range faultOps() {
		covered[strings.Fields(op.name)[0]] = true
	}
	for _, m := range faultExempt {
		if covered[m] {
			t.Errorf("%s is both exempt and in faultOps", m)
		}
		covered[m] = true
	}
	typ := reflect.TypeFor[*iam.Service]()
	for i := range typ.NumMethod() {
		if name := typ.Method(i).Name; !covered[name] {
			t.Errorf("(*iam.Service).%s has no row in faultOps: add one (or exempt it in faultExempt if it touches no database)", name)
		}
		delete(covered, typ.Method(i).Name)
	}
	for name := range covered {
		t.Errorf("faultOps or faultExempt names %s, which *iam.Service does not have", name)
	}
}

// faultEnv is newEnv for an op: a bare one (no PlatformAdmin yet) opens
// the Service without bootstrapping it.
func faultEnv(t *testing.T, kind dbtest.Kind, bare bool) *env {
	if !bare {
		return newEnv(t, kind)
	}
	e := &env{t: t, ctx: context.Background(), kind: kind, db: dbtest.Open(t, kind),
		clock: &clock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}, mail: iamtest.NewMailbox()}
	e.svc = e.open()
	return e
}

func newFaultWorld(t *testing.T, kind dbtest.Kind, op faultOp) *faultWorld {
	e := faultEnv(t, kind, op.bare)
	w := &faultWorld{world: &world{env: e}}
	if !op.bare {
		w.world = newWorld(e)
	}
	if op.prep != nil {
		op.prep(w)
	}
	w.replica = e.open()
	w.faults = dbtest.InjectFaults(t, e.db)
	return w
}

// services are the Services whose state counts.
func (w *faultWorld) services() []*iam.Service {
	s := []*iam.Service{w.svc, w.replica}
	if w.lagging != nil {
		s = append(s, w.lagging)
	}
	return s
}

// faultState is everything an attempt must leave as it was.
type faultState struct {
	snap     snapshot // every table, the audit log, svc's engine
	engines  [][]string
	versions []int64
}

// state takes the state, disarmed. The audit rows it holds include each
// event's hash and the hash before it: equal rows are the same chain,
// with the same head, which verify checks before and after the attempts.
func (w *faultWorld) state() faultState {
	w.t.Helper()
	w.faults.Reset(0)
	s := faultState{snap: w.snap()}
	for _, svc := range w.services() {
		s.engines = append(s.engines, svc.EngineRules())
		s.versions = append(s.versions, svc.Version())
	}
	return s
}

// verify fails unless the audit chain verifies.
func (w *faultWorld) verify() {
	w.t.Helper()
	w.faults.Reset(0)
	res, err := w.svc.VerifyAudit(w.ctx)
	if err != nil || !res.OK() {
		w.t.Fatalf("audit chain: %+v, %v", res, err)
	}
}

// same fails unless the state is before's.
func (w *faultWorld) same(before faultState, what string) {
	w.t.Helper()
	after := w.state()
	for _, tbl := range tables {
		if !slices.Equal(before.snap.tables[tbl], after.snap.tables[tbl]) {
			w.t.Errorf("%s: table %s changed:\nbefore %q\nafter  %q", what, tbl, before.snap.tables[tbl], after.snap.tables[tbl])
		}
	}
	if !slices.Equal(before.snap.audit, after.snap.audit) {
		w.t.Errorf("%s: the audit log changed:\nbefore %q\nafter  %q", what, before.snap.audit, after.snap.audit)
	}
	if !slices.Equal(before.snap.engine, after.snap.engine) {
		w.t.Errorf("%s: the engine changed:\nbefore %q\nafter  %q", what, before.snap.engine, after.snap.engine)
	}
	if !reflect.DeepEqual(before.engines, after.engines) || !slices.Equal(before.versions, after.versions) {
		w.t.Errorf("%s: an engine or version changed: versions %v, then %v", what, before.versions, after.versions)
	}
	if w.t.Failed() {
		w.t.FailNow()
	}
}

// agree syncs the replica and fails unless it agrees with svc on every
// rule and every check: each user of the database, in each org and
// platform-wide, for each category.
func (w *faultWorld) agree(what string) {
	w.t.Helper()
	w.faults.Reset(0)
	w.must(w.replica.Sync(w.ctx))
	if a, b := w.svc.EngineRules(), w.replica.EngineRules(); !slices.Equal(a, b) {
		w.t.Fatalf("%s: the replica's rules differ:\nsvc     %q\nreplica %q", what, a, b)
	}
	var users, orgs []string
	w.must(w.db.Table("iam_users").Pluck("id", &users).Error)
	w.must(w.db.Table("iam_orgs").Pluck("id", &orgs).Error)
	orgs = append(orgs, "")
	for _, u := range users {
		for _, o := range orgs {
			for _, c := range authz.Categories() {
				if a, b := w.svc.Check(w.ctx, authz.UserID(u), authz.OrgID(o), c), w.replica.Check(w.ctx, authz.UserID(u), authz.OrgID(o), c); a != b {
					w.t.Fatalf("%s: Check(%s, %s, %v): svc %+v, replica %+v", what, u, o, c, a, b)
				}
			}
		}
	}
}

// faultTally counts what one op went through.
type faultTally struct {
	statements, transactions int
	faults, cancels          int
	// commits are the commit faults, one per transaction. A transaction
	// the call rolls back itself (a refusal's) has no commit to fail:
	// there the fault fails the statement after it (see dbtest.Plan).
	commits int
	kept    int // failures after recordsFirst's commit, which keep its event
	sql     []dbtest.Statement
}

// TestFaults fails, for every Service call of faultOps on every kind of
// database, each of its SQL statements in turn, cancels its context just
// before each statement, and fails the commit of each of its
// transactions. After each failed attempt the call must have returned an
// error (the injected one, the context's, the database's, or the typed
// error of its refusal), and the database, every Service's engine and
// version and the audit log with its hash chain must be as before; a
// second Service, synced, must agree with the first on every check. Then
// the call succeeds (or is refused, with its typed error), and the
// replica and a fresh Service agree again.
func TestFaults(t *testing.T) {
	for _, op := range faultOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			// The kinds run at once, beside the other ops' (t.Run from
			// goroutines, not t.Parallel, which -parallel would hold to
			// GOMAXPROCS, 2 in CI): the attempts mostly wait for the
			// database, PostgreSQL's round trips above all.
			var wg sync.WaitGroup
			for _, kind := range dbtest.Kinds(t) {
				wg.Go(func() {
					t.Run(kind.String(), func(t *testing.T) {
						tally := faultRun(t, kind, op)
						t.Logf("%s %s: %d statements in %d transactions, %d statement faults + %d cancellations + %d commit faults, all unchanged%s",
							op.name, kind, tally.statements, tally.transactions, tally.faults, tally.cancels, tally.commits, faultKept(tally.kept))
						if os.Getenv(dbtest.EnvSQLLog) != "" {
							for i, s := range tally.sql {
								t.Logf("%2d tx%d %s", i+1, s.Tx, s.SQL)
							}
						}
					})
				})
			}
			wg.Wait()
		})
	}
}

func faultKept(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d after the audit event committed: only that event kept)", n)
}

// faultRun runs op's attempts on one world of kind and returns the tally.
func faultRun(t *testing.T, kind dbtest.Kind, op faultOp) faultTally {
	w := newFaultWorld(t, kind, op)
	call := func(ctx context.Context) error {
		if op.throttled {
			w.clock.Advance(time.Hour) // past any throttle delay and its window
		}
		return op.call(ctx, w)
	}
	w.verify()
	before := w.state()
	var tally faultTally
	var last error // the error of the unarmed run that ends the loop
	// failed checks a failed attempt: its error, then the state.
	failed := func(err, cause error, what string) {
		t.Helper()
		switch {
		case err == nil:
			t.Fatalf("%s: the call succeeded", what)
		case errors.Is(err, cause), cause == nil:
		case op.want != nil && errors.Is(err, op.want):
		default:
			t.Fatalf("%s: err = %v, want %v or %v", what, err, cause, op.want)
		}
		if op.recordsFirst {
			if after := w.state(); len(after.snap.audit) == len(before.snap.audit)+1 {
				w.unchanged(before.snap, 1)
				if ev := w.lastEvent(); ev.Outcome != audit.Success {
					t.Fatalf("%s: the event kept is %+v", what, ev)
				}
				tally.kept++
				before = w.state()
				return
			}
		}
		w.same(before, what)
		w.agree(what)
	}
	for i := 1; ; i++ {
		// Statement i fails.
		w.faults.Reset(i)
		err := call(w.ctx)
		st := w.faults.Statements()
		if w.faults.Count() < i { // the call ran without reaching statement i: done
			w.faults.Reset(0)
			last = err
			tally.statements, tally.sql = i-1, st
			for _, s := range st {
				tally.transactions = max(tally.transactions, s.Tx)
			}
			break
		}
		tally.faults++
		what := fmt.Sprintf("statement %d failed", i)
		failed(err, dbtest.ErrInjected, what)
		// The commit of statement i's transaction fails, the first time
		// it is seen.
		if tx := st[i-1].Tx; tx > tally.commits {
			w.faults.Arm(dbtest.Plan{Commit: tx})
			err := call(w.ctx)
			tally.commits = tx
			failed(err, nil, fmt.Sprintf("commit of transaction %d failed", tx))
		}
		// The context is cancelled just before statement i.
		ctx, cancel := context.WithCancel(w.ctx)
		w.faults.Arm(dbtest.Plan{Cancel: i, CancelFunc: cancel})
		err = call(ctx)
		cancel()
		tally.cancels++
		failed(err, context.Canceled, fmt.Sprintf("context cancelled before statement %d", i))
	}
	if tally.statements == 0 {
		t.Fatal("the call ran no statement")
	}
	// The last run, unarmed, succeeded or was refused.
	if op.want == nil && last != nil || op.want != nil && !errors.Is(last, op.want) {
		t.Fatalf("unarmed: err = %v, want %v", last, op.want)
	}
	w.verify()
	w.agree("after the call")
	w.restartAgrees()
	return tally
}
