package iam_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// guardRig is a Service on an SQLite memory database behind its Guard on
// a ServeMux, with a cast whose session tokens the fuzz input names by
// placeholders ({member}, {manager}, {admin}, {gone}; {orgA}, {orgB}), so
// that the fuzzer reaches valid sessions and orgs without guessing 128
// random bits.
type guardRig struct {
	svc     *iam.Service
	mux     *http.ServeMux
	expand  *strings.Replacer
	tokens  map[string]authz.UserID // every real token, the deactivated user's included
	gone    authz.UserID            // deactivated after logging in
	reached struct {
		user authz.UserID
		org  string
	}
}

func newGuardRig(tb testing.TB) *guardRig {
	ctx := context.Background()
	svc, err := iam.New(ctx, dbtest.Open(tb, dbtest.SQLiteMemory), iam.WithPasswordHasher(identity.TestingHasherConfig(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close() })
	must := func(err error) {
		if err != nil {
			tb.Helper()
			tb.Fatal(err)
		}
	}
	admin, err := svc.Bootstrap(ctx, "ada@example.com", "Ada", pw)
	must(err)
	orgA, err := svc.CreateOrg(ctx, admin, "Seoul DC")
	must(err)
	orgB, err := svc.CreateOrg(ctx, admin, "Busan Lab")
	must(err)
	rig := &guardRig{svc: svc, tokens: map[string]authz.UserID{}}
	login := func(email string) string {
		tok, err := svc.Login(ctx, email, pw)
		must(err)
		u, err := svc.Authenticate(ctx, tok.Reveal())
		must(err)
		rig.tokens[tok.Reveal()] = u
		return tok.Reveal()
	}
	join := func(email string, role authz.Role, cats authz.CategorySet) authz.UserID {
		must(svc.SignUp(ctx, email, "Person", pw, orgA.ID))
		reqs, err := svc.Registrations(ctx, admin, orgA.ID, 0, 0)
		must(err)
		for _, r := range reqs {
			if r.Email == email {
				must(svc.Approve(ctx, admin, r.ID))
				if role != authz.Member {
					must(svc.ChangeRole(ctx, admin, r.User, orgA.ID, role))
				}
				must(svc.SetCategories(ctx, admin, r.User, orgA.ID, cats))
				return r.User
			}
		}
		tb.Fatalf("no request for %s", email)
		return ""
	}
	join("member@example.com", authz.Member, authz.NewCategorySet(authz.VPN))
	join("manager@example.com", authz.Manager, 0)
	rig.gone = join("gone@example.com", authz.Member, authz.NewCategorySet(authz.VPN))
	member, manager, adminTok, gone := login("member@example.com"), login("manager@example.com"), login("ada@example.com"), login("gone@example.com")
	must(svc.DeactivateUser(ctx, admin, rig.gone))
	rig.expand = strings.NewReplacer("{member}", member, "{manager}", manager, "{admin}", adminTok, "{gone}", gone,
		"{orgA}", string(orgA.ID), "{orgB}", string(orgB.ID))

	g := svc.Guard()
	reached := func(w http.ResponseWriter, r *http.Request) {
		rig.reached.user, _ = authz.UserFrom(r.Context())
		rig.reached.org = r.PathValue("org")
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte("reached"))
	}
	rig.mux = http.NewServeMux()
	rig.mux.Handle("GET /v1/me", g.Authenticate(http.HandlerFunc(reached)))
	rig.mux.Handle("GET /v1/orgs/{org}/vpn", g.Authenticate(g.RequireCategories(authz.VPN)(http.HandlerFunc(reached))))
	rig.mux.Handle("POST /v1/orgs/{org}/members", g.Authenticate(g.RequireOrgManager(http.HandlerFunc(reached))))
	rig.mux.Handle("GET /v1/ops/db-explorer", g.Authenticate(g.RequirePlatformAdmin(http.HandlerFunc(reached))))
	return rig
}

// serve parses raw, with its placeholders replaced, as an HTTP/1.1 request
// and serves it; a nil recorder means raw is no request.
func (rig *guardRig) serve(raw []byte) (*httptest.ResponseRecorder, *http.Request) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(rig.expand.Replace(string(raw)))))
	if err != nil {
		return nil, nil
	}
	// A consistency token beyond the applied version waits for the
	// request's context: keep that short. Other requests get no deadline,
	// since a database read cut short answers 503 too (failing closed),
	// and FuzzGuard allows a 503 only for a consistency token.
	if req.Header.Get(iam.VersionHeader) != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)
	}
	req.RemoteAddr = "192.0.2.1:4242"
	rig.reached.user, rig.reached.org = "", ""
	rec := httptest.NewRecorder()
	rig.mux.ServeHTTP(rec, req)
	return rec, req
}

