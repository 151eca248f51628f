package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// The adversarial suite of issue 8, through the HTTP routes: one named
// subtest per attack. Each asserts the status and its problem body (the
// harness's checkAnswer: application/problem+json, its status, no 500, no
// password hash), that nothing changed (every iam_* table and casbin_rule
// row by row, and the engine's decision for every user, org and
// category), and the audit events the attempt left: exactly one denied
// event by the attacker where the Service refused a management operation,
// none where the request was refused before reaching it. The Service-level
// suite (package iam) covers the same attacks below HTTP.

// TestAdversarial runs the attacks on every kind of database, against the
// world of TestAPI (server_test.go: Ada and Pat PlatformAdmins, Mina
// Manager of Seoul, Joon Member of Seoul with infra and vpn, Pat also a
// Member of Seoul) with Hana made Manager of Busan: the Manager of another
// org.
func TestAdversarial(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			a := advSetUp(t, kind)
			t.Run("every management route as a Manager of another org", a.advOtherOrgManager)
			t.Run("every management route as a Member", a.advMember)
			t.Run("IDOR: ids of one org under another org's path", a.advIDOR)
			t.Run("escalation", a.advEscalation)
			t.Run("odd ids in every path slot", a.advPathIDs)
			t.Run("hostile bodies", a.advBodies)
			t.Run("SQL-looking input", a.advSQL)
			t.Run("names and emails that look like something else", a.advLookalikes)
			t.Run("sign-up to a deleted or unknown org", a.advSignUpOrgs)
			t.Run("deciding a decided registration", a.advDecided)
			t.Run("enumeration", a.advEnumeration)
			t.Run("reset tokens", a.advResetTokens)
			t.Run("Authorization headers", a.advAuthHeaders)
			t.Run("ended sessions", a.advEndedSessions)
			t.Run("the last PlatformAdmin", a.advLastPlatformAdmin) // last: it deactivates Pat
		})
	}
}

// advClock is the Service's clock: real time plus an offset the reset
// token cases move forward.
type advClock struct{ offset atomic.Int64 }

