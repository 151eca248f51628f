package authz

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newTestEngine(t testing.TB, opts ...Option) *Engine {
	t.Helper()
	e, err := NewEngine(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(seq(BaseRows())); err != nil {
		t.Fatal(err)
	}
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckReasons(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	admin, mgr, mem, outsider := NewUserID(), NewUserID(), NewUserID(), NewUserID()
	o, other := NewOrgID(), NewOrgID()
	must(t, e.SetPlatformAdmin(admin, true))
	must(t, e.AssignRole(mgr, o, Manager))
	must(t, e.SetMembership(mem, o, Membership{Role: Member, Categories: NewCategorySet(Infra, VPN)}))
	must(t, e.AssignRole(outsider, other, Member))
	gone, goneMgr := NewUserID(), NewUserID()
	must(t, e.SetPlatformAdmin(gone, true))
	must(t, e.SetDeactivated(gone, true))
	must(t, e.AssignRole(goneMgr, o, Manager))
	must(t, e.SetDeactivated(goneMgr, true))

	cases := []struct {
		name    string
		u       UserID
		o       OrgID
		req     CategorySet
		allowed bool
		reason  Reason
		role    Role
		missing CategorySet
	}{
		{"platformadmin in any org", admin, other, NewCategorySet(Audit), true, ReasonPlatformAdmin, PlatformAdmin, 0},
		{"manager of the org", mgr, o, AllCategories, true, ReasonManager, Manager, 0},
		{"manager elsewhere", mgr, other, NewCategorySet(Infra), false, ReasonNotMember, RoleNone, NewCategorySet(Infra)},
		{"member granted", mem, o, NewCategorySet(VPN), true, ReasonGranted, Member, 0},
		{"member granted all asked", mem, o, NewCategorySet(VPN, Infra), true, ReasonGranted, Member, 0},
		{"member missing one", mem, o, NewCategorySet(VPN, Audit, Backup), false, ReasonMissingCategories, Member, NewCategorySet(Audit, Backup)},
		{"member of another org", outsider, o, NewCategorySet(Infra), false, ReasonNotMember, RoleNone, NewCategorySet(Infra)},
		{"unknown user", NewUserID(), o, NewCategorySet(Infra), false, ReasonNotMember, RoleNone, NewCategorySet(Infra)},
		{"nothing asked", mgr, o, 0, false, ReasonInvalid, RoleNone, 0},
		{"unknown bits asked", mgr, o, 0x80 | NewCategorySet(Infra), false, ReasonInvalid, RoleNone, 0},
		{"wildcard org, even for an admin", admin, "*", NewCategorySet(Infra), false, ReasonInvalid, RoleNone, 0},
		{"global domain as org", admin, "global", NewCategorySet(Infra), false, ReasonInvalid, RoleNone, 0},
		{"wildcard user", "*", o, NewCategorySet(Infra), false, ReasonNotMember, RoleNone, NewCategorySet(Infra)},
		{"deactivated platformadmin", gone, o, NewCategorySet(Infra), false, ReasonDeactivated, RoleNone, NewCategorySet(Infra)},
		{"deactivated manager", goneMgr, o, NewCategorySet(Infra), false, ReasonDeactivated, Manager, NewCategorySet(Infra)},
	}
	for _, c := range cases {
		d := e.CheckAll(c.u, c.o, c.req)
		if d.Allowed != c.allowed || d.Reason != c.reason || d.Role != c.role || d.Missing != c.missing {
			t.Errorf("%s: got allowed=%v reason=%v role=%v missing=%v; want %v %v %v %v",
				c.name, d.Allowed, d.Reason, d.Role, d.Missing, c.allowed, c.reason, c.role, c.missing)
		}
		err := d.Err()
		if c.allowed != (err == nil) {
			t.Errorf("%s: Err() = %v", c.name, err)
		}
		var ipe *InsufficientPermissionsError
		if !c.allowed && (!errors.Is(err, ErrForbidden) || !errors.As(err, &ipe) || ipe.Missing != c.missing || ipe.Required != c.req) {
			t.Errorf("%s: Err() = %#v, want an *InsufficientPermissionsError", c.name, err)
		}
	}
	if d := e.Check(mem, o, Category(0)); d.Allowed || d.Reason != ReasonInvalid {
		t.Errorf("Check with the zero Category = %+v", d)
	}
	if !e.IsPlatformAdmin(admin) || e.IsPlatformAdmin(mgr) || e.IsPlatformAdmin(gone) {
		t.Error("IsPlatformAdmin is wrong")
	}
	// Reactivation restores exactly what the user held.
	must(t, e.SetDeactivated(goneMgr, false))
	if d := e.Check(goneMgr, o, Audit); !d.Allowed || d.Reason != ReasonManager || e.IsDeactivated(goneMgr) {
		t.Errorf("reactivated Manager: %+v", d)
	}
	if m, ok := e.Membership(mem, o); !ok || m != (Membership{Member, NewCategorySet(Infra, VPN)}) {
		t.Errorf("Membership = %+v, %v", m, ok)
	}
	msg := e.Check(mem, o, Audit).Err().Error()
	if !strings.Contains(msg, "insufficient permissions") || !strings.Contains(msg, "audit") {
		t.Errorf("denial message %q does not name the missing category", msg)
	}
}

func TestWrites(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	u, o, o2 := NewUserID(), NewOrgID(), NewOrgID()
	must(t, e.SetCategories(u, o, NewCategorySet(Backup)))
	if d := e.Check(u, o, Backup); !d.Allowed || d.Role != RoleNone {
		t.Errorf("a grant without a role is honoured as Casbin honours it: %+v", d)
	}
	must(t, e.AssignRole(u, o, Member))
	must(t, e.AssignRole(u, o2, Manager))
	if m, _ := e.Membership(u, o); m.Role != Member || m.Categories != NewCategorySet(Backup) {
		t.Errorf("AssignRole lost the categories: %+v", m)
	}
	must(t, e.AssignRole(u, o, Manager))
	if m, _ := e.Membership(u, o); m.Role != Manager {
		t.Errorf("AssignRole did not replace the role: %+v", m)
	}
	must(t, e.RevokeRole(u, o))
	if d := e.Check(u, o, Infra); d.Allowed {
		t.Error("RevokeRole left the Manager's rights")
	}
	if d := e.Check(u, o, Backup); !d.Allowed {
		t.Error("RevokeRole took the grants too")
	}
	must(t, e.RemoveMembership(u, o))
	if _, ok := e.Membership(u, o); ok {
		t.Error("RemoveMembership left something")
	}
	if d := e.Check(u, o2, Audit); !d.Allowed {
		t.Error("RemoveMembership touched another org")
	}
	must(t, e.SetPlatformAdmin(u, true))
	must(t, e.RemoveUser(u))
	if e.IsPlatformAdmin(u) || e.Check(u, o2, Audit).Allowed || countRules(e) != 0 {
		t.Error("RemoveUser left something")
	}
	// Writes that change nothing are fine (the Service replays them after
	// commit and replicas may see them twice).
	must(t, e.RemoveUser(u))
	must(t, e.RemoveMembership(NewUserID(), o))
	if countRules(e) != 0 {
		t.Error("no-op writes created rules")
	}
}

func countRules(e *Engine) int {
	n := 0
	for range e.Rules() {
		n++
	}
	return n
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	u, o := NewUserID(), NewOrgID()
	must(t, e.SetMembership(u, o, Membership{Role: Member, Categories: NewCategorySet(Infra)}))
	before := slices.Collect(e.Rules())

	badUsers := []UserID{"", "*", "usr_*", UserID(strings.ToUpper(string(u))), u + " ", u + "\x00", "role:manager"}
	badOrgs := []OrgID{"", "*", "global", OrgID(strings.ToUpper(string(o))), "org_::", o + ","}
	var calls []func() error
	for _, bu := range badUsers {
		calls = append(calls,
			func() error { return e.SetPlatformAdmin(bu, true) },
			func() error { return e.AssignRole(bu, o, Member) },
			func() error { return e.RevokeRole(bu, o) },
			func() error { return e.SetCategories(bu, o, AllCategories) },
			func() error { return e.SetMembership(bu, o, Membership{Role: Manager}) },
			func() error { return e.RemoveMembership(bu, o) },
			func() error { return e.RemoveUser(bu) },
		)
	}
	for _, bo := range badOrgs {
		calls = append(calls,
			func() error { return e.AssignRole(u, bo, Manager) },
			func() error { return e.RevokeRole(u, bo) },
			func() error { return e.SetCategories(u, bo, AllCategories) },
			func() error { return e.SetMembership(u, bo, Membership{Role: Manager}) },
			func() error { return e.RemoveMembership(u, bo) },
		)
	}
	calls = append(calls,
		func() error { return e.AssignRole(u, o, PlatformAdmin) },
		func() error { return e.AssignRole(u, o, RoleNone) },
		func() error { return e.AssignRole(u, o, Role(9)) },
		func() error { return e.SetCategories(u, o, 0x80) },
		func() error { return e.SetMembership(u, o, Membership{Role: PlatformAdmin}) },
		func() error { return e.SetMembership(u, o, Membership{Role: Member, Categories: 0xff}) },
	)
	for i, call := range calls {
		err := call()
		var ie *InvalidError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) {
			t.Errorf("call %d: err = %v, want an *InvalidError", i, err)
		}
	}
	if after := slices.Collect(e.Rules()); !slices.Equal(before, after) {
		t.Errorf("bad input changed the index: %v -> %v", before, after)
	}
}

func TestLoadRejectsForeignRowsAndKeepsIndex(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	u, o := NewUserID(), NewOrgID()
	must(t, e.AssignRole(u, o, Manager))
	us, os := string(u), string(o)
	bad := map[string][]Row{
		"unknown p rule":      append(BaseRows(), Row{PType: "p", V0: "role:member", V1: "infra"}),
		"wildcard user":       append(BaseRows(), Row{PType: "g", V0: "*", V1: "role:manager", V2: os}),
		"wildcard org":        append(BaseRows(), Row{PType: "g", V0: us, V1: "role:manager", V2: "*"}),
		"role inherits role":  append(BaseRows(), Row{PType: "g", V0: "role:member", V1: "role:manager", V2: os}),
		"missing base rule":   BaseRows()[1:],
		"admin inside an org": append(BaseRows(), Row{PType: "g", V0: us, V1: "role:platformadmin", V2: os}),
	}
	for name, rows := range bad {
		if err := e.Load(seq(rows)); err == nil {
			t.Errorf("%s: Load accepted", name)
		}
		if d := e.Check(u, o, Audit); !d.Allowed || d.Reason != ReasonManager {
			t.Errorf("%s: a refused Load changed the index", name)
		}
	}
	failing := func(yield func(Row, error) bool) {
		if yield(BaseRows()[0], nil) {
			yield(Row{}, errors.New("connection reset"))
		}
	}
	if err := e.Load(failing); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("Load hid the source's error: %v", err)
	}
	if !e.Check(u, o, Audit).Allowed {
		t.Error("a failed Load changed the index")
	}
	// A good Load replaces everything.
	v := NewUserID()
	must(t, e.Load(seq(append(BaseRows(), RoleRule(v, o, Manager).row()))))
	if e.Check(u, o, Audit).Allowed || !e.Check(v, o, Audit).Allowed {
		t.Error("Load did not replace the index")
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	g := genWorkload(rand.New(rand.NewPCG(1, 2)), 10)
	e := newTestEngine(t)
	must(t, e.Load(seq(g.rows)))
	reqs := g.requests(rand.New(rand.NewPCG(3, 4)), 1000)
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		q := reqs[i%len(reqs)]
		i++
		_ = e.Check(q.u, q.o, q.c)
		_ = e.IsPlatformAdmin(q.u)
		_, _ = e.Membership(q.u, q.o)
	})
	if allocs != 0 {
		t.Errorf("Check allocates %.1f times per call, want 0", allocs)
	}
}

