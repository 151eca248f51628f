package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// The audit log of an org: a query with filters and cursor paging, and an
// export of the same as CSV or JSON Lines. The Service scopes both to what
// the viewer may see (every org for a PlatformAdmin, their own for a
// Manager, and for a Member only with the audit category).
//
// The export is deliberately simple: it pages through Service.AuditEvents.
// A later issue replaces it with the audit package's exporter.

// eventView is an audit event as the API shows it.
type eventView struct {
	ID         string          `json:"id"`
	Time       time.Time       `json:"time"`
	ActorID    string          `json:"actor_id,omitempty"`
	Action     string          `json:"action"`
	TargetID   string          `json:"target_id,omitempty"`
	OrgID      string          `json:"org_id,omitempty"`
	ClientAddr string          `json:"client_addr,omitempty"`
	Outcome    string          `json:"outcome"`
	Reason     string          `json:"reason,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
}

func eventOf(e audit.Event) eventView {
	return eventView{ID: strconv.FormatInt(e.ID, 10), Time: e.Time.UTC(), ActorID: string(e.Actor), Action: string(e.Action),
		TargetID: string(e.Target), OrgID: string(e.Org), ClientAddr: e.ClientAddr, Outcome: e.Outcome.String(),
		Reason: e.Reason, Before: e.Before, After: e.After}
}

// query returns r's query parameters, refusing unknown and repeated ones
// (a mistyped filter must not read as "no filter").
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &authz.InvalidError{Field: "query", Reason: "malformed query string"}
	}
	out := map[string]string{}
	for k, vs := range vals {
		if !slices.Contains(allowed, k) {
			return nil, &authz.InvalidError{Field: "query", Reason: "unknown parameter " + quoteField(k) + "; want " + strings.Join(allowed, ", ")}
		}
		if len(vs) > 1 {
			return nil, &authz.InvalidError{Field: "query", Reason: "parameter " + quoteField(k) + " given more than once"}
		}
		out[k] = vs[0]
	}
	return out, nil
}

// auditFilterParams are the query parameters of the audit routes (export
// adds format).
var auditFilterParams = []string{"actor", "target", "action", "outcome", "since", "until", "limit", "before"}

// auditFilter builds the filter of an audit route from its query: org from
// the path; actor and target (user ids), action (such as
// member.role.change), outcome (success, denied or any), since and until
// (RFC 3339), limit (1 to 1000) and before (the cursor: an event id).
func auditFilter(org authz.OrgID, q map[string]string) (audit.Filter, error) {
	f := audit.Filter{Org: org}
	bad := func(field, reason string) (audit.Filter, error) {
		return audit.Filter{}, &authz.InvalidError{Field: field, Reason: reason}
	}
	var err error
	if v, ok := q["actor"]; ok {
		if f.Actor, err = authz.ParseUserID(v); err != nil {
			return bad("actor", "not a user id")
		}
	}
	if v, ok := q["target"]; ok {
		if f.Target, err = authz.ParseUserID(v); err != nil {
			return bad("target", "not a user id")
		}
	}
	if v, ok := q["action"]; ok {
		if f.Action, err = audit.ParseAction(v); err != nil {
			return bad("action", "not an action the audit log records")
		}
	}
	if v, ok := q["outcome"]; ok && v != "any" {
		if f.Outcome, err = audit.ParseOutcome(v); err != nil {
			return bad("outcome", "want success, denied or any")
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v, ok := q[p.name]; ok {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return bad(p.name, "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*p.dst = t
		}
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return bad("limit", fmt.Sprintf("want 1 to %d", audit.MaxLimit))
		}
		f.Limit = n
	}
	if v, ok := q["before"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return bad("before", "want the next_cursor of a previous page")
		}
		f.Before = n
	}
	return f, nil
}

// auditEvents answers one page, newest first: {"events": [...],
// "next_cursor": "..."}; pass next_cursor as ?before= for the next page
// (absent on the last page).
func (s *server) auditEvents(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	org, err := orgParam(r)
	if err != nil {
		return err
	}
	q, err := query(r, auditFilterParams...)
	if err != nil {
		return err
	}
	f, err := auditFilter(org, q)
	if err != nil {
		return err
	}
	evs, err := s.svc.AuditEvents(r.Context(), me, f)
	if err != nil {
		return err
	}
	out := struct {
		Events     []eventView `json:"events"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Events: []eventView{}}
	for _, e := range evs {
		out.Events = append(out.Events, eventOf(e))
	}
	limit := f.Limit
	if limit == 0 {
		limit = audit.DefaultLimit
	}
	if len(evs) == limit {
		out.NextCursor = strconv.FormatInt(evs[len(evs)-1].ID, 10)
	}
	return writeJSON(w, http.StatusOK, out)
}

