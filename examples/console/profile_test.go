package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// denied reports whether the audit log holds a denied action by actor.
func denied(w *world, actor authz.UserID, action audit.Action) bool {
	w.t.Helper()
	ev, err := w.svc.AuditEvents(w.t.Context(), w.admin, audit.Filter{Actor: actor, Action: action, Outcome: audit.Denied})
	if err != nil {
		w.t.Fatal(err)
	}
	return len(ev) > 0
}

// TestProfileShowsAccount: the Profile page shows the name, the email,
// whether the person is a PlatformAdmin, and each org with the role and
// the categories held there.
func TestProfileShowsAccount(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		if err := w.svc.SetCategories(t.Context(), w.admin, w.memA, w.a.ID, authz.NewCategorySet(authz.VPN, authz.Audit)); err != nil {
			t.Fatal(err)
		}
		p := w.as("mem.a@example.com").get("/profile")
		for _, s := range []string{"<h1>Profile</h1>", "<dd>Mel Member</dd>", "<dd>mem.a@example.com</dd>", "<dt>PlatformAdmin</dt><dd>no</dd>",
			"<td>Org A</td><td>Member</td>", "<code>vpn</code>, <code>audit</code>", `aria-current="page">Profile</a>`} {
			if !p.has(s) {
				t.Errorf("the Member's profile lacks %q", s)
			}
		}
		if p.status != 200 || p.has("Org B") {
			t.Errorf("the Member's profile: %d\n%s", p.status, p.body)
		}
		p = w.as("mgr.a@example.com").get("/profile")
		if !p.has("<td>Org A</td><td>Manager</td>") || !p.has("every category") {
			t.Errorf("the Manager's profile:\n%s", p.body)
		}
		p = w.as("admin@example.com").get("/profile")
		if !p.has("<dt>PlatformAdmin</dt><dd>yes") || !p.has("no organization yet") {
			t.Errorf("the PlatformAdmin's profile:\n%s", p.body)
		}
	})
}

// TestChangeName: the new name shows in the header at once; an empty
// one is refused with the module's wording and changes nothing.
func TestChangeName(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		b := w.as("mem.a@example.com")
		p := b.submit("/profile", "/profile/name", url.Values{"name": {"Mel Renamed"}})
		if p.status != 200 || p.url.Path != "/profile" || !p.has("Your name was changed.") || !p.has("Signed in as <a href=\"/profile\" aria-current=\"page\"><strong>Mel Renamed</strong>") {
			t.Fatalf("change name: %d at %s\n%s", p.status, p.url, p.body)
		}
		if m, _ := w.member(w.a.ID, w.memA); m.Name != "Mel Renamed" {
			t.Errorf("the Service has the name %q", m.Name)
		}
		tok := b.token("/profile")
		before := w.snapshotButAudit()
		p = b.post("/profile/name", url.Values{"csrf": {tok}, "name": {"   "}})
		if p.status != http.StatusUnprocessableEntity || !p.has("invalid name: empty") || !p.has(`role="alert"`) {
			t.Errorf("an empty name: %d\n%s", p.status, p.body)
		}
		if after := w.snapshotButAudit(); after != before {
			t.Errorf("a refused name changed the database:\n%s\n%s", before, after)
		}
	})
}

