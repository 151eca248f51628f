package iam_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

// TestServiceGuard: the Service's Guard resolves bearer sessions, so a
// logout or a deactivation ends access at once.
func TestServiceGuard(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		u := e.member("joon@example.com", o, authz.Member, authz.NewCategorySet(authz.VPN))
		g := e.svc.Guard()
		mux := http.NewServeMux()
		mux.Handle("GET /v1/orgs/{org}/vpn", g.Authenticate(g.RequireCategories(authz.VPN)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			who, _ := authz.UserFrom(r.Context())
			w.Write([]byte(who))
		}))))
		get := func(token string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", "/v1/orgs/"+string(o)+"/vpn", nil)
			if token != "" {
				req.Header.Set("Authorization", "bearer "+token)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			return rec
		}
		tok, err := e.svc.Login(e.ctx, "joon@example.com", pw)
		e.must(err)
		if rec := get(tok.Reveal()); rec.Code != 200 || rec.Body.String() != string(u) {
			t.Fatalf("with a session: %d %s", rec.Code, rec.Body)
		}
		if rec := get(""); rec.Code != 401 {
			t.Fatalf("without a token: %d", rec.Code)
		}
		e.must(e.svc.Logout(e.ctx, tok.Reveal()))
		if rec := get(tok.Reveal()); rec.Code != 401 {
			t.Fatalf("after logout: %d", rec.Code)
		}
		tok, err = e.svc.Login(e.ctx, "joon@example.com", pw)
		e.must(err)
		e.must(e.svc.DeactivateUser(e.ctx, e.admin, u))
		if rec := get(tok.Reveal()); rec.Code != 401 {
			t.Fatalf("after deactivation: %d", rec.Code)
		}
		if tok, ok := iam.BearerToken(&http.Request{Header: http.Header{"Authorization": {"Basic abc"}}}); ok {
			t.Fatalf("a Basic header read as a bearer token %q", tok)
		}
	})
}
