package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// orgNames is what the Service lists: every org's name by id.
func (w *world) orgNames() map[authz.OrgID]string {
	w.t.Helper()
	orgs, err := w.svc.Orgs(w.t.Context(), w.admin)
	if err != nil {
		w.t.Fatal(err)
	}
	names := map[authz.OrgID]string{}
	for _, o := range orgs {
		names[o.ID] = o.Name
	}
	return names
}

// orgEvents is the audit log's org.create, org.rename and org.delete
// events by actor, oldest first.
func (w *world) orgEvents(actor authz.UserID) []audit.Event {
	w.t.Helper()
	var out []audit.Event
	for _, a := range []audit.Action{audit.OrgCreate, audit.OrgRename, audit.OrgDelete} {
		evs, err := w.svc.AuditEvents(w.t.Context(), w.admin, audit.Filter{Actor: actor, Action: a})
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, evs...)
	}
	slices.SortFunc(out, func(a, b audit.Event) int { return int(a.ID - b.ID) })
	return out
}

var orgRowRE = regexp.MustCompile(`action="/orgs/([^/"]+)/rename"`)

// TestOrgManagement: a PlatformAdmin creates, renames and deletes an org
// through the page's forms; the Service lists the change and the audit log
// holds one org event per change; the deleted org's members lose their
// role and categories there, and its registration requests go, while the
// accounts stay.
func TestOrgManagement(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		ctx := t.Context()
		admin := w.as("admin@example.com")
		p := admin.get("/orgs")
		if p.status != 200 || !p.has("<h1>Organization Management</h1>") || !p.has(`<a href="/orgs" aria-current="page">Organization Management</a>`) {
			t.Fatalf("GET /orgs: %d\n%s", p.status, p.body)
		}
		for _, o := range []identity.Org{w.a, w.b} {
			id := string(o.ID)
			for _, s := range []string{">" + o.Name + "</td>", `<label for="rename-` + id + `" class="sr-only">New name for ` + o.Name + `</label>`,
				`href="/users/org?org=` + id + `"`, `href="/users/pending?org=` + id + `"`, `UTC</time>`} {
				if !p.has(s) {
					t.Errorf("the row of %s lacks %q", o.Name, s)
				}
			}
		}

		p = admin.submit("/orgs", "/orgs", url.Values{"name": {"  Org C  "}})
		if p.status != 200 || p.url.String() != w.srv.URL+"/orgs?done=orgcreated" || !p.has(notices["orgcreated"]) || !p.has(">Org C</td>") {
			t.Fatalf("create: %d at %s\n%s", p.status, p.url, p.body)
		}
		var c authz.OrgID
		for id, name := range w.orgNames() {
			if name == "Org C" {
				c = id
			}
		}
		if c == "" {
			t.Fatalf("the Service does not list Org C: %v", w.orgNames())
		}
		if m := orgRowRE.FindAllStringSubmatch(p.body, -1); len(m) != 3 {
			t.Errorf("%d rename forms for 3 orgs", len(m))
		}

		p = admin.submit("/orgs", "/orgs/"+string(c)+"/rename", url.Values{"name": {"Org Charlie"}})
		if p.status != 200 || !p.has(notices["orgrenamed"]) || !p.has(">Org Charlie</td>") || p.has(">Org C</td>") {
			t.Fatalf("rename: %d at %s\n%s", p.status, p.url, p.body)
		}
		if got := w.orgNames()[c]; got != "Org Charlie" {
			t.Errorf("after the rename the Service names it %q", got)
		}

		// Org a, deleted: give its Member a category and a pending
		// request first, to see both go.
		if err := w.svc.SetCategories(ctx, w.admin, w.memA, w.a.ID, authz.NewCategorySet(authz.Infra)); err != nil {
			t.Fatal(err)
		}
		w.signUp("nia@example.com", "Nia New", w.a.ID)
		for _, u := range []authz.UserID{w.mgrA, w.memA} {
			if !w.svc.Check(ctx, u, w.a.ID, authz.Infra).Allowed {
				t.Fatalf("%s cannot use infra in org a before the deletion", u)
			}
		}
		p = admin.submit("/orgs", "/orgs/"+string(w.a.ID)+"/delete", nil)
		if p.status != 200 || !p.has(notices["orgdeleted"]) || p.has(">Org A</td>") || p.has(string(w.a.ID)) {
			t.Fatalf("delete: %d at %s\n%s", p.status, p.url, p.body)
		}
		names := w.orgNames()
		if _, ok := names[w.a.ID]; ok || len(names) != 2 || names[w.b.ID] != "Org B" {
			t.Errorf("after the deletion the Service lists %v", names)
		}
		for _, u := range []authz.UserID{w.mgrA, w.memA} {
			if d := w.svc.Check(ctx, u, w.a.ID, authz.Infra); d.Allowed || d.Role != authz.RoleNone {
				t.Errorf("%s still holds %v in the deleted org: %+v", u, d.Role, d)
			}
			prof, err := w.svc.Profile(ctx, u)
			if err != nil {
				t.Fatalf("the account of %s went with the org: %v", u, err)
			}
			if _, ok := prof.Memberships[w.a.ID]; ok {
				t.Errorf("%s is still a member of the deleted org", u)
			}
		}
		for _, row := range dbtest.Dump(t, w.db, "iam_registration_requests") {
			if strings.Contains(row, string(w.a.ID)) {
				t.Errorf("a registration request of the deleted org stayed: %s", row)
			}
		}
		if _, ok := w.member(w.b.ID, w.memB); !ok {
			t.Error("deleting org a touched org b")
		}

		// One successful org event per change, in order, on the right org.
		evs := w.orgEvents(w.admin)
		var got []string
		for _, e := range evs {
			if e.Outcome != audit.Success || e.Actor != w.admin {
				t.Errorf("org event %+v", e)
			}
			got = append(got, e.Action.String()+" "+string(e.Org))
		}
		want := []string{
			"org.create " + string(w.a.ID), "org.create " + string(w.b.ID), // the world's own
			"org.create " + string(c), "org.rename " + string(c), "org.delete " + string(w.a.ID),
		}
		if !slices.Equal(got, want) {
			t.Errorf("org events:\n got %q\nwant %q", got, want)
		}
		if len(evs) == len(want) && (!strings.Contains(string(evs[3].Before), "Org C") || !strings.Contains(string(evs[3].After), "Org Charlie")) {
			t.Errorf("the rename event does not record the names: %s -> %s", evs[3].Before, evs[3].After)
		}
	})
}

