package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// forEachKind runs f on SQLite in memory, and on PostgreSQL when
// IAM_TEST_POSTGRES_DSN is set.
func forEachKind(t *testing.T, f func(t *testing.T, w *world)) {
	for _, kind := range dbtest.Kinds(t) {
		if kind == dbtest.SQLiteFile {
			continue // the memory database covers SQLite; the file adds only time
		}
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			f(t, newWorld(t, kind))
		})
	}
}

// TestLoginLogout: a wrong password shows the login page again with an
// error and no session; the right one opens the console; Logout ends the
// Service's session, so the old cookie no longer opens anything.
func TestLoginLogout(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		b := w.browser()
		if p := b.get("/users/pending"); p.url.Path != "/login" || !p.has(`<label for="password">Password</label>`) {
			t.Fatalf("signed out, /users/pending did not lead to the login page: %s\n%s", p.url, p.body)
		}
		p := b.submit("/login", "/login", url.Values{"email": {"mgr.a@example.com"}, "password": {"wrong password entirely"}})
		if p.status != http.StatusUnauthorized || !p.has("The email or password is wrong") || p.has(password) {
			t.Fatalf("wrong password: %d\n%s", p.status, p.body)
		}
		if sessionOf(b, w) != "" {
			t.Fatal("a failed login set a session cookie")
		}
		b.login("mgr.a@example.com")
		tok := sessionOf(b, w)
		if p := b.get("/login"); p.url.Path != "/users/pending" {
			t.Errorf("signed in, /login shows %s", p.url)
		}
		if _, err := w.svc.Authenticate(t.Context(), tok); err != nil {
			t.Fatalf("the cookie holds no live session: %v", err)
		}
		if p := b.get("/users/pending"); p.status != 200 || !p.has("Mona Manager") || !p.has("Pending Approvals") {
			t.Fatalf("signed in: %d\n%s", p.status, p.body)
		}
		p = b.submit("/users/pending", "/logout", nil)
		if p.url.Path != "/login" || !p.has("You are signed out.") {
			t.Fatalf("logout: %d at %s", p.status, p.url)
		}
		if _, err := w.svc.Authenticate(t.Context(), tok); err == nil {
			t.Fatal("logout left the Service's session alive")
		}
		// The old cookie, replayed by hand, opens nothing.
		again := w.browser()
		again.c.Jar.SetCookies(mustURL(w.srv.URL), []*http.Cookie{{Name: sessionCookie, Value: tok, Path: "/"}})
		if p := again.get("/users/org"); p.url.Path != "/login" {
			t.Fatalf("an ended session opened %s", p.url)
		}
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func sessionOf(b *browser, w *world) string {
	for _, c := range b.c.Jar.Cookies(mustURL(w.srv.URL)) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	return ""
}

// TestCookieAttributes: the session cookie is HttpOnly, SameSite=Lax and
// Path=/, and Secure exactly when the console is served over TLS.
func TestCookieAttributes(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	tlsSrv := httptest.NewTLSServer(w.srv.Config.Handler)
	t.Cleanup(tlsSrv.Close)
	for _, tc := range []struct {
		name   string
		srv    *httptest.Server
		secure bool
	}{{"http", w.srv, false}, {"tls", tlsSrv, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.srv.Client()
			c.Jar, _ = newJar()
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			res, err := c.Get(tc.srv.URL + "/login")
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, res)
			anon := cookieNamed(res, anonCookie)
			if anon == nil || !anon.HttpOnly || anon.SameSite != http.SameSiteLaxMode || anon.Path != "/" || anon.Secure != tc.secure {
				t.Errorf("pre-session cookie: %+v", anon)
			}
			tok := csrfRE.FindStringSubmatch(body)[1]
			res, err = c.PostForm(tc.srv.URL+"/login", url.Values{"csrf": {tok}, "email": {"mgr.a@example.com"}, "password": {password}})
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, res)
			s := cookieNamed(res, sessionCookie)
			if res.StatusCode != http.StatusSeeOther || s == nil {
				t.Fatalf("login: %d, no session cookie", res.StatusCode)
			}
			if !s.HttpOnly || s.SameSite != http.SameSiteLaxMode || s.Path != "/" || s.Secure != tc.secure || s.MaxAge != 0 || !s.Expires.IsZero() {
				t.Errorf("session cookie: %+v", s)
			}
		})
	}
}

