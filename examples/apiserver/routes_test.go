package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// issueRoutes is the route table of issue 4, written out independently of
// server.routes: the walk below requests these, so a route registered
// some other way, or forgotten, is caught too.
var issueRoutes = []string{
	"GET /healthz",
	"POST /v1/signup",
	"POST /v1/login",
	"POST /v1/logout",
	"GET /v1/me",
	"PATCH /v1/me",
	"PUT /v1/me/password",
	"DELETE /v1/me",
	"POST /v1/password-reset",
	"POST /v1/password-reset/confirm",
	"GET /v1/orgs",
	"POST /v1/orgs",
	"GET /v1/orgs/{org}",
	"PATCH /v1/orgs/{org}",
	"DELETE /v1/orgs/{org}",
	"GET /v1/orgs/{org}/registrations",
	"POST /v1/registrations/{id}/approve",
	"POST /v1/registrations/{id}/reject",
	"GET /v1/orgs/{org}/members",
	"GET /v1/orgs/{org}/access",
	"GET /v1/orgs/{org}/members/{user}", // added with Service.Member
	"PUT /v1/orgs/{org}/members/{user}/role",
	"PUT /v1/orgs/{org}/members/{user}/categories",
	"DELETE /v1/orgs/{org}/members/{user}",
	"POST /v1/orgs/{org}/members/{user}/password-reset",
	"GET /v1/users",
	"DELETE /v1/users/{user}",
	"POST /v1/users/{user}/deactivate",
	"POST /v1/users/{user}/reactivate",
	"GET /v1/orgs/{org}/audit",
	"GET /v1/orgs/{org}/audit/export",
	"GET /v1/orgs/{org}/runtime",
	"GET /v1/orgs/{org}/services",
	"GET /v1/orgs/{org}/backups",
	"GET /v1/orgs/{org}/devices",
	"GET /v1/orgs/{org}/databases",
	"GET /v1/orgs/{org}/vpn",
	"DELETE /v1/orgs/{org}/devices/{device}",
	"GET /v1/ops/db-explorer",
	"GET /v1/ops/db-monitoring",
}

// publicRoutes is the allow-list: the only routes anyone may call without
// a session.
var publicRoutes = []string{
	"GET /healthz",
	"POST /v1/signup",
	"POST /v1/login",
	"POST /v1/password-reset",
	"POST /v1/password-reset/confirm",
}

// concrete turns a pattern into a request path with well-formed ids.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	return method, strings.NewReplacer(
		"{org}", string(authz.NewOrgID()),
		"{user}", string(authz.NewUserID()),
		"{id}", string(approval.NewRequestID()),
		"{device}", "prod-db-1",
	).Replace(path)
}

// TestRouterIsGuarded walks the router (DESIGN.md section 5: every route
// of an example server is wrapped by the middleware). Each route of the
// issue's table is requested anonymously, and with a forged token,
// through the real handler: every one outside the allow-list must consult
// the Guard's Identify and answer 401, and the allow-list must not. The
// route table's own access classes must be those the issue asks for.
func TestRouterIsGuarded(t *testing.T) {
	svc, err := iam.New(t.Context(), dbtest.Open(t, dbtest.SQLiteMemory), iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	var identified atomic.Int64
	g := svc.Guard()
	identify := g.Identify
	g.Identify = func(r *http.Request) (authz.UserID, error) {
		identified.Add(1)
		return identify(r)
	}
	h := NewHandler(svc, WithGuard(g), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	s := h.(*server)

	for _, pattern := range issueRoutes {
		for _, token := range []string{"", "forged-token"} {
			method, path := concrete(pattern)
			req := httptest.NewRequest(method, path, strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if _, got := s.mux.Handler(req); got != pattern {
				t.Errorf("%s %s is routed to %q", method, path, got)
			}
			before := identified.Load()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			asked := identified.Load() > before
			public := slices.Contains(publicRoutes, pattern)
			switch {
			case public && asked:
				t.Errorf("%s: a public route asked for an identity", pattern)
			case public && rec.Code == http.StatusUnauthorized && pattern != "POST /v1/login" && pattern != "POST /v1/password-reset/confirm":
				t.Errorf("%s: a public route answered 401", pattern)
			case !public && !asked:
				t.Errorf("%s: answered %d without asking for an identity", pattern, rec.Code)
			case !public && (rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") ||
				rec.Header().Get("Content-Type") != "application/problem+json"):
				t.Errorf("%s as %q: %d %s, want a 401 problem", pattern, token, rec.Code, rec.Body)
			}
		}
	}

	// The table itself: exactly the issue's routes, the allow-list public,
	// each sample feature page behind its category, the operations screens
	// behind RequirePlatformAdmin, and everything else authenticated only
	// (the Service rules on each management operation).
	wantCategory := map[string]authz.Category{
		"GET /v1/orgs/{org}/runtime":             authz.Infra,
		"GET /v1/orgs/{org}/services":            authz.Service,
		"GET /v1/orgs/{org}/backups":             authz.Backup,
		"GET /v1/orgs/{org}/devices":             authz.Device,
		"GET /v1/orgs/{org}/databases":           authz.Database,
		"GET /v1/orgs/{org}/vpn":                 authz.VPN,
		"DELETE /v1/orgs/{org}/devices/{device}": authz.Device,
	}
	var patterns []string
	for _, rt := range s.routes() {
		patterns = append(patterns, rt.pattern)
		want := authenticated
		switch {
		case slices.Contains(publicRoutes, rt.pattern):
			want = public
		case strings.HasPrefix(rt.pattern, "GET /v1/ops/"):
			want = platformAdmin
		case wantCategory[rt.pattern] != 0:
			want = category
			if !slices.Equal(rt.cats, []authz.Category{wantCategory[rt.pattern]}) {
				t.Errorf("%s requires %v, want %v", rt.pattern, rt.cats, wantCategory[rt.pattern])
			}
		}
		if rt.access != want {
			t.Errorf("%s is %v, want %v", rt.pattern, rt.access, want)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(patterns)), slices.Sorted(slices.Values(issueRoutes))) {
		t.Errorf("routes %v\nwant the issue's %v", patterns, issueRoutes)
	}
}

// TestUnknownRoutes: paths and methods the API does not have answer 404
// and 405 problems, signed in or not, and non-canonical paths are not
// redirected to routes.
func TestUnknownRoutes(t *testing.T) {
	svc, err := iam.New(t.Context(), dbtest.Open(t, dbtest.SQLiteMemory), iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	h := NewHandler(svc, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 404},
		{"GET", "/v2/me", 404},
		{"GET", "/v1/me/", 404},
		{"GET", "/v1//me", 404},
		{"GET", "/v1/orgs/../me", 404},
		{"GET", "/v1/./me", 404},
		{"GET", "/healthz/..", 404},
		{"POST", "/healthz", 405},
		{"PUT", "/v1/me", 405},
		{"GET", "/v1/login", 405},
		{"TRACE", "/v1/me", 405},
	} {
		req := httptest.NewRequest(c.method, "/", nil)
		req.URL.Path = c.path // unclean on purpose
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s, want a %d problem", c.method, c.path, rec.Code, rec.Header().Get("Content-Type"), c.want)
		}
		if c.want == 405 && rec.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}
