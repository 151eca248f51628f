package audit

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// Format is an export format: CSV or JSONLines. The zero Format is none
// and is refused by Export.
type Format uint8

// The export formats. Their order never changes.
const (
	// CSV is RFC 4180 CSV with a header row (CSVHeader), one event a row;
	// see WriteCSV.
	CSV Format = iota + 1
	// JSONLines is one JSON object a line ("jsonl"); see WriteJSONLines.
	JSONLines
)

var formatNames = [...]string{CSV: "csv", JSONLines: "jsonl"}

// String returns "csv" or "jsonl".
func (f Format) String() string {
	if f.Valid() {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Valid reports whether f is CSV or JSONLines.
func (f Format) Valid() bool { return f == CSV || f == JSONLines }

// ContentType returns the media type of f's output: "text/csv;
// charset=utf-8" or "application/x-ndjson" ("" for an invalid Format).
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case JSONLines:
		return "application/x-ndjson"
	}
	return ""
}

// ParseFormat parses "csv" or "jsonl", exactly (no upper case, no
// spaces, no aliases). Anything else is an *authz.InvalidError matching
// authz.ErrInvalid.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "csv":
		return CSV, nil
	case "jsonl":
		return JSONLines, nil
	}
	return 0, invalid("audit export format", s, "want csv or jsonl")
}

