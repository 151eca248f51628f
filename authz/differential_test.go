package authz

import (
	"math/rand/v2"
	"testing"

	"github.com/casbin/casbin/v2"
)

// TestDifferentialAgainstCasbin is the engine's correctness proof: on
// random policies, loaded and then changed by random writes, the index and
// Casbin's Enforce over the same rows must give the same answer to every
// check. The rows after the writes are derived here independently of the
// Engine (from the model's meaning, not from the Engine's own encoder), and
// the Engine's Rules must equal them.
func TestDifferentialAgainstCasbin(t *testing.T) {
	const (
		policies         = 220
		checksPerPhase   = 120 // two phases (after Load, after writes) per policy
		checkAllPerPhase = 20
		writesPerPolicy  = 40
	)
	var checks int
	for p := range policies {
		rng := rand.New(rand.NewPCG(uint64(p), 0x1a7))
		g := genRandom(rng)
		e, err := NewEngine()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Load(seq(g.rows)); err != nil {
			t.Fatalf("policy %d: load: %v", p, err)
		}
		truth := make(rowSet)
		for _, r := range g.rows {
			truth[r] = true
		}
		checks += compareWithCasbin(t, p, "after load", rng, e, g, truth, checksPerPhase, checkAllPerPhase)

		for range writesPerPolicy {
			randomWrite(t, rng, e, g, truth)
		}
		checks += compareWithCasbin(t, p, "after writes", rng, e, g, truth, checksPerPhase, checkAllPerPhase)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d policies, %d checks, all equal to Casbin's Enforce", policies, checks)
	if checks < 50000 {
		t.Fatalf("only %d checks; the differential test promises at least 50,000", checks)
	}
}

// rowSet is a policy as the set of its rows.
type rowSet map[Row]bool

func (s rowSet) removeWhere(f func(Row) bool) {
	for r := range s {
		if f(r) {
			delete(s, r)
		}
	}
}

// randomWrite applies one random write to the engine and the same change,
// by the model's meaning, to truth.
func randomWrite(t *testing.T, rng *rand.Rand, e *Engine, g *genPolicy, truth rowSet) {
	t.Helper()
	u := g.users[rng.IntN(len(g.users))]
	if rng.IntN(8) == 0 { // sometimes a brand-new user
		u = NewUserID()
		g.users = append(g.users, u)
	}
	o := g.orgs[rng.IntN(len(g.orgs))]
	us, os := string(u), string(o)
	inOrg := func(r Row) bool { return r.PType == "g" && r.V0 == us && r.V2 == os }
	isRole := func(r Row) bool { return inOrg(r) && (r.V1 == "role:member" || r.V1 == "role:manager") }
	isGrant := func(r Row) bool { return inOrg(r) && len(r.V1) > 4 && r.V1[:4] == "cat:" }
	grantRows := func(s CategorySet) {
		for c := range s.All() {
			truth[Row{PType: "g", V0: us, V1: "cat:" + c.String(), V2: os}] = true
		}
	}
	var err error
	switch rng.IntN(8) {
	case 7:
		off := rng.IntN(2) == 0
		err = e.SetDeactivated(u, off)
		row := Row{PType: "g", V0: us, V1: "status:deactivated", V2: "global"}
		if off {
			truth[row] = true
		} else {
			delete(truth, row)
		}
	case 0:
		admin := rng.IntN(2) == 0
		err = e.SetPlatformAdmin(u, admin)
		row := Row{PType: "g", V0: us, V1: "role:platformadmin", V2: "global"}
		if admin {
			truth[row] = true
		} else {
			delete(truth, row)
		}
	case 1:
		r := []Role{Member, Manager}[rng.IntN(2)]
		err = e.AssignRole(u, o, r)
		truth.removeWhere(isRole)
		truth[Row{PType: "g", V0: us, V1: "role:" + r.String(), V2: os}] = true
	case 2:
		err = e.RevokeRole(u, o)
		truth.removeWhere(isRole)
	case 3:
		s := randomSet(rng, rng.Float64())
		err = e.SetCategories(u, o, s)
		truth.removeWhere(isGrant)
		grantRows(s)
	case 4:
		r := []Role{RoleNone, Member, Manager}[rng.IntN(3)]
		s := randomSet(rng, rng.Float64())
		err = e.SetMembership(u, o, Membership{Role: r, Categories: s})
		truth.removeWhere(inOrg)
		if r != RoleNone {
			truth[Row{PType: "g", V0: us, V1: "role:" + r.String(), V2: os}] = true
		}
		grantRows(s)
	case 5:
		err = e.RemoveMembership(u, o)
		truth.removeWhere(inOrg)
	case 6:
		err = e.RemoveUser(u)
		truth.removeWhere(func(r Row) bool { return r.PType == "g" && r.V0 == us })
	}
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	// Keep the request generator's view roughly current.
	if _, ok := g.grants[memberKey{u, o}]; !ok {
		g.members[u] = append(g.members[u], o)
	}
}

func compareWithCasbin(t *testing.T, p int, phase string, rng *rand.Rand, e *Engine, g *genPolicy, truth rowSet, n, nAll int) int {
	t.Helper()
	enf := casbinFrom(t, truth)

	got := make(rowSet)
	for r := range e.Rules() {
		got[r.row()] = true
	}
	for r := range truth {
		if r.PType == "g" && !got[r] {
			t.Errorf("policy %d %s: engine lacks rule %v", p, phase, r)
		}
	}
	for r := range got {
		if !truth[r] {
			t.Errorf("policy %d %s: engine has extra rule %v", p, phase, r)
		}
	}

	reqs := g.requests(rng, n)
	// A few requests for users and orgs the policy has never seen.
	reqs = append(reqs, request{NewUserID(), g.orgs[0], Infra}, request{g.users[0], NewOrgID(), Audit})
	for _, q := range reqs {
		want, err := enf.Enforce(string(q.u), string(q.o), q.c.String())
		if err != nil {
			t.Fatal(err)
		}
		d := e.Check(q.u, q.o, q.c)
		if d.Allowed != want {
			t.Errorf("policy %d %s: Check(%s, %s, %v) = %v (%v), Casbin says %v", p, phase, q.u, q.o, q.c, d.Allowed, d.Reason, want)
		}
		if !d.Allowed && d.Missing != NewCategorySet(q.c) {
			t.Errorf("policy %d %s: denied Check(%s, %s, %v) names missing %v", p, phase, q.u, q.o, q.c, d.Missing)
		}
	}
	for range nAll {
		q := reqs[rng.IntN(len(reqs))]
		req := randomSet(rng, 0.4).With(q.c)
		want, missing := true, CategorySet(0)
		for c := range req.All() {
			ok, err := enf.Enforce(string(q.u), string(q.o), c.String())
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				want, missing = false, missing.With(c)
			}
		}
		d := e.CheckAll(q.u, q.o, req)
		if d.Allowed != want || d.Missing != missing {
			t.Errorf("policy %d %s: CheckAll(%s, %s, %v) = %v missing %v, Casbin says %v missing %v",
				p, phase, q.u, q.o, req, d.Allowed, d.Missing, want, missing)
		}
	}
	return len(reqs) + nAll
}

// casbinFrom builds a plain Casbin enforcer over Model holding rows.
func casbinFrom(t testing.TB, rows rowSet) *casbin.Enforcer {
	t.Helper()
	enf, err := newCasbinEnforcer()
	if err != nil {
		t.Fatal(err)
	}
	var g [][]string
	for r := range rows {
		if r.PType == "g" {
			g = append(g, []string{r.V0, r.V1, r.V2})
		}
	}
	if len(g) > 0 {
		if _, err := enf.AddGroupingPolicies(g); err != nil {
			t.Fatal(err)
		}
	}
	return enf
}
