package audit_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/audit/audittest"
	"github.com/kiops/iam/authz"
)

// TestChainHashSpec recomputes a hash from the documented encoding by
// hand, so that the encoding cannot drift from its documentation: logs
// already written must keep verifying.
func TestChainHashSpec(t *testing.T) {
	e := audit.Event{
		ID:         42,
		Time:       time.Date(2025, 6, 1, 14, 30, 15, 123456000, time.FixedZone("CEST", 2*3600)),
		Actor:      "usr_aaaaaaaaaaaaaaaaaaaaaaaaaa",
		Action:     audit.MemberRoleChange,
		Target:     "",
		Org:        "org_bbbbbbbbbbbbbbbbbbbbbbbbbb",
		ClientAddr: "192.0.2.1:443",
		Outcome:    audit.Denied,
		Reason:     "forbidden",
		Before:     json.RawMessage(`{"role":"member"}`),
	}
	var want []byte
	for _, f := range []string{"kiops-iam-audit/v1", "42", "2025-06-01T12:30:15.123456Z", "usr_aaaaaaaaaaaaaaaaaaaaaaaaaa",
		"member.role.change", "", "org_bbbbbbbbbbbbbbbbbbbbbbbbbb", "192.0.2.1:443", "denied", "forbidden", `{"role":"member"}`, ""} {
		want = binary.BigEndian.AppendUint32(want, uint32(len(f)))
		want = append(want, f...)
	}
	if got := audit.AppendCanonical(nil, e); string(got) != string(want) {
		t.Fatalf("AppendCanonical =\n%q\nwant\n%q", got, want)
	}
	genesis := sha256.Sum256([]byte("kiops-iam-audit/v1\x00genesis"))
	if audit.Genesis() != audit.Hash(genesis) {
		t.Errorf("Genesis = %s", audit.Genesis())
	}
	prev := audit.Hash(sha256.Sum256([]byte("prev")))
	sum := sha256.Sum256(slices.Concat([]byte("kiops-iam-audit/v1"), prev[:], want))
	if got := audit.ChainHash(prev, e); got != audit.Hash(sum) {
		t.Errorf("ChainHash = %s, want %s", got, hex.EncodeToString(sum[:]))
	}
	// The chain fields are not hashed; every other field is.
	e2 := e
	e2.PrevHash, e2.Hash = prev, prev
	if audit.ChainHash(prev, e2) != audit.ChainHash(prev, e) {
		t.Error("ChainHash depends on PrevHash or Hash")
	}
	for name, edit := range map[string]func(*audit.Event){
		"id":          func(e *audit.Event) { e.ID++ },
		"time":        func(e *audit.Event) { e.Time = e.Time.Add(time.Microsecond) },
		"actor":       func(e *audit.Event) { e.Actor = "" },
		"action":      func(e *audit.Event) { e.Action = audit.MemberRemove },
		"target":      func(e *audit.Event) { e.Target = e.Actor },
		"org":         func(e *audit.Event) { e.Org = "" },
		"client addr": func(e *audit.Event) { e.ClientAddr = "192.0.2.1:444" },
		"outcome":     func(e *audit.Event) { e.Outcome = audit.Success },
		"reason":      func(e *audit.Event) { e.Reason = "forbidden " },
		"before":      func(e *audit.Event) { e.Before = json.RawMessage(`{"role": "member"}`) },
		"after":       func(e *audit.Event) { e.After = json.RawMessage(`{}`) },
		// Length prefixes keep field boundaries: moving a byte from one
		// field to the next changes the hash.
		"boundary": func(e *audit.Event) { e.ClientAddr, e.Reason = "192.0.2.1:44", "3forbidden" },
	} {
		e2 := e
		edit(&e2)
		if audit.ChainHash(prev, e2) == audit.ChainHash(prev, e) {
			t.Errorf("changing the %s does not change the hash", name)
		}
	}
	if audit.ChainHash(audit.Genesis(), e) == audit.ChainHash(prev, e) {
		t.Error("the hash does not depend on the previous hash")
	}
	// The same instant in another zone is the same event.
	e2 = e
	e2.Time = e.Time.UTC()
	if audit.ChainHash(prev, e2) != audit.ChainHash(prev, e) {
		t.Error("the hash depends on the time zone")
	}
}

