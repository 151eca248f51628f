package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"iter"
	"strconv"
	"time"
)

// ChainVersion names the canonical encoding of an event and the way the
// hash chain is computed (see ChainHash). It is part of every hash, so a
// future encoding cannot be confused with this one.
const ChainVersion = "kiops-iam-audit/v1"

// chainTimeLayout is RFC 3339 in UTC with exactly six fractional digits.
const chainTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Hash is a SHA-256 digest in the audit log's hash chain. Its text form
// (String, MarshalText, and so JSON) is 64 lowercase hex digits; the zero
// Hash means "not set" and its text form is empty.
type Hash [sha256.Size]byte

// genesis is the PrevHash of the first event of every log.
var genesis = Hash(sha256.Sum256([]byte(ChainVersion + "\x00genesis")))

// Genesis returns the PrevHash of the first event of a log:
// SHA-256("kiops-iam-audit/v1" || 0x00 || "genesis"). It is also the hash
// of the head of an empty log (see Checkpoint).
func Genesis() Hash { return genesis }

// IsZero reports whether h is the zero Hash (not set).
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h as 64 lowercase hex digits, or "" for the zero Hash.
func (h Hash) String() string {
	if h.IsZero() {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// MarshalText implements encoding.TextMarshaler: String's form.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; see ParseHash.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses String's form: 64 hex digits (either case), or "" for
// the zero Hash. Anything else is an *authz.InvalidError matching
// authz.ErrInvalid.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if s == "" {
		return h, nil
	}
	if len(s) != 2*len(h) {
		return Hash{}, invalid("audit hash", s, "want 64 hex digits")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, invalid("audit hash", s, "want 64 hex digits")
	}
	return h, nil
}

// AppendCanonical appends the canonical encoding of e to b and returns
// the extended slice. The encoding is, in this order, each field as a
// 4-byte big-endian length followed by that many bytes:
//
//	ChainVersion ("kiops-iam-audit/v1")
//	id           decimal, no sign or leading zeros ("42")
//	time         RFC 3339 in UTC with six fractional digits ("2025-06-01T12:00:00.000000Z")
//	actor        the id, "" when none
//	action       the dotted name ("member.role.change")
//	target       the id, "" when none
//	org          the id, "" when none
//	client_addr  as given
//	outcome      "success" or "denied" (Outcome.String)
//	reason       as given
//	before       the JSON bytes as stored, empty when nil
//	after        the JSON bytes as stored, empty when nil
//
// Every field is what a Store stores exactly (see the package's
// Determinism section), so the encoding of an event read back equals that
// of the event appended. PrevHash and Hash are not part of it. Time is
// encoded in whole microseconds (a finer time is truncated, which Validate
// refuses anyway).
func AppendCanonical(b []byte, e Event) []byte {
	field := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	field(ChainVersion)
	field(strconv.FormatInt(e.ID, 10))
	field(e.Time.UTC().Truncate(time.Microsecond).Format(chainTimeLayout))
	field(string(e.Actor))
	field(string(e.Action))
	field(string(e.Target))
	field(string(e.Org))
	field(e.ClientAddr)
	field(e.Outcome.String())
	field(e.Reason)
	field(string(e.Before))
	field(string(e.After))
	return b
}

// ChainHash returns the hash of e in a chain where prev is the hash of
// the event before it (Genesis for the first event):
//
//	SHA-256(ChainVersion || prev || AppendCanonical(nil, e))
//
// where ChainVersion is its 18 bytes of text and prev its 32 bytes. It
// reads e.ID and the fields AppendCanonical encodes, and ignores e.PrevHash
// and e.Hash. A Store sets e.PrevHash = prev and e.Hash = ChainHash(prev,
// e) when it appends e.
func ChainHash(prev Hash, e Event) Hash {
	h := sha256.New()
	h.Write([]byte(ChainVersion))
	h.Write(prev[:])
	h.Write(AppendCanonical(make([]byte, 0, 256+len(e.Before)+len(e.After)), e))
	return Hash(h.Sum(nil))
}

// Link sets e.PrevHash to prev and e.Hash to ChainHash(prev, e), for a
// Store appending e after the event whose hash is prev (Genesis for the
// first). e.ID must already be assigned.
func (e *Event) Link(prev Hash) {
	e.PrevHash = prev
	e.Hash = ChainHash(prev, *e)
}