// TestGuardRig shows that FuzzGuard's rig lets the right requests through
// and refuses the others, so that the fuzz target's checks are not
// vacuous.
func TestGuardRig(t *testing.T) {
	t.Parallel()
	rig := newGuardRig(t)
	for raw, want := range map[string]int{
		"GET /v1/orgs/{orgA}/vpn HTTP/1.1\r\nAuthorization: Bearer {member}\r\n\r\n":              200,
		"GET /v1/orgs/{orgB}/vpn HTTP/1.1\r\nAuthorization: Bearer {member}\r\n\r\n":              404,
		"GET /v1/orgs/{orgA}/vpn HTTP/1.1\r\nAuthorization: Bearer {gone}\r\n\r\n":                401,
		"POST /v1/orgs/{orgA}/members HTTP/1.1\r\nAuthorization: Bearer {manager}\r\n\r\n":        200,
		"POST /v1/orgs/{orgA}/members HTTP/1.1\r\nAuthorization: Bearer {member}\r\n\r\n":         403,
		"GET /v1/ops/db-explorer HTTP/1.1\r\nAuthorization: Bearer {admin}\r\n\r\n":               200,
		"GET /v1/ops/db-explorer HTTP/1.1\r\nAuthorization: Bearer {manager}\r\n\r\n":             403,
		"GET /v1/me HTTP/1.1\r\nIam-Min-Version: 999999\r\nAuthorization: Bearer {admin}\r\n\r\n": 503,
	} {
		rec, _ := rig.serve([]byte(raw))
		if rec.Code != want || (want == 200) != (rec.Body.String() == "reached") {
			t.Errorf("%q: %d %s, want %d", raw, rec.Code, rec.Body, want)
		}
	}
}

// FuzzGuard sends arbitrary HTTP/1.1 requests (request line, headers,
// body) through the Service's Guard. Whatever the request: no panic and
// no 500; a 503 only for a consistency-token header; every 401, 403 and
// 503 is an RFC 9457 problem whose status matches; no session token is
// ever echoed; and a request reaches a handler only with a live session's
// exact bearer token and the permission its route requires, as Check
// answers it for the org the route saw.
func FuzzGuard(f *testing.F) {
	rig := newGuardRig(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, req := rig.serve(raw)
		if rec == nil {
			return
		}
		code, body := rec.Code, rec.Body.String()
		if code == http.StatusInternalServerError {
			t.Fatalf("500 for %q: %s", raw, body)
		}
		if code == http.StatusServiceUnavailable && req.Header.Get(iam.VersionHeader) == "" {
			t.Fatalf("503 without a consistency token for %q: %s", raw, body)
		}
		if code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusServiceUnavailable ||
			rec.Header().Get("Content-Type") == "application/problem+json" {
			var p struct{ Status int }
			if rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != code {
				t.Fatalf("%d is not a problem of that status: %q %s", code, rec.Header().Get("Content-Type"), body)
			}
		}
		for tok := range rig.tokens {
			if strings.Contains(body, tok) && !strings.Contains(req.URL.Path, tok) {
				t.Fatalf("the answer echoes a session token: %s", body)
			}
		}
		if body != "reached" {
			return
		}
		// It got through: with exactly a live session's token...
		scheme, tok, _ := strings.Cut(req.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "bearer") {
			t.Fatalf("reached with the scheme %q", scheme)
		}
		u, known := rig.tokens[strings.TrimSpace(tok)]
		if !known || u != rig.reached.user || u == rig.gone {
			t.Fatalf("reached as %q with bearer %q (session of %q)", rig.reached.user, tok, u)
		}
		// ...and what the route requires.
		org := authz.OrgID(rig.reached.org)
		var allowed bool
		switch {
		case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/vpn"):
			allowed = rig.svc.Check(context.Background(), u, org, authz.VPN).Allowed
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/members"):
			m, ok := rig.svc.Engine().Membership(u, org)
			allowed = rig.svc.Engine().IsPlatformAdmin(u) && org.Valid() || ok && m.Role == authz.Manager
		case strings.HasPrefix(req.URL.Path, "/v1/ops/"):
			allowed = rig.svc.Engine().IsPlatformAdmin(u)
		default:
			allowed = req.URL.Path == "/v1/me"
		}
		if !allowed {
			t.Fatalf("%s %s reached by %q without the permission it requires", req.Method, req.URL.Path, u)
		}
	})
}
