package iam_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
	"github.com/kiops/iam/internal/iamtest"
)

// clock is a settable clock for the Service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one Service on a fresh database of one kind, with its clock and
// mailbox, and a PlatformAdmin to start from.
type env struct {
	t     *testing.T
	ctx   context.Context
	kind  dbtest.Kind
	db    *gorm.DB
	svc   *iam.Service
	clock *clock
	mail  *iamtest.Mailbox
	admin authz.UserID
}

const pw = "correct horse battery staple" // passes the policy; never a real password

func newEnv(t *testing.T, kind dbtest.Kind) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), kind: kind, db: dbtest.Open(t, kind),
		clock: &clock{now: time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.FixedZone("KST", 9*3600))}, mail: iamtest.NewMailbox()}
	e.svc = e.open()
	var err error
	e.admin, err = e.svc.Bootstrap(e.ctx, "ada@example.com", "Ada Admin", pw)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return e
}

// open returns a new Service on e's database (a second one is a restart).
func (e *env) open() *iam.Service {
	e.t.Helper()
	svc, err := iam.New(e.ctx, e.db,
		iam.WithLogger(testLogger(e.t)),
		iam.WithClock(e.clock.Now),
		iam.WithPasswordHasher(identity.TestingHasherConfig(e.t)),
		iam.WithNotifier(e.mail),
	)
	if err != nil {
		e.t.Fatalf("iam.New: %v", err)
	}
	e.t.Cleanup(func() { svc.Close() })
	return svc
}

// testLogger returns a logger that writes into t's log (shown when the
// test fails or with -v) rather than on stderr, where the expected errors
// of fault injection would bury everything else. Lines that arrive after
// the test's cleanups began are dropped: t.Log may not be called then.
func testLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.stop) // registered before the Service's Close, so it runs after it
	return slog.New(slog.NewTextHandler(w, nil))
}

type testLogWriter struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// org creates an org as the PlatformAdmin.
func (e *env) org(name string) authz.OrgID {
	e.t.Helper()
	o, err := e.svc.CreateOrg(e.ctx, e.admin, name)
	e.must(err)
	return o.ID
}

// member signs a person up to org and approves them as the PlatformAdmin,
// then gives them role and categories.
func (e *env) member(email string, org authz.OrgID, role authz.Role, cats authz.CategorySet) authz.UserID {
	e.t.Helper()
	e.must(e.svc.SignUp(e.ctx, email, "Person "+strings.Split(email, "@")[0], pw, org))
	reqs, err := e.svc.Registrations(e.ctx, e.admin, org, 0, 0)
	e.must(err)
	var id authz.UserID
	for _, r := range reqs {
		if r.Email == email {
			e.must(e.svc.Approve(e.ctx, e.admin, r.ID))
			id = r.User
		}
	}
	if id == "" {
		e.t.Fatalf("no request for %s", email)
	}
	if role != authz.Member {
		e.must(e.svc.ChangeRole(e.ctx, e.admin, id, org, role))
	}
	if !cats.Empty() {
		e.must(e.svc.SetCategories(e.ctx, e.admin, id, org, cats))
	}
	return id
}

// snapshot is every row of every table, as text, for "nothing changed"
// comparisons. The audit table is kept apart: denials add to it.
type snapshot struct {
	tables map[string][]string
	audit  []string
	engine []string
}

var tables = []string{"casbin_rule", "iam_policy_version", "iam_policy_changes", "iam_users", "iam_orgs", "iam_sessions", "iam_reset_tokens", "iam_registration_requests"}

func (e *env) snap() snapshot {
	e.t.Helper()
	s := snapshot{tables: map[string][]string{}, engine: e.svc.EngineRules()}
	for _, tbl := range tables {
		s.tables[tbl] = dbtest.Dump(e.t, e.db, tbl)
	}
	s.audit = dbtest.Dump(e.t, e.db, "iam_audit_events")
	return s
}

// unchanged fails unless nothing but the audit log changed since before,
// and the audit log grew by exactly wantEvents events.
func (e *env) unchanged(before snapshot, wantEvents int) {
	e.t.Helper()
	after := e.snap()
	for _, tbl := range tables {
		if !slices.Equal(before.tables[tbl], after.tables[tbl]) {
			e.t.Errorf("table %s changed:\nbefore %q\nafter  %q", tbl, before.tables[tbl], after.tables[tbl])
		}
	}
	if !slices.Equal(before.engine, after.engine) {
		e.t.Errorf("engine changed:\nbefore %q\nafter  %q", before.engine, after.engine)
	}
	if got := len(after.audit) - len(before.audit); got != wantEvents {
		e.t.Errorf("audit log grew by %d events, want %d", got, wantEvents)
	}
}

// lastEvent returns the newest audit event, read from the store without
// recording a view (AuditEvents would add an audit.view event of its own).
func (e *env) lastEvent() audit.Event {
	e.t.Helper()
	evs, err := e.svc.UnrecordedAuditEvents(e.ctx, audit.Filter{Limit: 1})
	e.must(err)
	if len(evs) == 0 {
		e.t.Fatal("no audit events")
	}
	return evs[0]
}

// restartAgrees checks that a fresh Service on the same database holds
// exactly the rules of the running one.
func (e *env) restartAgrees() {
	e.t.Helper()
	fresh := e.open()
	if a, b := e.svc.EngineRules(), fresh.EngineRules(); !slices.Equal(a, b) {
		e.t.Errorf("a restart disagrees with the running Service:\nrunning %q\nfresh   %q", a, b)
	}
}

func forEachKind(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, kind))
		})
	}
}
