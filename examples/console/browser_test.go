package main

// The seed's flows in a real browser (chrome_test.go), as each role: a
// newcomer signs up, their Manager approves them, grants categories,
// changes their role and removes them through the confirmation modal, and
// the Audit Log, on screen and exported, holds every step. The pages are
// driven as a person drives them; console_test.go covers the same
// handlers with crafted requests, refusals included.

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

const (
	newEmail = "nia.new@example.com"
	newName  = "Nia Newcomer"
)

// Selectors of the console's markup, as a person finds things: by the
// menu entry, the tab, the row's email, the button's visible text.
func menu(entry string) string {
	return `//nav[@aria-label='Main menu']//a[normalize-space()='` + entry + `']`
}

func tab(name string) string {
	return `//nav[@aria-label='User Management tabs']//a[starts-with(normalize-space(), '` + name + `')]`
}

func row(email string) string { return `//tr[td[normalize-space()='` + email + `']]` }

func button(text string) string { return `//button[normalize-space()='` + text + `']` }

const countBadge = `//nav[@aria-label='User Management tabs']//span[contains(concat(' ', @class, ' '), ' count ')]`

// signIn signs in through the login page and checks where it leads.
func (p *person) signIn(email, landing string) {
	p.t.Helper()
	p.open("/login")
	p.fill("email", email)
	p.fill("password", password)
	if st := p.click(button("Sign in")); st != 200 {
		p.t.Fatalf("%s: sign in answered %d: %s", p.name, st, p.main())
	}
	if got := p.path(); got != landing {
		p.t.Fatalf("%s: signed in at %s, want %s: %s", p.name, got, landing, p.main())
	}
}

