package main

import (
	"encoding/csv"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

var (
	eventRowRE = regexp.MustCompile(`<tr id="event-(\d+)">`)
	olderRE    = regexp.MustCompile(`<a href="([^"]+)">Older events</a>`)
)

// eventIDs are the IDs of the events the Audit Log page p shows, in order.
func eventIDs(t *testing.T, p page) []int64 {
	t.Helper()
	var ids []int64
	for _, m := range eventRowRE.FindAllStringSubmatch(p.body, -1) {
		id, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func idsOf(evs []audit.Event) []int64 {
	var ids []int64
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

// events asks the Service directly what actor may see under f.
func (w *world) events(actor authz.UserID, f audit.Filter) []audit.Event {
	w.t.Helper()
	evs, err := w.svc.AuditEvents(w.t.Context(), actor, f)
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

// auditPage opens the Audit Log at path and fails unless it answers 200.
func (b *browser) auditPage(path string) (page, []int64) {
	b.w.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK || !p.has("<h1>Audit Log</h1>") {
		b.w.t.Fatalf("GET %s: %d\n%s", path, p.status, p.body)
	}
	return p, eventIDs(b.w.t, p)
}

// sameAsService fails unless the page's ids are exactly what the Service
// holds for actor under f, newest first, from the page's first event on:
// no gap, no extra, no other order.
func sameAsService(t *testing.T, w *world, actor authz.UserID, f audit.Filter, ids []int64) {
	t.Helper()
	if len(ids) == 0 {
		t.Fatal("the page shows no event")
	}
	f.Before, f.Limit = ids[0]+1, len(ids)
	if want := idsOf(w.events(actor, f)); !slices.Equal(ids, want) {
		t.Fatalf("page shows %v, the Service holds %v", ids, want)
	}
}

// TestAuditLogScope: a PlatformAdmin sees both orgs' events, newest
// first; a Manager only their own org's, and another org's log answers
// as if it did not exist.
func TestAuditLogScope(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		admin := w.as("admin@example.com")
		p, ids := admin.auditPage("/audit")
		sameAsService(t, w, w.admin, audit.Filter{}, ids)
		if !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) {
			t.Errorf("not newest first: %v", ids)
		}
		if !p.has("<td>Org A</td>") || !p.has("<td>Org B</td>") || !p.has(`<option value="">All organizations</option>`) {
			t.Errorf("the PlatformAdmin's page lacks an org's events or the All choice\n%s", p.body)
		}
		if !p.has(`<a href="/features/audit" aria-current="page">Audit Log</a>`) {
			t.Error("the menu does not mark Audit Log as the current page")
		}

		mgr := w.as("mgr.a@example.com")
		p, ids = mgr.auditPage("/audit")
		sameAsService(t, w, w.mgrA, audit.Filter{}, ids)
		bIDs := idsOf(w.events(w.admin, audit.Filter{Org: w.b.ID, Limit: audit.MaxLimit}))
		for _, id := range ids {
			if slices.Contains(bIDs, id) {
				t.Errorf("the Manager of a sees event %d of org b", id)
			}
		}
		if p.has("Org B") || p.has(string(w.b.ID)) || p.has("All organizations") {
			t.Errorf("the Manager's page names org b or offers every org\n%s", p.body)
		}
		p = mgr.get("/audit?org=" + string(w.b.ID))
		if p.status != http.StatusNotFound || p.has("Org B") || eventRowRE.MatchString(p.body) {
			t.Fatalf("Manager of a, org b's log: %d\n%s", p.status, p.body)
		}
		p = mgr.get("/audit/export?format=csv&org=" + string(w.b.ID))
		if p.status != http.StatusNotFound || p.has("Org B") || !p.has("<h1>Not found</h1>") {
			t.Fatalf("Manager of a, org b's export: %d\n%s", p.status, p.body)
		}
	})
}

// TestAuditLogNeedsAuditCategory: a Member without the audit category
// gets the "Insufficient permissions" page (from the menu's link too),
// and no event; once granted audit, their org's log.
func TestAuditLogNeedsAuditCategory(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		mem := w.as("mem.a@example.com")
		for _, path := range []string{"/audit", "/features/audit?org=" + string(w.a.ID), "/audit/export?format=csv"} {
			p := mem.get(path)
			if p.status != http.StatusForbidden || !p.has("<h1>Insufficient permissions</h1>") || !p.has("<code>audit</code>") || eventRowRE.MatchString(p.body) {
				t.Fatalf("Member without audit, %s: %d\n%s", path, p.status, p.body)
			}
		}
		if err := w.svc.SetCategories(t.Context(), w.admin, w.memA, w.a.ID, authz.NewCategorySet(authz.Audit)); err != nil {
			t.Fatal(err)
		}
		p := mem.get("/features/audit?org=" + string(w.a.ID))
		if p.url.Path != "/audit" || p.url.Query().Get("org") != string(w.a.ID) {
			t.Fatalf("the Audit Log menu entry led to %s", p.url)
		}
		p, ids := mem.auditPage("/audit")
		sameAsService(t, w, w.admin, audit.Filter{Org: w.a.ID}, ids)
		if p.has("Org B") || p.has("Verify chain") {
			t.Errorf("the Member's page names org b or offers the chain check\n%s", p.body)
		}
	})
}