// TestChangePassword: the browser gets the fresh session and stays signed
// in; the old cookie's session, and the person's other sessions, are dead;
// only the new password logs in. A wrong current password, or a new one
// the policy refuses, changes nothing.
func TestChangePassword(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		b, elsewhere := w.as("mem.a@example.com"), w.as("mem.a@example.com")
		old, other := sessionOf(b, w), sessionOf(elsewhere, w)

		tok := b.token("/profile")
		before := w.snapshotButAudit()
		p := b.post("/profile/password", url.Values{"csrf": {tok}, "current": {"not my password at all"}, "password": {"a brand new long passphrase"}})
		if p.status != http.StatusUnprocessableEntity || !p.has("The password you entered is wrong.") {
			t.Errorf("a wrong current password: %d\n%s", p.status, p.body)
		}
		p = b.post("/profile/password", url.Values{"csrf": {tok}, "current": {password}, "password": {"short"}})
		if p.status != http.StatusUnprocessableEntity || !p.has("unacceptable password") {
			t.Errorf("a refused new password: %d\n%s", p.status, p.body)
		}
		if after := w.snapshotButAudit(); after != before {
			t.Errorf("refused password changes changed the database:\n%s\n%s", before, after)
		}
		if !denied(w, w.memA, audit.ProfilePasswordChange) {
			t.Error("the wrong current password is not in the audit log")
		}

		const fresh = "a brand new long passphrase"
		p = b.submit("/profile", "/profile/password", url.Values{"current": {password}, "password": {fresh}})
		if p.status != 200 || p.url.Path != "/profile" || !p.has("Your password was changed.") || !p.has("<dd>mem.a@example.com</dd>") {
			t.Fatalf("change password: %d at %s\n%s", p.status, p.url, p.body)
		}
		now := sessionOf(b, w)
		if now == "" || now == old {
			t.Fatal("the browser did not get a new session cookie")
		}
		for _, tok := range []string{old, other} {
			if _, err := w.svc.Authenticate(t.Context(), tok); err == nil {
				t.Error("a session from before the change is still alive")
			}
		}
		if id, err := w.svc.Authenticate(t.Context(), now); err != nil || id != w.memA {
			t.Errorf("the new cookie: %v %v", id, err)
		}
		if p := b.get("/profile"); p.status != 200 || p.url.Path != "/profile" {
			t.Errorf("after the change the browser is signed out: %s", p.url)
		}
		if p := elsewhere.get("/profile"); p.url.Path != "/login" {
			t.Errorf("the other browser still opens %s", p.url)
		}
		if _, err := w.svc.Login(t.Context(), "mem.a@example.com", password); err == nil {
			t.Error("the old password still logs in")
		}
		if _, err := w.svc.Login(t.Context(), "mem.a@example.com", fresh); err != nil {
			t.Errorf("the new password does not log in: %v", err)
		}
	})
}

// TestPasswordThrottled: wrong current passwords are throttled like
// logins; the throttle's answer says to wait and does not sign the person
// out (it matches ErrUnauthenticated, yet the session is fine).
func TestPasswordThrottled(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		b := w.as("mem.a@example.com")
		tok := b.token("/profile")
		var p page
		for range 7 {
			p = b.post("/profile/password", url.Values{"csrf": {tok}, "current": {"not my password at all"}, "password": {"a brand new long passphrase"}})
		}
		if p.status != http.StatusTooManyRequests || !p.has("Wait a little") || p.url.Path != "/profile/password" {
			t.Errorf("the 7th wrong password: %d at %s\n%s", p.status, p.url, p.body)
		}
		if p := b.get("/profile"); p.status != 200 || p.url.Path != "/profile" {
			t.Errorf("throttled, the browser was signed out: %s", p.url)
		}
	})
}

// TestDeleteAccount: without the confirmation box nothing happens; with
// it and the password the account goes, the cookie is cleared and the
// person can no longer sign in.
func TestDeleteAccount(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		b := w.as("mem.a@example.com")
		p := b.get("/profile")
		for _, s := range []string{`name="confirm"`, "required>", "I understand that my account and all my roles and permissions are deleted", "cannot be undone"} {
			if !p.has(s) {
				t.Errorf("the Delete account form lacks %q", s)
			}
		}
		tok := b.token("/profile")
		before := w.snapshot()
		p = b.post("/profile/delete", url.Values{"csrf": {tok}, "password": {password}})
		if p.status != http.StatusUnprocessableEntity || !p.has("Tick the box") {
			t.Errorf("delete without the box: %d\n%s", p.status, p.body)
		}
		if after := w.snapshot(); after != before {
			t.Errorf("delete without the box changed the database:\n%s\n%s", before, after)
		}
		before = w.snapshotButAudit()
		p = b.post("/profile/delete", url.Values{"csrf": {tok}, "password": {"not my password at all"}, "confirm": {"yes"}})
		if p.status != http.StatusUnprocessableEntity || !p.has("The password you entered is wrong.") {
			t.Errorf("delete with a wrong password: %d\n%s", p.status, p.body)
		}
		if after := w.snapshotButAudit(); after != before {
			t.Errorf("delete with a wrong password changed the database:\n%s\n%s", before, after)
		}

		old := sessionOf(b, w)
		p = b.submit("/profile", "/profile/delete", url.Values{"password": {password}, "confirm": {"yes"}})
		if p.status != 200 || p.url.Path != "/login" || !p.has("Your account is deleted") {
			t.Fatalf("delete: %d at %s\n%s", p.status, p.url, p.body)
		}
		if sessionOf(b, w) != "" {
			t.Error("the session cookie is still set")
		}
		if _, err := w.svc.Authenticate(t.Context(), old); err == nil {
			t.Error("the session outlived the account")
		}
		if _, ok := w.member(w.a.ID, w.memA); ok {
			t.Error("the deleted account is still a member of Org A")
		}
		if p := b.submit("/login", "/login", url.Values{"email": {"mem.a@example.com"}, "password": {password}}); p.status != http.StatusUnauthorized {
			t.Errorf("a deleted account signs in: %d", p.status)
		}
	})
}