// TestCSRFRefused: every kind of form, posted without its token, with a
// made-up one, or with the token of another signed-in session (or of the
// pre-session cookie), is refused with 403, and the database is left
// exactly as it was, down to the audit log and the sessions.
func TestCSRFRefused(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	pending := w.signUp("new@example.com", "Nia New", w.a.ID)
	mgr := w.as("mgr.a@example.com")
	other := w.as("admin@example.com")
	anon := w.browser()
	a, memA := string(w.a.ID), string(w.memA)
	forms := []struct {
		action string
		form   url.Values
	}{
		{"/registrations/" + string(pending) + "/approve", url.Values{"org": {a}}},
		{"/registrations/" + string(pending) + "/reject", url.Values{"org": {a}}},
		{"/orgs/" + a + "/members/" + memA + "/role", url.Values{"role": {"manager"}}},
		{"/orgs/" + a + "/members/" + memA + "/remove", nil},
		{"/permissions/" + a + "/" + memA, url.Values{"category": {"infra", "audit"}}},
		{"/logout", nil},
	}
	tokens := map[string]string{
		"missing":           "",
		"made-up":           strings.Repeat("A", 43),
		"another session's": other.token("/users/pending"),
		"the pre-session's": anon.token("/login"),
	}
	before := w.snapshot()
	for _, f := range forms {
		for name, tok := range tokens {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			if tok != "" {
				form.Set("csrf", tok)
			}
			if p := mgr.post(f.action, form); p.status != http.StatusForbidden || !p.has("Request refused") {
				t.Errorf("POST %s with the %s token: %d", f.action, name, p.status)
			}
		}
	}
	// Login and the reset forms check their token too (login CSRF).
	for _, f := range []struct {
		action string
		form   url.Values
	}{
		{"/login", url.Values{"email": {"mgr.a@example.com"}, "password": {password}}},
		{"/forgot-password", url.Values{"email": {"mgr.a@example.com"}}},
		{"/reset-password", url.Values{"token": {"whatever"}, "password": {password}}},
	} {
		if p := anon.post(f.action, f.form); p.status != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d", f.action, p.status)
		}
	}
	if after := w.snapshot(); after != before {
		t.Errorf("refused forms changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if strings.Contains(w.term.String(), "reset token") {
		t.Error("a refused Forgot Password sent a token")
	}
	// The manager's session still works, with its own token.
	if p := mgr.submit("/users/pending", "/registrations/"+string(pending)+"/approve", url.Values{"org": {a}}); p.status != 200 {
		t.Errorf("approve with the right token: %d\n%s", p.status, p.body)
	}
}

