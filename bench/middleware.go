package bench

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// MiddlewareBare measures one request through a bare handler, the
// baseline of MiddlewareGuarded: ServeHTTP with a reused request and
// recorder, the handler answering 200.
func MiddlewareBare(b *testing.B) {
	r := newMiddlewareRig(b)
	serveLoop(b, r.bare, r.request(r.granted))
}

// MiddlewareGuarded measures the same request and handler behind the
// Service's Guard: Authenticate (the bearer session, resolved from the
// session cache, warmed by the rig's set-up) and
// RequireCategories(authz.VPN), for a Member granted VPN. Its ns/op minus
// MiddlewareBare's is the middleware's added cost per request. Every
// answer is checked to be the handler's 200, so it cannot measure a
// refusal.
func MiddlewareGuarded(b *testing.B) {
	r := newMiddlewareRig(b)
	serveLoop(b, r.guarded, r.request(r.granted))
}

// MiddlewareGuardedUncached is MiddlewareGuarded with the session cache
// off (iam.WithSessionCache(0, 0)): every request reads the session and
// the user from the database, as Authenticate did before the cache.
func MiddlewareGuardedUncached(b *testing.B) {
	r := newMiddlewareRig(b, iam.WithSessionCache(0, 0))
	serveLoop(b, r.guarded, r.request(r.granted))
}

// MiddlewareGuardedParallel is MiddlewareGuarded from GOMAXPROCS
// goroutines at once, each with a session of its own (as concurrent
// requests of different people have), its own request and recorder: the
// session cache and the engine take no global lock, so the time per
// request falls with the number of cores.
func MiddlewareGuardedParallel(b *testing.B) {
	r := newMiddlewareRig(b)
	reqs := make(chan *http.Request, runtime.GOMAXPROCS(0))
	for range cap(reqs) {
		tok, err := r.svc.Login(context.Background(), "joon@example.com", rigPassword)
		if err != nil {
			b.Fatal(err)
		}
		req := r.request(tok)
		if rec := newRecorder(); !serve(r.guarded, req, rec) { // warms the cache
			b.Fatalf("the middleware answered %d %s", rec.Code, rec.Body.String())
		}
		reqs <- req
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, rec := <-reqs, newRecorder()
		for pb.Next() {
			if !serve(r.guarded, req, rec) {
				b.Errorf("the middleware answered %d %s", rec.Code, rec.Body.String()) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}

// serveLoop serves req through h b.N times, reusing one recorder, and
// stops at the first answer that is not 200.
func serveLoop(b *testing.B, h http.Handler, req *http.Request) {
	rec := newRecorder()
	b.ReportAllocs()
	for b.Loop() { // the rig's set-up is outside the timed loop
		if !serve(h, req, rec) {
			b.Fatalf("the middleware answered %d %s", rec.Code, rec.Body.String())
		}
	}
}

// serve serves req into rec, emptied first without allocating, and
// reports whether the answer was a written 200: the handler's (Code 0
// until someone writes a status, so an answer nobody wrote fails too).
func serve(h http.Handler, req *http.Request, rec *recorder) bool {
	clear(rec.header)
	rec.Body.Reset()
	rec.Code = 0
	h.ServeHTTP(rec, req)
	return rec.Code == http.StatusOK
}

// recorder is a reusable http.ResponseWriter that keeps the status and
// body (httptest.ResponseRecorder cannot be emptied for reuse without its
// deprecated HeaderMap).
type recorder struct {
	header http.Header
	Code   int
	Body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.Code == 0 {
		r.Code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.Body.Write(b)
}

// middlewareRig is a Service on an SQLite memory database holding one org
// with two Members, one granted VPN and one not, both logged in, and the
// handlers the middleware benchmarks serve.
type middlewareRig struct {
	svc            *iam.Service
	org            authz.OrgID
	granted, other identity.Token
	bare, guarded  http.Handler
}

// rigPassword is every rig user's password (it passes the policy).
const rigPassword = "correct horse battery staple"

// newMiddlewareRig builds the rig; opts go to iam.New.
func newMiddlewareRig(tb testing.TB, opts ...iam.Option) *middlewareRig {
	tb.Helper()
	ctx := context.Background()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	if testing.Testing() {
		// Cheap hashing in tests; the report command (not a test) pays
		// for a few real argon2id hashes, outside the timed loop.
		opts = append([]iam.Option{iam.WithPasswordHasher(identity.TestingHasherConfig(tb))}, opts...)
	}
	svc, err := iam.New(ctx, dbtest.Open(tb, dbtest.SQLiteMemory), opts...)
	must(err)
	tb.Cleanup(func() { svc.Close() })
	admin, err := svc.Bootstrap(ctx, "ada@example.com", "Ada Admin", rigPassword)
	must(err)
	org, err := svc.CreateOrg(ctx, admin, "Seoul DC")
	must(err)
	for _, email := range []string{"joon@example.com", "mina@example.com"} {
		must(svc.SignUp(ctx, email, "Person", rigPassword, org.ID))
	}
	reqs, err := svc.Registrations(ctx, admin, org.ID, 0, 0)
	must(err)
	for _, q := range reqs {
		must(svc.Approve(ctx, admin, q.ID))
		if q.Email == "joon@example.com" {
			must(svc.SetCategories(ctx, admin, q.User, org.ID, authz.NewCategorySet(authz.VPN)))
		}
	}
	r := &middlewareRig{svc: svc, org: org.ID}
	r.granted, err = svc.Login(ctx, "joon@example.com", rigPassword)
	must(err)
	r.other, err = svc.Login(ctx, "mina@example.com", rigPassword)
	must(err)
	_, err = svc.Authenticate(ctx, r.granted.Reveal()) // validated once: in the session cache from now on
	must(err)
	r.bare = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	g := svc.Guard()
	r.guarded = g.Authenticate(g.RequireCategories(authz.VPN)(r.bare))
	return r
}

// request returns a GET of the org's VPN page with tok as its bearer
// token, its "org" path value set as a ServeMux pattern would.
func (r *middlewareRig) request(tok identity.Token) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/v1/orgs/"+string(r.org)+"/vpn", nil)
	req.SetPathValue("org", string(r.org))
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	return req
}
