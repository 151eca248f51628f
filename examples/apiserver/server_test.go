package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// The people of the end-to-end walk, by the token map's keys.
const (
	anon   = "anonymous"
	admin  = "platform admin" // Ada
	mgr    = "manager"        // Mina, Manager of Seoul
	member = "member"         // Joon, Member of Seoul with infra and vpn
)

var personas = []string{admin, mgr, member, anon}

// world is the walk's cast and orgs once set up through the API.
type world struct {
	*env
	tok          map[string]string // persona or name → session token
	id           map[string]string // name → user id
	seoul, busan string
}

func (w *world) path(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// TestAPI serves the real handler on a real listener over each kind of
// database and walks every route as a PlatformAdmin, a Manager, a Member
// and an anonymous caller, then feeds it bad input.
func TestAPI(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			w := setUp(t, newEnv(t, kind))
			t.Run("reads", w.reads)
			t.Run("feature pages", w.featurePages)
			t.Run("profile", w.profile)
			t.Run("orgs", w.orgs)
			t.Run("registrations", w.registrations)
			t.Run("members", w.members)
			t.Run("passwords", w.passwords)
			t.Run("accounts", w.accounts)
			t.Run("audit", w.audit)
			t.Run("bad input", w.badInput)
			t.Run("odd paths", w.oddPaths)
			t.Run("throttled login", w.throttledLogin)
			t.Run("logout and self-deletion", w.endings)
		})
	}
}

// setUp builds the walk's world through the API: Ada creates Seoul DC and
// Busan Lab; Mina, Joon and Pat sign up to Seoul and Hana to Busan; Ada
// approves Mina and makes her Manager; Mina approves Joon and Pat and
// grants Joon infra and vpn; Ada approves Hana and makes Pat a second
// PlatformAdmin (who stays a Member of Seoul).
func setUp(t *testing.T, e *env) *world {
	w := &world{env: e, tok: map[string]string{anon: ""}, id: map[string]string{"ada": string(e.admin)}}
	w.tok[admin] = w.login(t, adminEmail)

	// The last PlatformAdmin can neither delete herself nor be deleted.
	w.unchanged(t, func() {
		w.do(t, http.StatusConflict, "DELETE", "/v1/me", w.tok[admin], map[string]string{"password": password})
		w.do(t, http.StatusConflict, "DELETE", "/v1/users/"+string(e.admin), w.tok[admin], nil)
	})

	r := w.do(t, http.StatusCreated, "POST", "/v1/orgs", w.tok[admin], map[string]string{"name": "Seoul DC"})
	w.seoul = r.str(t, "id")
	if loc := r.header.Get("Location"); loc != "/v1/orgs/"+w.seoul {
		t.Errorf("Location %q", loc)
	}
	w.busan = w.do(t, http.StatusCreated, "POST", "/v1/orgs", w.tok[admin], map[string]string{"name": "Busan Lab"}).str(t, "id")

	for _, s := range []struct{ name, org string }{{"mina", w.seoul}, {"joon", w.seoul}, {"pat", w.seoul}, {"hana", w.busan}} {
		r := w.do(t, http.StatusCreated, "POST", "/v1/signup", "", map[string]string{"email": s.name + "@example.com", "name": s.name, "password": password, "org_id": s.org})
		if r.str(t, "status") != "pending" {
			t.Errorf("sign-up answer %s", r.body)
		}
	}
	q := w.do(t, http.StatusOK, "GET", "/v1/orgs/"+w.seoul+"/registrations?period=7d", w.tok[admin], nil)
	if n := q.obj(t)["pending_count"]; n != 3.0 {
		t.Fatalf("pending_count %v: %s", n, q.body)
	}
	reqs := map[string]string{}
	for _, reg := range q.list(t, "registrations") {
		reqs[reg["name"].(string)] = reg["id"].(string)
		w.id[reg["name"].(string)] = reg["user_id"].(string)
	}
	w.do(t, http.StatusNoContent, "POST", "/v1/registrations/"+reqs["mina"]+"/approve", w.tok[admin], nil)
	w.do(t, http.StatusNoContent, "PUT", w.path("/v1/orgs/%s/members/%s/role", w.seoul, w.id["mina"]), w.tok[admin], map[string]string{"role": "manager"})
	w.tok[mgr] = w.login(t, "mina@example.com")
	for _, name := range []string{"joon", "pat"} {
		w.do(t, http.StatusNoContent, "POST", "/v1/registrations/"+reqs[name]+"/approve", w.tok[mgr], nil)
	}
	w.do(t, http.StatusNoContent, "PUT", w.path("/v1/orgs/%s/members/%s/categories", w.seoul, w.id["joon"]), w.tok[mgr], map[string]any{"categories": []string{"vpn", "infra"}})
	b := w.do(t, http.StatusOK, "GET", "/v1/orgs/"+w.busan+"/registrations", w.tok[admin], nil)
	w.id["hana"] = b.str(t, "registrations", 0, "user_id")
	w.do(t, http.StatusNoContent, "POST", "/v1/registrations/"+b.str(t, "registrations", 0, "id")+"/approve", w.tok[admin], nil)
	w.do(t, http.StatusNoContent, "PUT", w.path("/v1/orgs/%s/members/%s/role", w.seoul, w.id["pat"]), w.tok[admin], map[string]string{"role": "platform_admin"})
	w.tok[member] = w.login(t, "joon@example.com")
	w.tok["hana"] = w.login(t, "hana@example.com")
	w.tok["pat"] = w.login(t, "pat@example.com")
	return w
}

