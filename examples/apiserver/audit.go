package main

import (
	"encoding/json"
	"fmt"
	"io"
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
// The export is Service.ExportAudit, which streams the audit package's
// exporter page by page and records the export in the log.

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
	me, org, err := orgParams(r)
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

// auditExport streams the org's events matching the filters, newest first,
// through Service.ExportAudit: ?format=csv (the default; text/csv with a
// header row, formula-escaped cells) or jsonl (application/x-ndjson, one
// event per line); see audit.WriteCSV and audit.WriteJSONLines. limit caps
// the number of events exported (default: all). The export is recorded in
// the audit log as audit.export.
func (s *server) auditExport(w http.ResponseWriter, r *http.Request) error {
	me, org, err := orgParams(r)
	if err != nil {
		return err
	}
	q, err := query(r, append([]string{"format"}, auditFilterParams...)...)
	if err != nil {
		return err
	}
	format := audit.CSV
	if v, ok := q["format"]; ok {
		if format, err = audit.ParseFormat(v); err != nil {
			return &authz.InvalidError{Field: "format", Value: v, Reason: "want csv or jsonl"}
		}
	}
	f, err := auditFilter(org, q)
	if err != nil {
		return err
	}
	// The answer begins with the first byte of the export: a refusal or a
	// bad filter comes before it, and is still a problem answer.
	out := &exportWriter{w: w, rc: http.NewResponseController(w), start: func() {
		h := w.Header()
		h.Set("Content-Type", format.ContentType())
		h.Set("Content-Disposition", `attachment; filename="audit-`+string(org)+"."+format.String()+`"`)
		w.WriteHeader(http.StatusOK)
	}}
	err = s.svc.ExportAudit(r.Context(), me, f, format, out)
	switch {
	case err != nil && !out.started:
		return err
	case err != nil:
		return s.abort(r, err)
	case !out.started: // nothing at all to write (a JSON Lines export of no events)
		out.start()
	}
	return nil
}

// exportWriter sends the answer's status and headers before the first
// byte of an export, and flushes each write to the client as it comes.
type exportWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	start   func()
	started bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	if !e.started {
		e.started = true
		e.start()
	}
	n, err := e.w.Write(p)
	if err == nil {
		_ = e.rc.Flush()
	}
	return n, err
}

// abort ends an export whose answer has begun: the connection is cut, so
// the client sees a truncated download rather than a complete-looking one.
func (s *server) abort(r *http.Request, err error) error {
	s.log.Error("apiserver: audit export failed midway", "path", r.URL.Path, "err", err)
	panic(http.ErrAbortHandler)
}