var requestTime = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC`)

// TestBrowserNewcomer follows one person through the product's flows, each
// step by the role that takes it, and checks what each page shows:
//
//  1. sign-up into Org A's queue from the shared link;
//  2. mgrA sees the request (email, name, org, time, the tab's count,
//     the period filters) and approves it;
//  3. mgrA grants infra and vpn; the newcomer opens Runtime Environments
//     and gets "Insufficient permissions" on Database Management, which
//     names the missing category, the page and the org;
//  4. mgrA makes the newcomer Manager and Member again (Edit Role);
//  5. mgrA removes them through the confirmation modal, which opens
//     with the focus on Cancel: Esc and Cancel change nothing,
//     confirming removes them and revokes their access;
//  6. mgrA and admin find the approval, the grant, the role changes and
//     the removal in the Audit Log and in its CSV and JSON Lines exports,
//     downloaded by the browser.
func TestBrowserNewcomer(t *testing.T) {
	forEachKindInBrowser(t, func(t *testing.T, w *world, people func(string) *person) {
		ctx := t.Context()
		newcomer, mgr := people("newcomer"), people("mgrA")

		// 1. Sign up.
		if st := newcomer.open("/signup?org=" + string(w.a.ID)); st != 200 {
			t.Fatalf("signup page: %d", st)
		}
		if got := newcomer.attr("#org", "value"); got != string(w.a.ID) {
			t.Errorf("the link's org code is not filled in: %q", got)
		}
		newcomer.fill("email", newEmail)
		newcomer.fill("name", newName)
		newcomer.fill("password", password)
		newcomer.shot("signup", "signup")
		if st := newcomer.click(button("Sign up")); st != 200 || newcomer.path() != "/login" {
			t.Fatalf("sign up: %d at %s: %s", st, newcomer.path(), newcomer.main())
		}
		newcomer.sees("after signing up", notices["signedup"])
		newcomer.shot("signed-up")

		// 2. Pending Approvals: the request, the count, the filters; Approve.
		mgr.open("/login")
		mgr.shot("login", "login")
		mgr.signIn("mgr.a@example.com", "/users/pending")
		if got := mgr.text(countBadge); got != "1" {
			t.Errorf("the Pending Approvals tab counts %q, want 1", got)
		}
		req := mgr.text(row(newEmail))
		for _, want := range []string{newEmail, newName, "Org A"} {
			if !strings.Contains(req, want) {
				t.Errorf("the request's row lacks %q: %s", want, req)
			}
		}
		if !requestTime.MatchString(req) {
			t.Errorf("the request's row shows no request time: %s", req)
		}
		for _, period := range []string{"7 days", "30 days", "All"} {
			if n := mgr.count(`//nav[@aria-label='Request period']//a[normalize-space()='` + period + `']`); n != 1 {
				t.Errorf("%d %q filter links, want 1", n, period)
			}
		}
		mgr.click(`//nav[@aria-label='Request period']//a[normalize-space()='7 days']`)
		mgr.sees("the 7 days filter", newEmail)
		mgr.shot("pending-approvals", "pending-approvals")
		mgr.click(row(newEmail) + button("Approve"))
		mgr.sees("after Approve", notices["approved"], "No pending requests")
		if got := mgr.text(countBadge); got != "0" {
			t.Errorf("after Approve the tab counts %q, want 0", got)
		}
		mgr.shot("approved")

		// 3. Permission Management: grant infra and vpn.
		mgr.click(menu("Permission Management"))
		pick := `//ul[@class='picker']//a[contains(normalize-space(), '` + newName + `')]`
		// The picker's link names the user, whom the checks below look
		// up in the Service.
		link, err := url.Parse(mgr.attr(pick, "href"))
		if err != nil {
			t.Fatal(err)
		}
		nia := authz.UserID(link.Query().Get("user"))
		if m, ok := w.member(w.a.ID, nia); !ok || m.Email != newEmail || m.Role != authz.Member {
			t.Fatalf("approved, the newcomer is %+v (member: %v)", m, ok)
		}
		mgr.click(pick)
		mgr.sees("the picked user", "Permissions of "+newName)
		mgr.run("tick infra and vpn", chromedp.Click(chromedp.ID("cat-infra")), chromedp.Click(chromedp.ID("cat-vpn")))
		mgr.click(button("Save"))
		mgr.sees("after Save", notices["saved"], "Permissions of "+newName)
		for id, want := range map[string]bool{"cat-infra": true, "cat-vpn": true, "cat-database": false} {
			if got := mgr.checked(id); got != want {
				t.Errorf("after Save, #%s ticked: %v, want %v", id, got, want)
			}
		}
		mgr.shot("permissions", "permissions")
		if m, _ := w.member(w.a.ID, nia); m.Categories != authz.NewCategorySet(authz.Infra, authz.VPN) {
			t.Fatalf("the Service holds %v, want infra and vpn", m.Categories)
		}

		// The newcomer signs in: infra opens, database is refused with
		// what to ask for.
		newcomer.signIn(newEmail, "/")
		if st := newcomer.click(menu("Runtime Environments")); st != 200 {
			t.Fatalf("Runtime Environments: %d: %s", st, newcomer.main())
		}
		newcomer.sees("Runtime Environments", "Runtime Environments", "Org A", "infra")
		newcomer.shot("feature", "feature")
		if st := newcomer.click(menu("Database Management")); st != 403 {
			t.Fatalf("Database Management answered %d, want 403: %s", st, newcomer.main())
		}
		newcomer.sees("Insufficient permissions", "Insufficient permissions", "Missing permission categories", "database",
			"Database Management", "Org A", "What to send to your Manager", "work-related reason")
		newcomer.shot("insufficient-permissions", "insufficient-permissions")
		newcomer.click(menu("Profile"))
		newcomer.sees("Profile", newName, newEmail, "Org A", "Member", "infra, vpn")
		newcomer.shot("profile", "profile")

		// 4. Edit Role: Manager, then Member again.
		mgr.click(menu("User Management"))
		mgr.click(tab("Users by Organization"))
		for _, role := range []string{"Manager", "Member"} {
			value := mgr.attr(row(newEmail)+`//select/option[normalize-space()='`+role+`']`, "value")
			mgr.run("choose "+role, chromedp.SetValue(row(newEmail)+"//select", value))
			mgr.click(row(newEmail) + button("Edit Role"))
			mgr.sees("after Edit Role to "+role, notices["role"])
			if got := mgr.text(row(newEmail) + "/td[3]"); got != role {
				t.Errorf("after Edit Role to %s the row shows %q", role, got)
			}
			want := map[string]authz.Role{"Manager": authz.Manager, "Member": authz.Member}[role]
			if m, _ := w.member(w.a.ID, nia); m.Role != want {
				t.Fatalf("the Service holds role %v, want %v", m.Role, want)
			}
		}
		mgr.shot("users-by-org", "users-by-org")

		// 5. Remove, through the modal.
		opener := `//button[@aria-label='Remove ` + newName + `']`
		dialog := mgr.attr(opener, "commandfor")
		isModal := func() bool {
			t.Helper()
			return read(mgr, "read the dialog", chromedp.Evaluate[bool](`document.getElementById(`+jsString(dialog)+`).matches(":modal")`))
		}
		before := w.snapshot()
		mgr.run("open the Remove dialog", chromedp.Click(opener, chromedp.NodeVisible), chromedp.WaitVisible(chromedp.ID(dialog)))
		if !isModal() {
			t.Fatal("the Remove dialog is not modal")
		}
		impact := mgr.text("#" + dialog)
		for _, want := range []string{"Remove " + newName + " from Org A?", newEmail, "permissions there are revoked", "infra", "vpn", "Their account stays"} {
			if !strings.Contains(impact, want) {
				t.Errorf("the Remove dialog does not say %q:\n%s", want, impact)
			}
		}
		// Focus starts on the safe choice, and the keyboard closes it.
		if got := read(mgr, "read the focus", chromedp.Evaluate[string](`document.activeElement.textContent`)); got != "Cancel" {
			t.Errorf("the Remove dialog opens with the focus on %q, want Cancel", got)
		}
		mgr.shot("remove-modal", "remove-modal")
		mgr.run("press Esc", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID(dialog)))
		mgr.run("open the Remove dialog again", chromedp.Click(opener, chromedp.NodeVisible), chromedp.WaitVisible(chromedp.ID(dialog)))
		mgr.run("cancel", chromedp.Click(`//dialog[@id='`+dialog+`']`+button("Cancel"), chromedp.NodeVisible), chromedp.WaitNotVisible(chromedp.ID(dialog)))
		if before != w.snapshot() {
			t.Fatal("Esc or Cancel changed something")
		}
		mgr.run("open the Remove dialog again", chromedp.Click(opener, chromedp.NodeVisible), chromedp.WaitVisible(chromedp.ID(dialog)))
		mgr.click(`//dialog[@id='` + dialog + `']` + button("Remove from Org A"))
		mgr.sees("after Remove", notices["removed"], "mem.a@example.com")
		if n := mgr.count(row(newEmail)); n != 0 {
			t.Errorf("the removed user still has %d rows", n)
		}
		mgr.shot("removed")
		if _, ok := w.member(w.a.ID, nia); ok {
			t.Fatal("the Service still holds the removed member")
		}
		for _, c := range []authz.Category{authz.Infra, authz.VPN} {
			if w.svc.Check(ctx, nia, w.a.ID, c).Allowed {
				t.Errorf("the removed member still holds %v", c)
			}
		}
		if st := newcomer.click(menu("Runtime Environments")); st != 403 {
			t.Errorf("removed, Runtime Environments answered %d: %s", st, newcomer.main())
		}
		newcomer.shot("removed-refused")

		// 6. The Audit Log, on screen and exported, for mgrA and for admin.
		admin := people("admin")
		admin.signIn("admin@example.com", "/users/pending")
		want := []audit.Action{audit.RegistrationApprove, audit.MemberCategoriesSet, audit.MemberRoleChange, audit.MemberRemove}
		for i, p := range []*person{mgr, admin} {
			p.click(menu("Audit Log"))
			p.fill("target", string(nia))
			p.click(button("Apply filters"))
			shown := p.text(`//table[contains(@class,'audit')]/tbody`)
			for _, a := range want {
				if !strings.Contains(shown, string(a)) {
					t.Errorf("%s: the Audit Log filtered on the newcomer lacks %s:\n%s", p.name, a, shown)
				}
			}
			if i == 0 {
				p.shot("audit-log", "audit-log")
			} else {
				p.shot("audit-log")
			}
			name, csv := p.download(`//a[normalize-space()='Export CSV']`)
			if !strings.HasSuffix(name, ".csv") {
				t.Errorf("%s: the CSV export is named %q", p.name, name)
			}
			for _, a := range want {
				if !strings.Contains(string(csv), string(a)) {
					t.Errorf("%s: the CSV export lacks %s:\n%s", p.name, a, csv)
				}
			}
			name, jsonl := p.download(`//a[normalize-space()='Export JSON Lines']`)
			if !strings.HasSuffix(name, ".jsonl") {
				t.Errorf("%s: the JSON Lines export is named %q", p.name, name)
			}
			got := map[string]int{}
			for line := range strings.Lines(string(jsonl)) {
				var e struct{ Action, Target string }
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("%s: JSON Lines export: %v in %q", p.name, err, line)
				}
				if e.Target != string(nia) {
					t.Errorf("%s: the export filtered on the newcomer holds an event of %q", p.name, e.Target)
				}
				got[e.Action]++
			}
			for _, a := range want {
				if got[string(a)] == 0 {
					t.Errorf("%s: the JSON Lines export lacks %s: %v", p.name, a, got)
				}
			}
			if got[string(audit.MemberRoleChange)] != 2 {
				t.Errorf("%s: the JSON Lines export holds %d role changes, want 2", p.name, got[string(audit.MemberRoleChange)])
			}
		}
	})
}