func (c *advClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advWorld is TestAPI's world with the clock, Hana as Busan's Manager and
// one pending registration request in each org.
type advWorld struct {
	*world
	clock *advClock
	req   map[string]string // org id → a pending registration request of it
}

const advMgrB = "hana" // the Manager of Busan, in tok and id

func advSetUp(t *testing.T, kind dbtest.Kind) *advWorld {
	clock := &advClock{}
	w := setUp(t, newEnv(t, kind, iam.WithClock(clock.now)))
	a := &advWorld{world: w, clock: clock, req: map[string]string{}}
	w.do(t, 204, "PUT", w.path("/v1/orgs/%s/members/%s/role", w.busan, w.id[advMgrB]), w.tok[admin], map[string]string{"role": "manager"})
	for _, s := range []struct{ name, org string }{{"eve", w.seoul}, {"ivan", w.busan}} {
		w.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": s.name + "@example.com", "name": s.name, "password": password, "org_id": s.org})
		r := w.do(t, 200, "GET", "/v1/orgs/"+s.org+"/registrations", w.tok[admin], nil)
		a.req[s.org] = r.str(t, "registrations", 0, "id")
		w.id[s.name] = r.str(t, "registrations", 0, "user_id")
	}
	return a
}

// advState is what an attack must leave as it was: every row of every
// iam_* table but the audit log, and of casbin_rule; the engine's decision
// for every known user, org and category; and where the audit log ends.
type advState struct {
	rows      map[string][]string
	decisions []byte // per user, org and category: reason, role and granted set
	lastEvent int64
}

func (a *advWorld) advSnap(t *testing.T) advState {
	t.Helper()
	s := advState{rows: map[string][]string{}}
	tables, err := a.db.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range tables {
		switch {
		case tbl == "iam_audit_events":
			if err := a.db.Table(tbl).Select("COALESCE(MAX(id), 0)").Scan(&s.lastEvent).Error; err != nil {
				t.Fatal(err)
			}
		case tbl == "casbin_rule" || strings.HasPrefix(tbl, "iam_"):
			s.rows[tbl] = dbtest.Dump(t, a.db, tbl)
		}
	}
	if len(s.rows) < 5 {
		t.Fatalf("only tables %v: the snapshot would see nothing", tables)
	}
	// Every user and org ever known, deleted ones included: a deleted
	// user's id must stay denied.
	var users, orgs []string
	if err := a.db.Table("iam_users").Pluck("id", &users).Error; err != nil {
		t.Fatal(err)
	}
	if err := a.db.Table("iam_orgs").Pluck("id", &orgs).Error; err != nil {
		t.Fatal(err)
	}
	for _, id := range a.id {
		users = append(users, id)
	}
	orgs = append(orgs, a.seoul, a.busan)
	slices.Sort(users)
	slices.Sort(orgs)
	for _, u := range slices.Compact(users) {
		for _, o := range slices.Compact(orgs) {
			for _, c := range authz.Categories() {
				d := a.svc.Check(t.Context(), authz.UserID(u), authz.OrgID(o), c)
				// Allowed follows from the reason; role and grants say
				// more than the answer to this one category.
				s.decisions = append(s.decisions, byte(d.Reason), byte(d.Role), byte(d.Granted))
			}
		}
	}
	return s
}

// advEvent is an audit row as the checks read it.
type advEvent struct {
	ID                                                int64
	ActorID, Action, TargetID, OrgID, Outcome, Reason string
}

// advUnchanged fails unless nothing but the audit log changed since
// before, and the log grew by exactly denied events, each denied and by
// actor (a user id; "" for anyone). It returns the new events.
func (a *advWorld) advUnchanged(t *testing.T, before advState, actor string, denied int) []advEvent {
	t.Helper()
	after := a.advSnap(t)
	for tbl, rows := range before.rows {
		if !slices.Equal(rows, after.rows[tbl]) {
			t.Errorf("table %s changed:\nbefore %q\nafter  %q", tbl, rows, after.rows[tbl])
		}
	}
	if !bytes.Equal(before.decisions, after.decisions) {
		t.Errorf("the engine's decisions changed")
	}
	var evs []advEvent
	if err := a.db.Table("iam_audit_events").Where("id > ?", before.lastEvent).Order("id").Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	if len(evs) != denied {
		t.Errorf("%d new audit events, want %d: %+v", len(evs), denied, evs)
	}
	for _, e := range evs {
		if e.Outcome != "denied" || actor != "" && e.ActorID != actor {
			t.Errorf("event %+v, want a denied one by %s", e, actor)
		}
	}
	return evs
}

// advAttack sends q, requires status want, and requires that it changed
// nothing but denied denied events by actor.
func (a *advWorld) advAttack(t *testing.T, q request, want int, actor string, denied int) resp {
	t.Helper()
	before := a.advSnap(t)
	r := a.send(t, q)
	if r.status != want {
		t.Errorf("%s %.120s: %d, want %d: %s", q.method, q.path, r.status, want, r.body)
	}
	a.advUnchanged(t, before, actor, denied)
	return r
}

// advSame fails unless two answers are the same apart from what must
// differ: the Date header and the request path the problem names as its
// instance (each body's own path is replaced before comparing).
func advSame(t *testing.T, what string, x, y resp, xPath, yPath string) {
	t.Helper()
	norm := func(r resp, p string) (int, string, string) {
		p, _, _ = strings.Cut(p, "?") // the instance is the path alone
		h := r.header.Clone()
		h.Del("Date")
		h.Del("Content-Length") // the instance paths differ in length
		return r.status, fmt.Sprint(h), string(bytes.ReplaceAll(r.body, []byte(`"instance":"`+p+`"`), []byte(`"instance":"…"`)))
	}
	xs, xh, xb := norm(x, xPath)
	ys, yh, yb := norm(y, yPath)
	if xs != ys || xh != yh || xb != yb {
		t.Errorf("%s: the answers differ:\n%d %s %s\n%d %s %s", what, xs, xh, xb, ys, yh, yb)
	}
}

// advRouteBody is a well-formed body for each route that reads one, so
// that a refusal is about who asks, not about the input.
var advRouteBody = map[string]any{
	"POST /v1/orgs":                                map[string]string{"name": "Attack"},
	"PATCH /v1/orgs/{org}":                         map[string]string{"name": "Renamed"},
	"POST /v1/registrations/{id}/reject":           map[string]string{"reason": "no"},
	"PUT /v1/orgs/{org}/members/{user}/role":       map[string]string{"role": "manager"},
	"PUT /v1/orgs/{org}/members/{user}/categories": map[string]any{"categories": []string{"vpn", "audit"}},
}

// advRouteQuery is a query a route needs to reach the Service.
var advRouteQuery = map[string]string{"GET /v1/orgs/{org}/access": "?category=vpn"}

// advSelfRoutes are the routes that act on the caller alone (or on no
// one): outside the management walk, covered by the profile, token and
// enumeration cases.
var advSelfRoutes = []string{
	"GET /healthz", "POST /v1/signup", "POST /v1/login", "POST /v1/password-reset", "POST /v1/password-reset/confirm",
	"POST /v1/logout", "GET /v1/me", "PATCH /v1/me", "PUT /v1/me/password", "DELETE /v1/me",
}

// advWant is the answer to one management route: status and the number
// of denied audit events.
type advWant struct{ status, denied int }

// advRouteWant is, for every other route of server.routes, what a Manager
// of another org and a Member of the org get when they call it with the
// org's ids. A route missing here fails the walk: a new route is
// classified before it can ship.
//
// An org's object answers a Manager of another org as a missing one does
// (404), except where the operation is the PlatformAdmin's alone, which
// is 403 whatever the object (org administration, All Users, accounts,
// operations). Feature pages and the org's own page are decided before the
// Service, by the middleware or Orgs, and record nothing.
var advRouteWant = map[string]struct{ other, member advWant }{
	"GET /v1/orgs":                                      {advWant{200, 0}, advWant{200, 0}},
	"POST /v1/orgs":                                     {advWant{403, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}":                                {advWant{404, 0}, advWant{200, 0}},
	"PATCH /v1/orgs/{org}":                              {advWant{403, 1}, advWant{403, 1}},
	"DELETE /v1/orgs/{org}":                             {advWant{403, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/registrations":                  {advWant{404, 1}, advWant{403, 1}},
	"POST /v1/registrations/{id}/approve":               {advWant{404, 1}, advWant{403, 1}},
	"POST /v1/registrations/{id}/reject":                {advWant{404, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/members":                        {advWant{404, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/access":                         {advWant{404, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/members/{user}":                 {advWant{404, 1}, advWant{403, 1}},
	"PUT /v1/orgs/{org}/members/{user}/role":            {advWant{404, 1}, advWant{403, 1}},
	"PUT /v1/orgs/{org}/members/{user}/categories":      {advWant{404, 1}, advWant{403, 1}},
	"DELETE /v1/orgs/{org}/members/{user}":              {advWant{404, 1}, advWant{403, 1}},
	"POST /v1/orgs/{org}/members/{user}/password-reset": {advWant{404, 1}, advWant{403, 1}},
	"GET /v1/users":                                     {advWant{403, 1}, advWant{403, 1}},
	"DELETE /v1/users/{user}":                           {advWant{403, 1}, advWant{403, 1}},
	"POST /v1/users/{user}/deactivate":                  {advWant{403, 1}, advWant{403, 1}},
	"POST /v1/users/{user}/reactivate":                  {advWant{403, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/audit":                          {advWant{404, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/audit/export":                   {advWant{404, 1}, advWant{403, 1}},
	"GET /v1/orgs/{org}/runtime":                        {advWant{404, 0}, advWant{200, 0}}, // Joon holds infra
	"GET /v1/orgs/{org}/services":                       {advWant{404, 0}, advWant{403, 0}},
	"GET /v1/orgs/{org}/backups":                        {advWant{404, 0}, advWant{403, 0}},
	"GET /v1/orgs/{org}/devices":                        {advWant{404, 0}, advWant{403, 0}},
	"GET /v1/orgs/{org}/databases":                      {advWant{404, 0}, advWant{403, 0}},
	"GET /v1/orgs/{org}/vpn":                            {advWant{404, 0}, advWant{200, 0}}, // and vpn
	"DELETE /v1/orgs/{org}/devices/{device}":            {advWant{404, 0}, advWant{403, 0}},
	"GET /v1/ops/db-explorer":                           {advWant{403, 0}, advWant{403, 0}},
	"GET /v1/ops/db-monitoring":                         {advWant{403, 0}, advWant{403, 0}},
}

// advIDs are the ids a route's path is filled with.
type advIDs struct{ org, user, req string }

// advRequest is the request of route pattern with ids, as token, with the
// route's well-formed body and query.
func advRequest(pattern string, ids advIDs, token string) request {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{org}", ids.org, "{user}", ids.user, "{id}", ids.req, "{device}", "prod-db-1").Replace(path)
	return request{method: method, path: path + advRouteQuery[pattern], token: token, body: advRouteBody[pattern]}
}

// advManagementRoutes returns the patterns of server.routes outside
// advSelfRoutes, failing for any that advRouteWant does not classify.
func (a *advWorld) advManagementRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, rt := range (&server{svc: a.svc}).routes() {
		if slices.Contains(advSelfRoutes, rt.pattern) {
			continue
		}
		if _, ok := advRouteWant[rt.pattern]; !ok {
			t.Errorf("route %s is not in advRouteWant: say what an attacker gets from it", rt.pattern)
			continue
		}
		out = append(out, rt.pattern)
	}
	if len(out) != len(advRouteWant) {
		t.Errorf("advRouteWant classifies %d routes, the server has %d of them", len(advRouteWant), len(out))
	}
	return out
}

// advOtherOrgManager: Hana, Manager of Busan, calls every management
// route with Seoul's ids (Joon as the user, Eve's pending request). Each
// answer must be the route's refusal, change nothing, leave its denied
// event, and be byte for byte the answer for ids that exist nowhere: an
// object of another org answers exactly like one that does not exist.
func (a *advWorld) advOtherOrgManager(t *testing.T) {
	hana := a.id[advMgrB]
	seoul := advIDs{org: a.seoul, user: a.id["joon"], req: a.req[a.seoul]}
	nowhere := advIDs{org: string(authz.NewOrgID()), user: string(authz.NewUserID()), req: string(approval.NewRequestID())}
	for _, pattern := range a.advManagementRoutes(t) {
		t.Run(pattern, func(t *testing.T) {
			want := advRouteWant[pattern].other
			q := advRequest(pattern, seoul, a.tok[advMgrB])
			r := a.advAttack(t, q, want.status, hana, want.denied)
			if pattern == "GET /v1/orgs" && bytes.Contains(r.body, []byte(a.seoul)) {
				t.Errorf("Busan's Manager sees Seoul: %s", r.body)
			}
			if !strings.ContainsAny(pattern, "{") {
				return
			}
			qn := advRequest(pattern, nowhere, a.tok[advMgrB])
			rn := a.advAttack(t, qn, want.status, hana, want.denied)
			advSame(t, "Seoul's ids and ids of nothing", r, rn, q.path, qn.path)
		})
	}
}

// advMember: Joon, a Member of Seoul with infra and vpn, calls every
// management route in his own org (Mina as the user, Eve's request): each
// is refused (403) with its denied event, or, for the feature pages he
// holds and his org's page, allowed without changing anything. With
// Busan's user and request in the path instead, the answer is byte for
// byte that for ids of nothing: a Member cannot learn either that they
// exist.
func (a *advWorld) advMember(t *testing.T) {
	joon := a.id["joon"]
	seoul := advIDs{org: a.seoul, user: a.id["mina"], req: a.req[a.seoul]}
	busan := advIDs{org: a.seoul, user: a.id["ivan"], req: a.req[a.busan]}
	nowhere := advIDs{org: a.seoul, user: string(authz.NewUserID()), req: string(approval.NewRequestID())}
	for _, pattern := range a.advManagementRoutes(t) {
		t.Run(pattern, func(t *testing.T) {
			want := advRouteWant[pattern].member
			a.advAttack(t, advRequest(pattern, seoul, a.tok[member]), want.status, joon, want.denied)
			if !strings.Contains(pattern, "{user}") && !strings.Contains(pattern, "{id}") {
				return
			}
			qb, qn := advRequest(pattern, busan, a.tok[member]), advRequest(pattern, nowhere, a.tok[member])
			rb := a.advAttack(t, qb, a.send(t, qn).status, joon, 1)
			advSame(t, "Busan's ids and ids of nothing", rb, a.send(t, qn), qb.path, qn.path)
		})
	}
}

// advIDOR: Hana, Manager of Busan, uses Seoul's ids under her own org's
// path, where she does hold authority: each is not found, with its denied
// event, answered as for an id of nothing, and Joon, the target, keeps his
// session.
func (a *advWorld) advIDOR(t *testing.T) {
	hana := a.id[advMgrB]
	busan := "/v1/orgs/" + a.busan
	fresh := string(authz.NewUserID())
	cases := []struct {
		name, method, suffix string
		body                 any
	}{
		{"role of another org's member", "PUT", "/members/%s/role", map[string]string{"role": "manager"}},
		{"demote another org's member", "PUT", "/members/%s/role", map[string]string{"role": "member"}},
		{"categories of another org's member", "PUT", "/members/%s/categories", map[string]any{"categories": []string{"infra"}}},
		{"remove another org's member", "DELETE", "/members/%s", nil},
		{"reset another org's member's password", "POST", "/members/%s/password-reset", nil},
	}
	for _, c := range cases {
		for _, target := range []string{"joon", "mina", "pat"} { // a Member, a Manager, a PlatformAdmin of Seoul
			t.Run(c.name+" ("+target+")", func(t *testing.T) {
				q := request{method: c.method, path: busan + fmt.Sprintf(c.suffix, a.id[target]), token: a.tok[advMgrB], body: c.body}
				r := a.advAttack(t, q, 404, hana, 1)
				qn := q
				qn.path = busan + fmt.Sprintf(c.suffix, fresh)
				rn := a.advAttack(t, qn, 404, hana, 1)
				advSame(t, "a Seoul user and nobody", r, rn, q.path, qn.path)
			})
		}
	}
	t.Run("approve another org's registration", func(t *testing.T) {
		for _, action := range []string{"approve", "reject"} {
			evs := func() []advEvent {
				before := a.advSnap(t)
				a.do(t, 404, "POST", "/v1/registrations/"+a.req[a.seoul]+"/"+action, a.tok[advMgrB], nil)
				return a.advUnchanged(t, before, hana, 1)
			}()
			// The denied event names the request's org: Seoul's Manager
			// sees the attempt in her log.
			if len(evs) == 1 && evs[0].OrgID != a.seoul {
				t.Errorf("denied %s recorded for org %q, want Seoul", action, evs[0].OrgID)
			}
		}
	})
	t.Run("audit of another org filtered by its people", func(t *testing.T) {
		// Busan's own log, filtered by a Seoul user, holds no Seoul event.
		r := a.do(t, 200, "GET", busan+"/audit?actor="+a.id["mina"], a.tok[advMgrB], nil)
		if evs := r.list(t, "events"); len(evs) != 0 {
			t.Errorf("Busan's log shows Mina's events: %s", r.body)
		}
		r = a.do(t, 200, "GET", busan+"/audit/export?format=jsonl&target="+a.id["joon"], a.tok[advMgrB], nil)
		if bytes.Contains(r.body, []byte(a.seoul)) {
			t.Errorf("Busan's export shows Seoul: %s", r.body)
		}
	})
	// Hana's attempt to reset Joon's password did not end his session.
	a.do(t, 200, "GET", "/v1/me", a.tok[member], nil)
}

// advEscalation: the rule table's refusals that would grant power, each
// with its denied event: a Manager promoting anyone (herself included) to
// PlatformAdmin, anyone changing their own role, a Manager touching a
// PlatformAdmin of her org, a Manager leaving her org without a Manager.
func (a *advWorld) advEscalation(t *testing.T) {
	m := func(user, suffix string) string {
		return a.path("/v1/orgs/%s/members/%s%s", a.seoul, a.id[user], suffix)
	}
	role := func(r string) map[string]string { return map[string]string{"role": r} }
	cases := []struct {
		name, who, method, path string
		body                    any
		want                    int
	}{
		{"a Manager promotes a Member to PlatformAdmin", mgr, "PUT", m("joon", "/role"), role("platform_admin"), 403},
		{"a Manager promotes herself to PlatformAdmin", mgr, "PUT", m("mina", "/role"), role("platform_admin"), 403},
		{"a Manager promotes a pending applicant to PlatformAdmin", mgr, "PUT", m("eve", "/role"), role("platform_admin"), 404},
		{"a Manager demotes herself", mgr, "PUT", m("mina", "/role"), role("member"), 403},
		{"a Member makes himself Manager", member, "PUT", m("joon", "/role"), role("manager"), 403},
		{"a Member makes himself PlatformAdmin", member, "PUT", m("joon", "/role"), role("platform_admin"), 403},
		{"a Member grants himself categories", member, "PUT", m("joon", "/categories"), map[string]any{"categories": []string{"infra", "vpn", "audit"}}, 403},
		{"a PlatformAdmin changes his own role", "pat", "PUT", m("pat", "/role"), role("manager"), 403},
		{"a PlatformAdmin outside the org changes her own role there", admin, "PUT", a.path("/v1/orgs/%s/members/%s/role", a.seoul, a.admin), role("member"), 403},
		{"a Manager demotes a PlatformAdmin of her org", mgr, "PUT", m("pat", "/role"), role("member"), 403},
		{"a Manager makes a PlatformAdmin of her org Manager", mgr, "PUT", m("pat", "/role"), role("manager"), 403},
		{"a Manager sets a PlatformAdmin's categories", mgr, "PUT", m("pat", "/categories"), map[string]any{"categories": []string{}}, 403},
		{"a Manager removes a PlatformAdmin from her org", mgr, "DELETE", m("pat", ""), nil, 403},
		{"a Manager resets a PlatformAdmin's password", mgr, "POST", m("pat", "/password-reset"), nil, 403},
		{"a Manager deactivates a PlatformAdmin", mgr, "POST", "/v1/users/" + a.id["pat"] + "/deactivate", nil, 403},
		{"a Manager deletes a PlatformAdmin", mgr, "DELETE", "/v1/users/" + a.id["pat"], nil, 403},
		{"a Manager leaves her org without a Manager", mgr, "DELETE", m("mina", ""), nil, 409},
		{"the last Manager deletes her account", mgr, "DELETE", "/v1/me", map[string]string{"password": password}, 409},
		{"a PlatformAdmin removes an org's last Manager", admin, "DELETE", m("mina", ""), nil, 409},
		{"a PlatformAdmin deactivates an org's last Manager", admin, "POST", "/v1/users/" + a.id["mina"] + "/deactivate", nil, 409},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			actor := a.id[c.who]
			switch c.who {
			case admin:
				actor = string(a.admin)
			case mgr:
				actor = a.id["mina"]
			case member:
				actor = a.id["joon"]
			}
			a.advAttack(t, request{method: c.method, path: c.path, token: a.tok[c.who], body: c.body}, c.want, actor, 1)
		})
	}
}

// advOdd are path values no id can be: wildcards, encodings of NUL and
// of path separators, empty and dot segments, 10 KB, Unicode confusables
// and case or space variants of real ids. advPathIDs adds a real id of
// the wrong kind for each slot.
func advOdd(realOrg, realUser string) map[string]string {
	return map[string]string{
		"star":                       "*",
		"escaped star":               "%2A",
		"user wildcard":              "usr_*",
		"escaped user wildcard":      "usr_%2A",
		"org wildcard":               "org_%2A",
		"empty":                      "",
		"NUL":                        "%00",
		"id then NUL":                realUser + "%00",
		"dot dot":                    "..",
		"escaped dot dot slash":      "%2E%2E%2F",
		"escaped slash":              "x%2Fy",
		"10 KB":                      strings.Repeat("9", 10<<10),
		"Cyrillic o in an org id":    strings.Replace(realOrg, "o", "%D0%BE", 1),
		"fullwidth underscore":       strings.Replace(realUser, "_", "%EF%BC%BF", 1),
		"upper-case id":              strings.ToUpper(realUser),
		"id with a trailing space":   realUser + "%20",
		"id with a leading tab":      "%09" + realOrg,
		"SQL":                        "%27%20OR%20%271%27%3D%271",
		"LIKE wildcard":              "usr_%25",
		"two ids":                    realOrg + "," + realOrg,
		"id with a policy separator": realOrg + "::x",
	}
}

// advPathIDs: Busan's Manager puts each odd value in each path slot of
// every route (the other slots hold her own org's real ids): every answer
// is 404, before the Service, recording nothing and changing nothing.
func (a *advWorld) advPathIDs(t *testing.T) {
	own := advIDs{org: a.busan, user: a.id["ivan"], req: a.req[a.busan]}
	before := a.advSnap(t)
	n := 0
	for _, rt := range (&server{svc: a.svc}).routes() {
		for _, slot := range []string{"{org}", "{user}", "{id}", "{device}"} {
			if !strings.Contains(rt.pattern, slot) {
				continue
			}
			odds := advOdd(a.seoul, a.id["joon"])
			odds["an id of the wrong kind"] = a.seoul
			if slot == "{org}" {
				odds["an id of the wrong kind"] = a.id["joon"]
			}
			for name, odd := range odds {
				ids := own
				switch slot {
				case "{org}":
					ids.org = odd
				case "{user}":
					ids.user = odd
				case "{id}":
					ids.req = odd
				}
				q := advRequest(rt.pattern, ids, a.tok[advMgrB])
				if slot == "{device}" {
					q.path = strings.Replace(q.path, "prod-db-1", odd, 1)
				}
				r := a.send(t, q)
				n++
				if r.status != http.StatusNotFound {
					t.Errorf("%s with %s in %s: %d, want 404: %.200s", rt.pattern, name, slot, r.status, r.body)
				}
				// The problem's instance is the path, as RFC 9457 has it;
				// the detail does not repeat the id.
				if len(odd) > 100 && strings.Contains(advDetail(t, r), strings.Repeat("9", 100)) {
					t.Errorf("%s with %s in %s: the detail repeats the id", rt.pattern, name, slot)
				}
			}
		}
	}
	a.advUnchanged(t, before, "", 0)
	t.Logf("%d requests with odd ids", n)
}

// advDetail returns the detail of a problem answer.
func advDetail(t *testing.T, r resp) string {
	t.Helper()
	var p authz.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("not a problem: %v: %.200s", err, r.body)
	}
	return p.Detail
}

// advBodies: hostile bodies on the routes of the management operations,
// sent by someone who may perform them: refused before the Service with
// their problem (400, 413 or 422), changing nothing and recording nothing.
func (a *advWorld) advBodies(t *testing.T) {
	role := a.path("/v1/orgs/%s/members/%s/role", a.busan, a.id["ivan"])
	cats := a.path("/v1/orgs/%s/members/%s/categories", a.busan, a.id["ivan"])
	reject := "/v1/registrations/" + a.req[a.busan] + "/reject"
	hb := a.tok[advMgrB]
	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"role platformadmin (authz's spelling)", "PUT", role, hb, `{"role":"platformadmin"}`, 422},
		{"role PLATFORMADMIN", "PUT", role, hb, `{"role":"PLATFORMADMIN"}`, 422},
		{"role PLATFORM_ADMIN", "PUT", role, hb, `{"role":"PLATFORM_ADMIN"}`, 422},
		{"role with a leading space", "PUT", role, hb, `{"role":" manager"}`, 422},
		{"role with a trailing NUL", "PUT", role, hb, `{"role":"manager\u0000"}`, 422},
		{"role star", "PUT", role, hb, `{"role":"*"}`, 422},
		{"role empty", "PUT", role, hb, `{"role":""}`, 422},
		{"role a number", "PUT", role, hb, `{"role":2}`, 422},
		{"role null", "PUT", role, hb, `{"role":null}`, 422},
		{"role a list", "PUT", role, hb, `{"role":["manager","platform_admin"]}`, 422},
		{"role twice", "PUT", role, hb, `{"role":"member","role":"platform_admin"}`, 422},
		{"role and an org", "PUT", role, hb, `{"role":"manager","org_id":"` + a.seoul + `"}`, 422},
		{"role and a user", "PUT", role, hb, `{"role":"manager","user_id":"` + a.id["joon"] + `"}`, 422},
		{"categories star", "PUT", cats, hb, `{"categories":["*"]}`, 422},
		{"categories all", "PUT", cats, hb, `{"categories":["all"]}`, 422},
		{"categories upper case", "PUT", cats, hb, `{"categories":["INFRA"]}`, 422},
		{"categories with a space", "PUT", cats, hb, `{"categories":[" vpn"]}`, 422},
		{"categories with NUL", "PUT", cats, hb, `{"categories":["vpn\u0000"]}`, 422},
		{"categories repeated", "PUT", cats, hb, `{"categories":["vpn","vpn"]}`, 422},
		{"categories unknown", "PUT", cats, hb, `{"categories":["vpn","root"]}`, 422},
		{"categories empty name", "PUT", cats, hb, `{"categories":[""]}`, 422},
		{"categories as a bit mask", "PUT", cats, hb, `{"categories":127}`, 422},
		{"categories null", "PUT", cats, hb, `{"categories":null}`, 422},
		{"categories twice", "PUT", cats, hb, `{"categories":[],"categories":["infra"]}`, 422},
		{"reason a number", "POST", reject, hb, `{"reason":1}`, 422},
		{"reason with NUL", "POST", reject, hb, `{"reason":"no\u0000"}`, 422},
		{"reason of 100 KB", "POST", reject, hb, `{"reason":"` + strings.Repeat("x", 100<<10) + `"}`, 413},
		{"org name with NUL", "POST", "/v1/orgs", a.tok[admin], `{"name":"Evil\u0000Corp"}`, 422},
		{"org name with a line break", "POST", "/v1/orgs", a.tok[admin], `{"name":"Evil\nCorp"}`, 422},
		{"org name of 10 KB", "POST", "/v1/orgs", a.tok[admin], `{"name":"` + strings.Repeat("x", 10<<10) + `"}`, 422},
		{"org name empty", "PATCH", "/v1/orgs/" + a.busan, a.tok[admin], `{"name":"   "}`, 422},
		{"own name with NUL", "PATCH", "/v1/me", hb, `{"name":"Hana\u0000Admin"}`, 422},
		{"own name of 10 KB", "PATCH", "/v1/me", hb, `{"name":"` + strings.Repeat("x", 10<<10) + `"}`, 422},
		{"own name with a bidi override", "PATCH", "/v1/me", hb, `{"name":"Hana\u202enimdA"}`, 422},
		{"sign-up email with NUL", "POST", "/v1/signup", "", `{"email":"x\u0000@example.com","name":"X","password":"` + password + `","org_id":"` + a.busan + `"}`, 422},
		{"sign-up name with NUL", "POST", "/v1/signup", "", `{"email":"nul@example.com","name":"X\u0000","password":"` + password + `","org_id":"` + a.busan + `"}`, 422},
		{"sign-up org id star", "POST", "/v1/signup", "", `{"email":"star@example.com","name":"X","password":"` + password + `","org_id":"*"}`, 422},
		{"sign-up org id upper case", "POST", "/v1/signup", "", `{"email":"up@example.com","name":"X","password":"` + password + `","org_id":"` + strings.ToUpper(a.busan) + `"}`, 422},
		{"sign-up with a role", "POST", "/v1/signup", "", `{"email":"r@example.com","name":"X","password":"` + password + `","org_id":"` + a.busan + `","role":"manager"}`, 422},
		{"sign-up password of 129 characters", "POST", "/v1/signup", "", `{"email":"long@example.com","name":"X","password":"` + strings.Repeat("ü", 129) + `","org_id":"` + a.busan + `"}`, 422},
		{"login email as a list", "POST", "/v1/login", "", `{"email":["` + adminEmail + `"],"password":"` + password + `"}`, 422},
		{"a body of 1 MB", "PUT", role, hb, `{"role":"` + strings.Repeat("m", 1<<20) + `"}`, 413},
		{"deeply nested JSON", "PUT", role, hb, strings.Repeat(`{"role":`, 5000) + `"x"` + strings.Repeat("}", 5000), 422},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.advAttack(t, request{method: c.method, path: c.path, token: c.token, body: c.body}, c.want, "", 0)
			if d := advDetail(t, r); strings.Contains(d, "xxxxxxxxxxxxxxxx") || strings.Contains(d, password) || strings.Contains(d, "\x00") {
				t.Errorf("the problem repeats the input: %.300s", r.body)
			}
		})
	}
}

// advSQLStrings look like SQL to a careless query builder.
var advSQLStrings = []string{
	`Robert'); DROP TABLE iam_users;--`,
	`' OR '1'='1`,
	`" OR ""="`,
	`%' OR 1=1 --`,
	`_%`,
	`\'; DELETE FROM casbin_rule; --`,
	`1; UPDATE iam_users SET status=0`,
}

// advSQL: SQL-looking text in every text field. Where a field may hold it
// (names, org names, reasons) it is stored verbatim, read back exactly,
// and grants nothing: the policy and the engine stay as they were. Where
// it cannot (emails with spaces, passwords that do not match, ids,
// filters) it is refused like any other bad value.
func (a *advWorld) advSQL(t *testing.T) {
	for i, s := range advSQLStrings {
		t.Run(s, func(t *testing.T) {
			before := a.advSnap(t)
			// Names and org names: verbatim, and nothing but that row changes.
			r := a.do(t, 200, "PATCH", "/v1/me", a.tok[advMgrB], map[string]string{"name": s})
			if r.str(t, "name") != s {
				t.Errorf("name stored as %q, want %q", r.str(t, "name"), s)
			}
			o := a.do(t, 201, "POST", "/v1/orgs", a.tok[admin], map[string]string{"name": s})
			if o.str(t, "name") != s {
				t.Errorf("org name stored as %q", o.str(t, "name"))
			}
			a.do(t, 204, "DELETE", "/v1/orgs/"+o.str(t, "id"), a.tok[admin], nil)
			after := a.advSnap(t)
			for _, tbl := range []string{"casbin_rule", "iam_registration_requests", "iam_sessions"} {
				if !slices.Equal(before.rows[tbl], after.rows[tbl]) {
					t.Errorf("table %s changed", tbl)
				}
			}
			if !bytes.Equal(before.decisions, after.decisions) {
				t.Errorf("the engine's decisions changed")
			}
			if len(after.rows["iam_users"]) != len(before.rows["iam_users"]) {
				t.Errorf("%d users, were %d", len(after.rows["iam_users"]), len(before.rows["iam_users"]))
			}

			// Where the text cannot go, it is refused or answers like a
			// wrong value, and changes nothing.
			a.advAttack(t, request{method: "POST", path: "/v1/login", body: map[string]string{"email": s, "password": s}}, 401, "", 1)
			if i < 2 { // more failures would throttle Ada's account (429)
				a.advAttack(t, request{method: "POST", path: "/v1/login", body: map[string]string{"email": adminEmail, "password": s + " padding to twelve"}}, 401, "", 1)
			}
			a.advAttack(t, request{method: "POST", path: "/v1/password-reset/confirm", body: map[string]string{"token": s, "new_password": s + " and a long tail"}}, 401, "", 0)
			a.advAttack(t, request{method: "GET", path: "/v1/orgs/" + a.busan + "/members?category=" + advQueryEscape(s), token: a.tok[advMgrB]}, 422, "", 0)
			a.advAttack(t, request{method: "GET", path: "/v1/orgs/" + a.busan + "/members?after=" + advQueryEscape(s), token: a.tok[advMgrB]}, 422, "", 0)
			a.advAttack(t, request{method: "GET", path: "/v1/orgs/" + a.busan + "/audit?actor=" + advQueryEscape(s), token: a.tok[advMgrB]}, 422, "", 0)
			a.advAttack(t, request{method: "POST", path: "/v1/signup", body: map[string]string{"email": "x@example.com", "name": "X", "password": password, "org_id": s}}, 422, "", 0)
			if i == 0 { // one reason is enough: it is a free text like the names
				a.reasonVerbatim(t, s)
			}
		})
	}
	a.do(t, 200, "PATCH", "/v1/me", a.tok[advMgrB], map[string]string{"name": "hana"})
}

// reasonVerbatim rejects a fresh registration with reason s and reads it
// back exactly; the rejected applicant gains nothing.
func (a *advWorld) reasonVerbatim(t *testing.T, s string) {
	t.Helper()
	a.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "sql@example.com", "name": s, "password": password, "org_id": a.busan})
	q := a.do(t, 200, "GET", "/v1/orgs/"+a.busan+"/registrations", a.tok[advMgrB], nil)
	var id, user string
	for _, r := range q.list(t, "registrations") {
		if r["email"] == "sql@example.com" {
			id, user = r["id"].(string), r["user_id"].(string)
		}
	}
	a.do(t, 204, "POST", "/v1/registrations/"+id+"/reject", a.tok[advMgrB], map[string]string{"reason": s})
	got := a.do(t, 200, "GET", "/v1/orgs/"+a.busan+"/registrations?status=rejected", a.tok[advMgrB], nil)
	found := false
	for _, r := range got.list(t, "registrations") {
		if r["id"] == id {
			found = r["reason"] == s && r["name"] == s
		}
	}
	if !found {
		t.Errorf("the rejected request does not hold the reason and name verbatim: %s", got.body)
	}
	for _, c := range authz.Categories() {
		if d := a.svc.Check(t.Context(), authz.UserID(user), authz.OrgID(a.busan), c); d.Allowed {
			t.Errorf("the rejected applicant may use %v", c)
		}
	}
}