func (w *world) login(t *testing.T, email string) string {
	t.Helper()
	r := w.do(t, http.StatusOK, "POST", "/v1/login", "", map[string]string{"email": email, "password": password})
	if r.str(t, "token_type") != "Bearer" || r.str(t, "token") == "" {
		t.Fatalf("login answer %s", r.body)
	}
	return r.str(t, "token")
}

// byRole is what a request answers to each persona.
type byRole map[string]int

// matrix sends each case as each persona and checks the status; every
// refused request must change nothing.
func (w *world) matrix(t *testing.T, cases []matrixCase) {
	t.Helper()
	for _, c := range cases {
		for _, who := range personas {
			want, ok := c.want[who]
			if !ok {
				continue
			}
			t.Run(c.method+" "+c.name+" as "+who, func(t *testing.T) {
				send := func() resp {
					r := w.send(t, request{method: c.method, path: c.path, token: w.tok[who], body: c.body})
					if r.status != want {
						t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
					}
					return r
				}
				var r resp
				if want >= 400 {
					w.unchanged(t, func() { r = send() })
				} else {
					r = send()
				}
				switch {
				case t.Failed():
				case r.status < 400 && c.check != nil:
					c.check(t, who, r)
				case r.status == 403 && c.denied != nil:
					c.denied(t, r)
				}
			})
		}
	}
}

type matrixCase struct {
	name, method, path string
	body               any
	want               byRole
	check              func(t *testing.T, who string, r resp) // for a success
	denied             func(t *testing.T, r resp)             // for a 403
}