// MarshalText implements encoding.TextMarshaler: String's form; an
// invalid Format is refused.
func (f Format) MarshalText() ([]byte, error) {
	if !f.Valid() {
		return nil, invalid("audit export format", f.String(), "want csv or jsonl")
	}
	return []byte(f.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseFormat.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// csvHeader is the first row of a CSV export.
var csvHeader = []string{"id", "time", "actor", "action", "target", "org", "client_addr", "outcome", "reason", "before", "after", "prev_hash", "hash"}

// CSVHeader returns the header row of a CSV export (a new slice each
// call): id, time, actor, action, target, org, client_addr, outcome,
// reason, before, after, prev_hash, hash.
func CSVHeader() []string { return slices.Clone(csvHeader) }

// exportTimeLayout is RFC 3339 in UTC with exactly six fractional digits,
// as in the canonical encoding.
const exportTimeLayout = chainTimeLayout

// Export writes events to w in format: WriteCSV for CSV, WriteJSONLines
// for JSONLines. An invalid format is an *authz.InvalidError matching
// authz.ErrInvalid, and nothing is written.
func Export(w io.Writer, format Format, events iter.Seq2[Event, error]) error {
	switch format {
	case CSV:
		return WriteCSV(w, events)
	case JSONLines:
		return WriteJSONLines(w, events)
	}
	return invalid("audit export format", format.String(), "want csv or jsonl")
}

// WriteCSV writes a header row (CSVHeader) and then one row per event, in
// the order events yields them, as RFC 4180 CSV (encoding/csv: fields
// quoted when needed, rows ended by LF). The cells are:
//
//	id           decimal
//	time         RFC 3339 in UTC with six fractional digits ("2026-11-28T09:00:00.123456Z")
//	actor, target, org   the ids, empty when none
//	action       the dotted name
//	client_addr  as recorded
//	outcome      "success" or "denied"
//	reason       as recorded, empty for a success
//	before, after  the JSON text exactly as stored (byte for byte, so the
//	             row still hashes to its hash), empty when nil
//	prev_hash, hash  64 lowercase hex digits, empty when not set
//
// Every cell is escaped against spreadsheet formulas (DESIGN.md section
// 5, OWASP "CSV injection"): a cell that starts with '=', '+', '-', '@',
// a tab or a carriage return, or with an apostrophe, gets one apostrophe
// in front (EscapeCell). Escaping the apostrophe too keeps it reversible:
// UnescapeCell drops one leading apostrophe, and gives back the recorded
// value exactly. JSON in before and after is escaped like any other cell
// (a stored JSON object starts with '{', so in practice it is never
// touched), and is not otherwise rewritten: parse it after UnescapeCell.
//
// WriteCSV streams: it holds one row at a time (and a buffer of a few
// kilobytes), writing as events arrive, so the memory it uses does not
// grow with the number of events. It stops at the first error that
// events yields and returns it as is (what was written so far is flushed
// to w, so treat the output as incomplete); an error writing to w is
// returned wrapped with "audit: export csv". w is not closed.
func WriteCSV(w io.Writer, events iter.Seq2[Event, error]) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("audit: export csv: %w", err)
	}
	row := make([]string, len(csvHeader))
	for e, err := range events {
		if err != nil {
			cw.Flush()
			return err
		}
		row[0] = strconv.FormatInt(e.ID, 10)
		row[1] = e.Time.UTC().Format(exportTimeLayout)
		row[2] = EscapeCell(string(e.Actor))
		row[3] = EscapeCell(string(e.Action))
		row[4] = EscapeCell(string(e.Target))
		row[5] = EscapeCell(string(e.Org))
		row[6] = EscapeCell(e.ClientAddr)
		row[7] = EscapeCell(e.Outcome.String())
		row[8] = EscapeCell(e.Reason)
		row[9] = EscapeCell(string(e.Before))
		row[10] = EscapeCell(string(e.After))
		row[11] = e.PrevHash.String()
		row[12] = e.Hash.String()
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("audit: export csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("audit: export csv: %w", err)
	}
	return nil
}

// formulaStarts are the first characters that make a spreadsheet read a
// cell as a formula (DESIGN.md section 5), and the apostrophe that
// escapes them.
const formulaStarts = "=+-@\t\r'"

// EscapeCell returns s as WriteCSV writes it into a cell: with an
// apostrophe in front when s starts with '=', '+', '-', '@', a tab, a
// carriage return or an apostrophe, and otherwise unchanged.
func EscapeCell(s string) string {
	if s != "" && strings.IndexByte(formulaStarts, s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// UnescapeCell undoes EscapeCell: it drops one leading apostrophe.
// UnescapeCell(EscapeCell(s)) == s for every s.
func UnescapeCell(s string) string {
	return strings.TrimPrefix(s, "'")
}

// jsonLine is an Event as WriteJSONLines encodes it: the Event's own JSON
// form (same keys, same order, same omissions), but with the time always
// in six fractional digits.
type jsonLine struct {
	ID         int64           `json:"id"`
	Time       string          `json:"time"`
	Actor      string          `json:"actor,omitempty"`
	Action     Action          `json:"action"`
	Target     string          `json:"target,omitempty"`
	Org        string          `json:"org,omitempty"`
	ClientAddr string          `json:"client_addr,omitempty"`
	Outcome    Outcome         `json:"outcome"`
	Reason     string          `json:"reason,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	PrevHash   Hash            `json:"prev_hash,omitzero"`
	Hash       Hash            `json:"hash,omitzero"`
}

// WriteJSONLines writes one line per event, in the order events yields
// them: the Event's JSON encoding (the keys of its struct tags: id, time,
// actor, action, target, org, client_addr, outcome, reason, before, after,
// prev_hash, hash, empty ones omitted) followed by LF, with the time in
// RFC 3339 UTC with six fractional digits. Each line decodes with
// encoding/json into an Event equal to the one exported. A line holds no
// raw CR or LF: encoding/json escapes them in strings. HTML characters
// are not escaped, so before and after come out as stored when stored
// compact, which is how SetChange writes them (and so every event the
// Service records): the line then re-hashes to the event's hash. A
// before or after stored with insignificant whitespace comes out
// compacted (JSON Lines allows no line break inside a line); verify such
// a log from the database or a CSV export.
//
// WriteJSONLines streams as WriteCSV does: one event in memory at a time.
// It stops at the first error events yields and returns it as is (what
// was written so far is flushed to w); an error encoding an event (an
// invalid Outcome) or writing to w is returned wrapped with "audit: export
// jsonl". w is not closed.
func WriteJSONLines(w io.Writer, events iter.Seq2[Event, error]) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for e, err := range events {
		if err != nil {
			bw.Flush()
			return err
		}
		if err := enc.Encode(jsonLine{
			ID: e.ID, Time: e.Time.UTC().Format(exportTimeLayout), Actor: string(e.Actor), Action: e.Action,
			Target: string(e.Target), Org: string(e.Org), ClientAddr: e.ClientAddr, Outcome: e.Outcome,
			Reason: e.Reason, Before: e.Before, After: e.After, PrevHash: e.PrevHash, Hash: e.Hash,
		}); err != nil {
			return fmt.Errorf("audit: export jsonl: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export jsonl: %w", err)
	}
	return nil
}