// advQueryEscape escapes s for a query string.
func advQueryEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// advLookalikes: emails that differ from an existing one by case or
// surrounding space reach the same account (no second account, no access
// for whoever typed them); names and emails that look like roles, ids or
// wildcards are stored as text and grant nothing.
func (a *advWorld) advLookalikes(t *testing.T) {
	for _, email := range []string{"JOON@example.com", "  joon@example.com  ", "Joon@EXAMPLE.com", "\tjoon@example.com\n"} {
		t.Run(fmt.Sprintf("sign-up as %q with a wrong password", email), func(t *testing.T) {
			// Answered as a new account would be, changing nothing.
			a.advAttack(t, request{method: "POST", path: "/v1/signup", body: map[string]string{
				"email": email, "name": "Joon Again", "password": "not his password at all", "org_id": a.busan}}, 201, "", 0)
		})
		t.Run(fmt.Sprintf("sign-up as %q with his password", email), func(t *testing.T) {
			// Joon's own account, already in Seoul: told so, nothing changed.
			a.advAttack(t, request{method: "POST", path: "/v1/signup", body: map[string]string{
				"email": email, "name": "Joon Again", "password": password, "org_id": a.seoul}}, 409, "", 0)
		})
		t.Run(fmt.Sprintf("login as %q", email), func(t *testing.T) {
			r := a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": email, "password": password})
			me := a.do(t, 200, "GET", "/v1/me", r.str(t, "token"), nil)
			if me.str(t, "id") != a.id["joon"] {
				t.Errorf("logged in as %s, want Joon", me.body)
			}
		})
	}
	// Accounts whose email or name looks like power: pending applicants of
	// Busan, who get nothing anywhere until approved, and nothing more then.
	looks := []struct{ email, name string }{
		{"platform_admin@example.com", "PlatformAdmin"},
		{"star@example.com", "*"},
		{"root@example.com", a.seoul},
		{"jооn@example.com", "Joon"}, // Cyrillic о: another address, another account
		{"mina@exampie.com", "Mina"},
		{"manager@example.com", "manager::" + a.busan},
	}
	for _, l := range looks {
		t.Run(fmt.Sprintf("an applicant named %q <%s>", l.name, l.email), func(t *testing.T) {
			before := a.advSnap(t)
			a.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": l.email, "name": l.name, "password": password, "org_id": a.busan})
			tok := a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": l.email, "password": password}).str(t, "token")
			me := a.do(t, 200, "GET", "/v1/me", tok, nil)
			if me.str(t, "name") != l.name || me.obj(t)["platform_admin"] != false || len(me.list(t, "memberships")) != 0 {
				t.Errorf("the applicant's profile %s", me.body)
			}
			if after := a.advSnap(t); !slices.Equal(before.rows["casbin_rule"], after.rows["casbin_rule"]) {
				t.Errorf("an applicant changed the policy")
			}
			for _, o := range []string{a.seoul, a.busan} {
				for _, c := range authz.Categories() {
					if d := a.svc.Check(t.Context(), authz.UserID(me.str(t, "id")), authz.OrgID(o), c); d.Allowed {
						t.Errorf("the applicant may use %v in %s", c, o)
					}
				}
			}
			a.advAttack(t, request{method: "GET", path: "/v1/orgs/" + a.busan + "/members", token: tok}, 404, me.str(t, "id"), 1)
			a.advAttack(t, request{method: "GET", path: "/v1/users", token: tok}, 403, me.str(t, "id"), 1)
		})
	}
}

