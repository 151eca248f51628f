package main

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// The Audit Log page. Who may read which org's log is the Service's
// business (AuditEvents and ExportAudit scope every read, and record it):
// the console only turns the query into an audit.Filter and shows the
// answer.

// auditPageSize is the number of events a page of the log shows.
const auditPageSize = 50

type auditData struct {
	// Form is the filter as parsed, in canonical form: what the form
	// shows and every link of the page carries.
	Form url.Values
	// AllLabel names the "no org chosen" choice, which the Service scopes
	// to every org the person may see; "" when there is only one.
	AllLabel      string
	Orgs          []identity.Org
	Actions       []audit.Action
	Events        []auditRow
	Older, Newest string // paging links, "" when there is no such page
	CSV, JSONL    string // export links, with the same filters
	Verify        string // the "Verify chain" link, for PlatformAdmins only
	Chain         *audit.VerifyResult
}

// auditRow is an event as the table shows it.
type auditRow struct {
	audit.Event
	OrgName  string
	From, To string // Before and After, clipped
}

// maxChangeShown bounds the before and after a row shows, in code
// points: the table stays readable, and the export holds them whole.
const maxChangeShown = 160

// auditPage shows the log, newest first, a page at a time. The chain's
// status is computed only on asking (?verify=1, the "Verify chain" link):
// VerifyAudit reads and hashes the whole log, every org's, which is too
// much for each page view of a growing log.
func (c *console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f, form, err := parseAuditFilter(q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil {
			c.fail(w, r, s, &authz.InvalidError{Field: "audit filter cursor", Value: v, Reason: "want an event ID"})
			return
		}
	}
	// One event more than a page tells whether an older page exists, so
	// the last page has no "Older events" link leading nowhere.
	f.Limit = auditPageSize + 1
	events, err := c.svc.AuditEvents(ctx(r), s.Me.ID, f)
	if err != nil {
		c.auditFail(w, r, s, err)
		return
	}
	d := &auditData{Form: form, Orgs: s.Orgs, Actions: audit.Actions(),
		CSV: link("/audit/export", form, "format", audit.CSV.String()), JSONL: link("/audit/export", form, "format", audit.JSONLines.String())}
	switch {
	case s.Me.PlatformAdmin:
		d.AllLabel = "All organizations"
	case len(s.Orgs) > 1:
		d.AllLabel = "All my organizations"
	}
	if len(events) > auditPageSize {
		events = events[:auditPageSize]
		d.Older = link("/audit", form, "before", strconv.FormatInt(events[len(events)-1].ID, 10))
	}
	if f.Before != 0 {
		d.Newest = link("/audit", form, "", "")
	}
	for _, e := range events {
		d.Events = append(d.Events, auditRow{Event: e, OrgName: s.org(e.Org).Name, From: clip(string(e.Before)), To: clip(string(e.After))})
	}
	// VerifyAudit takes no actor and covers every org's events: its count
	// alone would tell a Manager how busy the whole platform is, and a
	// break could name another org's event. So only PlatformAdmins, who
	// see every org's log anyway, are offered it.
	if s.Me.PlatformAdmin {
		here := form
		if f.Before != 0 {
			here = maps.Clone(form)
			here.Set("before", strconv.FormatInt(f.Before, 10))
		}
		d.Verify = link("/audit", here, "verify", "1")
		if q.Get("verify") == "1" {
			res, err := c.svc.VerifyAudit(ctx(r))
			if err != nil {
				c.fail(w, r, s, err)
				return
			}
			d.Chain = &res
		}
	}
	c.render(w, r, http.StatusOK, "audit", view{Title: "Audit Log", Nav: "feature-audit", S: s, Data: d})
}

