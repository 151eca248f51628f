package authz_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/kiops/iam/authz"
)

// cast is the people of the middleware tests, in one org.
type cast struct {
	e                            *authz.Engine
	org                          authz.OrgID
	admin, mgr, member, outsider authz.UserID
	byName                       map[string]authz.UserID
}

func newCast(t testing.TB) *cast {
	t.Helper()
	e, err := authz.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(rows(authz.BaseRows())); err != nil {
		t.Fatal(err)
	}
	c := &cast{e: e, org: authz.NewOrgID(), admin: authz.NewUserID(), mgr: authz.NewUserID(), member: authz.NewUserID(), outsider: authz.NewUserID()}
	for _, err := range []error{
		e.SetPlatformAdmin(c.admin, true),
		e.AssignRole(c.mgr, c.org, authz.Manager),
		e.SetMembership(c.member, c.org, authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.VPN, authz.Infra)}),
		e.AssignRole(c.outsider, authz.NewOrgID(), authz.Manager),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.byName = map[string]authz.UserID{"admin": c.admin, "mgr": c.mgr, "member": c.member, "outsider": c.outsider}
	return c
}

// guard identifies requests by an X-User header naming one of the cast;
// "broken" stands for an identity store that is down.
func (c *cast) guard(onErr *[]error) *authz.Guard {
	return &authz.Guard{
		Checker: c.e,
		Identify: func(r *http.Request) (authz.UserID, error) {
			name := r.Header.Get("X-User")
			if name == "broken" {
				return "", errors.New("session store: connection refused")
			}
			if u, ok := c.byName[name]; ok {
				return u, nil
			}
			return "", authz.ErrUnauthenticated
		},
		OnError: func(_ *http.Request, err error) { *onErr = append(*onErr, err) },
	}
}

// echo answers 200 with the user and decision the middleware put in the
// context.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	u, _ := authz.UserFrom(r.Context())
	d, _ := authz.DecisionFrom(r.Context())
	fmt.Fprintf(w, "%s %v", u, d.Reason)
})

// mux builds the same routes on the standard ServeMux and on chi (whose
// org comes from chi's URL parameter through the pluggable Org resolver).
func routers(c *cast, g *authz.Guard) map[string]http.Handler {
	std := http.NewServeMux()
	std.Handle("GET /v1/orgs/{org}/vpn", g.Authenticate(g.RequireCategories(authz.VPN)(echo)))
	std.Handle("GET /v1/orgs/{org}/backups", g.Authenticate(g.RequireCategories(authz.Backup)(echo)))
	std.Handle("GET /v1/orgs/{org}/members", g.Authenticate(g.RequireOrgManager(echo)))
	std.Handle("GET /v1/ops/db-explorer", g.Authenticate(g.RequirePlatformAdmin(echo)))

	cg := *g
	cg.Org = func(r *http.Request) (authz.OrgID, error) { return authz.ParseOrgID(chi.URLParam(r, "org")) }
	cr := chi.NewRouter()
	cr.Use(cg.Authenticate)
	cr.With(cg.RequireCategories(authz.VPN)).Get("/v1/orgs/{org}/vpn", echo)
	cr.With(cg.RequireCategories(authz.Backup)).Get("/v1/orgs/{org}/backups", echo)
	cr.With(cg.RequireOrgManager).Get("/v1/orgs/{org}/members", echo)
	cr.With(cg.RequirePlatformAdmin).Get("/v1/ops/db-explorer", echo)
	return map[string]http.Handler{"servemux": std, "chi": cr}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	c := newCast(t)
	var errs []error
	g := c.guard(&errs)
	org := "/v1/orgs/" + string(c.org)
	cases := []struct {
		name, user, path string
		status           int
		title            string
		required         []authz.Category
	}{
		{"anonymous", "", org + "/vpn", 401, "Unauthenticated", nil},
		{"unknown token", "nobody", org + "/vpn", 401, "Unauthenticated", nil},
		{"identity store down", "broken", org + "/vpn", 503, "Service unavailable", nil},
		{"member granted", "member", org + "/vpn", 200, "", nil},
		{"member missing a category", "member", org + "/backups", 403, "Insufficient permissions", []authz.Category{authz.Backup}},
		{"manager", "mgr", org + "/backups", 200, "", nil},
		{"platformadmin", "admin", org + "/backups", 200, "", nil},
		{"outsider: the org does not exist for them", "outsider", org + "/vpn", 404, "Not found", nil},
		{"malformed org", "admin", "/v1/orgs/org_*/vpn", 404, "Not found", nil},
		{"another org's id", "member", "/v1/orgs/" + string(authz.NewOrgID()) + "/vpn", 404, "Not found", nil},
		{"members page: manager", "mgr", org + "/members", 200, "", nil},
		{"members page: member", "member", org + "/members", 403, "Forbidden", nil},
		{"members page: outsider", "outsider", org + "/members", 404, "Not found", nil},
		{"members page: platformadmin", "admin", org + "/members", 200, "", nil},
		{"operations: platformadmin", "admin", "/v1/ops/db-explorer", 200, "", nil},
		{"operations: manager", "mgr", "/v1/ops/db-explorer", 403, "Forbidden", nil},
	}
	for name, h := range routers(c, g) {
		for _, tc := range cases {
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.user != "" {
				req.Header.Set("X-User", tc.user)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("%s %s: status %d, want %d: %s", name, tc.name, rec.Code, tc.status, rec.Body)
				continue
			}
			if tc.status == 200 {
				if !strings.HasPrefix(rec.Body.String(), string(c.byName[tc.user])) {
					t.Errorf("%s %s: handler saw %q", name, tc.name, rec.Body)
				}
				continue
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s %s: content type %q", name, tc.name, ct)
			}
			var p authz.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("%s %s: body %s: %v", name, tc.name, rec.Body, err)
			}
			if p.Title != tc.title || p.Status != tc.status || !slices.Equal(p.RequiredCategories, tc.required) {
				t.Errorf("%s %s: problem %+v", name, tc.name, p)
			}
			if tc.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: no WWW-Authenticate", name, tc.name)
			}
			if tc.title == "Insufficient permissions" && !strings.Contains(p.Detail, "Ask your Manager for the backup category") {
				t.Errorf("%s %s: detail %q", name, tc.name, p.Detail)
			}
			if tc.status >= 500 && strings.Contains(rec.Body.String(), "connection refused") {
				t.Errorf("%s %s: internals in the body: %s", name, tc.name, rec.Body)
			}
		}
	}
	if len(errs) == 0 {
		t.Error("OnError was not told of the identity store's failure")
	}
}