// TestManagerScope: a Manager never sees the All Users tab (nor opens its
// URL) nor another org's rows, and forged posts on another org's members,
// with the Manager's own valid CSRF token, are refused and change nothing.
func TestManagerScope(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		mgr := w.as("mgr.a@example.com")
		for _, path := range []string{"/users/pending", "/users/org", "/permissions"} {
			p := mgr.get(path)
			if p.status != 200 || p.has("All Users") || p.has("/users/all") {
				t.Errorf("%s: %d, or it shows All Users", path, p.status)
			}
			if p.has("Bea Member") || p.has("mem.b@example.com") || p.has(string(w.b.ID)) || p.has("Org B") {
				t.Errorf("%s shows org b", path)
			}
		}
		p := mgr.get("/users/org")
		if !p.has("Mel Member") || !p.has(`<option value="member" selected>Member</option>`) {
			t.Error("Users by Organization does not list the Manager's own member")
		}
		if p.has(`value="platformadmin"`) || !p.has("You cannot change your own role.") || p.has("/members/"+string(w.mgrA)+"/role") {
			t.Error("Edit Role offers a Manager PlatformAdmin, or their own row")
		}
		// A forged promotion to PlatformAdmin is refused all the same.
		if p := mgr.submit("/users/org", "/orgs/"+string(w.a.ID)+"/members/"+string(w.memA)+"/role", url.Values{"role": {"platformadmin"}}); p.status != http.StatusForbidden {
			t.Errorf("a Manager promoting to PlatformAdmin: %d", p.status)
		}
		if m, _ := w.member(w.a.ID, w.memA); m.PlatformAdmin || m.Role != authz.Member {
			t.Errorf("memA after a forged promotion: %+v", m)
		}
		if p := mgr.get("/users/all"); p.status != http.StatusNotFound || p.has("admin@example.com") {
			t.Errorf("/users/all for a Manager: %d", p.status)
		}
		b, memB := string(w.b.ID), string(w.memB)
		for _, path := range []string{"/users/org?org=" + b, "/users/pending?org=" + b, "/permissions?org=" + b, "/permissions?org=" + b + "&user=" + memB,
			"/orgs/" + b + "/members/" + memB + "/remove", "/permissions?user=" + memB} {
			if p := mgr.get(path); p.status < 400 || p.has("mem.b@example.com") {
				t.Errorf("GET %s: %d\n%s", path, p.status, p.body)
			}
		}

		before, _ := w.member(w.b.ID, w.memB)
		a := string(w.a.ID)
		for _, f := range []struct {
			action string
			form   url.Values
		}{
			{"/orgs/" + b + "/members/" + memB + "/role", url.Values{"role": {"manager"}}},
			{"/orgs/" + b + "/members/" + memB + "/remove", nil},
			{"/permissions/" + b + "/" + memB, url.Values{"category": {"infra"}}},
			// Own org in the URL, a user of org b as the target.
			{"/orgs/" + a + "/members/" + memB + "/role", url.Values{"role": {"manager"}}},
			{"/orgs/" + a + "/members/" + memB + "/remove", nil},
			{"/permissions/" + a + "/" + memB, url.Values{"category": {"infra"}}},
		} {
			if p := mgr.submit("/users/org", f.action, f.form); p.status < 400 || p.status >= 500 {
				t.Errorf("forged POST %s: %d", f.action, p.status)
			}
		}
		if after, ok := w.member(w.b.ID, w.memB); !ok || after != before {
			t.Errorf("forged posts changed memB: %+v -> %+v (member %v)", before, after, ok)
		}
		// The PlatformAdmin sees the tab and everyone.
		admin := w.as("admin@example.com")
		if p := admin.get("/users/all"); p.status != 200 || !p.has("mem.b@example.com") || !p.has("mem.a@example.com") {
			t.Errorf("All Users for the PlatformAdmin: %d\n%s", p.status, p.body)
		}
		if p := admin.get("/users/org?org=" + b); !p.has("Bea Member") || !p.has(`<option value="platformadmin">PlatformAdmin</option>`) {
			t.Errorf("the PlatformAdmin's Users by Organization of b:\n%s", p.body)
		}
	})
}

var countRE = regexp.MustCompile(`Pending Approvals <span class="count[^"]*"[^>]*>(\d+)</span>`)

func pendingCount(t *testing.T, p page) string {
	t.Helper()
	m := countRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no pending count on the tab:\n%s", p.body)
	}
	return m[1]
}

