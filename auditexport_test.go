package iam_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// exported reads an export back into events.
func exported(t *testing.T, format audit.Format, b []byte) []audit.Event {
	t.Helper()
	var out []audit.Event
	if format == audit.JSONLines {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e audit.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			out = append(out, e)
		}
		return out
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], audit.CSVHeader()) {
		t.Fatalf("CSV without its header: %q", rows)
	}
	for _, r := range rows[1:] {
		for i := range r {
			r[i] = audit.UnescapeCell(r[i])
		}
		var e audit.Event
		e.ID, err = strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, r[1]); err != nil {
			t.Fatal(err)
		}
		e.Actor, e.Action, e.Target, e.Org, e.ClientAddr = authz.UserID(r[2]), audit.Action(r[3]), authz.UserID(r[4]), authz.OrgID(r[5]), r[6]
		if e.Outcome, err = audit.ParseOutcome(r[7]); err != nil {
			t.Fatal(err)
		}
		e.Reason = r[8]
		if r[9] != "" {
			e.Before = json.RawMessage(r[9])
		}
		if r[10] != "" {
			e.After = json.RawMessage(r[10])
		}
		if e.PrevHash, err = audit.ParseHash(r[11]); err != nil {
			t.Fatal(err)
		}
		if e.Hash, err = audit.ParseHash(r[12]); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// sameEvents fails unless got and want are the same events in the same
// order, field by field.
func sameEvents(t *testing.T, got, want []audit.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events exported, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || !g.Time.Equal(w.Time) || g.Actor != w.Actor || g.Action != w.Action || g.Target != w.Target ||
			g.Org != w.Org || g.ClientAddr != w.ClientAddr || g.Outcome != w.Outcome || g.Reason != w.Reason ||
			!bytes.Equal(g.Before, w.Before) || !bytes.Equal(g.After, w.After) || g.PrevHash != w.PrevHash || g.Hash != w.Hash {
			t.Errorf("event %d:\ngot  %+v\nwant %+v", i, g, w)
		}
	}
}