// TestOrgManagementDialogs: every org has its Delete confirmation: one
// modal dialog each, opened by an invoker command (no script), stating the
// impact, holding the CSRF-protected Delete form and a Cancel that closes
// it.
func TestOrgManagementDialogs(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteMemory)
	p := w.as("admin@example.com").get("/orgs")
	if n := strings.Count(p.body, "<dialog"); n != 2 {
		t.Errorf("%d dialogs for 2 orgs", n)
	}
	if p.has("<script") {
		t.Error("the page has a script")
	}
	dialogRE := regexp.MustCompile(`(?s)<dialog id="delete-org-([^"]+)"[^>]*>(.*?)</dialog>`)
	seen := map[string]bool{}
	for _, m := range dialogRE.FindAllStringSubmatch(p.body, -1) {
		id, body := m[1], m[2]
		seen[id] = true
		name := map[string]string{string(w.a.ID): "Org A", string(w.b.ID): "Org B"}[id]
		opener := `<button type="button" class="danger" commandfor="delete-org-` + id + `" command="show-modal"`
		for _, s := range []string{
			">Delete " + name + "?</h2>",
			"loses their role and permission categories in this organization", "registration requests (pending ones included) are deleted",
			"The accounts themselves stay", "This cannot be undone.",
			`<form method="post" action="/orgs/` + id + `/delete"`, `name="csrf" value="`,
			`<button type="submit" class="danger">Delete organization</button>`,
			`commandfor="delete-org-` + id + `" command="close" autofocus>Cancel</button>`,
		} {
			if !strings.Contains(body, s) {
				t.Errorf("the dialog of %q lacks %q", name, s)
			}
		}
		if strings.Count(p.body, opener) != 1 {
			t.Errorf("no single show-modal opener for %s", name)
		}
	}
	if !seen[string(w.a.ID)] || !seen[string(w.b.ID)] {
		t.Errorf("dialogs for %v", seen)
	}
	// Opening the page deleted nothing.
	if len(w.orgNames()) != 2 {
		t.Error("an org went")
	}
}