// TestAuditLogFilters: each filter narrows the page as the Service's
// filter does; a malformed value is a 422 page that does not repeat it.
func TestAuditLogFilters(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		ctx := t.Context()
		// A refused action: nobody changes their own role.
		if err := w.svc.ChangeRole(ctx, w.mgrA, w.mgrA, w.a.ID, authz.Member); err == nil {
			t.Fatal("a Manager changed their own role")
		}
		admin := w.as("admin@example.com")
		_, ids := admin.auditPage("/audit?action=org.create")
		if want := idsOf(w.events(w.admin, audit.Filter{Action: audit.OrgCreate})); len(ids) != 2 || !slices.Equal(ids, want) {
			t.Fatalf("action=org.create shows %v, want %v", ids, want)
		}
		p, ids := admin.auditPage("/audit?outcome=denied&org=" + string(w.a.ID))
		denied := w.events(w.admin, audit.Filter{Org: w.a.ID, Outcome: audit.Denied})
		if len(denied) == 0 || denied[0].Action != audit.MemberRoleChange || !slices.Equal(ids, idsOf(denied)) || strings.Count(p.body, `<strong class="denied">`) != len(ids) {
			t.Fatalf("outcome=denied shows %v, want %v\n%s", ids, idsOf(denied), p.body)
		}
		if !p.has(`<option value="denied" selected>`) || !p.has(`<option value="`+string(w.a.ID)+`" selected>`) {
			t.Error("the form does not show the filters in use")
		}
		_, ids = admin.auditPage("/audit?actor=" + string(w.mgrA) + "&target=" + string(w.mgrA))
		sameAsService(t, w, w.admin, audit.Filter{Actor: w.mgrA, Target: w.mgrA}, ids)

		// Dates are whole UTC days, both ends included.
		created := w.events(w.admin, audit.Filter{Action: audit.OrgCreate})
		day := created[0].Time.UTC()
		date := func(d int) string { return day.AddDate(0, 0, d).Format(time.DateOnly) }
		for _, tc := range []struct {
			since, until string
			n            int
		}{{date(0), date(0), 2}, {date(0), "", 2}, {"", date(0), 2}, {date(1), "", 0}, {"", date(-1), 0}} {
			q := url.Values{"action": {"org.create"}, "since": {tc.since}, "until": {tc.until}}
			if _, ids := admin.auditPage("/audit?" + q.Encode()); len(ids) != tc.n {
				t.Errorf("since %q until %q: %d events, want %d", tc.since, tc.until, len(ids), tc.n)
			}
		}

		// Refused by the console before the Service is asked: not even
		// an audit event.
		before := w.snapshot()
		for _, q := range []string{"org=<b>o", "action=<b>o", "outcome=<b>o", "actor=<b>o", "target=<b>o", "since=<b>o", "until=2026-02-30", "since=0000-01-01", "until=9999-12-31", "before=<b>o", "before=-1", "since=" + date(1) + "&until=" + date(0)} {
			p := admin.get("/audit?" + strings.ReplaceAll(q, "<b>o", url.QueryEscape("<b>o")))
			if p.status != http.StatusUnprocessableEntity || !p.has("<h1>Invalid request</h1>") || p.has("<b>o") || p.has("&lt;b&gt;o") {
				t.Errorf("%s: %d\n%s", q, p.status, p.body)
			}
		}
		if w.snapshot() != before {
			t.Error("a malformed filter changed the database")
		}
		if p := admin.get("/audit/export?format=xml"); p.status != http.StatusUnprocessableEntity || !p.has("invalid audit export format") {
			t.Errorf("format=xml: %d\n%s", p.status, p.body)
		}
	})
}