// advSignUpOrgs: a sign-up for a deleted org answers exactly as for an
// org that never existed (404), and creates no account and no request.
func (a *advWorld) advSignUpOrgs(t *testing.T) {
	gone := a.do(t, 201, "POST", "/v1/orgs", a.tok[admin], map[string]string{"name": "Gone"}).str(t, "id")
	a.do(t, 204, "DELETE", "/v1/orgs/"+gone, a.tok[admin], nil)
	signUp := func(email, org string) request {
		return request{method: "POST", path: "/v1/signup", body: map[string]string{"email": email, "name": "Late", "password": password, "org_id": org}}
	}
	var deleted, unknown resp
	t.Run("a deleted org", func(t *testing.T) { deleted = a.advAttack(t, signUp("late@example.com", gone), 404, "", 0) })
	t.Run("an unknown org", func(t *testing.T) {
		unknown = a.advAttack(t, signUp("late@example.com", string(authz.NewOrgID())), 404, "", 0)
	})
	t.Run("an existing account to a deleted org", func(t *testing.T) { a.advAttack(t, signUp("joon@example.com", gone), 404, "", 0) })
	t.Run("a deleted org and an unknown one answer alike", func(t *testing.T) {
		advSame(t, "deleted and unknown org", deleted, unknown, "/v1/signup", "/v1/signup")
	})
}