// TestOrgManagementRefused: Managers and Members neither see the page in
// their menu nor open it (404, as if it did not exist); their forged
// posts, with a valid CSRF token of their own session, are refused by the
// Service (403, its wording) and change nothing but the Service's own
// denied audit event, one per attempt.
func TestOrgManagementRefused(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		a, b := string(w.a.ID), string(w.b.ID)
		for _, who := range []struct {
			email string
			id    authz.UserID
		}{{"mgr.a@example.com", w.mgrA}, {"mem.a@example.com", w.memA}} {
			br := w.as(who.email)
			if p := br.get("/"); p.status != 200 || p.has(`href="/orgs"`) || p.has("Organization Management") {
				t.Errorf("%s's menu offers Organization Management:\n%s", who.email, p.body)
			}
			if p := br.get("/orgs"); p.status != http.StatusNotFound || !p.has("There is no such page.") || p.has("Org B") || p.has("<dialog") {
				t.Errorf("GET /orgs for %s: %d\n%s", who.email, p.status, p.body)
			}
			tok := br.token("/")
			forged := []struct {
				action, org string
				form        url.Values
				event       audit.Action // the denied event it must leave
			}{
				{"/orgs", "", url.Values{"name": {"Forged Org"}}, audit.OrgCreate},
				{"/orgs/" + a + "/rename", a, url.Values{"name": {"Forged"}}, audit.OrgRename},
				{"/orgs/" + b + "/rename", b, url.Values{"name": {"Forged"}}, audit.OrgRename},
				{"/orgs/" + a + "/delete", a, nil, audit.OrgDelete},
				{"/orgs/" + b + "/delete", b, nil, audit.OrgDelete},
			}
			before, events := w.snapshotButAudit(), len(w.orgEvents(who.id))
			for _, f := range forged {
				form := url.Values{"csrf": {tok}}
				for k, v := range f.form {
					form[k] = v
				}
				if p := br.post(f.action, form); p.status != http.StatusForbidden || !p.has("only a PlatformAdmin may do this") {
					t.Errorf("%s's forged POST %s: %d\n%s", who.email, f.action, p.status, p.body)
				}
			}
			if after := w.snapshotButAudit(); after != before {
				t.Errorf("%s's forged posts changed the database:\nbefore:\n%s\nafter:\n%s", who.email, before, after)
			}
			evs := w.orgEvents(who.id)
			if len(evs) != events+len(forged) {
				t.Fatalf("%s: %d org events after %d forged posts, want %d", who.email, len(evs), len(forged), events+len(forged))
			}
			for i, e := range evs[events:] {
				f := forged[i]
				if e.Outcome != audit.Denied || e.Action != f.event || string(e.Org) != f.org || e.Reason != "only a PlatformAdmin may do this" {
					t.Errorf("%s's denied event for POST %s: %+v", who.email, f.action, e)
				}
			}
		}
		if names := w.orgNames(); len(names) != 2 || names[w.a.ID] != "Org A" || names[w.b.ID] != "Org B" {
			t.Errorf("orgs after the forged posts: %v", names)
		}
	})
}

// TestOrgManagementBadInput: a post without the CSRF token is refused
// (403) before anything happens, not even an audit event; an empty,
// blank or over-long name is shown again on its form, 422 with the
// module's wording and the typed name kept (as text), and changes
// nothing; malformed and unknown org ids are error pages.
func TestOrgManagementBadInput(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		admin := w.as("admin@example.com")
		a := string(w.a.ID)
		before := w.snapshot()
		for _, f := range []struct {
			action string
			form   url.Values
		}{
			{"/orgs", url.Values{"name": {"Org C"}}},
			{"/orgs/" + a + "/rename", url.Values{"name": {"Org Z"}}},
			{"/orgs/" + a + "/delete", nil},
		} {
			if p := admin.post(f.action, f.form); p.status != http.StatusForbidden || !p.has("Request refused") {
				t.Errorf("POST %s without a token: %d", f.action, p.status)
			}
		}
		if after := w.snapshot(); after != before {
			t.Errorf("posts without a token changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}

		long := strings.Repeat("<i>", 34) // 102 characters, and markup
		for _, tc := range []struct {
			name, words string
		}{
			{"", "invalid org name: empty"},
			{" \t ", "invalid org name: empty"},
			{long, "invalid org name: longer than 100 characters"},
		} {
			for _, f := range []struct {
				action, verb, field string
			}{
				{"/orgs", "created", "org-name"},
				{"/orgs/" + a + "/rename", "renamed", "rename-" + a},
			} {
				before := w.snapshot()
				p := admin.submit("/orgs", f.action, url.Values{"name": {tc.name}})
				if p.status != http.StatusUnprocessableEntity || !p.has("The organization could not be "+f.verb+": "+tc.words+".") || !p.has(`href="#`+f.field+`"`) {
					t.Errorf("POST %s name %q: %d\n%s", f.action, tc.name, p.status, p.body)
				}
				// The typed name is back in its field, escaped; the other
				// form keeps its own value.
				field := regexp.MustCompile(`<input id="` + regexp.QuoteMeta(f.field) + `"[^>]*>`).FindString(p.body)
				if tc.name == long && !strings.Contains(field, `value="`+strings.Repeat("&lt;i&gt;", 34)+`"`) || !strings.Contains(field, `aria-invalid="true" aria-describedby="name-error"`) {
					t.Errorf("POST %s name %q: the field is %s", f.action, tc.name, field)
				}
				if p.has("<i>") {
					t.Error("the typed name is echoed as markup")
				}
				if f.verb == "created" && !p.has(`value="Org A"`) {
					t.Error("a refused Create changed the rename field of Org A")
				}
				if after := w.snapshot(); after != before {
					t.Errorf("POST %s name %q changed the database", f.action, tc.name)
				}
			}
		}
		if names := w.orgNames(); len(names) != 2 || names[w.a.ID] != "Org A" {
			t.Errorf("orgs after the refused names: %v", names)
		}

		for _, tc := range []struct {
			action string
			status int
		}{
			{"/orgs/not-an-org/rename", http.StatusUnprocessableEntity},
			{"/orgs/not-an-org/delete", http.StatusUnprocessableEntity},
			{"/orgs/" + string(authz.NewOrgID()) + "/rename", http.StatusNotFound},
			{"/orgs/" + string(authz.NewOrgID()) + "/delete", http.StatusNotFound},
		} {
			if p := admin.submit("/orgs", tc.action, url.Values{"name": {"Org Z"}}); p.status != tc.status || !p.has("<main") || p.has("iam:") || p.has("not-an-org") {
				t.Errorf("POST %s: %d, want %d\n%s", tc.action, p.status, tc.status, p.body)
			}
		}
		if names := w.orgNames(); len(names) != 2 || names[w.a.ID] != "Org A" {
			t.Errorf("orgs after unknown ids: %v", names)
		}
	})
}

