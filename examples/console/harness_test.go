package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
	"github.com/kiops/iam/internal/iamtest"
	"github.com/kiops/iam/internal/serve"
)

const password = "correct horse battery staple"

// world is the console served on a real listener over a Service on a
// fresh database, with two orgs: a (Manager mgrA, Member memA) and b
// (Manager mgrB, Member memB), and the PlatformAdmin admin.
type world struct {
	t    *testing.T
	svc  *iam.Service
	db   *gorm.DB
	srv  *httptest.Server
	term *iamtest.Buffer // what the console printed on its terminal

	admin, mgrA, memA, mgrB, memB authz.UserID
	a, b                          identity.Org
}

func newWorld(t *testing.T, kind dbtest.Kind) *world {
	t.Helper()
	w := &world{t: t, db: dbtest.Open(t, kind), term: &iamtest.Buffer{}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	w.svc, err = iam.New(t.Context(), w.db,
		iam.WithPasswordHasher(identity.TestingHasherConfig(t)),
		iam.WithNotifier(serve.Notifier(program, w.term)),
		iam.WithLogger(quiet),
		// Every request comes from 127.0.0.1: throttle by account only.
		iam.WithLoginThrottle(identity.ThrottleConfig{AddressLimit: 10_000}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.svc.Close() })
	ctx := t.Context()
	if w.admin, err = w.svc.Bootstrap(ctx, "admin@example.com", "Ada Admin", password); err != nil {
		t.Fatal(err)
	}
	if w.a, err = w.svc.CreateOrg(ctx, w.admin, "Org A"); err != nil {
		t.Fatal(err)
	}
	if w.b, err = w.svc.CreateOrg(ctx, w.admin, "Org B"); err != nil {
		t.Fatal(err)
	}
	w.mgrA = w.join("mgr.a@example.com", "Mona Manager", w.a.ID, authz.Manager)
	w.memA = w.join("mem.a@example.com", "Mel Member", w.a.ID, authz.Member)
	w.mgrB = w.join("mgr.b@example.com", "Bob Manager", w.b.ID, authz.Manager)
	w.memB = w.join("mem.b@example.com", "Bea Member", w.b.ID, authz.Member)
	h, err := newConsole(w.svc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(h)
	t.Cleanup(w.srv.Close)
	return w
}

// signUp files a pending registration request for email in org.
func (w *world) signUp(email, name string, org authz.OrgID) approval.RequestID {
	w.t.Helper()
	if err := w.svc.SignUp(w.t.Context(), email, name, password, org); err != nil {
		w.t.Fatal(err)
	}
	reqs, err := w.svc.Registrations(w.t.Context(), w.admin, org, approval.AllTime, approval.Pending)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range reqs {
		if r.Email == email {
			return r.ID
		}
	}
	w.t.Fatalf("no pending request for %s", email)
	return ""
}

// join signs a person up to org, approves them and gives them role.
func (w *world) join(email, name string, org authz.OrgID, role authz.Role) authz.UserID {
	w.t.Helper()
	ctx := w.t.Context()
	id := w.signUp(email, name, org)
	if err := w.svc.Approve(ctx, w.admin, id); err != nil {
		w.t.Fatal(err)
	}
	p, err := w.svc.Members(ctx, w.admin, org, iam.Page{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, m := range p.Members {
		if m.Email == email {
			if role != authz.Member {
				if err := w.svc.ChangeRole(ctx, w.admin, m.ID, org, role); err != nil {
					w.t.Fatal(err)
				}
			}
			return m.ID
		}
	}
	w.t.Fatalf("%s did not join", email)
	return ""
}

// member is what org holds for user, and whether user is a member.
func (w *world) member(org authz.OrgID, user authz.UserID) (iam.Member, bool) {
	w.t.Helper()
	p, err := w.svc.Members(w.t.Context(), w.admin, org, iam.Page{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, m := range p.Members {
		if m.ID == user {
			return m, true
		}
	}
	return iam.Member{}, false
}

// snapshot is every table's rows, to show that a refused request changed
// nothing at all (not even an audit event: a forged form never reaches
// the Service).
func (w *world) snapshot() string { return w.dump("") }

// snapshotButAudit is snapshot without the audit log's tables and their
// SQLite sequence rows: what a request the Service refuses must leave as
// it was, since the Service records the attempt there (DESIGN §1).
func (w *world) snapshotButAudit() string { return w.dump("iam_audit") }

// dump is every table's rows but those of the tables named with prefix
// skip (none when skip is ""), with SQLite's id counters for them.
func (w *world) dump(skip string) string {
	w.t.Helper()
	tables, err := w.db.Migrator().GetTables()
	if err != nil {
		w.t.Fatal(err)
	}
	skipped := func(name string) bool { return skip != "" && strings.HasPrefix(name, skip) }
	var b strings.Builder
	for _, table := range tables {
		if skipped(table) {
			continue
		}
		rows := dbtest.Dump(w.t, w.db, table)
		if table == "sqlite_sequence" { // rows are "name seq"
			rows = slices.DeleteFunc(rows, skipped)
		}
		b.WriteString(table + "\n" + strings.Join(rows, "\n") + "\n")
	}
	return b.String()
}

// browser is a person's browser: a cookie jar, redirects followed.
type browser struct {
	w *world
	c *http.Client
}

func (w *world) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return &browser{w: w, c: &http.Client{Jar: jar}}
}

// page is an answer, after redirects.
type page struct {
	status int
	url    *url.URL
	body   string
}

func (p page) has(s string) bool { return strings.Contains(p.body, s) }

func (b *browser) do(req *http.Request) page {
	b.w.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.w.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.w.t.Fatal(err)
	}
	return page{res.StatusCode, res.Request.URL, string(body)}
}

func (b *browser) get(path string) page {
	b.w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.w.srv.URL+path, nil)
	if err != nil {
		b.w.t.Fatal(err)
	}
	return b.do(req)
}

// post sends form as is: no CSRF token unless form has one.
func (b *browser) post(path string, form url.Values) page {
	b.w.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.w.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token is the CSRF token of the forms of the page at path.
func (b *browser) token(path string) string {
	b.w.t.Helper()
	p := b.get(path)
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.w.t.Fatalf("GET %s (%d): no CSRF field\n%s", path, p.status, p.body)
	}
	return m[1]
}

// submit posts form to action as the form on the page at from would,
// with that page's CSRF token.
func (b *browser) submit(from, action string, form url.Values) page {
	b.w.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.token(from))
	return b.post(action, form)
}

// login signs in through the login page and fails the test otherwise.
func (b *browser) login(email string) {
	b.w.t.Helper()
	p := b.submit("/login", "/login", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusOK || p.url.Path != "/users/pending" && p.url.Path != "/" {
		b.w.t.Fatalf("login %s: %d at %s\n%s", email, p.status, p.url, p.body)
	}
}

// as is a browser signed in as email.
func (w *world) as(email string) *browser {
	b := w.browser()
	b.login(email)
	return b
}

func newJar() (http.CookieJar, error) { return cookiejar.New(nil) }

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cookieNamed(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// auditFilter selects the successful category changes of user.
func auditFilter(user authz.UserID) audit.Filter {
	return audit.Filter{Target: user, Action: audit.MemberCategoriesSet, Outcome: audit.Success}
}