// advDecided: approving or rejecting a request that was already approved
// or rejected is a conflict, recorded as denied, changing nothing.
func (a *advWorld) advDecided(t *testing.T) {
	a.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "rex@example.com", "name": "Rex", "password": password, "org_id": a.busan})
	a.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "uma@example.com", "name": "Uma", "password": password, "org_id": a.busan})
	ids := map[string]string{}
	for _, r := range a.do(t, 200, "GET", "/v1/orgs/"+a.busan+"/registrations", a.tok[advMgrB], nil).list(t, "registrations") {
		ids[r["name"].(string)] = r["id"].(string)
	}
	a.do(t, 204, "POST", "/v1/registrations/"+ids["Rex"]+"/reject", a.tok[advMgrB], map[string]string{"reason": "not today"})
	a.do(t, 204, "POST", "/v1/registrations/"+ids["Uma"]+"/approve", a.tok[advMgrB], nil)
	for _, c := range []struct{ name, id, action, who string }{
		{"approve a rejected request", ids["Rex"], "approve", advMgrB},
		{"reject a rejected request", ids["Rex"], "reject", advMgrB},
		{"approve an approved request", ids["Uma"], "approve", advMgrB},
		{"reject an approved request", ids["Uma"], "reject", advMgrB},
		{"a PlatformAdmin approves a rejected request", ids["Rex"], "approve", admin},
	} {
		t.Run(c.name, func(t *testing.T) {
			actor := a.id[c.who]
			if c.who == admin {
				actor = string(a.admin)
			}
			a.advAttack(t, request{method: "POST", path: "/v1/registrations/" + c.id + "/" + c.action, token: a.tok[c.who]}, 409, actor, 1)
		})
	}
}