// TestDeleteLastAdmin: the last PlatformAdmin's, and the last Manager's,
// own deletion is refused with the module's reason, and nothing but the
// denied event is recorded.
func TestDeleteLastAdmin(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		for _, tc := range []struct {
			email string
			id    authz.UserID
			why   string
		}{
			{"admin@example.com", w.admin, "the platform must keep at least one active PlatformAdmin"},
			{"mgr.a@example.com", w.mgrA, "an organization must keep at least one Manager"},
		} {
			b := w.as(tc.email)
			tok := b.token("/profile")
			before := w.snapshotButAudit()
			p := b.post("/profile/delete", url.Values{"csrf": {tok}, "password": {password}, "confirm": {"yes"}})
			if p.status != http.StatusConflict || !p.has(tc.why) || p.url.Path != "/profile/delete" {
				t.Errorf("%s deleting their account: %d at %s\n%s", tc.email, p.status, p.url, p.body)
			}
			if after := w.snapshotButAudit(); after != before {
				t.Errorf("the refusal of %s changed the database:\n%s\n%s", tc.email, before, after)
			}
			if !denied(w, tc.id, audit.ProfileDelete) {
				t.Errorf("the refusal of %s is not in the audit log", tc.email)
			}
			if p := b.get("/profile"); p.status != 200 || !p.has("<dd>"+tc.email+"</dd>") {
				t.Errorf("%s was signed out: %d at %s", tc.email, p.status, p.url)
			}
		}
	})
}

var signupLinkRE = regexp.MustCompile(`Sign-up link for this organization: <a href="(/signup\?org=[^"]+)"`)

// TestSignUpFromLink: the link on the Pending Approvals tab opens the
// sign-up form with the org filled in; the request lands in that tab and
// the count goes up by one.
func TestSignUpFromLink(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		mgr := w.as("mgr.a@example.com")
		p := mgr.get("/users/pending")
		n := pendingCount(t, p)
		m := signupLinkRE.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no sign-up link on the Pending Approvals tab:\n%s", p.body)
		}
		link := strings.ReplaceAll(m[1], "&amp;", "&")
		anon := w.browser()
		if p := anon.get("/login"); !p.has(`<a href="/signup">Sign up</a>`) {
			t.Error("the login page has no Sign up link")
		}
		p = anon.get(link)
		if p.status != 200 || !p.has(`name="org" type="text" autocomplete="off" required value="`+string(w.a.ID)+`"`) || p.has("Org A") || p.has("Org B") {
			t.Fatalf("the sign-up form: %d\n%s", p.status, p.body)
		}
		p = anon.submit(link, "/signup", url.Values{"email": {"nia@example.com"}, "name": {"Nia New"}, "password": {password}, "org": {string(w.a.ID)}})
		if p.status != 200 || p.url.Path != "/login" || !p.has("Your request is in the organization&#39;s Pending Approvals queue.") {
			t.Fatalf("sign up: %d at %s\n%s", p.status, p.url, p.body)
		}
		p = mgr.get("/users/pending")
		before, _ := strconv.Atoi(n)
		if got := pendingCount(t, p); got != strconv.Itoa(before+1) || !p.has("nia@example.com") {
			t.Errorf("pending count %s -> %s, or nia is not listed", n, got)
		}
	})
}

