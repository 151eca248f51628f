package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"gorm.io/gorm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
	"github.com/kiops/iam/internal/iamtest"
)

// env is the real handler served on a real listener over a Service on a
// fresh database of one kind, with a bootstrapped PlatformAdmin.
type env struct {
	t     *testing.T
	svc   *iam.Service
	srv   *httptest.Server
	mail  *iamtest.Mailbox
	admin authz.UserID
	db    *gorm.DB // for tests that read the tables themselves
}

const (
	adminEmail = "ada@example.com"
	password   = "correct horse battery staple"
)

// newEnv starts the env; opts come after the harness's own Service
// options, so a test may override them (a clock, say).
func newEnv(t *testing.T, kind dbtest.Kind, opts ...iam.Option) *env {
	t.Helper()
	db := dbtest.Open(t, kind)
	mail := iamtest.NewMailbox()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := iam.New(t.Context(), db, append([]iam.Option{
		iam.WithPasswordHasher(identity.TestingHasherConfig(t)),
		iam.WithNotifier(mail),
		iam.WithLogger(quiet),
		// Every request of the test comes from 127.0.0.1: throttle by
		// account only, so that the failures of one case do not throttle
		// the next.
		iam.WithLoginThrottle(identity.ThrottleConfig{AddressLimit: 10_000})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	admin, err := svc.Bootstrap(t.Context(), adminEmail, "Ada", password)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(svc, WithLogger(quiet)))
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, srv: srv, mail: mail, admin: admin, db: db}
}

// resp is an answer of the server.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes the body as a JSON object.
func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// str returns the string at a path of keys and indexes in the body.
func (r resp) str(t *testing.T, path ...any) string {
	t.Helper()
	var v any = r.obj(t)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q in %s", path, k, r.body)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: no element %d in %s", path, k, r.body)
			}
			v = a[k]
		}
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v: not a string in %s", path, r.body)
	}
	return s
}

// list returns the array at key of the body.
func (r resp) list(t *testing.T, key string) []map[string]any {
	t.Helper()
	raw, ok := r.obj(t)[key].([]any)
	if !ok {
		t.Fatalf("no array %q in %s", key, r.body)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i], _ = x.(map[string]any)
	}
	return out
}

// request describes one request of a test: body is nil (no body), a
// string or []byte (sent as is) or anything else (sent as JSON).
// contentType defaults to application/json when there is a body;
// "none" sends none.
type request struct {
	method, path, token string
	body                any
	contentType         string
	header              map[string]string
}

func (e *env) send(t *testing.T, q request) resp {
	t.Helper()
	var body io.Reader
	switch b := q.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		body = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), q.method, e.srv.URL+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil && q.contentType != "none" {
		ct := q.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if q.token != "" {
		req.Header.Set("Authorization", "Bearer "+q.token)
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, body: b}
	checkAnswer(t, q, r)
	return r
}

// checkAnswer checks what every answer must be: errors are problem
// bodies whose status is the answer's, 401s say how to authenticate, and
// no answer holds a password hash.
func checkAnswer(t *testing.T, q request, r resp) {
	t.Helper()
	if bytes.Contains(r.body, []byte("$argon2")) || bytes.Contains(r.body, []byte("password_hash")) {
		t.Errorf("%s %s: the answer shows a password hash: %s", q.method, q.path, r.body)
	}
	if r.status < 400 {
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", q.method, q.path, r.status, ct)
		return
	}
	var p authz.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("%s %s: problem body: %v: %s", q.method, q.path, err, r.body)
		return
	}
	if p.Status != r.status || p.Title == "" || p.Type == "" {
		t.Errorf("%s %s: problem %+v for status %d", q.method, q.path, p, r.status)
	}
	if r.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", q.method, q.path)
	}
	if r.status == http.StatusInternalServerError {
		t.Errorf("%s %s: 500: %s", q.method, q.path, r.body)
	}
}

// do sends a request and requires the status want.
func (e *env) do(t *testing.T, want int, method, path, token string, body any) resp {
	t.Helper()
	r := e.send(t, request{method: method, path: path, token: token, body: body})
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// snapshot is everything a management operation could change, read
// straight from the Service as the PlatformAdmin: orgs, accounts, members
// with roles and categories, and registration requests.
type snapshot struct {
	Orgs     []identity.Org
	Users    []iam.Account
	Members  map[authz.OrgID][]iam.Member
	Requests map[authz.OrgID][]approval.Request
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := t.Context()
	s := snapshot{Members: map[authz.OrgID][]iam.Member{}, Requests: map[authz.OrgID][]approval.Request{}}
	var err error
	if s.Orgs, err = e.svc.Orgs(ctx, e.admin); err != nil {
		t.Fatal(err)
	}
	s.Users = allPages(t, func(p iam.Page) ([]iam.Account, string, error) {
		page, err := e.svc.Users(ctx, e.admin, p)
		return page.Accounts, page.Next, err
	})
	for _, o := range s.Orgs {
		s.Members[o.ID] = allPages(t, func(p iam.Page) ([]iam.Member, string, error) {
			page, err := e.svc.Members(ctx, e.admin, o.ID, p)
			return page.Members, page.Next, err
		})
		if s.Requests[o.ID], err = e.svc.Registrations(ctx, e.admin, o.ID, approval.AllTime, approval.AnyStatus); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// allPages walks a listing from its first page to its last and returns
// every entry.
func allPages[T any](t *testing.T, list func(iam.Page) ([]T, string, error)) []T {
	t.Helper()
	var out []T
	for p := (iam.Page{}); ; {
		items, next, err := list(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, items...)
		if p.After = next; next == "" {
			return out
		}
	}
}

// unchanged runs f and fails when it changed anything a snapshot sees.
func (e *env) unchanged(t *testing.T, f func()) {
	t.Helper()
	before := e.snapshot(t)
	f()
	if after := e.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Errorf("the state changed:\nbefore %+v\nafter  %+v", before, after)
	}
}