// TestOrgManagementInBrowser: in Chromium, with the page's strict CSP and
// no script, each row's Delete opens its confirmation as a modal dialog;
// Esc and Cancel close it with nothing deleted; its "Delete organization"
// deletes the org. The Create and Rename forms work as typed.
func TestOrgManagementInBrowser(t *testing.T) {
	forEachKindInBrowser(t, func(t *testing.T, w *world, people func(string) *person) {
		p := people("admin")
		p.open("/login")
		p.fill("email", "admin@example.com")
		p.fill("password", password)
		p.click(`//button[normalize-space()='Sign in']`)
		if st := p.open("/orgs"); st != 200 {
			t.Fatalf("GET /orgs: %d", st)
		}
		p.fill("org-name", "Org C")
		if st := p.click(`//button[normalize-space()='Create organization']`); st != 200 {
			t.Fatalf("create: %d", st)
		}
		p.sees("after create", notices["orgcreated"], "Org C")
		a := string(w.a.ID)
		p.fill("rename-"+a, "Org Alpha")
		if st := p.click(`//button[@aria-label='Rename Org A']`); st != 200 {
			t.Fatalf("rename: %d", st)
		}
		p.sees("after rename", notices["orgrenamed"], "Org Alpha")
		if got := w.orgNames()[w.a.ID]; got != "Org Alpha" {
			t.Errorf("the Service names org a %q", got)
		}

		b := string(w.b.ID)
		dialog := "delete-org-" + b
		opener := `//button[@commandfor='` + dialog + `' and @command='show-modal']`
		modal := func(what string) bool {
			t.Helper()
			ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
			defer cancel()
			m, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("`+dialog+`").matches(":modal")`))
			if err != nil {
				p.failed(what, err)
			}
			return m
		}
		if modal("before the click") {
			t.Fatal("the dialog is open before Delete is clicked")
		}
		p.run("open the dialog", chromedp.Click(opener, chromedp.NodeVisible))
		if !modal("after Delete") {
			t.Fatal("Delete did not open the dialog as a modal")
		}
		if got := p.text("#" + dialog); !strings.Contains(got, "Delete Org B?") || !strings.Contains(got, "This cannot be undone.") {
			t.Errorf("the dialog shows %q", got)
		}
		p.shot("delete-dialog")
		p.run("press Esc", chromedp.KeyEvent(kb.Escape))
		if modal("after Esc") {
			t.Error("Esc did not close the dialog")
		}
		p.run("open the dialog again", chromedp.Click(opener, chromedp.NodeVisible))
		p.run("cancel", chromedp.Click(`//dialog[@id='`+dialog+`']//button[normalize-space()='Cancel']`, chromedp.NodeVisible))
		if modal("after Cancel") {
			t.Error("Cancel did not close the dialog")
		}
		if _, ok := w.orgNames()[w.b.ID]; !ok {
			t.Fatal("opening and closing the dialog deleted the org")
		}
		p.run("open the dialog to delete", chromedp.Click(opener, chromedp.NodeVisible))
		if st := p.click(`//dialog[@id='` + dialog + `']//button[normalize-space()='Delete organization']`); st != 200 {
			t.Fatalf("delete: %d", st)
		}
		p.sees("after delete", notices["orgdeleted"])
		if _, ok := w.orgNames()[w.b.ID]; ok {
			t.Error("org b is still there")
		}
		if n := p.count("//dialog"); n != 2 {
			t.Errorf("%d dialogs for the 2 orgs left", n)
		}
	})
}