func TestHashText(t *testing.T) {
	h := audit.ChainHash(audit.Genesis(), audit.Event{ID: 1})
	b, err := json.Marshal(struct {
		H audit.Hash `json:"h"`
		Z audit.Hash `json:"z"`
	}{H: h})
	if err != nil || string(b) != `{"h":"`+h.String()+`","z":""}` || len(h.String()) != 64 {
		t.Fatalf("JSON = %s, %v", b, err)
	}
	for _, s := range []string{h.String(), strings.ToUpper(h.String()), ""} {
		got, err := audit.ParseHash(s)
		if err != nil || got.String() != strings.ToLower(s) {
			t.Errorf("ParseHash(%q) = %s, %v", s, got, err)
		}
	}
	for _, s := range []string{"x", h.String()[1:], h.String() + "0", "g" + h.String()[1:]} {
		if _, err := audit.ParseHash(s); !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("ParseHash(%q) = %v, want ErrInvalid", s, err)
		}
	}
	e := audit.NewEvent(time.Now(), authz.NewUserID(), audit.SessionLogin)
	e.ID = 3
	e.Link(h)
	var back audit.Event
	b, _ = json.Marshal(e)
	if err := json.Unmarshal(b, &back); err != nil || back.Hash != e.Hash || back.PrevHash != h ||
		!strings.Contains(string(b), `"prev_hash":"`+h.String()+`"`) || !strings.Contains(string(b), `"hash":"`+e.Hash.String()+`"`) {
		t.Errorf("event JSON %s read back as %+v, %v", b, back, err)
	}
	if b, _ := json.Marshal(audit.NewEvent(time.Now(), "", audit.SessionLogin)); strings.Contains(string(b), "hash") {
		t.Errorf("an unchained event's JSON mentions a hash: %s", b)
	}
}

// logOf returns a fake store holding n chained events.
func logOf(t *testing.T, n int) (*audittest.Store, []audit.Event) {
	t.Helper()
	s := audittest.NewStore()
	var es []audit.Event
	for i := range n {
		e := audit.NewEvent(time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC), authz.NewUserID(), audit.OrgRename)
		e.Org = authz.NewOrgID()
		got, err := s.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, got)
	}
	return s, es
}

func TestVerify(t *testing.T) {
	forged := func(id int64, prev audit.Hash) audit.Event {
		e := audit.NewEvent(time.Now(), authz.NewUserID(), audit.UserDelete)
		e.ID = id
		e.Link(prev)
		return e
	}
	for _, tc := range []struct {
		name   string
		tamper func(es []audit.Event) []audit.Event
		id     int64
		p      audit.Problem
	}{
		{"intact", func(es []audit.Event) []audit.Event { return es }, 0, 0},
		{"field changed", func(es []audit.Event) []audit.Event { es[4].Reason = "x"; return es }, 5, audit.Changed},
		{"hash of the head changed", func(es []audit.Event) []audit.Event { es[9].Hash[0]++; return es }, 10, audit.Changed},
		{"first deleted", func(es []audit.Event) []audit.Event { return es[1:] }, 2, audit.Unlinked},
		{"middle deleted", func(es []audit.Event) []audit.Event { return slices.Delete(es, 3, 4) }, 5, audit.Unlinked},
		{"forged inserted, chained to the head", func(es []audit.Event) []audit.Event {
			return append(es, forged(11, es[9].Hash)) // indistinguishable from an append: no break
		}, 0, 0},
		{"forged inserted, chained to a middle event", func(es []audit.Event) []audit.Event {
			return append(es, forged(11, es[4].Hash))
		}, 11, audit.Unlinked},
		{"forged replacing a middle event", func(es []audit.Event) []audit.Event {
			es[5] = forged(6, es[4].Hash)
			return es
		}, 7, audit.Unlinked},
		{"two swapped", func(es []audit.Event) []audit.Event {
			es[2], es[3] = es[3], es[2]
			return es
		}, 4, audit.Unlinked}, // [1 2 4 3 …]: 4 does not follow 2
		{"moved back", func(es []audit.Event) []audit.Event {
			return append(es, es[3])
		}, 4, audit.OutOfOrder},
		{"two swapped, IDs kept", func(es []audit.Event) []audit.Event {
			es[2], es[3] = es[3], es[2]
			es[2].ID, es[3].ID = 3, 4
			return es
		}, 3, audit.Changed},
		{"unchained", func(es []audit.Event) []audit.Event { es[6].Hash = audit.Hash{}; return es }, 7, audit.Unchained},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := logOf(t, 10)
			s.Tamper(tc.tamper)
			res, err := audit.Verify(s.Chain())
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.id == 0 && !res.OK():
				t.Errorf("Verify: %v, want intact", res.Break)
			case tc.id != 0 && (res.Break == nil || res.Break.ID != tc.id || res.Break.Problem != tc.p):
				t.Errorf("Verify: %+v, want %s at %d", res.Break, tc.p, tc.id)
			case tc.id != 0 && res.Events != tc.id-1 && tc.p != audit.Unlinked && tc.p != audit.OutOfOrder:
				t.Errorf("Verify: %d events verified before the break at %d", res.Events, tc.id)
			}
			if res.Break != nil && !strings.HasPrefix(res.Break.Error(), "audit: event ") {
				t.Errorf("Break.Error() = %q", res.Break.Error())
			}
		})
	}
}