// advEnumeration: sign-up, login, forgot-password and reset answer a
// known account exactly as an unknown one (status, headers but Date, and
// body), so the answers tell nobody which emails have accounts. That both
// paths do the same work (a password hash each) is the Service suite's to
// check: the hasher is not observable through HTTP, and timings are not
// asserted.
func (a *advWorld) advEnumeration(t *testing.T) {
	pair := func(name string, known, unknown request, want int) {
		t.Run(name, func(t *testing.T) {
			k := a.send(t, known)
			u := a.send(t, unknown)
			if k.status != want {
				t.Errorf("known: %d, want %d: %s", k.status, want, k.body)
			}
			advSame(t, name, k, u, known.path, unknown.path)
		})
	}
	body := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const guess = "guessing her password here"
	pair("sign-up", request{method: "POST", path: "/v1/signup", body: body("email", "mina@example.com", "name", "M", "password", guess, "org_id", a.busan)},
		request{method: "POST", path: "/v1/signup", body: body("email", "new.applicant@example.com", "name", "M", "password", guess, "org_id", a.busan)}, 201)
	pair("login", request{method: "POST", path: "/v1/login", body: body("email", "mina@example.com", "password", guess)},
		request{method: "POST", path: "/v1/login", body: body("email", "nobody.at.all@example.com", "password", guess)}, 401)
	pair("login in another case", request{method: "POST", path: "/v1/login", body: body("email", "MINA@example.com", "password", guess)},
		request{method: "POST", path: "/v1/login", body: body("email", "NOBODY@example.com", "password", guess)}, 401)
	pair("forgot password", request{method: "POST", path: "/v1/password-reset", body: body("email", "mina@example.com")},
		request{method: "POST", path: "/v1/password-reset", body: body("email", "nobody.at.all@example.com")}, 202)
	a.mail.Next(t) // Mina's token, unused
	pair("a reset token that is not one", request{method: "POST", path: "/v1/password-reset/confirm", body: body("token", a.tok[mgr], "new_password", "a new passphrase for mina")},
		request{method: "POST", path: "/v1/password-reset/confirm", body: body("token", "forged", "new_password", "a new passphrase for mina")}, 401)
	pair("a session of the wrong kind and none", request{method: "GET", path: "/v1/me", token: "forged"}, request{method: "GET", path: "/v1/me"}, 401)
}