// TestAuditLogPaging: with more events than a page, "Older events"
// carries the filters on, and the pages together are the Service's events
// with no overlap and no gap.
func TestAuditLogPaging(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		ctx := t.Context()
		sets := []authz.CategorySet{authz.NewCategorySet(authz.Infra), authz.NewCategorySet(authz.VPN)}
		for i := range 60 {
			if err := w.svc.SetCategories(ctx, w.admin, w.memA, w.a.ID, sets[i%2]); err != nil {
				t.Fatal(err)
			}
		}
		admin := w.as("admin@example.com")
		path := "/audit?action=member.categories.set"
		var pages [][]int64
		for path != "" {
			p, ids := admin.auditPage(path)
			pages = append(pages, ids)
			if len(pages) > 1 && !p.has(`<a href="/audit?action=member.categories.set">Newest events</a>`) {
				t.Errorf("page %d has no link back to the newest events", len(pages))
			}
			path = ""
			if m := olderRE.FindStringSubmatch(p.body); m != nil {
				path = html.UnescapeString(m[1])
				if !strings.Contains(path, "action=member.categories.set") {
					t.Fatalf("the Older link drops the filter: %s", path)
				}
			}
		}
		if len(pages) != 2 || len(pages[0]) != auditPageSize || len(pages[1]) != 10 {
			t.Fatalf("pages of %v events, want 50 then 10", len(pages))
		}
		want := idsOf(w.events(w.admin, audit.Filter{Action: audit.MemberCategoriesSet, Limit: audit.MaxLimit}))
		if got := slices.Concat(pages...); !slices.Equal(got, want) {
			t.Fatalf("the pages hold %v, the Service %v", got, want)
		}
	})
}