// TestSignUpRefusals: a known email gets exactly the answer a new one
// gets; a refused field shows the module's wording with the typed-in
// values kept but never the password; an unknown or mistyped org code is
// a 404 page saying to ask for the link.
func TestSignUpRefusals(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		answer := func(email string) page {
			b := w.browser()
			p := b.submit("/signup", "/signup", url.Values{"email": {email}, "name": {"Nia New"}, "password": {"another long passphrase"}, "org": {string(w.b.ID)}})
			p.body = csrfRE.ReplaceAllString(p.body, `name="csrf" value="…"`)
			return p
		}
		fresh, known := answer("nia@example.com"), answer("mem.a@example.com")
		if fresh.status != known.status || fresh.url.String() != known.url.String() || fresh.body != known.body {
			t.Errorf("a known email answers differently:\n%d %s\n%s\n---\n%d %s\n%s", fresh.status, fresh.url, fresh.body, known.status, known.url, known.body)
		}
		reqs, err := w.svc.Registrations(t.Context(), w.admin, w.b.ID, approval.AllTime, approval.Pending)
		if err != nil || len(reqs) != 1 || reqs[0].Email != "nia@example.com" {
			t.Errorf("pending in b: %v %v", reqs, err)
		}

		// The holder of the password is told they are a member already.
		p := w.browser().submit("/signup", "/signup", url.Values{"email": {"mem.a@example.com"}, "name": {"Mel Member"}, "password": {password}, "org": {string(w.a.ID)}})
		if p.status != http.StatusConflict || !p.has("already a member") {
			t.Errorf("a member signing up again: %d\n%s", p.status, p.body)
		}

		const weak = "short pw 1"
		b := w.browser()
		p = b.submit("/signup", "/signup", url.Values{"email": {"oli@example.com"}, "name": {"Oli <Other>"}, "password": {weak}, "org": {string(w.a.ID)}})
		if p.status != http.StatusUnprocessableEntity || !p.has("unacceptable password") || p.has(weak) ||
			!p.has(`value="oli@example.com"`) || !p.has(`value="Oli &lt;Other&gt;"`) || !p.has(`value="`+string(w.a.ID)+`"`) {
			t.Errorf("a weak password: %d\n%s", p.status, p.body)
		}

		gone := authz.NewOrgID()
		for _, code := range []string{string(gone), "not-a-code"} {
			p := b.submit("/signup", "/signup", url.Values{"email": {"oli@example.com"}, "name": {"Oli Other"}, "password": {password}, "org": {code}})
			if p.status != http.StatusNotFound || !p.has("No organization has this code. Ask your Manager for the sign-up link.") || !p.has(`value="`+code+`"`) || p.has(password) {
				t.Errorf("org code %q: %d\n%s", code, p.status, p.body)
			}
		}
		// Signed in, the page opens all the same.
		if p := w.as("mem.a@example.com").get("/signup"); p.status != 200 || !p.has(`action="/signup"`) {
			t.Errorf("/signup signed in: %d", p.status)
		}
	})
}

// TestProfileCSRF: each Profile and Sign-up form posted without its token
// is refused with 403 and changes nothing at all.
func TestProfileCSRF(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		mem := w.as("mem.a@example.com")
		anon := w.browser()
		anon.get("/signup") // the pre-session cookie
		before := w.snapshot()
		for _, f := range []struct {
			b      *browser
			action string
			form   url.Values
		}{
			{mem, "/profile/name", url.Values{"name": {"Forged Name"}}},
			{mem, "/profile/password", url.Values{"current": {password}, "password": {"a forged long passphrase"}}},
			{mem, "/profile/delete", url.Values{"password": {password}, "confirm": {"yes"}}},
			{anon, "/signup", url.Values{"email": {"forged@example.com"}, "name": {"Forged"}, "password": {password}, "org": {string(w.a.ID)}}},
		} {
			if p := f.b.post(f.action, f.form); p.status != http.StatusForbidden || !p.has("Request refused") {
				t.Errorf("POST %s without a token: %d", f.action, p.status)
			}
		}
		if after := w.snapshot(); after != before {
			t.Errorf("forged forms changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if p := mem.get("/profile"); p.status != 200 || !p.has("<dd>Mel Member</dd>") {
			t.Errorf("the Member's session after forged posts: %d at %s", p.status, p.url)
		}
	})
}