// auditExport streams the log, filtered as the page is (without its
// page cursor: the export holds every matching event), as a CSV or JSON
// Lines download. The Content-Type is the format's own
// (audit.Format.ContentType): text/csv; charset=utf-8, and
// application/x-ndjson for JSON Lines, the name most tools know (no JSON
// Lines type is registered with IANA, and the module names this one).
func (c *console) auditExport(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	format, err := audit.ParseFormat(q.Get("format"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	f, _, err := parseAuditFilter(q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	// The server's write timeout is meant for pages; an export streams for
	// as long as the log is long, so this response goes without one. (Not
	// every ResponseWriter can lift it: a test recorder has no deadline to
	// lift, hence the ignored http.ErrNotSupported.)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	dl := &download{w: w, format: format}
	err = c.svc.ExportAudit(ctx(r), s.Me.ID, f, format, dl)
	switch {
	case err == nil:
		dl.start() // a JSON Lines export of no event writes no byte at all
	case !dl.started:
		// ExportAudit refuses (and fails to record the export) before it
		// writes anything, so a refusal still gets its page.
		c.auditFail(w, r, s, err)
	default:
		// The log could not be read to the end, after the headers and
		// part of the file went out: too late for an error page. Abort
		// the response, so the browser reports a failed download instead
		// of saving a truncated file that looks complete.
		c.log.Error("console: audit export ended midway", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// download is the response of an export: its headers are set at the
// first byte, so that until then the handler may still answer with an
// error page.
type download struct {
	w       http.ResponseWriter
	format  audit.Format
	started bool
}

func (d *download) start() {
	if d.started {
		return
	}
	d.started = true
	h := d.w.Header()
	h.Set("Content-Type", d.format.ContentType())
	h.Set("Content-Disposition", `attachment; filename="kiops-audit-`+time.Now().UTC().Format(time.DateOnly)+"."+d.format.String()+`"`)
	d.w.WriteHeader(http.StatusOK)
}

func (d *download) Write(p []byte) (int, error) {
	d.start()
	return d.w.Write(p)
}

// auditFail shows a refused read of the log. A Member without the audit
// category gets the Service's "Insufficient permissions" naming it, shown
// as the Audit Log's page like the other feature pages (with the org they
// picked, if any); anything else is c.fail's.
func (c *console) auditFail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ipe *authz.InsufficientPermissionsError
	if errors.As(err, &ipe) {
		c.insufficient(w, r, s, featureNames[authz.Audit], s.org(ipe.Org).Name, ipe)
		return
	}
	c.fail(w, r, s, err)
}

// parseAuditFilter reads the filter fields of q into an audit.Filter
// without scope, limit or cursor, and returns them also in canonical
// form for the page's links and form. A malformed value is an
// *authz.InvalidError (a 422 page in the module's wording). The dates
// are whole days in UTC, both included: until=2026-11-28 selects events
// before 2026-11-29T00:00Z.
func parseAuditFilter(q url.Values) (audit.Filter, url.Values, error) {
	var f audit.Filter
	form := url.Values{}
	var err error
	if v := q.Get("org"); v != "" {
		if f.Org, err = authz.ParseOrgID(v); err != nil {
			return f, nil, err
		}
		form.Set("org", v)
	}
	if v := q.Get("action"); v != "" {
		if f.Action, err = audit.ParseAction(v); err != nil {
			return f, nil, err
		}
		form.Set("action", v)
	}
	if v := q.Get("outcome"); v != "" && v != audit.AnyOutcome.String() {
		if f.Outcome, err = audit.ParseOutcome(v); err != nil {
			return f, nil, err
		}
		form.Set("outcome", v)
	}
	for _, p := range []struct {
		key string
		to  *authz.UserID
	}{{"actor", &f.Actor}, {"target", &f.Target}} {
		if v := q.Get(p.key); v != "" {
			if *p.to, err = authz.ParseUserID(v); err != nil {
				return f, nil, err
			}
			form.Set(p.key, v)
		}
	}
	for _, p := range []struct {
		key  string
		to   *time.Time
		days int // the day's start, or the next day's for an inclusive end
	}{{"since", &f.Since, 0}, {"until", &f.Until, 1}} {
		if v := q.Get(p.key); v != "" {
			// The log's times are RFC 3339, which has no year outside
			// 1 to 9999 (audit.Event.Validate refuses them too).
			day, err := time.Parse(time.DateOnly, v)
			t := day.AddDate(0, 0, p.days)
			if err != nil || t.Year() < 1 || t.Year() > 9999 {
				return f, nil, &authz.InvalidError{Field: "audit filter " + p.key + " date", Value: v, Reason: "want a date as YYYY-MM-DD, in the years 0001 to 9999"}
			}
			*p.to = t
			form.Set(p.key, v)
		}
	}
	return f, form, nil
}

// link is path with the query q, and key=value when key is set.
func link(path string, q url.Values, key, value string) string {
	if key != "" {
		q = maps.Clone(q)
		q.Set(key, value)
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// clip shortens s to maxChangeShown code points, marking the cut.
func clip(s string) string {
	n := 0
	for i := range s {
		if n == maxChangeShown {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
