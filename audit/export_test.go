package audit_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// chained returns n valid events chained from Genesis, with awkward
// values: formula starts, quotes, commas, line-looking JSON, non-ASCII.
func chained(t testing.TB, n int) []audit.Event {
	t.Helper()
	org, actor, target := authz.NewOrgID(), authz.NewUserID(), authz.NewUserID()
	at := time.Date(2026, 11, 28, 9, 0, 0, 123456000, time.FixedZone("KST", 9*3600))
	reasons := []string{"", "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "'quoted", "a, \"b\"", "한국어"}
	prev := audit.Genesis()
	var out []audit.Event
	for i := range n {
		e := audit.NewEvent(at.Add(time.Duration(i)*time.Second), actor, audit.MemberCategoriesSet)
		e.ID = int64(i + 1)
		e.Org = org
		if i%2 == 0 {
			e.Target = target
			e.ClientAddr = "-192.0.2.1"
		}
		if r := reasons[i%len(reasons)]; r != "" {
			e.Deny(fmt.Errorf("%w", authz.ErrForbidden))
			e.Reason = r
		}
		if err := e.SetChange(map[string]string{"note": "=cmd|' /C calc'!A0", "html": "<b>&</b>\r\nline"}, map[string]any{"categories": []string{"infra"}, "n": i}); err != nil {
			t.Fatal(err)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		e.Link(prev)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func seq(evs []audit.Event) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for _, e := range evs {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// parseCSVRow reads a row of WriteCSV back into an Event.
func parseCSVRow(t testing.TB, row []string) audit.Event {
	t.Helper()
	if len(row) != len(audit.CSVHeader()) {
		t.Fatalf("row of %d cells: %q", len(row), row)
	}
	for i := range row {
		row[i] = audit.UnescapeCell(row[i])
	}
	var e audit.Event
	var err error
	if e.ID, err = strconv.ParseInt(row[0], 10, 64); err != nil {
		t.Fatal(err)
	}
	if e.Time, err = time.Parse(time.RFC3339Nano, row[1]); err != nil {
		t.Fatal(err)
	}
	e.Actor, e.Action, e.Target, e.Org, e.ClientAddr = authz.UserID(row[2]), audit.Action(row[3]), authz.UserID(row[4]), authz.OrgID(row[5]), row[6]
	if e.Outcome, err = audit.ParseOutcome(row[7]); err != nil {
		t.Fatal(err)
	}
	e.Reason = row[8]
	if row[9] != "" {
		e.Before = json.RawMessage(row[9])
	}
	if row[10] != "" {
		e.After = json.RawMessage(row[10])
	}
	if e.PrevHash, err = audit.ParseHash(row[11]); err != nil {
		t.Fatal(err)
	}
	if e.Hash, err = audit.ParseHash(row[12]); err != nil {
		t.Fatal(err)
	}
	return e
}

func sameEvent(a, b audit.Event) bool {
	return a.ID == b.ID && a.Time.Equal(b.Time) && a.Actor == b.Actor && a.Action == b.Action && a.Target == b.Target &&
		a.Org == b.Org && a.ClientAddr == b.ClientAddr && a.Outcome == b.Outcome && a.Reason == b.Reason &&
		bytes.Equal(a.Before, b.Before) && bytes.Equal(a.After, b.After) && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

func readCSV(t testing.TB, b []byte) []audit.Event {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("reading the CSV back: %v", err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], audit.CSVHeader()) {
		t.Fatalf("header %q", rows)
	}
	var out []audit.Event
	for _, r := range rows[1:] {
		out = append(out, parseCSVRow(t, r))
	}
	return out
}

func readJSONLines(t testing.TB, b []byte) []audit.Event {
	t.Helper()
	var out []audit.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if bytes.ContainsRune(sc.Bytes(), '\r') {
			t.Errorf("a CR inside line %q", sc.Text())
		}
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportRoundTrip(t *testing.T) {
	evs := chained(t, 40)
	for _, f := range []audit.Format{audit.CSV, audit.JSONLines} {
		t.Run(f.String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := audit.Export(&buf, f, seq(evs)); err != nil {
				t.Fatal(err)
			}
			var got []audit.Event
			if f == audit.CSV {
				got = readCSV(t, buf.Bytes())
			} else {
				got = readJSONLines(t, buf.Bytes())
				if n := bytes.Count(buf.Bytes(), []byte("\n")); n != len(evs) {
					t.Errorf("%d lines, want %d", n, len(evs))
				}
			}
			if len(got) != len(evs) {
				t.Fatalf("%d events back, want %d", len(got), len(evs))
			}
			for i := range evs {
				if !sameEvent(got[i], evs[i]) {
					t.Errorf("event %d:\ngot  %+v\nwant %+v", i, got[i], evs[i])
				}
			}
			// The export is a verifiable chain.
			if res, err := audit.Verify(seq(got)); err != nil || !res.OK() || res.Events != int64(len(evs)) {
				t.Errorf("the exported chain: %+v %v", res, err)
			}
		})
	}
}

func TestExportFormats(t *testing.T) {
	evs := chained(t, 1)
	var c, j bytes.Buffer
	if err := audit.WriteCSV(&c, seq(evs)); err != nil {
		t.Fatal(err)
	}
	if err := audit.WriteJSONLines(&j, seq(evs)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(c.String(), "\n")
	if lines[0] != "id,time,actor,action,target,org,client_addr,outcome,reason,before,after,prev_hash,hash" {
		t.Errorf("header %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "1,2026-11-28T00:00:00.123456Z,") {
		t.Errorf("row %q", lines[1])
	}
	// The JSON line has the keys of the Event's own JSON encoding, in order.
	want, err := json.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if keys(t, j.Bytes()) != keys(t, want) {
		t.Errorf("keys %s, want %s", keys(t, j.Bytes()), keys(t, want))
	}
	if !strings.Contains(j.String(), `"time":"2026-11-28T00:00:00.123456Z"`) || !strings.Contains(j.String(), `"before":`+string(evs[0].Before)+`,`) {
		t.Errorf("line %s", j.String())
	}
	// An empty log is a header alone, or nothing.
	c.Reset()
	j.Reset()
	if err := audit.WriteCSV(&c, seq(nil)); err != nil || c.String() != lines[0]+"\n" {
		t.Errorf("empty CSV %q %v", c.String(), err)
	}
	if err := audit.WriteJSONLines(&j, seq(nil)); err != nil || j.Len() != 0 {
		t.Errorf("empty JSONL %q %v", j.String(), err)
	}
}

func keys(t testing.TB, line []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var ks []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(ks, ",")
}

func TestFormulaEscaping(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"=1+2", "'=1+2"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'already", "''already"},
		{"a=1", "a=1"},
		{" =1", " =1"},
		{"{\"a\":1}", "{\"a\":1}"},
		{"usr_x", "usr_x"},
		{"１", "１"},
	} {
		t.Run(strconv.Quote(c.in), func(t *testing.T) {
			if got := audit.EscapeCell(c.in); got != c.want {
				t.Errorf("EscapeCell(%q) = %q, want %q", c.in, got, c.want)
			}
			if got := audit.UnescapeCell(audit.EscapeCell(c.in)); got != c.in {
				t.Errorf("round trip %q -> %q", c.in, got)
			}
		})
	}
	// In a file: a denied event whose reason starts with '=' comes out
	// escaped, as does a client address starting with '-'.
	var buf bytes.Buffer
	if err := audit.WriteCSV(&buf, seq(chained(t, 2))); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rows[1][6] != "'-192.0.2.1" || rows[2][8] != `'=HYPERLINK("http://x")` {
		t.Errorf("rows %q", rows[1:])
	}
	for _, r := range rows {
		for _, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("unescaped cell %q", cell)
			}
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want audit.Format
	}{{"csv", audit.CSV}, {"jsonl", audit.JSONLines}} {
		f, err := audit.ParseFormat(c.in)
		if err != nil || f != c.want || f.String() != c.in {
			t.Errorf("ParseFormat(%q) = %v, %v", c.in, f, err)
		}
	}
	for _, in := range []string{"", "CSV", "json", "ndjson", " csv", "xlsx", "jsonl\n"} {
		if _, err := audit.ParseFormat(in); !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("ParseFormat(%q): %v", in, err)
		}
	}
	if err := audit.Export(io.Discard, 0, seq(nil)); !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("Export of no format: %v", err)
	}
	if audit.CSV.ContentType() != "text/csv; charset=utf-8" || audit.JSONLines.ContentType() != "application/x-ndjson" {
		t.Error("content types")
	}
}

// failingWriter fails after n bytes.
type failingWriter struct{ n int }

var errDisk = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errDisk
	}
	w.n -= len(p)
	return len(p), nil
}

func TestExportErrors(t *testing.T) {
	evs := chained(t, 200)
	errStore := errors.New("store down")
	failing := func(yield func(audit.Event, error) bool) {
		for i, e := range evs {
			if i == 3 {
				yield(audit.Event{}, errStore)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
	for _, f := range []audit.Format{audit.CSV, audit.JSONLines} {
		var buf bytes.Buffer
		if err := audit.Export(&buf, f, failing); !errors.Is(err, errStore) {
			t.Errorf("%v: a failing source: %v", f, err)
		}
		if err := audit.Export(&failingWriter{n: 10000}, f, seq(evs)); !errors.Is(err, errDisk) {
			t.Errorf("%v: a failing writer: %v", f, err)
		}
	}
}

// TestExportMemoryBounded exports 100,000 events from a generator and
// measures the live heap while the last event is written: it must not
// hold the events (or the output) it has already written.
func TestExportMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 events")
	}
	const n = 100_000
	tmpl := chained(t, 2)
	for _, f := range []audit.Format{audit.CSV, audit.JSONLines} {
		t.Run(f.String(), func(t *testing.T) {
			var base, last runtime.MemStats
			gen := func(yield func(audit.Event, error) bool) {
				for i := range n {
					e := tmpl[i%2]
					e.ID = int64(i + 1)
					e.Reason = ""
					e.Outcome = audit.Success
					e.Before = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 100)))
					if i == n-1 {
						runtime.GC()
						runtime.ReadMemStats(&last)
					}
					if !yield(e, nil) {
						return
					}
				}
			}
			var w countingWriter
			runtime.GC()
			runtime.ReadMemStats(&base)
			if err := audit.Export(&w, f, gen); err != nil {
				t.Fatal(err)
			}
			grew := int64(last.HeapAlloc) - int64(base.HeapAlloc)
			t.Logf("%s: %d events, %d bytes written, live heap grew by %d bytes, %d bytes allocated in all", f, n, w.n, grew, last.TotalAlloc-base.TotalAlloc)
			if w.n < 20<<20 {
				t.Fatalf("only %d bytes written", w.n)
			}
			if grew > 2<<20 {
				t.Errorf("the live heap grew by %d bytes during an export of %d bytes: events are being held", grew, w.n)
			}
		})
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func BenchmarkExport(b *testing.B) {
	evs := chained(b, 1000)
	for _, f := range []audit.Format{audit.CSV, audit.JSONLines} {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := audit.Export(io.Discard, f, seq(evs)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzExportRoundTrip: any valid event comes back equal from both
// formats, and no CSV cell starts a formula.
func FuzzExportRoundTrip(f *testing.F) {
	f.Add(int64(1), int64(1764320400123456), "192.0.2.1", "=1+1", "note", "-x", true)
	f.Add(int64(7), int64(0), "", "", "k", "", false)
	f.Add(int64(1<<40), int64(-1000000), "@host", "'=x", "\r\n", "<&>\u2028", true)
	f.Fuzz(func(t *testing.T, id, micros int64, addr, reason, key, val string, denied bool) {
		if id <= 0 {
			return
		}
		e := audit.NewEvent(time.UnixMicro(micros), authz.NewUserID(), audit.OrgRename)
		e.ID, e.Org, e.ClientAddr = id, authz.NewOrgID(), addr
		if denied {
			e.Outcome, e.Reason = audit.Denied, reason
		}
		if err := e.SetChange(map[string]string{key: val}, map[string]string{"name": reason}); err != nil {
			return
		}
		if e.Validate() != nil {
			return
		}
		e.Link(audit.Genesis())
		for _, fm := range []audit.Format{audit.CSV, audit.JSONLines} {
			var buf bytes.Buffer
			if err := audit.Export(&buf, fm, seq([]audit.Event{e})); err != nil {
				t.Fatalf("%v: %v", fm, err)
			}
			var got []audit.Event
			if fm == audit.CSV {
				rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					for _, c := range r {
						if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
							t.Fatalf("unescaped cell %q", c)
						}
					}
				}
				got = readCSV(t, buf.Bytes())
			} else {
				if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 || bytes.ContainsRune(buf.Bytes(), '\r') {
					t.Fatalf("not one line: %q", buf.String())
				}
				got = readJSONLines(t, buf.Bytes())
			}
			if len(got) != 1 || !sameEvent(got[0], e) {
				t.Fatalf("%v: got %+v, want %+v", fm, got, e)
			}
			if res, _ := audit.Verify(seq(got)); !res.OK() {
				t.Fatalf("%v: %v", fm, res.Break)
			}
		}
	})
}