// reads walks the routes that only read, as each persona (rule table:
// orgs and All Users for PlatformAdmins; members and the queue for a
// PlatformAdmin or the org's Manager; a Member is refused, someone of
// another org finds nothing).
func (w *world) reads(t *testing.T) {
	all := func(s int) byRole { return byRole{admin: s, mgr: s, member: s, anon: s} }
	managers := byRole{admin: 200, mgr: 200, member: 403, anon: 401}
	w.matrix(t, []matrixCase{
		{name: "/healthz", method: "GET", path: "/healthz", want: all(200)},
		{name: "/v1/me", method: "GET", path: "/v1/me", want: byRole{admin: 200, mgr: 200, member: 200, anon: 401}},
		{name: "/v1/orgs", method: "GET", path: "/v1/orgs", want: byRole{admin: 200, mgr: 200, member: 200, anon: 401},
			check: func(t *testing.T, who string, r resp) {
				want := map[string]int{admin: 2, mgr: 1, member: 1}[who]
				if got := len(r.list(t, "orgs")); got != want {
					t.Errorf("%d orgs, want %d: %s", got, want, r.body)
				}
			}},
		{name: "own org", method: "GET", path: "/v1/orgs/" + w.seoul, want: byRole{admin: 200, mgr: 200, member: 200, anon: 401},
			check: func(t *testing.T, _ string, r resp) {
				if r.str(t, "name") != "Seoul DC" || r.str(t, "id") != w.seoul {
					t.Errorf("org %s", r.body)
				}
			}},
		{name: "another org", method: "GET", path: "/v1/orgs/" + w.busan, want: byRole{admin: 200, mgr: 404, member: 404, anon: 401}},
		{name: "registrations", method: "GET", path: "/v1/orgs/" + w.seoul + "/registrations?period=30d", want: managers,
			check: func(t *testing.T, _ string, r resp) {
				if o := r.obj(t); o["pending_count"] != 0.0 || o["period"] != "30d" || o["status"] != "pending" {
					t.Errorf("queue %s", r.body)
				}
			}},
		{name: "registrations of another org", method: "GET", path: "/v1/orgs/" + w.busan + "/registrations", want: byRole{admin: 200, mgr: 404, member: 404}},
		{name: "members", method: "GET", path: "/v1/orgs/" + w.seoul + "/members", want: managers,
			check: func(t *testing.T, _ string, r resp) {
				got := map[string]string{}
				for _, m := range r.list(t, "members") {
					got[m["email"].(string)] = fmt.Sprintf("%v %v %v", m["role"], m["categories"], m["platform_admin"])
				}
				want := map[string]string{
					"mina@example.com": "manager [] false",
					"joon@example.com": "member [infra vpn] false",
					"pat@example.com":  "member [] true",
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("members %v, want %v", got, want)
				}
			}},
		{name: "members of another org", method: "GET", path: "/v1/orgs/" + w.busan + "/members", want: byRole{admin: 200, mgr: 404, member: 404}},
		{name: "members a page at a time", method: "GET", path: "/v1/orgs/" + w.seoul + "/members?limit=2", want: managers,
			check: func(t *testing.T, who string, r resp) {
				var ids []string
				for {
					for _, m := range r.list(t, "members") {
						ids = append(ids, m["id"].(string))
					}
					next := r.str(t, "next")
					if next == "" {
						break
					}
					r = w.do(t, 200, "GET", "/v1/orgs/"+w.seoul+"/members?limit=2&after="+next, w.tok[who], nil)
				}
				if len(ids) != 3 || !slices.IsSorted(ids) || ids[0] == ids[1] || ids[1] == ids[2] {
					t.Errorf("paged members %v, want 3 ids in order", ids)
				}
			}},
		{name: "one member", method: "GET", path: w.path("/v1/orgs/%s/members/%s", w.seoul, w.id["joon"]), want: managers,
			check: func(t *testing.T, _ string, r resp) {
				if o := r.obj(t); o["email"] != "joon@example.com" || o["role"] != "member" || fmt.Sprint(o["categories"]) != "[infra vpn]" {
					t.Errorf("member %s", r.body)
				}
			}},
		{name: "one member of another org", method: "GET", path: w.path("/v1/orgs/%s/members/%s", w.busan, w.id["hana"]), want: byRole{admin: 200, mgr: 404, member: 404}},
		{name: "one member, not in the org", method: "GET", path: w.path("/v1/orgs/%s/members/%s", w.seoul, w.id["hana"]), want: byRole{admin: 404, mgr: 404, member: 403}},
		{name: "members with vpn", method: "GET", path: "/v1/orgs/" + w.seoul + "/members?category=vpn", want: managers,
			check: func(t *testing.T, _ string, r resp) {
				if ms := r.list(t, "members"); len(ms) != 1 || ms[0]["email"] != "joon@example.com" || r.str(t, "next") != "" {
					t.Errorf("members with vpn: %s", r.body)
				}
			}},
		{name: "access to vpn", method: "GET", path: "/v1/orgs/" + w.seoul + "/access?category=vpn", want: managers,
			check: func(t *testing.T, _ string, r resp) {
				got := map[string]string{}
				for _, a := range r.list(t, "users") {
					got[a["email"].(string)] = a["reason"].(string)
				}
				want := map[string]string{
					adminEmail:         "PlatformAdmin",
					"pat@example.com":  "PlatformAdmin",
					"mina@example.com": "Manager of the org",
					"joon@example.com": "granted",
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("access %v, want %v", got, want)
				}
			}},
		{name: "access of another org", method: "GET", path: "/v1/orgs/" + w.busan + "/access?category=vpn", want: byRole{admin: 200, mgr: 404, member: 404}},
		{name: "access without a category", method: "GET", path: "/v1/orgs/" + w.seoul + "/access", want: byRole{admin: 422, mgr: 422}},
		{name: "members with a bad limit", method: "GET", path: "/v1/orgs/" + w.seoul + "/members?limit=1001", want: byRole{admin: 422, mgr: 422}},
		{name: "members with a bad cursor", method: "GET", path: "/v1/orgs/" + w.seoul + "/members?after=usr_x", want: byRole{admin: 422, mgr: 422}},
		{name: "users with a bad limit", method: "GET", path: "/v1/users?limit=-1", want: byRole{admin: 422}},
		{name: "/v1/users", method: "GET", path: "/v1/users", want: byRole{admin: 200, mgr: 403, member: 403, anon: 401},
			check: func(t *testing.T, _ string, r resp) {
				if n := len(r.list(t, "users")); n != 5 {
					t.Errorf("%d users, want 5", n)
				}
			}},
		{name: "audit", method: "GET", path: "/v1/orgs/" + w.seoul + "/audit", want: managers},
		{name: "audit of another org", method: "GET", path: "/v1/orgs/" + w.busan + "/audit", want: byRole{admin: 200, mgr: 404, member: 404}},
		{name: "audit export", method: "GET", path: "/v1/orgs/" + w.seoul + "/audit/export?format=jsonl", want: managers},
		{name: "db-explorer", method: "GET", path: "/v1/ops/db-explorer", want: byRole{admin: 200, mgr: 403, member: 403, anon: 401}},
		{name: "db-monitoring", method: "GET", path: "/v1/ops/db-monitoring", want: byRole{admin: 200, mgr: 403, member: 403, anon: 401}},
	})
}

// featurePages walks the sample feature endpoints: a PlatformAdmin and
// the org's Manager hold every category there, Joon only infra and vpn;
// someone of another org finds nothing.
func (w *world) featurePages(t *testing.T) {
	pages := []struct{ page, category string }{
		{"runtime", "infra"}, {"services", "service"}, {"backups", "backup"},
		{"devices", "device"}, {"databases", "database"}, {"vpn", "vpn"},
	}
	var cases []matrixCase
	for _, p := range pages {
		joon := 403
		if p.category == "infra" || p.category == "vpn" {
			joon = 200
		}
		cases = append(cases,
			matrixCase{name: p.page, method: "GET", path: "/v1/orgs/" + w.seoul + "/" + p.page,
				want: byRole{admin: 200, mgr: 200, member: joon, anon: 401},
				check: func(t *testing.T, who string, r resp) {
					wantBy := map[string]string{admin: "PlatformAdmin", mgr: "Manager of the org", member: "granted"}[who]
					if r.str(t, "allowed_by") != wantBy || r.str(t, "required_categories", 0) != p.category || r.str(t, "org_id") != w.seoul {
						t.Errorf("answer %s", r.body)
					}
				},
				denied: func(t *testing.T, r resp) { checkInsufficient(t, r, p.category) }},
			matrixCase{name: p.page + " of another org", method: "GET", path: "/v1/orgs/" + w.busan + "/" + p.page,
				want: byRole{admin: 200, mgr: 404, member: 404}},
		)
	}
	cases = append(cases,
		matrixCase{name: "a device", method: "DELETE", path: "/v1/orgs/" + w.seoul + "/devices/prod-db-1",
			want:   byRole{admin: 204, mgr: 204, member: 403, anon: 401},
			denied: func(t *testing.T, r resp) { checkInsufficient(t, r, "device") }},
		matrixCase{name: "a device with an odd name", method: "DELETE", path: "/v1/orgs/" + w.seoul + "/devices/%2A", want: byRole{admin: 404, mgr: 404, member: 403, anon: 401}},
	)
	w.matrix(t, cases)
}