// csvHeader is the first row of a CSV export.
var csvHeader = []string{"id", "time", "actor_id", "action", "target_id", "org_id", "client_addr", "outcome", "reason", "before", "after"}

// auditExport streams the org's events matching the filters, newest first,
// as ?format=csv (the default; text/csv with a header row) or jsonl
// (application/x-ndjson, one event per line). limit caps the number of
// events exported (default: all).
func (s *server) auditExport(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	org, err := orgParam(r)
	if err != nil {
		return err
	}
	q, err := query(r, append([]string{"format"}, auditFilterParams...)...)
	if err != nil {
		return err
	}
	format := "csv"
	if v, ok := q["format"]; ok {
		format = v
	}
	if format != "csv" && format != "jsonl" {
		return &authz.InvalidError{Field: "format", Value: format, Reason: "want csv or jsonl"}
	}
	f, err := auditFilter(org, q)
	if err != nil {
		return err
	}
	remaining := f.Limit // 0: everything
	page := func() ([]audit.Event, error) {
		f.Limit = audit.MaxLimit
		if remaining > 0 {
			f.Limit = min(remaining, audit.MaxLimit)
		}
		return s.svc.AuditEvents(r.Context(), me, f)
	}
	// The first page is read before anything is written, so that a refusal
	// is still a problem answer.
	evs, err := page()
	if err != nil {
		return err
	}

	h := w.Header()
	var write func(audit.Event) error
	var cw *csv.Writer
	switch format {
	case "csv":
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="audit-`+string(org)+`.csv"`)
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		write = func(e audit.Event) error { return cw.Write(csvRow(e)) }
	case "jsonl":
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="audit-`+string(org)+`.jsonl"`)
		enc := json.NewEncoder(w) // escapes CR and LF inside strings: one event, one line
		write = func(e audit.Event) error { return enc.Encode(eventOf(e)) }
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for {
		for _, e := range evs {
			if err := write(e); err != nil {
				return s.abort(r, err)
			}
		}
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return s.abort(r, err)
			}
		}
		_ = rc.Flush()
		if remaining > 0 {
			if remaining -= len(evs); remaining <= 0 {
				return nil
			}
		}
		if len(evs) < f.Limit {
			return nil
		}
		f.Before = evs[len(evs)-1].ID
		if evs, err = page(); err != nil {
			return s.abort(r, err)
		}
	}
}

// abort ends an export whose answer has begun: the connection is cut, so
// the client sees a truncated download rather than a complete-looking one.
func (s *server) abort(r *http.Request, err error) error {
	s.log.Error("apiserver: audit export failed midway", "path", r.URL.Path, "err", err)
	panic(http.ErrAbortHandler)
}

// csvRow is e as a CSV row: times in RFC 3339 UTC, and every cell that a
// spreadsheet would read as a formula (starting with =, +, -, @, tab or
// carriage return) prefixed with an apostrophe (DESIGN.md section 5).
func csvRow(e audit.Event) []string {
	row := []string{strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(time.RFC3339Nano), string(e.Actor), string(e.Action),
		string(e.Target), string(e.Org), e.ClientAddr, e.Outcome.String(), e.Reason, string(e.Before), string(e.After)}
	for i, c := range row {
		row[i] = csvCell(c)
	}
	return row
}

func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
