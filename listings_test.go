package iam_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// listingWorld is an org a with 25 members (every fifth a Manager, some
// granted vpn or audit, three deactivated, one deleted after joining), an
// org b sharing three of them plus two of its own, and three
// PlatformAdmins besides Ada: one a member of a, one deactivated, one in
// no org.
type listingWorld struct {
	e     *env
	a, b  authz.OrgID
	mgr   authz.UserID // a Manager of a
	mem   authz.UserID // a Member of a
	users []authz.UserID
	// admins are the holders of the PlatformAdmin role, deactivated or not.
	admins map[authz.UserID]bool
	// want holds what each listing should show, by user.
	inA, inB map[authz.UserID]iam.Member
}

func newListingWorld(e *env) *listingWorld {
	e.t.Helper()
	w := &listingWorld{e: e, a: e.org("Seoul DC"), b: e.org("Busan Lab"), inA: map[authz.UserID]iam.Member{}, inB: map[authz.UserID]iam.Member{},
		admins: map[authz.UserID]bool{e.admin: true}}
	w.users = append(w.users, e.admin)
	for i := range 25 {
		role, cats := authz.Member, authz.CategorySet(0)
		if i%5 == 0 {
			role = authz.Manager
		}
		if i%3 == 0 {
			cats = cats.With(authz.VPN)
		}
		if i%4 == 1 {
			cats = cats.With(authz.Audit)
		}
		u := e.member(fmt.Sprintf("a%02d@example.com", i), w.a, role, cats)
		w.users = append(w.users, u)
		w.inA[u] = iam.Member{Account: iam.Account{ID: u}, Role: role, Categories: cats}
		switch i {
		case 0:
			w.mgr = u
		case 1:
			w.mem = u
		case 2, 3, 5:
			e.must(e.svc.ChangeRole(e.ctx, e.admin, u, w.b, authz.Member))
			e.must(e.svc.SetCategories(e.ctx, e.admin, u, w.b, authz.NewCategorySet(authz.Infra)))
			w.inB[u] = iam.Member{Account: iam.Account{ID: u}, Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra)}
		}
	}
	for i := range 2 {
		u := e.member(fmt.Sprintf("b%02d@example.com", i), w.b, authz.Manager, 0)
		w.users = append(w.users, u)
		w.inB[u] = iam.Member{Account: iam.Account{ID: u}, Role: authz.Manager}
	}
	// Deactivated: a Member with vpn, a Member with audit, a Manager.
	for _, i := range []int{3, 9, 10} {
		e.must(e.svc.DeactivateUser(e.ctx, e.admin, w.users[1+i]))
	}
	// A PlatformAdmin who is a Member of a, a deactivated one, and one in
	// no org (Bootstrap made Ada, in no org either).
	e.must(e.svc.ChangeRole(e.ctx, e.admin, w.users[1+4], w.a, authz.PlatformAdmin))
	w.admins[w.users[1+4]] = true
	for _, i := range []int{0, 1} {
		u := e.member(fmt.Sprintf("pa%d@example.com", i), w.b, authz.Member, 0)
		e.must(e.svc.ChangeRole(e.ctx, e.admin, u, w.b, authz.PlatformAdmin))
		e.must(e.svc.RemoveMember(e.ctx, e.admin, u, w.b))
		w.users = append(w.users, u)
		w.admins[u] = true
		if i == 0 {
			e.must(e.svc.DeactivateUser(e.ctx, e.admin, u))
		}
	}
	// A deleted member is in no listing.
	gone := w.users[1+7]
	e.must(e.svc.DeleteUser(e.ctx, e.admin, gone))
	delete(w.inA, gone)
	w.users = slices.DeleteFunc(w.users, func(u authz.UserID) bool { return u == gone })
	slices.Sort(w.users)
	return w
}

// walk pages through a listing with limit, checking that each page but
// the last is full and the last has no Next, and returns every entry.
func walk[T any](t *testing.T, limit int, list func(iam.Page) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	p := iam.Page{Limit: limit}
	for range 1000 {
		items, next, err := list(p)
		if err != nil {
			t.Fatalf("page after %q: %v", p.After, err)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) != limit {
			t.Fatalf("a page of %d entries with a next page, limit %d", len(items), limit)
		}
		p.After = next
	}
	t.Fatal("the listing does not end")
	return nil
}

