package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// DefaultMaxBodyBytes is the largest request body NewHandler accepts
// unless WithMaxBodyBytes says otherwise: every body of this API is a
// small JSON object.
const DefaultMaxBodyBytes = 64 << 10

// An Option configures NewHandler.
type Option func(*server)

// WithLogger sets where the handler logs internal errors and requests. If
// nil or not given, slog.Default() is used. Tokens, passwords and the
// Authorization header are never logged.
func WithLogger(l *slog.Logger) Option { return func(s *server) { s.log = l } }

// WithMaxBodyBytes sets the largest request body accepted (413 above it).
// Zero or less means DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option { return func(s *server) { s.maxBody = n } }

// WithGuard sets the middleware that identifies requests and checks
// categories. If nil or not given, svc.Guard() is used: the module's own
// bearer sessions. A host with its own identity (a JWT, say) passes a
// Guard whose Identify reads it. If the Guard's OnError is nil, NewHandler
// sets it to log through the handler's logger.
func WithGuard(g *authz.Guard) Option { return func(s *server) { s.guard = g } }

// server is the JSON API over one Service.
type server struct {
	svc     *iam.Service
	guard   *authz.Guard
	log     *slog.Logger
	maxBody int64
	mux     *http.ServeMux
}

// access is what a route requires of its caller before its handler runs.
// Management routes are authenticated only: the Service applies the "Who
// may do what" rules to each operation itself.
type access int

const (
	public        access = iota // nobody needs to be signed in
	authenticated               // guard.Authenticate
	category                    // guard.Authenticate, then guard.RequireCategories(cats...)
	platformAdmin               // guard.Authenticate, then guard.RequirePlatformAdmin
)

func (a access) String() string {
	return [...]string{"public", "authenticated", "category", "platform admin"}[a]
}

// route is one entry of the API: a ServeMux pattern, what it requires and
// its handler.
type route struct {
	pattern string
	access  access
	cats    []authz.Category // for access == category
	handle  apiFunc
}

// apiFunc is a handler that returns its error instead of writing it, so
// that every error goes through one place (server.fail).
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// routes is the whole API. Every route that is not public is wrapped in
// guard.Authenticate by NewHandler; TestRouterIsGuarded walks this table
// through the real handler to prove it.
func (s *server) routes() []route {
	cat := func(pattern string, c authz.Category, h apiFunc) route {
		return route{pattern: pattern, access: category, cats: []authz.Category{c}, handle: h}
	}
	return []route{
		{"GET /healthz", public, nil, s.healthz},

		{"POST /v1/signup", public, nil, s.signUp},
		{"POST /v1/login", public, nil, s.login},
		{"POST /v1/password-reset", public, nil, s.forgotPassword},
		{"POST /v1/password-reset/confirm", public, nil, s.resetPassword},
		{"POST /v1/logout", authenticated, nil, s.logout},

		{"GET /v1/me", authenticated, nil, s.me},
		{"PATCH /v1/me", authenticated, nil, s.changeName},
		{"PUT /v1/me/password", authenticated, nil, s.changePassword},
		{"DELETE /v1/me", authenticated, nil, s.deleteMe},

		{"GET /v1/orgs", authenticated, nil, s.orgs},
		{"POST /v1/orgs", authenticated, nil, s.createOrg},
		{"GET /v1/orgs/{org}", authenticated, nil, s.org},
		{"PATCH /v1/orgs/{org}", authenticated, nil, s.renameOrg},
		{"DELETE /v1/orgs/{org}", authenticated, nil, s.deleteOrg},

		{"GET /v1/orgs/{org}/registrations", authenticated, nil, s.registrations},
		{"POST /v1/registrations/{id}/approve", authenticated, nil, s.approve},
		{"POST /v1/registrations/{id}/reject", authenticated, nil, s.reject},

		{"GET /v1/orgs/{org}/members", authenticated, nil, s.members},
		{"GET /v1/orgs/{org}/access", authenticated, nil, s.access},
		{"PUT /v1/orgs/{org}/members/{user}/role", authenticated, nil, s.changeRole},
		{"PUT /v1/orgs/{org}/members/{user}/categories", authenticated, nil, s.setCategories},
		{"GET /v1/orgs/{org}/members/{user}", authenticated, nil, s.member},
		{"DELETE /v1/orgs/{org}/members/{user}", authenticated, nil, s.removeMember},
		{"POST /v1/orgs/{org}/members/{user}/password-reset", authenticated, nil, s.startPasswordReset},

		{"GET /v1/users", authenticated, nil, s.users},
		{"DELETE /v1/users/{user}", authenticated, nil, s.accountOp(s.svc.DeleteUser)},
		{"POST /v1/users/{user}/deactivate", authenticated, nil, s.accountOp(s.svc.DeactivateUser)},
		{"POST /v1/users/{user}/reactivate", authenticated, nil, s.accountOp(s.svc.ReactivateUser)},

		{"GET /v1/orgs/{org}/audit", authenticated, nil, s.auditEvents},
		{"GET /v1/orgs/{org}/audit/export", authenticated, nil, s.auditExport},

		cat("GET /v1/orgs/{org}/runtime", authz.Infra, s.featurePage("runtime")),
		cat("GET /v1/orgs/{org}/services", authz.Service, s.featurePage("services")),
		cat("GET /v1/orgs/{org}/backups", authz.Backup, s.featurePage("backups")),
		cat("GET /v1/orgs/{org}/devices", authz.Device, s.featurePage("devices")),
		cat("GET /v1/orgs/{org}/databases", authz.Database, s.featurePage("databases")),
		cat("GET /v1/orgs/{org}/vpn", authz.VPN, s.featurePage("vpn")),
		cat("DELETE /v1/orgs/{org}/devices/{device}", authz.Device, s.deleteDevice),

		{"GET /v1/ops/db-explorer", platformAdmin, nil, s.opsScreen("db-explorer")},
		{"GET /v1/ops/db-monitoring", platformAdmin, nil, s.opsScreen("db-monitoring")},
	}
}