// TestApproveReject: the Pending Approvals tab shows the requests with
// their email, name, org and time and the count on the tab; Approve makes
// the person a Member and drops the count, Reject drops it too.
func TestApproveReject(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		w.signUp("nia@example.com", "Nia New", w.a.ID)
		w.signUp("oli@example.com", "Oli Other", w.a.ID)
		mgr := w.as("mgr.a@example.com")
		p := mgr.get("/users/pending?period=7d")
		if got := pendingCount(t, p); got != "2" {
			t.Fatalf("pending count %s, want 2", got)
		}
		for _, s := range []string{"nia@example.com", "Nia New", "oli@example.com", "Org A", "UTC</time>", "7 days", "30 days", ">All<", "Approve", "Reject"} {
			if !p.has(s) {
				t.Errorf("the Pending Approvals tab lacks %q", s)
			}
		}
		id := regexp.MustCompile(`action="/registrations/([^/]+)/approve"[^<]*<input[^>]*>[^<]*<input[^>]*>[^<]*<input[^>]*>\s*<button type="submit" aria-label="Approve nia@example.com"`).FindStringSubmatch(p.body)
		if id == nil {
			t.Fatalf("no Approve button for nia:\n%s", p.body)
		}
		p = mgr.submit("/users/pending", "/registrations/"+id[1]+"/approve", url.Values{"org": {string(w.a.ID)}, "period": {"7d"}})
		if p.status != 200 || !p.has("now a Member") || pendingCount(t, p) != "1" || p.has("nia@example.com") {
			t.Fatalf("after Approve: %d, count %s\n%s", p.status, pendingCount(t, p), p.body)
		}
		if p.url.Query().Get("period") != "7d" {
			t.Errorf("Approve lost the period filter: %s", p.url)
		}
		if p := mgr.get("/users/org"); !p.has("nia@example.com") {
			t.Error("the approved person is not in Users by Organization")
		}
		reqs, err := w.svc.Registrations(t.Context(), w.admin, w.a.ID, approval.AllTime, approval.Pending)
		if err != nil || len(reqs) != 1 {
			t.Fatalf("pending after approve: %v %v", reqs, err)
		}
		p = mgr.submit("/users/pending", "/registrations/"+string(reqs[0].ID)+"/reject", url.Values{"org": {string(w.a.ID)}})
		if p.status != 200 || !p.has("rejected") || pendingCount(t, p) != "0" || !p.has("No pending requests") {
			t.Fatalf("after Reject: %d\n%s", p.status, p.body)
		}
		// A Manager of b cannot decide a's requests, even with a valid form.
		id2 := w.signUp("pat@example.com", "Pat", w.a.ID)
		mgrB := w.as("mgr.b@example.com")
		if p := mgrB.submit("/users/pending", "/registrations/"+string(id2)+"/approve", url.Values{"org": {string(w.b.ID)}}); p.status != http.StatusNotFound {
			t.Errorf("a Manager of b approving a's request: %d", p.status)
		}
		if n, _ := w.svc.PendingCount(t.Context(), w.admin, w.a.ID); n != 1 {
			t.Errorf("pending in a: %d, want 1", n)
		}
	})
}