// TestConcurrentReadersAndWriters runs checks against a stream of writes
// (run it with -race): every check must see one user's state wholly
// before or wholly after a write, never half of it.
func TestConcurrentReadersAndWriters(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	o := NewOrgID()
	users := make([]UserID, 64)
	for i := range users {
		users[i] = NewUserID()
	}
	// Each write sets a membership where "has infra" and "has vpn" are
	// always equal; a torn read would see them differ.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; i < 3000; i++ {
				u := users[rng.IntN(len(users))]
				var err error
				switch rng.IntN(3) {
				case 0:
					err = e.SetMembership(u, o, Membership{Role: Member, Categories: NewCategorySet(Infra, VPN)})
				case 1:
					err = e.SetMembership(u, o, Membership{Role: Member})
				case 2:
					err = e.RemoveUser(u)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var torn sync.WaitGroup
	for r := range 4 {
		torn.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				u := users[rng.IntN(len(users))]
				m, _ := e.Membership(u, o)
				if m.Categories.Has(Infra) != m.Categories.Has(VPN) {
					t.Errorf("torn read: %v", m.Categories)
					return
				}
				d := e.CheckAll(u, o, NewCategorySet(Infra, VPN))
				if d.Allowed && d.Granted != NewCategorySet(Infra, VPN) {
					t.Errorf("torn decision: %+v", d)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	torn.Wait()
}

func TestCrossCheck(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	e := newTestEngine(t, WithCasbinCrossCheck(), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	g := genRandom(rand.New(rand.NewPCG(5, 6)))
	must(t, e.Load(seq(g.rows)))
	rng := rand.New(rand.NewPCG(7, 8))
	for range 30 {
		randomWrite(t, rng, e, g, make(rowSet))
	}
	for _, q := range g.requests(rng, 500) {
		if d := e.Check(q.u, q.o, q.c); d.Reason == ReasonError {
			t.Fatalf("index and Casbin disagree on %+v", q)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected log: %s", logs.String())
	}
	// Make the two disagree behind the engine's back: the check must deny
	// and say so.
	u, o := NewUserID(), g.orgs[0]
	if _, err := e.oracle.enf.AddGroupingPolicy(string(u), "role:manager", string(o)); err != nil {
		t.Fatal(err)
	}
	if d := e.Check(u, o, Infra); d.Allowed || d.Reason != ReasonError {
		t.Errorf("disagreement (index denies, Casbin allows) gave %+v", d)
	}
	must(t, e.AssignRole(u, o, Manager))
	if _, err := e.oracle.enf.RemoveGroupingPolicy(string(u), "role:manager", string(o)); err != nil {
		t.Fatal(err)
	}
	if d := e.Check(u, o, Infra); d.Allowed || d.Reason != ReasonError {
		t.Errorf("disagreement (index allows, Casbin denies) gave %+v", d)
	}
	if !strings.Contains(logs.String(), "disagree") {
		t.Errorf("disagreement not logged: %q", logs.String())
	}
}

// SetUserRules replaces a user's whole state with the rules given, as a
// replica applies another's committed change: the result equals what the
// writes that produced those rules gave, and empty rules clear the user.
func TestSetUserRules(t *testing.T) {
	src, dst := newTestEngine(t), newTestEngine(t)
	u, other, o1, o2 := NewUserID(), NewUserID(), NewOrgID(), NewOrgID()
	must(t, src.SetMembership(u, o1, Membership{Role: Manager}))
	must(t, src.SetMembership(u, o2, Membership{Role: Member, Categories: NewCategorySet(VPN, Audit)}))
	must(t, src.SetPlatformAdmin(u, true))
	must(t, dst.SetMembership(u, NewOrgID(), Membership{Role: Member})) // stale state, to be replaced
	var rules []Rule
	for r := range src.Rules() {
		rules = append(rules, r)
	}
	must(t, dst.SetUserRules(u, rules))
	sorted := func(e *Engine) []string {
		var out []string
		for r := range e.Rules() {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return out
	}
	if got, want := sorted(dst), sorted(src); !slices.Equal(got, want) {
		t.Fatalf("after SetUserRules: %v, want %v", got, want)
	}
	if err := dst.SetUserRules(u, []Rule{PlatformAdminRule(other)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a rule of another user: %v", err)
	}
	if err := dst.SetUserRules(u, []Rule{{User: u, Org: o1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an invalid rule: %v", err)
	}
	if got, want := sorted(dst), sorted(src); !slices.Equal(got, want) {
		t.Fatal("a refused SetUserRules changed the engine")
	}
	must(t, dst.SetUserRules(u, nil))
	if n := len(sorted(dst)); n != 0 || dst.Check(u, o1, VPN).Allowed {
		t.Fatalf("after SetUserRules(nil): %d rules", n)
	}
}