// panicky is a Checker that panics: a check that cannot be made denies.
type panicky struct{ authz.Checker }

func (panicky) CheckAll(authz.UserID, authz.OrgID, authz.CategorySet) authz.Decision { panic("boom") }

func TestGuardFailsClosed(t *testing.T) {
	t.Parallel()
	c := newCast(t)
	var errs []error
	g := c.guard(&errs)
	g.Checker = panicky{c.e}
	h := g.Authenticate(g.RequireCategories(authz.VPN)(echo))
	req := httptest.NewRequest("GET", "/x", nil)
	req.SetPathValue("org", string(c.org))
	req.Header.Set("X-User", "admin")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || len(errs) != 1 {
		t.Fatalf("a panicking check answered %d (errors %v)", rec.Code, errs)
	}
	for _, bad := range []func(){
		func() { (&authz.Guard{}).Authenticate(echo) },
		func() { c.guard(&errs).RequireCategories() },
		func() { c.guard(&errs).RequireCategories(authz.Category(0)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a misconfigured Guard did not panic at construction")
				}
			}()
			bad()
		}()
	}
}

func TestProblemFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		detail string
	}{
		{authz.ErrUnauthenticated, 401, "unauthenticated"},
		{fmt.Errorf("gormstore: decide request: %w", fmt.Errorf("%w: this request was already approved", authz.ErrConflict)), 409, "this request was already approved"},
		{authz.ErrLastManager, 409, strings.TrimPrefix(authz.ErrLastManager.Error(), "authz: ")},
		{fmt.Errorf("iam: %w", authz.CanAdministerOrgs(authz.Subject{User: authz.NewUserID(), Role: authz.Member})), 403, "only a PlatformAdmin may do this"},
		{fmt.Errorf("gormstore: user: %w", authz.ErrNotFound), 404, "not found"},
		{&authz.InvalidError{Field: "role", Value: "root", Reason: "want member or manager"}, 422, "invalid role: want member or manager"},
		{errors.New("pq: password authentication failed for user app at 10.0.0.3"), 500, "The request could not be completed. Try again later."},
	} {
		p := authz.ProblemFor(tc.err)
		if p.Status != tc.status || p.Detail != tc.detail {
			t.Errorf("ProblemFor(%v) = %d %q, want %d %q", tc.err, p.Status, p.Detail, tc.status, tc.detail)
		}
	}
}

// BenchmarkGuard measures what the middleware adds to a request:
// Authenticate (with an in-memory identity lookup standing for the
// host's) and a category check, over the same handler bare.
func BenchmarkGuard(b *testing.B) {
	c := newCast(b)
	var errs []error
	g := c.guard(&errs)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	req := httptest.NewRequest("GET", "/v1/orgs/"+string(c.org)+"/vpn", nil)
	req.SetPathValue("org", string(c.org))
	req.Header.Set("X-User", "member")
	w := discard{}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", noop},
		{"authenticate+category", g.Authenticate(g.RequireCategories(authz.VPN)(noop))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