// advResetTokens: a reset token works once, within its lifetime, only if
// it is the newest, only for its own user, and is never a session.
func (a *advWorld) advResetTokens(t *testing.T) {
	forgot := func(email string) string {
		a.do(t, 202, "POST", "/v1/password-reset", "", map[string]string{"email": email})
		msg := a.mail.Next(t)
		if msg.Email != email {
			t.Fatalf("reset message for %s, want %s", msg.Email, email)
		}
		return msg.Token.Reveal()
	}
	confirm := func(token, pw string) request {
		return request{method: "POST", path: "/v1/password-reset/confirm", body: map[string]string{"token": token, "new_password": pw}}
	}
	t.Run("used twice", func(t *testing.T) {
		tok := forgot("rex@example.com")
		a.do(t, 200, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": tok, "new_password": "rex's first new passphrase"})
		a.advAttack(t, confirm(tok, "rex's second new passphrase"), 401, "", 0)
		a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": "rex@example.com", "password": "rex's first new passphrase"})
	})
	t.Run("expired", func(t *testing.T) {
		tok := forgot("rex@example.com")
		a.clock.offset.Add(int64(31 * time.Minute))
		a.advAttack(t, confirm(tok, "rex's late new passphrase"), 401, "", 0)
	})
	t.Run("voided by a newer one", func(t *testing.T) {
		old := forgot("rex@example.com")
		forgot("rex@example.com")
		a.advAttack(t, confirm(old, "rex's stale new passphrase"), 401, "", 0)
	})
	t.Run("for another user", func(t *testing.T) {
		// The body cannot name a user: the token alone says whose password
		// it sets, and only theirs changes.
		tok := forgot("uma@example.com")
		a.advAttack(t, request{method: "POST", path: "/v1/password-reset/confirm", body: map[string]string{
			"token": tok, "new_password": "uma's new passphrase", "email": "mina@example.com"}}, 422, "", 0)
		a.advAttack(t, request{method: "POST", path: "/v1/password-reset/confirm", body: map[string]string{
			"token": tok, "new_password": "uma's new passphrase", "user_id": a.id["mina"]}}, 422, "", 0)
		r := a.do(t, 200, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": tok, "new_password": "uma's new passphrase"})
		if me := a.do(t, 200, "GET", "/v1/me", r.str(t, "token"), nil); me.str(t, "email") != "uma@example.com" {
			t.Errorf("the reset signed in %s", me.body)
		}
		a.do(t, 200, "GET", "/v1/me", a.tok[mgr], nil) // Mina untouched
		a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": "mina@example.com", "password": password})
	})
	t.Run("a reset token as a session", func(t *testing.T) {
		tok := forgot("uma@example.com")
		before := a.advSnap(t)
		for _, pattern := range a.advManagementRoutes(t) {
			if r := a.send(t, advRequest(pattern, advIDs{org: a.busan, user: a.id["ivan"], req: a.req[a.busan]}, tok)); r.status != 401 {
				t.Errorf("%s with a reset token: %d", pattern, r.status)
			}
		}
		a.advUnchanged(t, before, "", 0)
	})
}

// advAuthHeaders: malformed, misplaced and doubled credentials are 401
// problems with WWW-Authenticate, changing nothing, and answered at once. RFC 9110 makes the
// scheme case-insensitive and allows several spaces before the token, so
// those two spellings of a valid token are accepted.
func (a *advWorld) advAuthHeaders(t *testing.T) {
	valid := a.tok[advMgrB]
	path := "/v1/orgs/" + a.busan + "/members"
	cases := []struct {
		name   string
		values []string // Authorization header lines, in order
		query  string
		other  map[string]string
		want   int
	}{
		{"no header", nil, "", nil, 401},
		{"the scheme alone", []string{"Bearer"}, "", nil, 401},
		{"the scheme and a space", []string{"Bearer "}, "", nil, 401},
		{"a forged token after two spaces", []string{"Bearer  x"}, "", nil, 401},
		{"the token alone", []string{valid}, "", nil, 401},
		{"another scheme", []string{"Token " + valid}, "", nil, 401},
		{"Basic", []string{"Basic " + valid}, "", nil, 401},
		{"the token upper-cased", []string{"Bearer " + strings.ToUpper(valid)}, "", nil, 401},
		{"the token and a character", []string{"Bearer " + valid + "x"}, "", nil, 401},
		{"the token cut short", []string{"Bearer " + valid[:len(valid)-1]}, "", nil, 401},
		{"the token twice", []string{"Bearer " + valid + " " + valid}, "", nil, 401},
		{"the token and a comma", []string{"Bearer " + valid + ","}, "", nil, 401},
		{"a valid and a forged header", []string{"Bearer " + valid, "Bearer forged"}, "", nil, 401},
		{"a forged and a valid header", []string{"Bearer forged", "Bearer " + valid}, "", nil, 401},
		{"the token in the query", nil, "?access_token=" + valid, nil, 401},
		{"the token in a cookie", nil, "", map[string]string{"Cookie": "session=" + valid}, 401},
		{"the token in X-Auth-Token", nil, "", map[string]string{"X-Auth-Token": valid}, 401},
		// A consistency token far ahead is waited for only with a live
		// session: anonymous and forged requests are answered at once
		// rather than held open (and polling the database) at will.
		{"a far version and no token", nil, "", map[string]string{iam.VersionHeader: "9223372036854775807"}, 401},
		{"a far version and a forged token", []string{"Bearer forged"}, "", map[string]string{iam.VersionHeader: "9223372036854775807"}, 401},
		{"a malformed version and no token", nil, "", map[string]string{iam.VersionHeader: "x1"}, 401},
		{"a lower-case scheme", []string{"bearer " + valid}, "", nil, 200},
		{"two spaces before the token", []string{"Bearer  " + valid}, "", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := a.advSnap(t)
			// A bound on the wait, so that a server that holds the request
			// fails the case instead of hanging the test; not a timing
			// assertion: the answer needs milliseconds.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", a.srv.URL+path+c.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range c.values {
				req.Header.Add("Authorization", v)
			}
			for k, v := range c.other {
				req.Header.Set(k, v)
			}
			res, err := a.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			r := resp{status: res.StatusCode, header: res.Header, body: b}
			checkAnswer(t, request{method: "GET", path: path}, r)
			if r.status != c.want {
				t.Errorf("%d, want %d: %s", r.status, c.want, r.body)
			}
			if c.want == 401 {
				a.advUnchanged(t, before, "", 0)
			}
		})
	}
}