func memberIDs(ms []iam.Member) []authz.UserID {
	ids := make([]authz.UserID, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func sortedKeys[V any](m map[authz.UserID]V) []authz.UserID {
	return slices.Sorted(maps.Keys(m))
}

// TestMembersPaging walks each org's members with pages of 1, 2, 7 and 50:
// every member exactly once, in id order, with their role, categories and
// PlatformAdmin flag, and nobody of the other org.
func TestMembersPaging(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		w := newListingWorld(e)
		for _, o := range []struct {
			org  authz.OrgID
			want map[authz.UserID]iam.Member
		}{{w.a, w.inA}, {w.b, w.inB}} {
			for _, limit := range []int{1, 2, 7, 50} {
				got := walk(t, limit, func(p iam.Page) ([]iam.Member, string, error) {
					page, err := e.svc.Members(e.ctx, e.admin, o.org, p)
					return page.Members, page.Next, err
				})
				if ids := memberIDs(got); !slices.Equal(ids, sortedKeys(o.want)) {
					t.Fatalf("limit %d: members %v\nwant %v", limit, ids, sortedKeys(o.want))
				}
				for _, m := range got {
					want := o.want[m.ID]
					admin := w.admins[m.ID]
					if m.Role != want.Role || m.Categories != want.Categories || m.PlatformAdmin != admin || m.Email == "" {
						t.Errorf("member %+v, want role %v categories %v platformadmin %v", m, want.Role, want.Categories, admin)
					}
				}
			}
		}
		// A Manager of a lists the same as a PlatformAdmin.
		page, err := e.svc.Members(e.ctx, w.mgr, w.a, iam.Page{Limit: iam.MaxPageLimit})
		e.must(err)
		if ids := memberIDs(page.Members); !slices.Equal(ids, sortedKeys(w.inA)) || page.Next != "" {
			t.Errorf("the Manager sees %v (next %q)", ids, page.Next)
		}
	})
}

// TestMembersWithAndAccessAgreeWithTheEngine: for every category and both
// orgs, MembersWith lists exactly the users granted it, and Access lists
// exactly the users Check allows, for the reason Check gives.
func TestMembersWithAndAccessAgreeWithTheEngine(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		w := newListingWorld(e)
		deactivatedSeen := false
		for _, o := range []struct {
			org  authz.OrgID
			want map[authz.UserID]iam.Member
		}{{w.a, w.inA}, {w.b, w.inB}} {
			for _, c := range authz.Categories() {
				var granted []authz.UserID
				for u, m := range o.want {
					if m.Categories.Has(c) {
						granted = append(granted, u)
					}
				}
				slices.Sort(granted)
				got := walk(t, 3, func(p iam.Page) ([]iam.Member, string, error) {
					page, err := e.svc.MembersWith(e.ctx, e.admin, o.org, c, p)
					return page.Members, page.Next, err
				})
				if ids := memberIDs(got); !slices.Equal(ids, granted) {
					t.Errorf("MembersWith(%v): %v\nwant %v", c, ids, granted)
				}

				allowed := map[authz.UserID]authz.Reason{}
				for _, u := range w.users {
					if d := e.svc.Check(e.ctx, u, o.org, c); d.Allowed {
						allowed[u] = d.Reason
					} else if d.Reason == authz.ReasonDeactivated {
						deactivatedSeen = true
					}
				}
				accessors := walk(t, 4, func(p iam.Page) ([]iam.Accessor, string, error) {
					page, err := e.svc.Access(e.ctx, e.admin, o.org, c, p)
					return page.Accessors, page.Next, err
				})
				var ids []authz.UserID
				for _, a := range accessors {
					ids = append(ids, a.ID)
					if a.Reason != allowed[a.ID] {
						t.Errorf("Access(%v) lists %s for %v, Check says %v", c, a.ID, a.Reason, allowed[a.ID])
					}
					if a.Status != identity.Active {
						t.Errorf("Access(%v) lists %s, whose account is %v", c, a.ID, a.Status)
					}
				}
				if want := sortedKeys(allowed); !slices.Equal(ids, want) {
					t.Errorf("Access(%v, %v): %v\nwant %v", o.org, c, ids, want)
				}
			}
		}
		if !deactivatedSeen {
			t.Error("no deactivated user in the world: the test proves nothing about them")
		}
	})
}

// TestUsersPaging walks All Users: every live account once, in id order.
func TestUsersPaging(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		w := newListingWorld(e)
		for _, limit := range []int{1, 7, 50} {
			got := walk(t, limit, func(p iam.Page) ([]iam.Account, string, error) {
				page, err := e.svc.Users(e.ctx, e.admin, p)
				return page.Accounts, page.Next, err
			})
			var ids []authz.UserID
			for _, a := range got {
				ids = append(ids, a.ID)
				if a.PlatformAdmin != w.admins[a.ID] {
					t.Errorf("account %+v: wrong PlatformAdmin flag", a)
				}
			}
			if !slices.Equal(ids, w.users) {
				t.Errorf("limit %d: users %v\nwant %v", limit, ids, w.users)
			}
		}
	})
}

