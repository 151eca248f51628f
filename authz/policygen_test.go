package authz

import (
	"math/rand/v2"
)

// A synthetic policy for tests and benchmarks: orgs, users with roles and
// grants, some PlatformAdmins, as Casbin rows.
type genPolicy struct {
	orgs  []OrgID
	users []UserID
	rows  []Row
	// members lists, per user, the orgs they belong to (for picking
	// requests that hit real memberships).
	members map[UserID][]OrgID
	grants  map[memberKey]CategorySet
	roles   map[memberKey]Role
	admins  map[UserID]bool
}

type memberKey struct {
	u UserID
	o OrgID
}

// randomSet returns each category with probability p.
func randomSet(rng *rand.Rand, p float64) CategorySet {
	var s CategorySet
	for _, c := range Categories() {
		if rng.Float64() < p {
			s = s.With(c)
		}
	}
	return s
}

// genWorkload builds the benchmark workload of the issue: nOrgs orgs of
// 100 users each, 2 Managers per org and Members holding about 3 of the 7
// categories, plus 5 PlatformAdmins.
func genWorkload(rng *rand.Rand, nOrgs int) *genPolicy {
	g := newGenPolicy()
	for range nOrgs {
		o := NewOrgID()
		g.orgs = append(g.orgs, o)
		for i := range 100 {
			u := NewUserID()
			g.users = append(g.users, u)
			if i < 2 {
				g.add(u, o, Manager, 0)
			} else {
				g.add(u, o, Member, randomSet(rng, 3.0/7))
			}
		}
	}
	for range 5 {
		u := NewUserID()
		g.users = append(g.users, u)
		g.addAdmin(u)
	}
	return g
}

// genRandom builds a small random policy with the odd corners the
// differential test must cover: users in several orgs, PlatformAdmins who
// are also members, grants without a role, two roles in one org.
func genRandom(rng *rand.Rand) *genPolicy {
	g := newGenPolicy()
	for range 2 + rng.IntN(5) {
		g.orgs = append(g.orgs, NewOrgID())
	}
	for range 5 + rng.IntN(40) {
		u := NewUserID()
		g.users = append(g.users, u)
		if rng.IntN(10) == 0 {
			g.addAdmin(u)
		}
		if rng.IntN(12) == 0 {
			g.rows = append(g.rows, DeactivationRule(u).row())
		}
		for _, o := range g.orgs {
			if rng.IntN(3) != 0 {
				continue
			}
			var r Role
			switch x := rng.IntN(20); {
			case x < 4:
				r = Manager
			case x < 18:
				r = Member
			} // else: grants without a role, which Casbin still honours
			g.add(u, o, r, randomSet(rng, rng.Float64()))
			if rng.IntN(50) == 0 { // a second role row in the same org
				g.rows = append(g.rows, RoleRule(u, o, Member).row())
			}
		}
	}
	return g
}

func newGenPolicy() *genPolicy {
	return &genPolicy{
		rows:    BaseRows(),
		members: make(map[UserID][]OrgID),
		grants:  make(map[memberKey]CategorySet),
		roles:   make(map[memberKey]Role),
		admins:  make(map[UserID]bool),
	}
}

func (g *genPolicy) add(u UserID, o OrgID, r Role, cats CategorySet) {
	rules, err := MembershipRules(u, o, Membership{Role: r, Categories: cats})
	if err != nil {
		panic(err)
	}
	for _, rule := range rules {
		g.rows = append(g.rows, rule.row())
	}
	g.members[u] = append(g.members[u], o)
	g.grants[memberKey{u, o}] = cats
	g.roles[memberKey{u, o}] = r
}

func (g *genPolicy) addAdmin(u UserID) {
	g.rows = append(g.rows, PlatformAdminRule(u).row())
	g.admins[u] = true
}

// seq streams rows the way a store does.
func seq(rows []Row) func(func(Row, error) bool) {
	return func(yield func(Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// request is one check.
type request struct {
	u UserID
	o OrgID
	c Category
}

// requests returns n checks: 90% of them by a member in one of their orgs
// for a category they hold when they hold any (so mostly allowed), the rest
// by random users for random orgs and categories (mostly denied).
func (g *genPolicy) requests(rng *rand.Rand, n int) []request {
	out := make([]request, n)
	cats := Categories()
	for i := range out {
		u := g.users[rng.IntN(len(g.users))]
		c := cats[rng.IntN(len(cats))]
		if orgs := g.members[u]; rng.IntN(10) != 0 && len(orgs) > 0 {
			o := orgs[rng.IntN(len(orgs))]
			if held := g.grants[memberKey{u, o}].Slice(); g.roles[memberKey{u, o}] != Manager && len(held) > 0 {
				c = held[rng.IntN(len(held))]
			}
			out[i] = request{u, o, c}
			continue
		}
		out[i] = request{u, g.orgs[rng.IntN(len(g.orgs))], c}
	}
	return out
}