// advEndedSessions: the old token of a user removed from an org reaches
// nothing of that org; the tokens of a deactivated, a deleted and a
// logged-out user, and of someone who changed their password, are 401 on
// every route that needs a session, changing nothing.
func (a *advWorld) advEndedSessions(t *testing.T) {
	a.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "xena@example.com", "name": "Xena", "password": password, "org_id": a.seoul})
	q := a.do(t, 200, "GET", "/v1/orgs/"+a.seoul+"/registrations", a.tok[mgr], nil)
	var xena string
	for _, r := range q.list(t, "registrations") {
		if r["email"] == "xena@example.com" {
			xena = r["user_id"].(string)
			a.do(t, 204, "POST", "/v1/registrations/"+r["id"].(string)+"/approve", a.tok[mgr], nil)
		}
	}
	a.id["xena"] = xena
	a.do(t, 204, "PUT", a.path("/v1/orgs/%s/members/%s/categories", a.seoul, xena), a.tok[mgr], map[string]any{"categories": []string{"infra", "audit"}})
	tok := a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": "xena@example.com", "password": password}).str(t, "token")
	a.do(t, 200, "GET", "/v1/orgs/"+a.seoul+"/runtime", tok, nil)

	t.Run("removed from the org", func(t *testing.T) {
		a.do(t, 204, "DELETE", a.path("/v1/orgs/%s/members/%s", a.seoul, xena), a.tok[mgr], nil)
		for _, c := range []struct {
			path         string
			want, denied int
		}{
			{"/v1/orgs/" + a.seoul, 404, 0},
			{"/v1/orgs/" + a.seoul + "/runtime", 404, 0},
			{"/v1/orgs/" + a.seoul + "/audit", 404, 1},
			{"/v1/orgs/" + a.seoul + "/members", 404, 1},
		} {
			a.advAttack(t, request{method: "GET", path: c.path, token: tok}, c.want, xena, c.denied)
		}
		if me := a.do(t, 200, "GET", "/v1/me", tok, nil); len(me.list(t, "memberships")) != 0 {
			t.Errorf("profile after removal %s", me.body)
		}
	})
	dead := func(t *testing.T, token string) {
		t.Helper()
		before := a.advSnap(t)
		routes := append(a.advManagementRoutes(t), "POST /v1/logout", "GET /v1/me", "PATCH /v1/me", "PUT /v1/me/password", "DELETE /v1/me")
		for _, pattern := range routes {
			q := advRequest(pattern, advIDs{org: a.seoul, user: a.id["joon"], req: a.req[a.seoul]}, token)
			switch pattern {
			case "PATCH /v1/me":
				q.body = map[string]string{"name": "Ghost"}
			case "PUT /v1/me/password":
				q.body = map[string]string{"current_password": password, "new_password": "a ghost's new passphrase"}
			case "DELETE /v1/me":
				q.body = map[string]string{"password": password}
			}
			if r := a.send(t, q); r.status != 401 {
				t.Errorf("%s with an ended session: %d: %s", pattern, r.status, r.body)
			}
		}
		a.advUnchanged(t, before, "", 0)
	}
	t.Run("deleted", func(t *testing.T) {
		a.do(t, 204, "DELETE", "/v1/users/"+xena, a.tok[admin], nil)
		dead(t, tok)
		a.advAttack(t, request{method: "POST", path: "/v1/login", body: map[string]string{"email": "xena@example.com", "password": password}}, 401, "", 1)
	})
	t.Run("logged out", func(t *testing.T) {
		other := a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": "joon@example.com", "password": password}).str(t, "token")
		a.do(t, 204, "POST", "/v1/logout", other, nil)
		dead(t, other)
		a.do(t, 200, "GET", "/v1/me", a.tok[member], nil) // his other session lives
	})
	t.Run("after a password change", func(t *testing.T) {
		old := a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": "uma@example.com", "password": "uma's new passphrase"}).str(t, "token")
		keep := a.do(t, 200, "POST", "/v1/login", "", map[string]string{"email": "uma@example.com", "password": "uma's new passphrase"}).str(t, "token")
		a.do(t, 200, "PUT", "/v1/me/password", keep, map[string]string{"current_password": "uma's new passphrase", "new_password": "uma's newer passphrase"})
		dead(t, old)
	})
	t.Run("deactivated", func(t *testing.T) {
		a.do(t, 204, "POST", "/v1/users/"+a.id["pat"]+"/deactivate", a.tok[admin], nil)
		dead(t, a.tok["pat"])
		// A deactivated account's right password answers as a wrong one.
		pat := a.send(t, request{method: "POST", path: "/v1/login", body: map[string]string{"email": "pat@example.com", "password": password}})
		nobody := a.send(t, request{method: "POST", path: "/v1/login", body: map[string]string{"email": "nobody.at.all@example.com", "password": password}})
		advSame(t, "a deactivated account and none", pat, nobody, "/v1/login", "/v1/login")
	})
}

// advLastPlatformAdmin: with Pat deactivated (advEndedSessions), Ada is
// the last active PlatformAdmin: she cannot demote, deactivate or delete
// herself, through any route; each attempt is denied and recorded.
func (a *advWorld) advLastPlatformAdmin(t *testing.T) {
	if r := a.do(t, 200, "GET", "/v1/users", a.tok[admin], nil); bytes.Count(r.body, []byte(`"platform_admin":true`)) != 2 {
		t.Fatalf("want Ada and deactivated Pat as PlatformAdmins: %s", r.body)
	}
	ada := string(a.admin)
	for _, c := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"demote herself in an org", "PUT", a.path("/v1/orgs/%s/members/%s/role", a.busan, ada), map[string]string{"role": "member"}, 403},
		{"make herself Manager", "PUT", a.path("/v1/orgs/%s/members/%s/role", a.seoul, ada), map[string]string{"role": "manager"}, 403},
		{"deactivate herself", "POST", "/v1/users/" + ada + "/deactivate", nil, 409},
		{"delete herself", "DELETE", "/v1/users/" + ada, nil, 409},
		{"delete her account", "DELETE", "/v1/me", map[string]string{"password": password}, 409},
	} {
		t.Run(c.name, func(t *testing.T) {
			a.advAttack(t, request{method: c.method, path: c.path, token: a.tok[admin], body: c.body}, c.want, ada, 1)
		})
	}
	t.Run("a deactivated PlatformAdmin's token", func(t *testing.T) {
		a.advAttack(t, request{method: "PUT", path: a.path("/v1/orgs/%s/members/%s/role", a.seoul, ada), token: a.tok["pat"], body: map[string]string{"role": "member"}}, 401, "", 0)
	})
}