// TestPermissions: Save on the Permission Management page replaces the
// user's categories at once (Check answers accordingly), the page shows
// them checked, and the sample feature pages follow: the granted one
// opens, another names what is missing and what to send to the Manager.
func TestPermissions(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		mgr := w.as("mgr.a@example.com")
		page := "/permissions?user=" + string(w.memA)
		if p := mgr.get(page); p.status != 200 || strings.Count(p.body, `type="checkbox"`) != 7 || strings.Contains(p.body, " checked") {
			t.Fatalf("permissions page: %d\n%s", p.status, p.body)
		}
		p := mgr.submit(page, "/permissions/"+string(w.a.ID)+"/"+string(w.memA), url.Values{"category": {"infra", "audit"}})
		if p.status != 200 || !p.has("Saved.") || strings.Count(p.body, " checked") != 2 || !p.has(`value="infra" checked`) || !p.has(`value="audit" checked`) {
			t.Fatalf("after Save: %d\n%s", p.status, p.body)
		}
		// A user who is not on the listed page is read by id: here the
		// page starts after them.
		if p := mgr.get(page + "&after=" + string(w.memA)); p.status != 200 || strings.Count(p.body, " checked") != 2 || !p.has(`value="infra" checked`) || !p.has(`value="audit" checked`) {
			t.Fatalf("the user off the listed page: %d\n%s", p.status, p.body)
		}
		ctx := context.Background()
		if !w.svc.Check(ctx, w.memA, w.a.ID, authz.Infra).Allowed || w.svc.Check(ctx, w.memA, w.a.ID, authz.VPN).Allowed {
			t.Error("Check does not follow the saved categories")
		}
		if ev, err := w.svc.AuditEvents(ctx, w.admin, auditFilter(w.memA)); err != nil || len(ev) == 0 {
			t.Errorf("no audit event for the change: %v %v", ev, err)
		}
		mem := w.as("mem.a@example.com")
		if p := mem.get("/features/infra"); p.status != 200 || !p.has("Runtime Environments") {
			t.Errorf("the granted feature page: %d\n%s", p.status, p.body)
		}
		p = mem.get("/features/vpn")
		if p.status != http.StatusForbidden || !p.has("Insufficient permissions") || !p.has("<li><code>vpn</code></li>") || !p.has("trying to access: <strong>VPN Management</strong>") || !p.has("granted to you in <strong>Org A</strong>") || !p.has("work-related reason") {
			t.Errorf("the denied feature page: %d\n%s", p.status, p.body)
		}
		// A Member has no Permission Management, and its Save is refused.
		if p := mem.submit("/features/infra", "/permissions/"+string(w.a.ID)+"/"+string(w.memA), url.Values{"category": {"vpn"}}); p.status != http.StatusForbidden {
			t.Errorf("a Member saving their own categories: %d", p.status)
		}
		if w.svc.Check(ctx, w.memA, w.a.ID, authz.VPN).Allowed {
			t.Error("a Member granted themselves vpn")
		}
		// An unknown category is refused, and nothing changes.
		if p := mgr.submit(page, "/permissions/"+string(w.a.ID)+"/"+string(w.memA), url.Values{"category": {"root"}}); p.status != http.StatusUnprocessableEntity {
			t.Errorf("an unknown category: %d", p.status)
		}
		if m, _ := w.member(w.a.ID, w.memA); m.Categories != authz.NewCategorySet(authz.Infra, authz.Audit) {
			t.Errorf("categories now %v", m.Categories)
		}
		// Someone still waiting for approval signs in and has no feature.
		w.signUp("nia@example.com", "Nia New", w.a.ID)
		nia := w.as("nia@example.com")
		if p := nia.get("/features/infra"); p.status != http.StatusForbidden || !p.has("no organization yet") {
			t.Errorf("a feature page for a person in no org: %d\n%s", p.status, p.body)
		}
	})
}

// TestEditRoleAndRemove: Edit Role changes the role; Remove opens a
// confirmation modal that states the impact, and only its POST removes.
func TestEditRoleAndRemove(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		mgr := w.as("mgr.a@example.com")
		a, memA := string(w.a.ID), string(w.memA)
		p := mgr.submit("/users/org", "/orgs/"+a+"/members/"+memA+"/role", url.Values{"role": {"manager"}})
		if p.status != 200 || !p.has("The role was changed.") {
			t.Fatalf("Edit Role: %d\n%s", p.status, p.body)
		}
		if m, _ := w.member(w.a.ID, w.memA); m.Role != authz.Manager {
			t.Errorf("role now %v", m.Role)
		}
		// One's own role: refused with the module's wording.
		if p := mgr.submit("/users/org", "/orgs/"+a+"/members/"+string(w.mgrA)+"/role", url.Values{"role": {"member"}}); p.status != http.StatusForbidden || !p.has("own role") {
			t.Errorf("own role change: %d\n%s", p.status, p.body)
		}
		// The Remove icon opens a confirmation modal that states the
		// impact; only the modal's form removes.
		p = mgr.get("/users/org")
		for _, s := range []string{
			`commandfor="remove-` + memA + `" command="show-modal" aria-label="Remove Mel Member"`,
			`<dialog id="remove-` + memA + `" class="modal" aria-labelledby="remove-` + memA + `-head">`,
			"Remove Mel Member from Org A?", "permissions there are revoked", "Their account stays",
			`<form method="post" action="/orgs/` + a + `/members/` + memA + `/remove" class="actions">`,
			`commandfor="remove-` + memA + `" command="close" autofocus>Cancel</button>`,
		} {
			if !p.has(s) {
				t.Errorf("the Users by Organization tab lacks %s", s)
			}
		}
		if _, ok := w.member(w.a.ID, w.memA); !ok {
			t.Fatal("showing the tab removed the user")
		}
		p = mgr.submit("/users/org", "/orgs/"+a+"/members/"+memA+"/remove", nil)
		if p.status != 200 || !p.has("was removed") || p.has("mem.a@example.com") {
			t.Fatalf("after Remove: %d\n%s", p.status, p.body)
		}
		if _, ok := w.member(w.a.ID, w.memA); ok {
			t.Error("the user is still a member")
		}
	})
}

