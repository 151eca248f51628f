package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func BenchmarkMiddleware(b *testing.B) {
	b.Run("bare", MiddlewareBare)
	b.Run("guarded", MiddlewareGuarded)
	b.Run("guarded-parallel", MiddlewareGuardedParallel)
	b.Run("guarded-uncached", MiddlewareGuardedUncached)
}

// TestMiddlewareRig: the guarded handler of the benchmark really serves
// the granted Member, and refuses the others as the middleware should, so
// that MiddlewareGuarded measures a request that gets through.
func TestMiddlewareRig(t *testing.T) {
	r := newMiddlewareRig(t)
	get := func(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	granted := r.request(r.granted)
	for i := range 3 { // the first from the database, then from the session cache
		if rec := get(r.guarded, granted); rec.Code != http.StatusOK {
			t.Fatalf("request %d of the granted Member: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := get(r.bare, granted); rec.Code != http.StatusOK {
		t.Fatalf("bare handler: %d", rec.Code)
	}
	rec := get(r.guarded, r.request(r.other))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Insufficient permissions") {
		t.Fatalf("a Member without VPN: %d %s", rec.Code, rec.Body)
	}
	if err := r.svc.Logout(context.Background(), r.granted.Reveal()); err != nil {
		t.Fatal(err)
	}
	if rec := get(r.guarded, granted); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d %s", rec.Code, rec.Body)
	}
	// The benchmark's own loop refuses to measure a refusal, or an
	// answer nobody wrote.
	mine := newRecorder()
	if serve(r.guarded, granted, mine) || mine.Code != http.StatusUnauthorized {
		t.Fatalf("serve after logout: %d", mine.Code)
	}
	if serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), granted, mine) {
		t.Fatal("serve took a silent handler for a 200")
	}
}