// checkInsufficient checks the "Insufficient permissions" answer of a
// feature page that needs category.
func checkInsufficient(t *testing.T, r resp, category string) {
	t.Helper()
	var p struct {
		Title    string   `json:"title"`
		Status   int      `json:"status"`
		Detail   string   `json:"detail"`
		Required []string `json:"required_categories"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Title != "Insufficient permissions" || p.Status != 403 || !slices.Equal(p.Required, []string{category}) ||
		!strings.Contains(p.Detail, "Ask your Manager") || !strings.Contains(p.Detail, category) {
		t.Errorf("not the Insufficient permissions answer for %s: %s", category, r.body)
	}
}

// profile walks /v1/me: everyone reads and renames themselves.
func (w *world) profile(t *testing.T) {
	r := w.do(t, 200, "GET", "/v1/me", w.tok[member], nil)
	want := fmt.Sprintf(`[{"categories":["infra","vpn"],"org_id":%q,"org_name":"Seoul DC","role":"member"}]`, w.seoul)
	if got, _ := json.Marshal(r.obj(t)["memberships"]); string(got) != want {
		t.Errorf("memberships %s, want %s", got, want)
	}
	if r.str(t, "email") != "joon@example.com" || r.obj(t)["platform_admin"] != false {
		t.Errorf("profile %s", r.body)
	}
	if a := w.do(t, 200, "GET", "/v1/me", w.tok[admin], nil); a.obj(t)["platform_admin"] != true || len(a.list(t, "memberships")) != 0 {
		t.Errorf("admin profile %s", a.body)
	}
	w.matrix(t, []matrixCase{
		{name: "/v1/me name", method: "PATCH", path: "/v1/me", body: map[string]string{"name": "Joon Park"}, want: byRole{member: 200, anon: 401},
			check: func(t *testing.T, _ string, r resp) {
				if r.str(t, "name") != "Joon Park" {
					t.Errorf("renamed profile %s", r.body)
				}
			}},
		{name: "/v1/me empty name", method: "PATCH", path: "/v1/me", body: map[string]string{"name": " "}, want: byRole{mgr: 422}},
	})
}

// orgs walks Organization Management: PlatformAdmins only.
func (w *world) orgs(t *testing.T) {
	w.matrix(t, []matrixCase{
		{name: "/v1/orgs", method: "POST", path: "/v1/orgs", body: map[string]string{"name": "Temp"}, want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "rename", method: "PATCH", path: "/v1/orgs/" + w.seoul, body: map[string]string{"name": "Seoul"}, want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "delete", method: "DELETE", path: "/v1/orgs/" + w.busan, want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "rename to nothing", method: "PATCH", path: "/v1/orgs/" + w.seoul, body: map[string]string{"name": ""}, want: byRole{admin: 422}},
		{name: "rename an unknown org", method: "PATCH", path: "/v1/orgs/org_aaaaaaaaaaaaaaaaaaaaaaaa", body: map[string]string{"name": "X"}, want: byRole{admin: 404}},
	})
	temp := w.do(t, 201, "POST", "/v1/orgs", w.tok[admin], map[string]string{"name": "Temp"}).str(t, "id")
	if r := w.do(t, 200, "PATCH", "/v1/orgs/"+temp, w.tok[admin], map[string]string{"name": "Temporary"}); r.str(t, "name") != "Temporary" {
		t.Errorf("renamed org %s", r.body)
	}
	w.do(t, 204, "DELETE", "/v1/orgs/"+temp, w.tok[admin], nil)
	w.do(t, 404, "GET", "/v1/orgs/"+temp, w.tok[admin], nil)
	w.do(t, 404, "DELETE", "/v1/orgs/"+temp, w.tok[admin], nil)
}

// registrations walks Pending Approvals: approve and reject as a
// PlatformAdmin or the org's Manager; a Member is refused; a request of
// another org is not found; a request is decided once.
func (w *world) registrations(t *testing.T) {
	w.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "kim@example.com", "name": "Kim", "password": password, "org_id": w.seoul})
	w.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "lee@example.com", "name": "Lee", "password": password, "org_id": w.busan})
	kim := w.do(t, 200, "GET", "/v1/orgs/"+w.seoul+"/registrations", w.tok[mgr], nil).str(t, "registrations", 0, "id")
	lee := w.do(t, 200, "GET", "/v1/orgs/"+w.busan+"/registrations", w.tok[admin], nil).str(t, "registrations", 0, "id")
	w.matrix(t, []matrixCase{
		{name: "approve", method: "POST", path: "/v1/registrations/" + kim + "/approve", want: byRole{member: 403, anon: 401}},
		{name: "reject", method: "POST", path: "/v1/registrations/" + kim + "/reject", want: byRole{member: 403, anon: 401}},
		{name: "approve another org's", method: "POST", path: "/v1/registrations/" + lee + "/approve", want: byRole{mgr: 404, member: 404}},
		{name: "reject another org's", method: "POST", path: "/v1/registrations/" + lee + "/reject", body: map[string]string{"reason": "no"}, want: byRole{mgr: 404}},
		{name: "approve an unknown one", method: "POST", path: "/v1/registrations/req_aaaaaaaaaaaaaaaaaaaaaaaa/approve", want: byRole{admin: 404}},
		{name: "reject with a bad reason field", method: "POST", path: "/v1/registrations/" + kim + "/reject", body: map[string]any{"reason": 1}, want: byRole{mgr: 422}},
	})
	w.do(t, 204, "POST", "/v1/registrations/"+kim+"/reject", w.tok[mgr], map[string]string{"reason": "Please apply with your work email."})
	w.do(t, 409, "POST", "/v1/registrations/"+kim+"/approve", w.tok[mgr], nil)
	all := w.do(t, 200, "GET", "/v1/orgs/"+w.seoul+"/registrations?status=rejected&period=all", w.tok[mgr], nil)
	if all.str(t, "registrations", 0, "reason") != "Please apply with your work email." || all.str(t, "registrations", 0, "decided_by") != w.id["mina"] {
		t.Errorf("rejected request %s", all.body)
	}
	// Kim applies again and Ada approves; Lee is rejected without a reason.
	w.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "kim@example.com", "name": "Kim", "password": password, "org_id": w.seoul})
	r := w.do(t, 200, "GET", "/v1/orgs/"+w.seoul+"/registrations", w.tok[admin], nil)
	w.id["kim"] = r.str(t, "registrations", 0, "user_id")
	w.do(t, 204, "POST", "/v1/registrations/"+r.str(t, "registrations", 0, "id")+"/approve", w.tok[admin], nil)
	w.do(t, 204, "POST", "/v1/registrations/"+lee+"/reject", w.tok[admin], nil)
	// A member signing up again to their org is told so (they hold the password).
	w.do(t, 409, "POST", "/v1/signup", "", map[string]string{"email": "kim@example.com", "name": "Kim", "password": password, "org_id": w.seoul})
	// The same email with a wrong password gets the answer of a new
	// account, and nothing changes.
	w.unchanged(t, func() {
		w.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "kim@example.com", "name": "Kim", "password": "not kim's password at all", "org_id": w.seoul})
	})
	w.do(t, 404, "POST", "/v1/signup", "", map[string]string{"email": "x@example.com", "name": "X", "password": password, "org_id": "org_aaaaaaaaaaaaaaaaaaaaaaaa"})
	w.do(t, 422, "POST", "/v1/signup", "", map[string]string{"email": "x@example.com", "name": "X", "password": password, "org_id": "Seoul DC"})
	w.do(t, 422, "POST", "/v1/signup", "", map[string]string{"email": "x@example.com", "name": "X", "password": "short", "org_id": w.seoul})
}

// members walks Users by Organization: Edit Role, Permission Management
// and Remove, with the rule table's refusals.
func (w *world) members(t *testing.T) {
	m := func(user, suffix string) string {
		return w.path("/v1/orgs/%s/members/%s%s", w.seoul, w.id[user], suffix)
	}
	role := func(r string) map[string]string { return map[string]string{"role": r} }
	cats := func(c ...string) map[string]any { return map[string]any{"categories": append([]string{}, c...)} }
	w.matrix(t, []matrixCase{
		// Nobody changes their own role.
		{name: "own role", method: "PUT", path: m("mina", "/role"), body: role("member"), want: byRole{mgr: 403}},
		// A Manager assigns only Member and Manager, never touches a PlatformAdmin.
		{name: "promote to platform_admin", method: "PUT", path: m("joon", "/role"), body: role("platform_admin"), want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "a PlatformAdmin's role", method: "PUT", path: m("pat", "/role"), body: role("member"), want: byRole{mgr: 403, member: 403}},
		{name: "a PlatformAdmin's categories", method: "PUT", path: m("pat", "/categories"), body: cats("infra"), want: byRole{mgr: 403, member: 403}},
		{name: "remove a PlatformAdmin", method: "DELETE", path: m("pat", ""), want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "reset a PlatformAdmin's password", method: "POST", path: m("pat", "/password-reset"), want: byRole{mgr: 403, member: 403, anon: 401}},
		// A Member manages nobody.
		{name: "a role", method: "PUT", path: m("kim", "/role"), body: role("manager"), want: byRole{member: 403, anon: 401}},
		{name: "categories", method: "PUT", path: m("kim", "/categories"), body: cats("vpn"), want: byRole{member: 403, anon: 401}},
		{name: "remove", method: "DELETE", path: m("kim", ""), want: byRole{member: 403}},
		// Someone of another org answers as if they did not exist.
		{name: "role of another org's member", method: "PUT", path: m("hana", "/role"), body: role("manager"), want: byRole{mgr: 404}},
		{name: "categories in another org", method: "PUT", path: w.path("/v1/orgs/%s/members/%s/categories", w.busan, w.id["hana"]), body: cats("vpn"), want: byRole{mgr: 404, member: 404}},
		{name: "remove from another org", method: "DELETE", path: w.path("/v1/orgs/%s/members/%s", w.busan, w.id["hana"]), want: byRole{mgr: 404}},
		{name: "reset in another org", method: "POST", path: w.path("/v1/orgs/%s/members/%s/password-reset", w.busan, w.id["hana"]), want: byRole{mgr: 404}},
		{name: "role of an unknown user", method: "PUT", path: w.path("/v1/orgs/%s/members/usr_aaaaaaaaaaaaaaaaaaaaaaaa/role", w.seoul), body: role("manager"), want: byRole{admin: 404, mgr: 404}},
		// Role names are the API's, exactly.
		{name: "authz's spelling of a role", method: "PUT", path: m("kim", "/role"), body: role("platformadmin"), want: byRole{admin: 422}},
		{name: "a capitalized role", method: "PUT", path: m("kim", "/role"), body: role("Manager"), want: byRole{mgr: 422}},
		{name: "no role", method: "PUT", path: m("kim", "/role"), body: map[string]string{}, want: byRole{mgr: 422}},
		// Categories are the whole set, by name.
		{name: "an unknown category", method: "PUT", path: m("kim", "/categories"), body: cats("infra", "root"), want: byRole{mgr: 422}},
		{name: "a repeated category", method: "PUT", path: m("kim", "/categories"), body: cats("vpn", "vpn"), want: byRole{mgr: 422}},
		{name: "no categories field", method: "PUT", path: m("kim", "/categories"), body: map[string]any{}, want: byRole{mgr: 422}},
		{name: "categories as a string", method: "PUT", path: m("kim", "/categories"), body: map[string]any{"categories": "infra,vpn"}, want: byRole{mgr: 422}},
		// The last Manager of an org stays.
		{name: "the last Manager", method: "DELETE", path: m("mina", ""), want: byRole{mgr: 409, admin: 409}},
		{name: "demote the last Manager", method: "PUT", path: m("mina", "/role"), body: role("member"), want: byRole{admin: 409}},
	})

	// What a Manager may do in her org, and what it changes.
	w.do(t, 204, "PUT", m("kim", "/categories"), w.tok[mgr], cats("backup", "audit"))
	w.do(t, 204, "PUT", m("kim", "/role"), w.tok[mgr], role("manager"))
	w.do(t, 204, "PUT", m("kim", "/role"), w.tok[mgr], role("member"))
	w.do(t, 204, "PUT", m("kim", "/categories"), w.tok[admin], cats())
	ms := w.do(t, 200, "GET", "/v1/orgs/"+w.seoul+"/members", w.tok[mgr], nil)
	for _, x := range ms.list(t, "members") {
		if x["email"] == "kim@example.com" && fmt.Sprintf("%v %v", x["role"], x["categories"]) != "member []" {
			t.Errorf("kim is %v %v", x["role"], x["categories"])
		}
	}
	w.do(t, 204, "DELETE", m("kim", ""), w.tok[mgr], nil)
	w.do(t, 404, "DELETE", m("kim", ""), w.tok[mgr], nil)
	t.Run("a PlatformAdmin gives a role in an org the person is not in", func(t *testing.T) {
		r := w.send(t, request{method: "PUT", path: m("kim", "/role"), token: w.tok[admin], body: role("member")})
		if r.status != 204 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	// Joon, granted audit, now sees Seoul's audit log. Before, the
	// answer is the audit category's "Insufficient permissions".
	checkInsufficient(t, w.do(t, 403, "GET", "/v1/orgs/"+w.seoul+"/audit", w.tok[member], nil), "audit")
	checkInsufficient(t, w.do(t, 403, "GET", "/v1/orgs/"+w.seoul+"/audit/export", w.tok[member], nil), "audit")
	w.do(t, 204, "PUT", m("joon", "/categories"), w.tok[mgr], cats("infra", "vpn", "audit"))
	w.do(t, 200, "GET", "/v1/orgs/"+w.seoul+"/audit", w.tok[member], nil)
	w.do(t, 404, "GET", "/v1/orgs/"+w.busan+"/audit", w.tok[member], nil)
}

// passwords walks the password flows: forgot-password answers alike for
// any email, a reset token works once, a Manager's reset ends the
// member's sessions, a password change needs the current one and ends
// other sessions.
func (w *world) passwords(t *testing.T) {
	for _, email := range []string{"joon@example.com", "nobody@example.com"} {
		r := w.do(t, 202, "POST", "/v1/password-reset", "", map[string]string{"email": email})
		if !strings.Contains(r.str(t, "message"), "If an account uses this email") {
			t.Errorf("forgot-password answer %s", r.body)
		}
	}
	msg := w.mail.Next(t)
	if msg.Email != "joon@example.com" || msg.ByAdmin {
		t.Fatalf("reset message %+v", msg)
	}
	w.do(t, 422, "POST", "/v1/password-reset", "", map[string]string{"email": "not an email"})
	w.do(t, 401, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": "forged", "new_password": "a fresh passphrase after the reset"})
	w.do(t, 422, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": msg.Token.Reveal(), "new_password": "password"})
	r := w.do(t, 200, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": msg.Token.Reveal(), "new_password": "a fresh passphrase after the reset"})
	w.do(t, 401, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": msg.Token.Reveal(), "new_password": "yet another passphrase after it"})
	w.do(t, 401, "GET", "/v1/me", w.tok[member], nil) // the reset ended Joon's sessions
	w.tok[member] = r.str(t, "token")
	w.do(t, 200, "GET", "/v1/me", w.tok[member], nil)

	// Mina resets Joon's password: Joon's sessions end, the token goes to Joon.
	w.do(t, 202, "POST", w.path("/v1/orgs/%s/members/%s/password-reset", w.seoul, w.id["joon"]), w.tok[mgr], nil)
	msg = w.mail.Next(t)
	if msg.Email != "joon@example.com" || !msg.ByAdmin {
		t.Fatalf("reset message %+v", msg)
	}
	w.do(t, 401, "GET", "/v1/me", w.tok[member], nil)
	w.tok[member] = w.do(t, 200, "POST", "/v1/password-reset/confirm", "", map[string]string{"token": msg.Token.Reveal(), "new_password": password}).str(t, "token")
	w.do(t, 403, "POST", w.path("/v1/orgs/%s/members/%s/password-reset", w.seoul, w.id["mina"]), w.tok[mgr], nil) // her own: use the profile

	// Joon changes his password: it needs the current one.
	other := w.login(t, "joon@example.com")
	w.do(t, 403, "PUT", "/v1/me/password", w.tok[member], map[string]string{"current_password": "wrong wrong wrong", "new_password": "a brand new passphrase of his own"})
	w.do(t, 422, "PUT", "/v1/me/password", w.tok[member], map[string]string{"current_password": password, "new_password": "short"})
	r = w.do(t, 200, "PUT", "/v1/me/password", w.tok[member], map[string]string{"current_password": password, "new_password": "a brand new passphrase of his own"})
	w.do(t, 401, "GET", "/v1/me", other, nil)
	w.do(t, 401, "GET", "/v1/me", w.tok[member], nil)
	w.tok[member] = r.str(t, "token")
	w.do(t, 200, "GET", "/v1/me", w.tok[member], nil)
	w.do(t, 401, "PUT", "/v1/me/password", "", map[string]string{"current_password": password, "new_password": "x"})
}

// accounts walks All Users' offboarding: PlatformAdmins only.
func (w *world) accounts(t *testing.T) {
	u := func(suffix string) string { return "/v1/users/" + w.id["kim"] + suffix }
	w.matrix(t, []matrixCase{
		{name: "deactivate", method: "POST", path: u("/deactivate"), want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "reactivate", method: "POST", path: u("/reactivate"), want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "delete", method: "DELETE", path: u(""), want: byRole{mgr: 403, member: 403, anon: 401}},
		{name: "delete an unknown user", method: "DELETE", path: "/v1/users/usr_aaaaaaaaaaaaaaaaaaaaaaaa", want: byRole{admin: 404}},
		{name: "deactivate the last Manager", method: "POST", path: "/v1/users/" + w.id["mina"] + "/deactivate", want: byRole{admin: 409}},
	})
	kim := w.login(t, "kim@example.com")
	w.do(t, 204, "POST", u("/deactivate"), w.tok[admin], nil)
	w.do(t, 401, "GET", "/v1/me", kim, nil)
	w.do(t, 401, "POST", "/v1/login", "", map[string]string{"email": "kim@example.com", "password": password})
	w.do(t, 204, "POST", u("/reactivate"), w.tok[admin], nil)
	kim = w.login(t, "kim@example.com")
	w.do(t, 204, "DELETE", u(""), w.tok[admin], nil)
	w.do(t, 401, "GET", "/v1/me", kim, nil)
	w.do(t, 404, "DELETE", u(""), w.tok[admin], nil)
}

// audit reads the log through the API: filters, the cursor, the exports.
func (w *world) audit(t *testing.T) {
	base := "/v1/orgs/" + w.seoul + "/audit"
	r := w.do(t, 200, "GET", base+"?outcome=denied&action=member.role.change&actor="+w.id["mina"], w.tok[admin], nil)
	evs := r.list(t, "events")
	if len(evs) == 0 {
		t.Fatalf("no denied role change by Mina: %s", r.body)
	}
	for _, e := range evs {
		if e["outcome"] != "denied" || e["action"] != "member.role.change" || e["actor_id"] != w.id["mina"] || e["org_id"] != w.seoul || e["reason"] == "" || e["client_addr"] != "127.0.0.1" {
			t.Errorf("event %v", e)
		}
	}
	// Paging: one event a page, newest first, until next_cursor ends.
	var ids []int
	cursor := ""
	for page := 0; page < 50; page++ {
		q := base + "?limit=2&action=member.categories.set"
		if cursor != "" {
			q += "&before=" + cursor
		}
		r := w.do(t, 200, "GET", q, w.tok[mgr], nil)
		for _, e := range r.list(t, "events") {
			id, _ := strconv.Atoi(e["id"].(string))
			ids = append(ids, id)
		}
		c, ok := r.obj(t)["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = c
	}
	if len(ids) < 4 || !slices.IsSortedFunc(ids, func(a, b int) int { return b - a }) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("paged event ids %v", ids)
	}
	all := w.do(t, 200, "GET", base+"?action=member.categories.set&limit=1000", w.tok[mgr], nil)
	if n := len(all.list(t, "events")); n != len(ids) {
		t.Errorf("%d events in one page, %d paged", n, len(ids))
	}
	if _, ok := all.obj(t)["next_cursor"]; ok {
		t.Errorf("next_cursor on the last page")
	}

	// CSV: a header row, then every event of the query.
	c := w.send(t, request{method: "GET", path: base + "/export?format=csv&action=member.categories.set", token: w.tok[mgr]})
	if c.status != 200 || c.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV export %d %s", c.status, c.header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], audit.CSVHeader()) || len(rows)-1 != len(ids) {
		t.Errorf("CSV: header %v, %d rows, want %d", rows[0], len(rows)-1, len(ids))
	}
	for _, row := range rows[1:] {
		if row[3] != "member.categories.set" || !strings.HasSuffix(row[1], "Z") || row[5] != w.seoul {
			t.Errorf("CSV row %v", row)
		}
	}
	// JSON Lines: one event a line; the whole log of Seoul as Ada sees it.
	j := w.send(t, request{method: "GET", path: base + "/export?format=jsonl", token: w.tok[admin]})
	if j.status != 200 || j.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("JSONL export %d %s", j.status, j.header.Get("Content-Type"))
	}
	n := 0
	for sc := bufio.NewScanner(bytes.NewReader(j.body)); sc.Scan(); n++ {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Org != authz.OrgID(w.seoul) {
			t.Errorf("JSONL line %q: %v", sc.Text(), err)
		}
	}
	if n < 20 {
		t.Errorf("only %d events exported", n)
	}
	w.do(t, 422, "GET", base+"/export?format=xlsx", w.tok[admin], nil)
	w.do(t, 404, "GET", base+"/export", w.tok["hana"], nil) // Hana is of Busan
	w.do(t, 403, "GET", "/v1/orgs/"+w.busan+"/audit/export", w.tok["hana"], nil)
}

// throttledLogin: repeated failures for one account answer 429 with
// Retry-After, and then even the right password waits.
func (w *world) throttledLogin(t *testing.T) {
	body := map[string]string{"email": "hana@example.com", "password": "not hana's password"}
	var last resp
	for i := 0; i < 10; i++ {
		if last = w.send(t, request{method: "POST", path: "/v1/login", body: body}); last.status != 401 {
			break
		}
	}
	if last.status != 429 {
		t.Fatalf("after repeated failures: %d %s", last.status, last.body)
	}
	if s, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", last.header.Get("Retry-After"))
	}
	w.do(t, 429, "POST", "/v1/login", "", map[string]string{"email": "hana@example.com", "password": password})
	w.do(t, 200, "GET", "/v1/me", w.tok["hana"], nil) // her session is untouched
}

// endings: logout ends the session; a person deletes their own account
// with their password (not as the last Manager).
func (w *world) endings(t *testing.T) {
	w.do(t, 204, "POST", "/v1/logout", w.tok["pat"], nil)
	w.do(t, 401, "GET", "/v1/me", w.tok["pat"], nil)
	w.do(t, 401, "POST", "/v1/logout", w.tok["pat"], nil)

	w.unchanged(t, func() {
		w.do(t, 403, "DELETE", "/v1/me", w.tok[member], map[string]string{"password": "wrong"})
		w.do(t, 409, "DELETE", "/v1/me", w.tok[mgr], map[string]string{"password": password}) // Seoul's last Manager
		w.do(t, 401, "DELETE", "/v1/me", "", map[string]string{"password": password})
		w.do(t, 422, "DELETE", "/v1/me", w.tok[member], map[string]string{"pass": password})
	})
	w.do(t, 201, "POST", "/v1/signup", "", map[string]string{"email": "sol@example.com", "name": "Sol", "password": password, "org_id": w.busan})
	req := w.do(t, 200, "GET", "/v1/orgs/"+w.busan+"/registrations", w.tok[admin], nil).str(t, "registrations", 0, "id")
	w.do(t, 204, "POST", "/v1/registrations/"+req+"/approve", w.tok[admin], nil)
	sol := w.login(t, "sol@example.com")
	w.do(t, 204, "DELETE", "/v1/me", sol, map[string]string{"password": password})
	w.do(t, 401, "GET", "/v1/me", sol, nil)
	w.do(t, 401, "POST", "/v1/login", "", map[string]string{"email": "sol@example.com", "password": password})
}