// TestListingsRefuse: malformed pages, orgs and categories are ErrInvalid
// and change nothing; a Member is forbidden and a Manager of another org
// finds nothing, each recorded as one denied view; and an allowed page
// is recorded as a view with its listing, category and page.
func TestListingsRefuse(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		a, b := e.org("Seoul DC"), e.org("Busan Lab")
		mgr := e.member("mgr@example.com", a, authz.Manager, 0)
		mem := e.member("mem@example.com", a, authz.Member, authz.NewCategorySet(authz.VPN))
		mgrB := e.member("mgrb@example.com", b, authz.Manager, 0)
		listings := map[string]func(actor authz.UserID, o authz.OrgID, c authz.Category, p iam.Page) error{
			"members": func(actor authz.UserID, o authz.OrgID, _ authz.Category, p iam.Page) error {
				_, err := e.svc.Members(e.ctx, actor, o, p)
				return err
			},
			"members_with": func(actor authz.UserID, o authz.OrgID, c authz.Category, p iam.Page) error {
				_, err := e.svc.MembersWith(e.ctx, actor, o, c, p)
				return err
			},
			"access": func(actor authz.UserID, o authz.OrgID, c authz.Category, p iam.Page) error {
				_, err := e.svc.Access(e.ctx, actor, o, c, p)
				return err
			},
			"users": func(actor authz.UserID, _ authz.OrgID, _ authz.Category, p iam.Page) error {
				_, err := e.svc.Users(e.ctx, actor, p)
				return err
			},
		}
		for name, list := range listings {
			for _, c := range []struct {
				what string
				p    iam.Page
			}{
				{"negative limit", iam.Page{Limit: -1}},
				{"too large a limit", iam.Page{Limit: iam.MaxPageLimit + 1}},
				{"malformed cursor", iam.Page{After: "usr_' OR '1'='1"}},
				{"an org id as cursor", iam.Page{After: string(a)}},
			} {
				before := e.snap()
				if err := list(e.admin, a, authz.VPN, c.p); !errors.Is(err, iam.ErrInvalid) {
					t.Errorf("%s, %s: %v, want ErrInvalid", name, c.what, err)
				}
				e.unchanged(before, 0)
			}
			if name == "users" {
				continue
			}
			if err := list(e.admin, "org_nope", authz.VPN, iam.Page{}); !errors.Is(err, iam.ErrInvalid) {
				t.Errorf("%s of a malformed org: %v, want ErrInvalid", name, err)
			}
			if name != "members" {
				if err := list(e.admin, a, 0, iam.Page{}); !errors.Is(err, iam.ErrInvalid) {
					t.Errorf("%s of category 0: %v, want ErrInvalid", name, err)
				}
			}
		}
		for name, list := range listings {
			wantAction := audit.MembersView
			refusals := []struct {
				actor authz.UserID
				org   authz.OrgID
				want  error
			}{{mem, a, iam.ErrForbidden}, {mgrB, a, iam.ErrNotFound}, {mgr, authz.NewOrgID(), iam.ErrNotFound}}
			if name == "users" {
				wantAction = audit.UsersView
				refusals = []struct {
					actor authz.UserID
					org   authz.OrgID
					want  error
				}{{mgr, a, iam.ErrForbidden}, {mem, a, iam.ErrForbidden}}
			}
			for _, r := range refusals {
				before := e.snap()
				if err := list(r.actor, r.org, authz.VPN, iam.Page{}); !errors.Is(err, r.want) {
					t.Errorf("%s by %s in %s: %v, want %v", name, r.actor, r.org, err, r.want)
				}
				e.unchanged(before, 1)
				if ev := e.lastEvent(); ev.Action != wantAction || ev.Outcome != audit.Denied || ev.Actor != r.actor || ev.Reason == "" {
					t.Errorf("%s: last event %+v, want a denied %s", name, ev, wantAction)
				}
			}
			actor := mgr
			if name == "users" {
				actor = e.admin
			}
			if err := list(actor, a, authz.VPN, iam.Page{After: string(mem), Limit: 3}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ev := e.lastEvent()
			var after map[string]any
			if err := json.Unmarshal(ev.After, &after); err != nil {
				t.Fatalf("%s: event After %s: %v", name, ev.After, err)
			}
			want := map[string]any{"listing": name, "after": string(mem), "limit": 3.0}
			if name == "members_with" || name == "access" {
				want["category"] = "vpn"
			}
			if ev.Action != wantAction || ev.Outcome != audit.Success || ev.Actor != actor || !maps.Equal(after, want) {
				t.Errorf("%s: last event %+v after %v, want a %s success with %v", name, ev, after, wantAction, want)
			}
			if name != "users" && ev.Org != a {
				t.Errorf("%s: event in org %q, want %q", name, ev.Org, a)
			}
		}
	})
}