// TestBrowserScope: what each role sees of the console's reach. memA has
// no management menu, and User Management answers "Insufficient
// permissions"; mgrA has no All Users tab, its URL answers Not found, and
// mgrA's Users by Organization never shows org b's people, even asked for
// org b; admin has All Users with everyone, and Organization Management
// lists both orgs.
func TestBrowserScope(t *testing.T) {
	forEachKindInBrowser(t, func(t *testing.T, w *world, people func(string) *person) {
		everyone := []string{"admin@example.com", "mgr.a@example.com", "mem.a@example.com", "mgr.b@example.com", "mem.b@example.com"}
		mem := people("memA")
		mem.signIn("mem.a@example.com", "/")
		for _, entry := range []string{"User Management", "Permission Management", "Organization Management"} {
			if n := mem.count(menu(entry)); n != 0 {
				t.Errorf("memA's menu has %s", entry)
			}
		}
		mem.shot("home")
		if st := mem.open("/users/pending"); st != 403 {
			t.Errorf("memA: User Management answered %d, want 403", st)
		}
		mem.sees("User Management", "Insufficient permissions", "Ask your Manager")
		mem.shot("users-refused")

		mgr := people("mgrA")
		mgr.signIn("mgr.a@example.com", "/users/pending")
		if n := mgr.count(tab("All Users")); n != 0 {
			t.Errorf("mgrA sees %d All Users tabs", n)
		}
		if st := mgr.open("/users/all"); st != 404 {
			t.Errorf("mgrA: /users/all answered %d, want 404", st)
		}
		mgr.sees("/users/all", "Not found")
		mgr.shot("all-users-not-found")
		mgr.click(menu("User Management"))
		mgr.click(tab("Users by Organization"))
		shown := mgr.main()
		for _, email := range everyone {
			wantShown := strings.HasSuffix(strings.Split(email, "@")[0], ".a")
			if strings.Contains(shown, email) != wantShown {
				t.Errorf("mgrA's Users by Organization shows %s: %v, want %v", email, !wantShown, wantShown)
			}
		}
		mgr.shot("users-by-org")
		st := mgr.open("/users/org?org=" + string(w.b.ID))
		if st != 404 && st != 403 {
			t.Errorf("mgrA asking for org b's users: %d", st)
		}
		if shown := mgr.main(); strings.Contains(shown, "mem.b@example.com") || strings.Contains(shown, "mgr.b@example.com") {
			t.Errorf("mgrA sees org b's users:\n%s", shown)
		}
		mgr.shot("org-b-refused")

		admin := people("admin")
		admin.signIn("admin@example.com", "/users/pending")
		if st := admin.click(tab("All Users")); st != 200 {
			t.Fatalf("admin: All Users answered %d", st)
		}
		admin.sees("All Users", everyone...)
		admin.shot("all-users")
		if st := admin.click(menu("Organization Management")); st != 200 {
			t.Fatalf("admin: Organization Management answered %d: %s", st, admin.main())
		}
		admin.sees("Organization Management", "Org A", "Org B")
		admin.shot("organization-management", "organization-management")
	})
}