// NewHandler returns the JSON API of the example over svc: the routes of
// server.routes on an http.ServeMux (Go 1.22 patterns), each behind the
// middleware its access names. Around them it:
//
//   - tells the Service the client's address (the direct peer's IP, see
//     iam.ClientIP) for the audit log and login throttling;
//   - refuses non-canonical paths ("..", "//") with 404 rather than
//     redirecting them, and answers unknown paths and methods with
//     problem bodies (404, 405 with Allow);
//   - marks every answer Cache-Control: no-store and nosniff;
//   - turns a panic in a handler into a 500 problem.
//
// Errors are RFC 9457 application/problem+json bodies, written by
// authz.WriteError (429 with Retry-After for a throttled login is the one
// status it does not know).
func NewHandler(svc *iam.Service, opts ...Option) http.Handler {
	s := &server{svc: svc, mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	if s.guard == nil {
		s.guard = svc.Guard()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.guard.OnError == nil {
		s.guard.OnError = func(r *http.Request, err error) {
			s.log.Error("apiserver: the middleware could not decide", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	return s
}

// wrap puts rt's handler behind the middleware its access requires.
func (s *server) wrap(rt route) http.Handler {
	var h http.Handler = s.api(rt.handle)
	switch rt.access {
	case public:
		return h
	case authenticated:
	case category:
		h = s.guard.RequireCategories(rt.cats...)(h)
	case platformAdmin:
		h = s.guard.RequirePlatformAdmin(h)
	default:
		panic(fmt.Sprintf("apiserver: route %q has unknown access %d", rt.pattern, rt.access))
	}
	return s.guard.Authenticate(h)
}

// api adapts an apiFunc to http.Handler.
func (s *server) api(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// ServeHTTP serves the API.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("apiserver: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
			if sw.status == 0 {
				s.fail(sw, r, errors.New("panic"))
			}
		}
		s.log.Debug("apiserver: request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	}()
	h := sw.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")

	if !canonicalPath(r.URL.Path) {
		authz.WriteError(sw, r, errNoRoute)
		return
	}
	r = r.WithContext(iam.WithClientAddr(r.Context(), iam.ClientIP(r)))
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

var errNoRoute = fmt.Errorf("%w: no such resource", authz.ErrNotFound)

// canonicalPath reports whether p is in the form ServeMux would not
// redirect: absolute, without "." or ".." segments or empty segments (a
// trailing slash aside).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// noRoute answers a request that matches no pattern: the mux's own answer
// (404, or 405 with Allow), as a problem body.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	rec := &discardWriter{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		authz.WriteProblem(w, r, authz.Problem{Type: "about:blank", Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: "This resource does not answer " + r.Method + "; see the Allow header."})
		return
	}
	authz.WriteError(w, r, errNoRoute)
}

// fail answers r with the problem for err: 429 with Retry-After for a
// throttled login, otherwise authz.WriteError's table. Errors of no known
// kind are logged here (the body says nothing of them).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var be *bodyError
	if errors.As(err, &be) {
		authz.WriteProblem(w, r, authz.Problem{Type: "about:blank", Title: be.title, Status: be.status, Detail: be.detail})
		return
	}
	var te *identity.ThrottledError
	if errors.As(err, &te) {
		secs := max(1, int(math.Ceil(te.RetryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		authz.WriteProblem(w, r, authz.Problem{Type: "about:blank", Title: "Too many attempts", Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", secs)})
		return
	}
	known := false
	for _, kind := range []error{iam.ErrInvalid, iam.ErrForbidden, iam.ErrNotFound, iam.ErrConflict, iam.ErrUnauthenticated} {
		known = known || errors.Is(err, kind)
	}
	if !known {
		s.log.Error("apiserver: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	authz.WriteError(w, r, err)
}

// actor returns the user guard.Authenticate identified.
func actor(r *http.Request) (authz.UserID, error) {
	u, ok := authz.UserFrom(r.Context())
	if !ok { // a route registered without Authenticate: fail closed
		return "", fmt.Errorf("%w: sign in first", iam.ErrUnauthenticated)
	}
	return u, nil
}

// The path values of the API. An id that is not canonical cannot exist,
// so it answers 404 like an unknown one, before the Service is asked.
func orgParam(r *http.Request) (authz.OrgID, error) {
	o, err := authz.ParseOrgID(r.PathValue("org"))
	if err != nil {
		return "", fmt.Errorf("%w: no such organization", iam.ErrNotFound)
	}
	return o, nil
}

func userParam(r *http.Request) (authz.UserID, error) {
	u, err := authz.ParseUserID(r.PathValue("user"))
	if err != nil {
		return "", fmt.Errorf("%w: no such user", iam.ErrNotFound)
	}
	return u, nil
}

// writeJSON answers with v as JSON and the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("apiserver: encoding the answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// bodyError is a request body refused before it was parsed: 400, 413 or
// 415 (a body that parses but does not fit is an *authz.InvalidError, 422).
type bodyError struct {
	status        int
	title, detail string
}

func (e *bodyError) Error() string { return "apiserver: " + e.title + ": " + e.detail }

func malformed(detail string) error {
	return &bodyError{http.StatusBadRequest, "Malformed request body", detail}
}

// decode reads r's body, which must be one JSON object with only the
// fields v (a pointer to a struct) declares, each once and spelled
// exactly, into v. It answers:
//
//   - 415 unless Content-Type is application/json (charset utf-8 if any);
//   - 413 for a body over the size limit;
//   - 400 for an empty body, malformed JSON, anything but an object, or
//     data after it;
//   - 422 (an *authz.InvalidError) for an unknown or repeated field, or a
//     value of the wrong JSON type, naming the field.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return &bodyError{http.StatusUnsupportedMediaType, "Unsupported media type", "Send the body as Content-Type: application/json."}
	}
	tooLarge := &bodyError{http.StatusRequestEntityTooLarge, "Request body too large",
		fmt.Sprintf("The body may be at most %d bytes.", s.maxBody)}
	if r.ContentLength > s.maxBody {
		return tooLarge
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case err != nil:
		return malformed("The body could not be read.")
	case len(bytes.TrimSpace(data)) == 0:
		return malformed("The body is empty: send a JSON object.")
	case !utf8.Valid(data):
		return malformed("The body is not valid UTF-8.")
	}
	if err := checkObject(data, jsonFields(v)); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &authz.InvalidError{Field: te.Field, Value: "", Reason: "want " + jsonType(te.Type)}
		}
		return malformed("The body is not valid JSON.")
	}
	return nil
}

// checkObject checks that data is exactly one JSON object whose keys are
// all in known, each once.
func checkObject(data []byte, known map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return malformed("The body is not valid JSON.")
	}
	if tok != json.Delim('{') {
		return malformed("The body must be a JSON object.")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformed("The body is not valid JSON.")
		}
		key, _ := tok.(string)
		if !known[key] {
			return &authz.InvalidError{Field: "body", Reason: "unknown field " + quoteField(key)}
		}
		if seen[key] {
			return &authz.InvalidError{Field: "body", Reason: "field " + quoteField(key) + " appears more than once"}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return malformed("The body is not valid JSON.")
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return malformed("The body is not valid JSON.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("The body must hold one JSON object and nothing after it.")
	}
	return nil
}

// quoteField quotes a field name a client sent, shortened, for a problem
// detail.
func quoteField(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return strconv.QuoteToASCII(s)
}

// jsonFields returns the JSON names of the fields of the struct v points
// to.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	out := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}

// jsonType names the JSON type a Go type decodes from.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonType(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "an object"
}

// statusWriter remembers the status a handler wrote. Unwrap lets
// http.ResponseController reach the connection's Flusher.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter records the status and headers of an answer and drops its
// body.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