func TestVerifyWithCheckpoint(t *testing.T) {
	s, es := logOf(t, 10)
	res, err := audit.Verify(s.Chain())
	if err != nil || !res.OK() || res.Head.ID != 10 || res.Head.Hash != es[9].Hash || res.Events != 10 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	cp := res.Head
	check := func(what string, cp audit.Checkpoint, id int64, p audit.Problem) {
		t.Helper()
		res, err := audit.VerifyWithCheckpoint(s.Chain(), cp)
		if err != nil {
			t.Fatal(err)
		}
		if id == 0 && !res.OK() || id != 0 && (res.Break == nil || res.Break.ID != id || res.Break.Problem != p) {
			t.Errorf("%s: VerifyWithCheckpoint = %+v, want %s at %d", what, res.Break, p, id)
		}
	}
	check("intact", cp, 0, 0)
	check("an older checkpoint", audit.Checkpoint{ID: 4, Hash: es[3].Hash}, 0, 0)
	check("the empty log's checkpoint", audit.Checkpoint{Hash: audit.Genesis()}, 0, 0)
	check("another history", audit.Checkpoint{ID: 4, Hash: es[4].Hash}, 4, audit.Rewritten)
	s.Tamper(func(es []audit.Event) []audit.Event { return es[:7] })
	check("tail deleted", cp, 10, audit.Truncated)
	if _, err := s.Append(t.Context(), audit.NewEvent(time.Now(), "", audit.SessionLogin)); err != nil {
		t.Fatal(err)
	}
	check("tail deleted, then appended to", cp, 10, audit.Truncated)
	s.Tamper(func(es []audit.Event) []audit.Event { return slices.Delete(es, 3, 4) })
	check("the checkpoint's event deleted", audit.Checkpoint{ID: 4, Hash: es[3].Hash}, 5, audit.Unlinked)
	// A checkpoint round-trips through JSON.
	b, err := json.Marshal(audit.Checkpoint{ID: 10, Hash: es[9].Hash, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil || string(b) != `{"id":10,"hash":"`+es[9].Hash.String()+`","at":"2025-01-02T03:04:05Z"}` {
		t.Errorf("Checkpoint JSON = %s, %v", b, err)
	}
}

func TestVerifyStopsOnError(t *testing.T) {
	_, es := logOf(t, 3)
	boom := errors.New("boom")
	res, err := audit.Verify(func(yield func(audit.Event, error) bool) {
		for _, e := range es[:2] {
			if !yield(e, nil) {
				return
			}
		}
		if yield(audit.Event{}, boom) {
			t.Error("Verify went on after an error")
		}
	})
	if err != boom || res.Events != 2 || res.Head.ID != 2 {
		t.Errorf("Verify = %+v, %v; want 2 events and the error", res, err)
	}
}

func TestVerifyFrom(t *testing.T) {
	_, es := logOf(t, 10)
	seq := func(es []audit.Event) func(yield func(audit.Event, error) bool) {
		return func(yield func(audit.Event, error) bool) {
			for _, e := range es {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
	start := audit.Checkpoint{ID: 4, Hash: es[3].Hash}
	for _, tc := range []struct {
		name   string
		start  audit.Checkpoint
		events []audit.Event
		cp     audit.Checkpoint
		id     int64
		p      audit.Problem
		n      int64
	}{
		{"pruned through 4", start, es[4:], audit.Checkpoint{}, 0, 0, 6},
		{"never pruned", audit.Checkpoint{}, es, audit.Checkpoint{}, 0, 0, 10},
		{"pruned, then everything", start, nil, audit.Checkpoint{}, 0, 0, 0},
		{"pruned, without a start", audit.Checkpoint{}, es[4:], audit.Checkpoint{}, 5, audit.Unlinked, 0},
		{"start of another event", audit.Checkpoint{ID: 4, Hash: es[2].Hash}, es[4:], audit.Checkpoint{}, 5, audit.Unlinked, 0},
		{"more pruned than the start says", start, es[5:], audit.Checkpoint{}, 6, audit.Unlinked, 0},
		{"an event at the start", start, es[3:], audit.Checkpoint{}, 4, audit.OutOfOrder, 0},
		{"checkpoint after the start", start, es[4:], audit.Checkpoint{ID: 10, Hash: es[9].Hash}, 0, 0, 6},
		{"checkpoint at the start", start, es[4:], start, 0, 0, 6},
		{"checkpoint before the start", start, es[4:], audit.Checkpoint{ID: 2, Hash: es[1].Hash}, 0, 0, 6},
		{"checkpoint at the start, another hash", start, es[4:], audit.Checkpoint{ID: 4, Hash: es[4].Hash}, 4, audit.Rewritten, 0},
		{"checkpoint after the start, truncated", start, es[4:8], audit.Checkpoint{ID: 10, Hash: es[9].Hash}, 10, audit.Truncated, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := audit.VerifyFrom(tc.start, seq(tc.events), tc.cp)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.id == 0 && (!res.OK() || res.Events != tc.n):
				t.Errorf("VerifyFrom = %d events, %v; want %d intact", res.Events, res.Break, tc.n)
			case tc.id != 0 && (res.Break == nil || res.Break.ID != tc.id || res.Break.Problem != tc.p):
				t.Errorf("VerifyFrom: %+v, want %s at %d", res.Break, tc.p, tc.id)
			}
			if tc.id == 0 && tc.n == 0 && res.Head.ID != tc.start.ID {
				t.Errorf("head %+v, want the start %+v", res.Head, tc.start)
			}
		})
	}
}