// Checkpoint is the head of the log at a time: the ID and Hash of its
// newest event (ID 0 and Genesis for an empty log). Export it (its JSON
// form is {"id":…,"hash":"…","at":"…"}) and keep it apart from the
// database: VerifyWithCheckpoint then detects a log whose tail was cut
// off or rewritten since, which the chain alone cannot.
type Checkpoint struct {
	ID   int64     `json:"id"`
	Hash Hash      `json:"hash"`
	At   time.Time `json:"at"`
}

// Problem says what is wrong with a broken event.
type Problem uint8

// The problems Verify reports. Their order never changes.
const (
	// Changed: the event's stored hash is not the hash of its contents
	// (a field was edited, or contents were swapped with another event's).
	Changed Problem = iota + 1
	// Unlinked: the event is intact, but its PrevHash is not the hash of
	// the event before it: events before it were deleted, or it was
	// inserted or moved there.
	Unlinked
	// Unchained: the event carries no hash at all.
	Unchained
	// OutOfOrder: the event's ID is not greater than the one before it.
	OutOfOrder
	// Truncated: the event a checkpoint names is missing: the log was cut
	// off (or that event deleted) after the checkpoint was taken.
	Truncated
	// Rewritten: the event a checkpoint names is there, but with another
	// hash: history up to it was rewritten after the checkpoint.
	Rewritten
)

var problemNames = [...]string{
	Changed:    "changed",
	Unlinked:   "unlinked",
	Unchained:  "unchained",
	OutOfOrder: "out of order",
	Truncated:  "truncated",
	Rewritten:  "rewritten",
}