// TestForgotPassword: Forgot Password prints a token on the terminal; the
// reset form with it sets the password and signs the person in; the token
// works once.
func TestForgotPassword(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	b := w.browser()
	p := b.submit("/forgot-password", "/forgot-password", url.Values{"email": {"mem.a@example.com"}})
	if p.url.Path != "/reset-password" || !p.has("printed on the console") {
		t.Fatalf("forgot: %d at %s", p.status, p.url)
	}
	m := w.term.WaitFor(t, regexp.MustCompile(`reset token: (\S+)`))
	if p := b.submit("/reset-password", "/reset-password", url.Values{"token": {m[1]}, "password": {"password"}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("a weak password: %d", p.status)
	}
	const fresh = "a brand new long passphrase"
	p = b.submit("/reset-password", "/reset-password", url.Values{"token": {m[1]}, "password": {fresh}})
	if p.status != 200 || p.url.Path != "/" {
		t.Fatalf("reset: %d at %s\n%s", p.status, p.url, p.body)
	}
	if _, err := w.svc.Login(t.Context(), "mem.a@example.com", fresh); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
	if p := w.browser().submit("/reset-password", "/reset-password", url.Values{"token": {m[1]}, "password": {fresh + "!"}}); p.status != http.StatusUnauthorized {
		t.Errorf("the token worked twice: %d", p.status)
	}
}

// TestErrorPages: unknown pages and malformed ids are pages, never Go
// error text.
func TestErrorPages(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	mgr := w.as("mgr.a@example.com")
	for _, path := range []string{"/nope", "/features/root", "/users/org?org=not-an-org", "/users/org?after=garbage", "/logout", "/registrations/x/approve"} {
		p := mgr.get(path)
		if p.status < 400 || p.status >= 500 || !p.has("<main") || p.has("iam:") || p.has("gorm") || p.has("goroutine") {
			t.Errorf("GET %s: %d\n%s", path, p.status, p.body)
		}
	}
}

// TestFreshPlatform: on a platform with no org yet, the PlatformAdmin's
// User Management says so instead of failing, and All Users works.
func TestFreshPlatform(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	for _, org := range []authz.OrgID{w.a.ID, w.b.ID} {
		if err := w.svc.DeleteOrg(t.Context(), w.admin, org); err != nil {
			t.Fatal(err)
		}
	}
	admin := w.as("admin@example.com")
	if p := admin.get("/users/pending"); p.status != 200 || !p.has("There is no organization yet.") {
		t.Errorf("pending tab without orgs: %d\n%s", p.status, p.body)
	}
	if p := admin.get("/users/all"); p.status != 200 || !p.has("mem.b@example.com") {
		t.Errorf("All Users without orgs: %d\n%s", p.status, p.body)
	}
}

// TestHardening: what a request's data shows is escaped (a name written
// as markup stays text); every page forbids scripts, frames and foreign
// resources; a post a browser marks as cross-site is refused even with a
// valid CSRF token, and changes nothing.
func TestHardening(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	w.signUp("mallory@example.com", `<img src=x onerror=alert(1)>`, w.a.ID)
	mgr := w.as("mgr.a@example.com")
	p := mgr.get("/users/pending")
	if p.has("<img src=x") || !p.has("&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("the name is not escaped:\n%s", p.body)
	}
	res, err := mgr.c.Get(w.srv.URL + "/users/pending")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q", k, got)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}

	form := url.Values{"csrf": {mgr.token("/users/org")}, "role": {"manager"}}
	before := w.snapshot() // after the page view, which is audited
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+"/orgs/"+string(w.a.ID)+"/members/"+string(w.memA)+"/role", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := mgr.do(req); p.status != http.StatusForbidden || !p.has("another site") {
		t.Errorf("a cross-site post: %d", p.status)
	}
	if after := w.snapshot(); after != before {
		t.Error("a cross-site post changed the database")
	}
}