// TestMember: Member reads one user of an org as Members lists them, for
// whoever may list that org's members; anyone else in the org, an
// outsider, an unknown account, or a member of another org only, answers
// ErrNotFound. Each read and each refusal is one event,
// targeting the user.
func TestMember(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		w := newListingWorld(e)
		// Every listed member, read one by one, is what the listing says.
		for _, o := range []authz.OrgID{w.a, w.b} {
			page, err := e.svc.Members(e.ctx, e.admin, o, iam.Page{Limit: iam.MaxPageLimit})
			e.must(err)
			for _, listed := range page.Members {
				got, err := e.svc.Member(e.ctx, e.admin, listed.ID, o)
				if err != nil || !reflect.DeepEqual(got, listed) {
					t.Fatalf("Member(%s in %s) = %+v, %v; Members lists %+v", listed.ID, o, got, err, listed)
				}
				if ev := e.lastEvent(); ev.Action != audit.MembersView || ev.Outcome != audit.Success || ev.Actor != e.admin || ev.Target != listed.ID || ev.Org != o || string(ev.After) != `{"listing":"member"}` {
					t.Fatalf("event %+v", ev)
				}
			}
		}
		// The Manager of a reads a's members, deactivated ones included,
		// and nobody of b only.
		for _, u := range w.users {
			want, in := w.inA[u]
			got, err := e.svc.Member(e.ctx, w.mgr, u, w.a)
			switch {
			case in && (err != nil || got.Role != want.Role || got.Categories != want.Categories || got.PlatformAdmin != w.admins[u]):
				t.Errorf("the Manager reads %s as %+v, %v; want %+v", u, got, err, want)
			case !in && !errors.Is(err, iam.ErrNotFound):
				t.Errorf("the Manager reads %s, who is not in a: %+v, %v; want ErrNotFound", u, got, err)
			}
		}
		// Refusals change nothing but their own denied event. onlyB is a
		// Manager of b who holds no role in a.
		var onlyB authz.UserID
		for _, u := range sortedKeys(w.inB) {
			if _, in := w.inA[u]; !in {
				onlyB = u
			}
		}
		for _, r := range []struct {
			what        string
			actor, user authz.UserID
			org         authz.OrgID
			want        error
		}{
			{"a Member", w.mem, w.mgr, w.a, iam.ErrForbidden},
			{"a member of b only, in a", w.mgr, onlyB, w.a, iam.ErrNotFound},
			{"an unknown user", e.admin, authz.NewUserID(), w.a, iam.ErrNotFound},
			{"a PlatformAdmin in no org", e.admin, e.admin, w.a, iam.ErrNotFound},
			{"b's Manager, in a", onlyB, w.mgr, w.a, iam.ErrNotFound},
			{"an unknown org", e.admin, w.mgr, authz.NewOrgID(), iam.ErrNotFound},
		} {
			before := e.snap()
			if _, err := e.svc.Member(e.ctx, r.actor, r.user, r.org); !errors.Is(err, r.want) {
				t.Errorf("%s: %v, want %v", r.what, err, r.want)
			}
			e.unchanged(before, 1)
			if ev := e.lastEvent(); ev.Action != audit.MembersView || ev.Outcome != audit.Denied || ev.Actor != r.actor || ev.Target != r.user || ev.Org != r.org {
				t.Errorf("%s: event %+v", r.what, ev)
			}
		}
		for _, bad := range []struct {
			user authz.UserID
			org  authz.OrgID
		}{{"usr_*", w.a}, {w.mgr, "org_nope"}, {"", w.a}, {w.mgr, ""}} {
			before := e.snap()
			if _, err := e.svc.Member(e.ctx, e.admin, bad.user, bad.org); !errors.Is(err, iam.ErrInvalid) {
				t.Errorf("Member(%q, %q): %v, want ErrInvalid", bad.user, bad.org, err)
			}
			e.unchanged(before, 0)
		}
	})
}