// String returns the problem's name ("changed", "unlinked", …).
func (p Problem) String() string {
	if int(p) < len(problemNames) && problemNames[p] != "" {
		return problemNames[p]
	}
	return fmt.Sprintf("Problem(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler: String's form.
func (p Problem) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Break is the first broken place of a log: the event's ID and what is
// wrong with it. It is also an error, for callers that want one.
type Break struct {
	// ID is the broken event's: the changed, unlinked, unchained or
	// out-of-order event, or the ID a checkpoint names for Truncated and
	// Rewritten.
	ID      int64   `json:"id"`
	Problem Problem `json:"problem"`
	// Detail says it in a sentence, with the hashes and IDs involved.
	Detail string `json:"detail"`
}

// Error returns "audit: event ID: problem: detail".
func (b *Break) Error() string {
	return fmt.Sprintf("audit: event %d: %s: %s", b.ID, b.Problem, b.Detail)
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	// Events is the number of events that verified, oldest first, before
	// the break if any.
	Events int64 `json:"events"`
	// Head is the last event that verified (ID 0 and Genesis when none),
	// with At unset: a Checkpoint for later verifications when the log is
	// intact.
	Head Checkpoint `json:"head"`
	// Break is the first broken event, nil when the log is intact.
	Break *Break `json:"break,omitempty"`
}

// OK reports whether the log verified.
func (r VerifyResult) OK() bool { return r.Break == nil }

// Verify walks events, which must be the whole log oldest first (ID
// ascending), and checks the chain: each event's ID is greater than the
// one before; its Hash is ChainHash(PrevHash, event) (else Changed); and
// its PrevHash is the Hash of the event before it, Genesis for the first
// (else Unlinked). It stops at the first broken event and reports it in
// the result's Break. So editing any field of a stored event is Changed at
// that event; deleting an event is Unlinked at the one after it; inserting
// one is Changed or Unlinked at it (or at the one after it, if the forger
// chained it properly); reordering is Changed at the first moved event.
// Deleting events at the end leaves a valid, shorter chain: only a
// Checkpoint taken before detects that (VerifyWithCheckpoint).
//
// IDs need not be consecutive (PostgreSQL's sequences skip IDs of rolled
// back appends), so a gap alone is no break; Detail mentions a gap where
// the chain breaks.
//
// The error is the first error events yields (a storage failure), with
// the result so far; a broken chain is not an error. Verify is pure and
// safe for concurrent use.
func Verify(events iter.Seq2[Event, error]) (VerifyResult, error) {
	return VerifyWithCheckpoint(events, Checkpoint{})
}

// VerifyWithCheckpoint is Verify, and also checks that the log still
// holds the checkpoint's event with the checkpoint's hash: its ID missing
// is Truncated (the tail was cut off, or that very event deleted), another
// hash there is Rewritten. The zero Checkpoint, and one of an empty log
// (ID 0), check nothing more.
func VerifyWithCheckpoint(events iter.Seq2[Event, error], cp Checkpoint) (VerifyResult, error) {
	return VerifyFrom(Checkpoint{}, events, cp)
}

// VerifyFrom is VerifyWithCheckpoint for a log whose oldest events were
// pruned: events starts after start, the checkpoint of the last pruned
// event, instead of at the beginning. The first event's PrevHash must be
// start.Hash (else Unlinked), and every event's ID must be greater than
// start.ID (else OutOfOrder). The zero start (or any start with ID 0)
// means the log was never pruned: the chain starts at Genesis, as for
// VerifyWithCheckpoint.
//
// A checkpoint cp of an event up to start was pruned with it: when cp.ID
// equals start.ID, its hash must be start.Hash (else Rewritten); an older
// cp checks nothing more (its event is gone by design). The result's
// Events counts the events after start; its Head is start when none
// verified. VerifyFrom is pure and safe for concurrent use.
func VerifyFrom(start Checkpoint, events iter.Seq2[Event, error], cp Checkpoint) (VerifyResult, error) {
	res := VerifyResult{Head: Checkpoint{Hash: genesis}}
	if start.ID > 0 {
		res.Head = Checkpoint{ID: start.ID, Hash: start.Hash}
	}
	seen := cp.ID <= res.Head.ID
	if cp.ID > 0 && cp.ID == res.Head.ID && cp.Hash != res.Head.Hash {
		res.Break = &Break{ID: cp.ID, Problem: Rewritten, Detail: fmt.Sprintf("the checkpoint says hash %s, the log was pruned through this event with hash %s: the log up to this event was rewritten", cp.Hash, res.Head.Hash)}
		return res, nil
	}
	for e, err := range events {
		if err != nil {
			return res, err
		}
		if b := check(res.Head, e); b != nil {
			res.Break = b
			return res, nil
		}
		if !seen && e.ID >= cp.ID {
			seen = true
			switch {
			case e.ID > cp.ID:
				res.Break = &Break{ID: cp.ID, Problem: Truncated, Detail: fmt.Sprintf("the checkpoint names event %d with hash %s, which is missing: the log goes from event %d to event %d", cp.ID, cp.Hash, res.Head.ID, e.ID)}
				return res, nil
			case e.Hash != cp.Hash:
				res.Break = &Break{ID: cp.ID, Problem: Rewritten, Detail: fmt.Sprintf("the checkpoint says hash %s, the log holds %s: the log up to this event was rewritten", cp.Hash, e.Hash)}
				return res, nil
			}
		}
		res.Events++
		res.Head = Checkpoint{ID: e.ID, Hash: e.Hash}
	}
	if !seen {
		res.Break = &Break{ID: cp.ID, Problem: Truncated, Detail: fmt.Sprintf("the checkpoint names event %d with hash %s, but the log ends at event %d: its tail was deleted", cp.ID, cp.Hash, res.Head.ID)}
	}
	return res, nil
}

// check returns what is wrong with e following the verified head, or nil.
func check(head Checkpoint, e Event) *Break {
	prevDesc := fmt.Sprintf("the hash %s of event %d", head.Hash, head.ID)
	if head.ID == 0 {
		prevDesc = fmt.Sprintf("the genesis value %s (this is the first event)", head.Hash)
	}
	switch {
	case e.ID <= head.ID:
		return &Break{ID: e.ID, Problem: OutOfOrder, Detail: fmt.Sprintf("follows event %d", head.ID)}
	case e.Hash.IsZero():
		return &Break{ID: e.ID, Problem: Unchained, Detail: "the event has no hash"}
	}
	if want := ChainHash(e.PrevHash, e); want != e.Hash {
		return &Break{ID: e.ID, Problem: Changed, Detail: fmt.Sprintf("stored hash %s, but the event's contents hash to %s: the event was modified", e.Hash, want)}
	}
	if e.PrevHash != head.Hash {
		d := fmt.Sprintf("prev_hash %s is not %s: an event before it was deleted, or it was inserted or moved here", e.PrevHash, prevDesc)
		switch {
		case head.ID > 0 && e.ID == head.ID+2:
			d += fmt.Sprintf(" (ID %d is absent)", head.ID+1)
		case head.ID > 0 && e.ID > head.ID+2:
			d += fmt.Sprintf(" (IDs %d to %d are absent)", head.ID+1, e.ID-1)
		}
		return &Break{ID: e.ID, Problem: Unlinked, Detail: d}
	}
	return nil
}
