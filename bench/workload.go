package bench

import (
	"encoding/base32"
	"fmt"
	"iter"
	"math/rand/v2"

	"github.com/kiops/iam/authz"
)

// UsersPerOrg is the size of every organization of the workload.
const UsersPerOrg = 100

// ManagersPerOrg is how many of an organization's users are Managers; the
// others are Members.
const ManagersPerOrg = 2

// PlatformAdmins is how many PlatformAdmins the workload has, on top of
// the organizations' users.
const PlatformAdmins = 5

// User is one account of the workload: a PlatformAdmin (Org empty) or a
// member of exactly one organization.
type User struct {
	ID            authz.UserID
	PlatformAdmin bool
	Org           authz.OrgID
	Membership    authz.Membership
}

// Workload is the workload at one scale: organizations of
// UsersPerOrg users each (ManagersPerOrg Managers, Members holding each
// category with probability 3/7, about 3 of the 7), plus PlatformAdmins.
// Everything, ids included, comes from one seeded generator, so a seed
// gives the same workload on every run.
type Workload struct {
	Orgs  []authz.OrgID
	Users []User // the organizations' users in order, then the PlatformAdmins
	seed  uint64
}

// Generate builds the workload with at least users users: users/100
// organizations (at least one) and PlatformAdmins more.
func Generate(users int, seed uint64) *Workload {
	rng := rand.New(rand.NewPCG(seed, 0x6b696f7073))
	w := &Workload{seed: seed}
	nOrgs := max(1, users/UsersPerOrg)
	w.Orgs = make([]authz.OrgID, nOrgs)
	w.Users = make([]User, 0, nOrgs*UsersPerOrg+PlatformAdmins)
	for i := range w.Orgs {
		o := authz.OrgID(newID(rng, "org_"))
		w.Orgs[i] = o
		for j := range UsersPerOrg {
			u := User{ID: authz.UserID(newID(rng, "usr_")), Org: o, Membership: authz.Membership{Role: authz.Member}}
			if j < ManagersPerOrg {
				u.Membership.Role = authz.Manager
			} else {
				for _, c := range authz.Categories() {
					if rng.IntN(7) < 3 {
						u.Membership.Categories = u.Membership.Categories.With(c)
					}
				}
			}
			w.Users = append(w.Users, u)
		}
	}
	for range PlatformAdmins {
		w.Users = append(w.Users, User{ID: authz.UserID(newID(rng, "usr_")), PlatformAdmin: true})
	}
	return w
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID spells an id the way authz does (a prefix and 120 bits in
// lower-case base32), drawing the bits from rng so that a seed fixes every
// id.
func newID(rng *rand.Rand, prefix string) string {
	var b [15]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

// Rules yields the workload's policy as typed rules, in the order of
// Users: what Casbin's rule table holds besides the model's base rules.
func (w *Workload) Rules() iter.Seq[authz.Rule] {
	return func(yield func(authz.Rule) bool) {
		for _, u := range w.Users {
			if u.PlatformAdmin {
				if !yield(authz.PlatformAdminRule(u.ID)) {
					return
				}
				continue
			}
			rules, err := authz.MembershipRules(u.ID, u.Org, u.Membership)
			if err != nil {
				panic(fmt.Sprintf("bench: generated an invalid membership: %v", err))
			}
			for _, r := range rules {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// Rows yields the whole policy as Casbin rule rows: the model's base rows,
// then the rows of Rules.
func (w *Workload) Rows() iter.Seq2[authz.Row, error] {
	return func(yield func(authz.Row, error) bool) {
		for _, r := range authz.BaseRows() {
			if !yield(r, nil) {
				return
			}
		}
		for r := range w.Rules() {
			if !yield(r.Row()) {
				return
			}
		}
	}
}

// Request is one permission check.
type Request struct {
	User     authz.UserID
	Org      authz.OrgID
	Category authz.Category
	Allowed  bool // what the policy answers
}

// Requests returns n checks of random users in random orgs, 90% of them
// allowed by the policy and 10% denied (a Member's category they were not
// granted, or an org they do not belong to). Each request's ids are fresh
// copies, as ids parsed from a request would be, not shared with the
// workload.
func (w *Workload) Requests(n int) []Request {
	rng := rand.New(rand.NewPCG(w.seed, 0x72657173))
	out := make([]Request, 0, n)
	for len(out) < n {
		u := w.Users[rng.IntN(len(w.Users))]
		allow := rng.IntN(10) != 0
		q := Request{User: authz.UserID(clone(string(u.ID))), Allowed: allow}
		switch {
		case u.PlatformAdmin:
			if !allow {
				continue // a PlatformAdmin is allowed everywhere
			}
			q.Org, q.Category = w.Orgs[rng.IntN(len(w.Orgs))], randomCategory(rng)
		case allow && u.Membership.Role == authz.Manager:
			q.Org, q.Category = u.Org, randomCategory(rng)
		case allow:
			granted := u.Membership.Categories.Slice()
			if len(granted) == 0 {
				continue
			}
			q.Org, q.Category = u.Org, granted[rng.IntN(len(granted))]
		case len(w.Orgs) > 1 && rng.IntN(2) == 0:
			q.Org, q.Category = w.Orgs[rng.IntN(len(w.Orgs))], randomCategory(rng)
			if q.Org == u.Org {
				continue
			}
		default:
			missing := authz.AllCategories.Minus(u.Membership.Categories).Slice()
			if u.Membership.Role == authz.Manager || len(missing) == 0 {
				continue
			}
			q.Org, q.Category = u.Org, missing[rng.IntN(len(missing))]
		}
		q.Org = authz.OrgID(clone(string(q.Org)))
		out = append(out, q)
	}
	return out
}

func randomCategory(rng *rand.Rand) authz.Category {
	all := authz.Categories()
	return all[rng.IntN(len(all))]
}

// clone copies s into memory of its own.
func clone(s string) string { return string([]byte(s)) }