func TestExportAudit(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		w := newWorld(e)
		// Something to find in both orgs, a formula among it.
		e.must(e.svc.ChangeRole(e.ctx, w.mgrA, w.memA, w.a, authz.Manager))
		e.must(e.svc.SetCategories(e.ctx, w.mgrB, w.memB, w.b, authz.NewCategorySet(authz.Infra)))
		e.must(e.svc.RenameOrg(e.ctx, e.admin, w.a, "=HYPERLINK(\"http://x\")"))
		if err := e.svc.ChangeRole(e.ctx, w.memB, w.memB, w.b, authz.Manager); !errors.Is(err, iam.ErrForbidden) {
			t.Fatalf("self promotion: %v", err)
		}

		for _, format := range []audit.Format{audit.CSV, audit.JSONLines} {
			t.Run("manager "+format.String(), func(t *testing.T) {
				var buf bytes.Buffer
				e.must(e.svc.ExportAudit(e.ctx, w.mgrA, audit.Filter{}, format, &buf))
				rec := e.lastEvent()
				if rec.Action != audit.AuditExport || rec.Outcome != audit.Success || rec.Actor != w.mgrA || rec.Org != w.a ||
					string(rec.After) != `{"format":"`+format.String()+`"}` || rec.Before != nil {
					t.Errorf("the export's own event %+v (after %s)", rec, rec.After)
				}
				// Exactly Seoul's events before the export's own, newest first.
				want, err := e.svc.UnrecordedAuditEvents(e.ctx, audit.Filter{Org: w.a, Before: rec.ID, Limit: audit.MaxLimit})
				e.must(err)
				got := exported(t, format, buf.Bytes())
				sameEvents(t, got, want)
				if len(got) < 10 {
					t.Errorf("only %d events", len(got))
				}
				// Every event is intact: its hash is the hash of its contents.
				for _, ev := range got {
					if audit.ChainHash(ev.PrevHash, ev) != ev.Hash {
						t.Errorf("event %d does not hash to its hash", ev.ID)
					}
				}
			})
		}
		if b := func() []byte {
			var buf bytes.Buffer
			e.must(e.svc.ExportAudit(e.ctx, w.mgrA, audit.Filter{}, audit.CSV, &buf))
			return buf.Bytes()
		}(); !bytes.Contains(b, []byte(`"{""name"":""=HYPERLINK`)) || bytes.Contains(b, []byte("\n=")) || bytes.Contains(b, []byte(",=")) {
			t.Errorf("the CSV export:\n%s", b)
		}

		t.Run("member with audit, filtered", func(t *testing.T) {
			var buf bytes.Buffer
			f := audit.Filter{Org: w.a, Action: audit.MemberRoleChange, Outcome: audit.Success, Limit: 1}
			e.must(e.svc.ExportAudit(e.ctx, w.auditorA, f, audit.JSONLines, &buf))
			rec := e.lastEvent()
			if rec.Action != audit.AuditExport || rec.Actor != w.auditorA || rec.Org != w.a ||
				string(rec.After) != fmt.Sprintf(`{"org":"%s","action":"member.role.change","outcome":"success","limit":1,"format":"jsonl"}`, w.a) {
				t.Errorf("the export's own event %+v (after %s)", rec, rec.After)
			}
			got := exported(t, audit.JSONLines, buf.Bytes())
			if len(got) != 1 || got[0].Action != audit.MemberRoleChange || got[0].Actor != w.mgrA || got[0].Org != w.a {
				t.Errorf("exported %+v", got)
			}
		})

		for _, c := range []struct {
			name  string
			actor authz.UserID
			f     audit.Filter
			want  error
		}{
			{"member without audit", w.memB, audit.Filter{}, iam.ErrForbidden},
			{"member without audit, own org", w.memB, audit.Filter{Org: w.b}, iam.ErrForbidden},
			{"member with audit, another org", w.auditorA, audit.Filter{Org: w.b}, iam.ErrNotFound},
			{"manager, another org", w.mgrA, audit.Filter{Org: w.b}, iam.ErrNotFound},
		} {
			t.Run("refused: "+c.name, func(t *testing.T) {
				before := e.snap()
				var buf bytes.Buffer
				if err := e.svc.ExportAudit(e.ctx, c.actor, c.f, audit.CSV, &buf); !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				if buf.Len() != 0 {
					t.Errorf("a refused export wrote %q", buf.String())
				}
				e.unchanged(before, 1)
				if ev := e.lastEvent(); ev.Action != audit.AuditExport || ev.Outcome != audit.Denied || ev.Actor != c.actor || ev.Reason == "" || ev.Org != c.f.Org {
					t.Errorf("the denied event %+v", ev)
				}
			})
		}

		t.Run("invalid", func(t *testing.T) {
			before := e.snap()
			var buf bytes.Buffer
			for _, err := range []error{
				e.svc.ExportAudit(e.ctx, w.mgrA, audit.Filter{}, 0, &buf),
				e.svc.ExportAudit(e.ctx, w.mgrA, audit.Filter{Limit: audit.MaxLimit + 1}, audit.CSV, &buf),
				e.svc.ExportAudit(e.ctx, w.mgrA, audit.Filter{Action: "drop"}, audit.CSV, &buf),
				e.svc.ExportAudit(e.ctx, w.mgrA, audit.Filter{AllOrgs: true}, audit.CSV, &buf),
			} {
				if !errors.Is(err, iam.ErrInvalid) {
					t.Errorf("err = %v, want ErrInvalid", err)
				}
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q", buf.String())
			}
			e.unchanged(before, 0)
		})

		t.Run("view recorded", func(t *testing.T) {
			before := e.snap()
			evs, err := e.svc.AuditEvents(e.ctx, w.mgrA, audit.Filter{Action: audit.MemberRoleChange})
			e.must(err)
			for _, ev := range evs {
				if ev.Action != audit.MemberRoleChange {
					t.Errorf("a page holds %+v", ev)
				}
			}
			e.unchanged(before, 1)
			rec := e.lastEvent()
			if rec.Action != audit.AuditView || rec.Outcome != audit.Success || rec.Actor != w.mgrA || rec.Org != w.a ||
				string(rec.After) != `{"action":"member.role.change"}` {
				t.Errorf("the view's event %+v (after %s)", rec, rec.After)
			}
			// A PlatformAdmin reading every org: the event has no org.
			_, err = e.svc.AuditEvents(e.ctx, e.admin, audit.Filter{Limit: 5})
			e.must(err)
			if rec := e.lastEvent(); rec.Action != audit.AuditView || rec.Org != "" || string(rec.After) != `{"limit":5}` {
				t.Errorf("the view's event %+v (after %s)", rec, rec.After)
			}
			// A refused view is recorded as before.
			before = e.snap()
			if _, err := e.svc.AuditEvents(e.ctx, w.memB, audit.Filter{}); !errors.Is(err, iam.ErrForbidden) {
				t.Fatalf("err = %v", err)
			}
			e.unchanged(before, 1)
			if rec := e.lastEvent(); rec.Action != audit.AuditView || rec.Outcome != audit.Denied {
				t.Errorf("the refused view's event %+v", rec)
			}
		})
	})
}

// TestExportAuditChain: a PlatformAdmin's export of the whole log, across
// several pages of the store, is the log: read oldest first it verifies,
// and it ends just before the export's own event.
func TestExportAuditChain(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		for i := range audit.MaxLimit + 50 {
			e.must(e.svc.ChangeName(e.ctx, e.admin, fmt.Sprintf("Ada %d", i)))
		}
		e.must(e.svc.RenameOrg(e.ctx, e.admin, o, "+Seoul"))
		for _, format := range []audit.Format{audit.JSONLines, audit.CSV} {
			var buf bytes.Buffer
			e.must(e.svc.ExportAudit(e.ctx, e.admin, audit.Filter{}, format, &buf))
			rec := e.lastEvent()
			got := exported(t, format, buf.Bytes())
			if len(got) <= audit.MaxLimit+50 || got[0].ID >= rec.ID || rec.PrevHash != got[0].Hash {
				t.Fatalf("%v: %d events, newest %d, the export's event %d", format, len(got), got[0].ID, rec.ID)
			}
			slices.Reverse(got)
			res, err := audit.Verify(func(yield func(audit.Event, error) bool) {
				for _, ev := range got {
					if !yield(ev, nil) {
						return
					}
				}
			})
			e.must(err)
			if !res.OK() || res.Events != int64(len(got)) || res.Head.Hash != rec.PrevHash {
				t.Errorf("%v: the exported log does not verify: %+v", format, res)
			}
			// A capped export stops at its limit.
			buf.Reset()
			e.must(e.svc.ExportAudit(e.ctx, e.admin, audit.Filter{Limit: 7}, format, &buf))
			if n := len(exported(t, format, buf.Bytes())); n != 7 {
				t.Errorf("%v: limit 7 exported %d", format, n)
			}
		}
		res, err := e.svc.VerifyAudit(e.ctx)
		e.must(err)
		if !res.OK() {
			t.Errorf("the log after exports: %+v", res.Break)
		}
	})
}