// TestAuditLogExport: both formats download as attachments of the right
// type, hold exactly the filtered page's events, escape formulas, and a
// Manager's export holds their org's events only.
func TestAuditLogExport(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		ctx := t.Context()
		if _, err := w.svc.CreateOrg(ctx, w.admin, "=cmd()"); err != nil {
			t.Fatal(err)
		}
		// A client address a proxy took from a header: the one cell an
		// outsider may start with a formula.
		if _, err := w.svc.CreateOrg(iam.WithClientAddr(ctx, "=HYPERLINK(1)"), w.admin, "Org C"); err != nil {
			t.Fatal(err)
		}
		admin := w.as("admin@example.com")
		_, ids := admin.auditPage("/audit?action=org.create")
		if len(ids) != 4 {
			t.Fatalf("%d org.create events, want 4", len(ids))
		}

		body := fetchExport(t, admin, "/audit/export?format=csv&action=org.create", "text/csv; charset=utf-8", "csv")
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("the CSV does not parse: %v\n%s", err, body)
		}
		if !slices.Equal(rows[0], audit.CSVHeader()) {
			t.Fatalf("header %v", rows[0])
		}
		var got []int64
		for _, row := range rows[1:] {
			id, _ := strconv.ParseInt(row[0], 10, 64)
			got = append(got, id)
			for _, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("event %d: a formula cell %q", id, cell)
				}
			}
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("the CSV holds %v, the page %v", got, ids)
		}
		if !strings.Contains(body, `'=HYPERLINK(1)`) || !strings.Contains(body, `=cmd()`) {
			t.Errorf("the formula cells are not there, escaped:\n%s", body)
		}

		body = fetchExport(t, admin, "/audit/export?format=jsonl&action=org.create", "application/x-ndjson", "jsonl")
		got = nil
		for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			var e audit.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got = append(got, e.ID)
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("the JSON Lines hold %v, the page %v", got, ids)
		}

		// The Manager's export, unfiltered, is their org's log only: every
		// org a event recorded before it.
		mgr := w.as("mgr.a@example.com")
		body = fetchExport(t, mgr, "/audit/export?format=csv", "text/csv; charset=utf-8", "csv")
		rows, err = csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || len(rows) < 2 {
			t.Fatalf("Manager's CSV: %v\n%s", err, body)
		}
		got = nil
		for _, row := range rows[1:] {
			id, _ := strconv.ParseInt(row[0], 10, 64)
			got = append(got, id)
			if row[5] != string(w.a.ID) {
				t.Errorf("the Manager of a exported event %d of org %q", id, row[5])
			}
		}
		want := idsOf(w.events(w.admin, audit.Filter{Org: w.a.ID, Before: got[0] + 1, Limit: audit.MaxLimit}))
		if !slices.Equal(got, want) {
			t.Fatalf("the Manager's export holds %v, org a's log %v", got, want)
		}
	})
}

// fetchExport fetches an export and checks its status and headers.
func fetchExport(t *testing.T, b *browser, path, contentType, ext string) string {
	t.Helper()
	res, err := b.c.Get(b.w.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	name := regexp.MustCompile(`^attachment; filename="kiops-audit-(\d{4}-\d{2}-\d{2})\.` + ext + `"$`).FindStringSubmatch(res.Header.Get("Content-Disposition"))
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != contentType || name == nil {
		t.Fatalf("GET %s: %d, %q, %q\n%s", path, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"), body)
	}
	if today := time.Now().UTC(); name[1] != today.Format(time.DateOnly) && name[1] != today.AddDate(0, 0, -1).Format(time.DateOnly) {
		t.Errorf("the file is named for %s", name[1])
	}
	return body
}

// TestAuditChainStatus: a PlatformAdmin who asks sees the chain intact,
// then broken at an event edited in the database; a Manager is never
// shown it.
func TestAuditChainStatus(t *testing.T) {
	forEachKind(t, func(t *testing.T, w *world) {
		admin := w.as("admin@example.com")
		p, _ := admin.auditPage("/audit")
		if !p.has(`">Verify chain</a>`) || p.has("Audit chain") {
			t.Fatalf("before asking: %s", p.body)
		}
		p, _ = admin.auditPage("/audit?verify=1")
		if !regexp.MustCompile(`<p class="notice" role="status">Audit chain verified: \d+ events, intact.</p>`).MatchString(p.body) {
			t.Fatalf("intact chain: %s", p.body)
		}

		mgr := w.as("mgr.a@example.com")
		if p, _ := mgr.auditPage("/audit?verify=1"); p.has("Audit chain") || p.has("Verify chain") {
			t.Fatalf("the Manager is shown the chain's status\n%s", p.body)
		}

		victim := w.events(w.admin, audit.Filter{Org: w.b.ID, Action: audit.OrgCreate})[0]
		res := w.db.Table("iam_audit_events").Where("id = ?", victim.ID).Update("client_addr", "203.0.113.9")
		if res.Error != nil || res.RowsAffected != 1 {
			t.Fatalf("tampering: %v, %d rows", res.Error, res.RowsAffected)
		}
		p, _ = admin.auditPage("/audit?verify=1")
		if !p.has(`<p class="error" role="status">Audit chain BROKEN at event #` + strconv.FormatInt(victim.ID, 10) + `: changed.`) {
			t.Fatalf("tampered chain: %s", p.body)
		}
	})
}
