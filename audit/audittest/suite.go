package audittest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// Run is the conformance suite of audit.Store: every implementation must
// pass it. newStore is called once per subtest and must return an empty
// Store of its own (subtests read the whole log with AllOrgs). Subtests
// run in parallel (t.Parallel), so newStore may be called from several
// goroutines at once; clean up with t.Cleanup.
//
// The suite checks, among others: IDs are assigned, positive and
// increasing, also under concurrent appends; invalid events are refused
// and store nothing; every field reads back equal, Before and After byte
// for byte; newest first by ID whatever the times say; every Filter field,
// the scope by Orgs and AllOrgs, time bounds across time zones, the limit
// and its default; cursor pagination that stays stable while new events
// arrive; and the hash chain: every appended event is linked to the one
// before (PrevHash, Hash), also under concurrent appends, so that the
// whole log read oldest first passes audit.Verify.
func Run(t *testing.T, newStore func(t *testing.T) audit.Store) {
	t.Helper()
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// base is the suite's clock: every time is a whole microsecond.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var suite = []struct {
	name string
	run  func(*testing.T, audit.Store)
}{
	{"AppendAssignsIncreasingIDs", testIDs},
	{"AppendRefusesInvalid", testAppendInvalid},
	{"RoundTrip", testRoundTrip},
	{"NewestFirst", testNewestFirst},
	{"FilterFields", testFilterFields},
	{"TimeRange", testTimeRange},
	{"Scope", testScope},
	{"Limit", testLimit},
	{"CursorPagination", testCursor},
	{"CursorWithFilter", testCursorFilter},
	{"ConcurrentAppend", testConcurrentAppend},
	{"InvalidFilter", testInvalidFilter},
	{"NoSharedMemory", testNoSharedMemory},
	{"Chain", testChain},
}

var all = audit.Filter{AllOrgs: true, Limit: audit.MaxLimit}

// event returns a valid Success event at at.
func event(org authz.OrgID, action audit.Action, at time.Time) audit.Event {
	e := audit.NewEvent(at, authz.NewUserID(), action)
	e.Org = org
	return e
}

// add appends e and returns it as stored.
func add(t *testing.T, s audit.Store, e audit.Event) audit.Event {
	t.Helper()
	got, err := s.Append(t.Context(), e)
	if err != nil {
		t.Fatalf("Append(%s): %v", e.Action, err)
	}
	if got.ID <= 0 {
		t.Fatalf("Append assigned ID %d, want a positive one", got.ID)
	}
	if want := audit.ChainHash(got.PrevHash, got); got.PrevHash.IsZero() || got.Hash != want {
		t.Fatalf("Append returned event %d with PrevHash %q and Hash %q, want Hash %q", got.ID, got.PrevHash, got.Hash, want)
	}
	e.ID, e.PrevHash, e.Hash = got.ID, got.PrevHash, got.Hash
	checkEqual(t, "Append's result", got, e)
	return got
}

func query(t *testing.T, s audit.Store, f audit.Filter) []audit.Event {
	t.Helper()
	es, err := s.Events(t.Context(), f)
	if err != nil {
		t.Fatalf("Events(%+v): %v", f, err)
	}
	return es
}

// checkEqual fails unless got and want are the same event (Time as an
// instant, Before and After byte for byte).
func checkEqual(t *testing.T, what string, got, want audit.Event) {
	t.Helper()
	if got.ID != want.ID || !got.Time.Equal(want.Time) || got.Actor != want.Actor ||
		got.Action != want.Action || got.Target != want.Target || got.Org != want.Org ||
		got.ClientAddr != want.ClientAddr || got.Outcome != want.Outcome || got.Reason != want.Reason ||
		!bytes.Equal(got.Before, want.Before) || !bytes.Equal(got.After, want.After) ||
		got.PrevHash != want.PrevHash || got.Hash != want.Hash {
		t.Errorf("%s:\n\tgot  %s\n\twant %s", what, show(got), show(want))
	}
}

func show(e audit.Event) string {
	return fmt.Sprintf("{ID:%d Time:%s Actor:%s Action:%s Target:%s Org:%s ClientAddr:%q Outcome:%s Reason:%q Before:%q After:%q PrevHash:%s Hash:%s}",
		e.ID, e.Time.Format(time.RFC3339Nano), e.Actor, e.Action, e.Target, e.Org, e.ClientAddr, e.Outcome, e.Reason, e.Before, e.After, e.PrevHash, e.Hash)
}

// checkIDs fails unless es are the events want, in that order.
func checkIDs(t *testing.T, what string, es []audit.Event, want ...audit.Event) {
	t.Helper()
	if !slices.Equal(ids(es), ids(want)) {
		t.Errorf("%s: got events %v, want %v", what, ids(es), ids(want))
	}
}

func ids(es []audit.Event) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// newestFirst returns es in ID descending order.
func newestFirst(es ...audit.Event) []audit.Event {
	out := slices.Clone(es)
	slices.SortFunc(out, func(a, b audit.Event) int { return cmp.Compare(b.ID, a.ID) })
	return out
}

func testIDs(t *testing.T, s audit.Store) {
	var prev int64
	var stored []audit.Event
	for i := range 20 {
		e := add(t, s, event(authz.NewOrgID(), audit.Actions()[i%len(audit.Actions())], base.Add(time.Duration(i)*time.Second)))
		if e.ID <= prev {
			t.Fatalf("event %d got ID %d after ID %d, want increasing IDs", i, e.ID, prev)
		}
		prev = e.ID
		stored = append(stored, e)
	}
	got := query(t, s, all)
	checkIDs(t, "Events", got, newestFirst(stored...)...)
	for i, e := range got {
		checkEqual(t, "stored event", e, stored[len(stored)-1-i])
	}
}

func testAppendInvalid(t *testing.T, s audit.Store) {
	valid := event(authz.NewOrgID(), audit.MemberRoleChange, base)
	for _, tc := range []struct {
		name string
		edit func(*audit.Event)
	}{
		{"ID set", func(e *audit.Event) { e.ID = 7 }},
		{"hash set", func(e *audit.Event) { e.Link(audit.Genesis()) }},
		{"prev hash set", func(e *audit.Event) { e.PrevHash = audit.Genesis() }},
		{"zero", func(e *audit.Event) { *e = audit.Event{} }},
		{"no time", func(e *audit.Event) { e.Time = time.Time{} }},
		{"nanoseconds", func(e *audit.Event) { e.Time = e.Time.Add(1) }},
		{"unknown action", func(e *audit.Event) { e.Action = "member.role.steal" }},
		{"no outcome", func(e *audit.Event) { e.Outcome = audit.AnyOutcome }},
		{"bad actor", func(e *audit.Event) { e.Actor = "admin" }},
		{"bad target", func(e *audit.Event) { e.Target = "*" }},
		{"bad org", func(e *audit.Event) { e.Org = "org_X" }},
		{"client address with a line break", func(e *audit.Event) { e.ClientAddr = "10.0.0.1\r\nX: y" }},
		{"overlong client address", func(e *audit.Event) { e.ClientAddr = strings.Repeat("1", audit.MaxClientAddrLen+1) }},
		{"denied without reason", func(e *audit.Event) { e.Outcome = audit.Denied }},
		{"success with a reason", func(e *audit.Event) { e.Reason = "forbidden" }},
		{"overlong reason", func(e *audit.Event) {
			e.Outcome, e.Reason = audit.Denied, strings.Repeat("é", audit.MaxReasonLen+1)
		}},
		{"password in after", func(e *audit.Event) { e.After = json.RawMessage(`{"password":"hunter2hunter2"}`) }},
		{"nested token in before", func(e *audit.Event) { e.Before = json.RawMessage(`{"session":{"Reset_Token":"x"}}`) }},
		{"hash value", func(e *audit.Event) {
			e.After = json.RawMessage(`{"x":["$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"]}`)
		}},
		{"not an object", func(e *audit.Event) { e.After = json.RawMessage(`["role"]`) }},
		{"null", func(e *audit.Event) { e.Before = json.RawMessage(`null`) }},
		{"not JSON", func(e *audit.Event) { e.After = json.RawMessage(`{"role":}`) }},
		{"duplicate key", func(e *audit.Event) { e.After = json.RawMessage(`{"role":"member","role":"manager"}`) }},
		{"overlong change", func(e *audit.Event) {
			e.After = json.RawMessage(`{"x":"` + strings.Repeat("a", audit.MaxChangeLen) + `"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := valid
			tc.edit(&e)
			got, err := s.Append(t.Context(), e)
			if !errors.Is(err, authz.ErrInvalid) {
				t.Errorf("Append = %v, %v; want ErrInvalid", show(got), err)
			}
		})
	}
	checkIDs(t, "Events after refused appends", query(t, s, all))
}

func testRoundTrip(t *testing.T, s audit.Store) {
	full := audit.Event{
		Time:       time.Date(2025, 6, 1, 14, 30, 15, 123456000, time.FixedZone("CEST", 2*3600)),
		Actor:      authz.NewUserID(),
		Action:     audit.MemberCategoriesSet,
		Target:     authz.NewUserID(),
		Org:        authz.NewOrgID(),
		ClientAddr: "[2001:db8::1%eth0]:51234",
		Outcome:    audit.Denied,
		Reason:     "insufficient permissions: missing audit — «ünïcode»",
		// Spacing, number spellings, escapes and key order that any JSON
		// normalization (PostgreSQL jsonb, a float round trip, sorting)
		// would change.
		Before: json.RawMessage(`{"z" : [1, 2.50, -0, 1e3, 12345678901234567890],"a":"\u00e9 é \"q\" \u003c&>",  "nested":{"y":true,"x":null}}`),
		After:  json.RawMessage(`{}`),
	}
	bare := audit.Event{Time: base, Action: audit.SessionLogin, Outcome: audit.Success}
	for _, e := range []audit.Event{full, bare} {
		stored := add(t, s, e)
		got := query(t, s, audit.Filter{AllOrgs: true, Limit: 1})
		if len(got) != 1 {
			t.Fatalf("Events returned %d events, want 1", len(got))
		}
		checkEqual(t, "event read back", got[0], stored)
	}
	// SetChange's encoding is stored as it is.
	e := event(authz.NewOrgID(), audit.MemberRoleChange, base)
	if err := e.SetChange(map[string]any{"role": authz.Member}, map[string]any{"role": authz.Manager}); err != nil {
		t.Fatal(err)
	}
	stored := add(t, s, e)
	got := query(t, s, audit.Filter{AllOrgs: true, Limit: 1})
	if len(got) != 1 || string(got[0].Before) != `{"role":"member"}` || string(got[0].After) != `{"role":"manager"}` {
		t.Errorf("SetChange event read back as %v", got)
	}
	checkEqual(t, "SetChange event read back", got[0], stored)
}

func testNewestFirst(t *testing.T, s audit.Store) {
	org := authz.NewOrgID()
	// Appended in this order, with a clock that jumps back: IDs decide.
	a := add(t, s, event(org, audit.OrgCreate, base.Add(time.Hour)))
	b := add(t, s, event(org, audit.OrgRename, base))
	c := add(t, s, event(org, audit.OrgRename, base.Add(time.Hour)))
	d := add(t, s, event("", audit.SessionLogin, base.Add(-time.Hour)))
	checkIDs(t, "Events", query(t, s, all), d, c, b, a)
	checkIDs(t, "Events of the org", query(t, s, audit.Filter{Orgs: []authz.OrgID{org}}), c, b, a)
}

func testFilterFields(t *testing.T, s audit.Store) {
	orgA, orgB := authz.NewOrgID(), authz.NewOrgID()
	alice, bob, carol := authz.NewUserID(), authz.NewUserID(), authz.NewUserID()
	mk := func(org authz.OrgID, actor, target authz.UserID, action audit.Action, denied bool) audit.Event {
		e := audit.NewEvent(base, actor, action)
		e.Org, e.Target = org, target
		if denied {
			e.Deny(authz.ErrForbidden)
		}
		return add(t, s, e)
	}
	e1 := mk(orgA, alice, bob, audit.MemberRoleChange, false)
	e2 := mk(orgA, bob, alice, audit.MemberRoleChange, true)
	e3 := mk(orgB, alice, carol, audit.MemberCategoriesSet, false)
	e4 := mk(orgB, carol, "", audit.AuditView, false)
	e5 := mk("", alice, alice, audit.ProfileNameChange, false)
	e6 := mk(orgA, carol, bob, audit.MemberRemove, true)
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want []audit.Event
	}{
		{"everything", audit.Filter{AllOrgs: true}, []audit.Event{e6, e5, e4, e3, e2, e1}},
		{"org", audit.Filter{AllOrgs: true, Org: orgA}, []audit.Event{e6, e2, e1}},
		{"actor", audit.Filter{AllOrgs: true, Actor: alice}, []audit.Event{e5, e3, e1}},
		{"target", audit.Filter{AllOrgs: true, Target: bob}, []audit.Event{e6, e1}},
		{"action", audit.Filter{AllOrgs: true, Action: audit.MemberRoleChange}, []audit.Event{e2, e1}},
		{"success", audit.Filter{AllOrgs: true, Outcome: audit.Success}, []audit.Event{e5, e4, e3, e1}},
		{"denied", audit.Filter{AllOrgs: true, Outcome: audit.Denied}, []audit.Event{e6, e2}},
		{"org and actor", audit.Filter{AllOrgs: true, Org: orgB, Actor: alice}, []audit.Event{e3}},
		{"actor and target", audit.Filter{AllOrgs: true, Actor: alice, Target: alice}, []audit.Event{e5}},
		{"action and outcome", audit.Filter{AllOrgs: true, Action: audit.MemberRoleChange, Outcome: audit.Denied}, []audit.Event{e2}},
		{"nobody's", audit.Filter{AllOrgs: true, Actor: authz.NewUserID()}, nil},
		{"unused action", audit.Filter{AllOrgs: true, Action: audit.OrgDelete}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkIDs(t, "Events", query(t, s, tc.f), tc.want...)
		})
	}
}

func testTimeRange(t *testing.T, s audit.Store) {
	org := authz.NewOrgID()
	at := func(d time.Duration) audit.Event { return add(t, s, event(org, audit.OrgRename, base.Add(d))) }
	t0 := at(0)
	t1 := at(time.Hour)
	t1µ := at(time.Hour + time.Microsecond)
	t2 := at(2 * time.Hour)
	// 15:30 in UTC+02:00 is 13:30 UTC: between t1 and t2 as an instant,
	// though its wall clock reads later than t2's.
	zoned := add(t, s, audit.Event{Time: base.Add(90 * time.Minute).In(time.FixedZone("", 2*3600)), Action: audit.OrgRename, Org: org, Outcome: audit.Success})
	scope := []authz.OrgID{org}
	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         []audit.Event
	}{
		{"since is inclusive", base.Add(time.Hour), time.Time{}, []audit.Event{zoned, t2, t1µ, t1}},
		{"until is exclusive", time.Time{}, base.Add(time.Hour), []audit.Event{t0}},
		{"one microsecond", base.Add(time.Hour), base.Add(time.Hour + time.Microsecond), []audit.Event{t1}},
		{"both", base.Add(time.Hour + time.Microsecond), base.Add(2 * time.Hour), []audit.Event{zoned, t1µ}},
		{"bounds in another zone", base.Add(80 * time.Minute).In(time.FixedZone("", -5*3600)), base.Add(100 * time.Minute).In(time.FixedZone("", 9*3600)), []audit.Event{zoned}},
		{"after everything", base.Add(3 * time.Hour), time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkIDs(t, "Events", query(t, s, audit.Filter{Orgs: scope, Since: tc.since, Until: tc.until}), tc.want...)
		})
	}
}

func testScope(t *testing.T, s audit.Store) {
	orgA, orgB, orgC := authz.NewOrgID(), authz.NewOrgID(), authz.NewOrgID()
	a := add(t, s, event(orgA, audit.OrgRename, base))
	b := add(t, s, event(orgB, audit.OrgRename, base))
	c := add(t, s, event(orgC, audit.OrgRename, base))
	none := add(t, s, event("", audit.SessionLogin, base))
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want []audit.Event
	}{
		{"all orgs", audit.Filter{AllOrgs: true}, []audit.Event{none, c, b, a}},
		{"one org", audit.Filter{Orgs: []authz.OrgID{orgB}}, []audit.Event{b}},
		{"two orgs", audit.Filter{Orgs: []authz.OrgID{orgC, orgA}}, []audit.Event{c, a}},
		{"org within the scope", audit.Filter{Orgs: []authz.OrgID{orgA, orgB}, Org: orgA}, []audit.Event{a}},
		{"org outside the scope", audit.Filter{Orgs: []authz.OrgID{orgA, orgB}, Org: orgC}, nil},
		{"an org without events", audit.Filter{Orgs: []authz.OrgID{authz.NewOrgID()}}, nil},
		{"org-less events for PlatformAdmins only", audit.Filter{Orgs: []authz.OrgID{orgA}, Action: audit.SessionLogin}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkIDs(t, "Events", query(t, s, tc.f), tc.want...)
		})
	}
}

func testLimit(t *testing.T, s audit.Store) {
	org := authz.NewOrgID()
	var es []audit.Event
	for i := range audit.DefaultLimit + 5 {
		es = append(es, add(t, s, event(org, audit.OrgRename, base.Add(time.Duration(i)*time.Second))))
	}
	es = newestFirst(es...)
	checkIDs(t, "Events with the default limit", query(t, s, audit.Filter{AllOrgs: true}), es[:audit.DefaultLimit]...)
	checkIDs(t, "Events with limit 7", query(t, s, audit.Filter{AllOrgs: true, Limit: 7}), es[:7]...)
	checkIDs(t, "Events with limit 1", query(t, s, audit.Filter{Orgs: []authz.OrgID{org}, Limit: 1}), es[0])
	checkIDs(t, "Events with the largest limit", query(t, s, audit.Filter{AllOrgs: true, Limit: audit.MaxLimit}), es...)
	for _, limit := range []int{-1, audit.MaxLimit + 1} {
		_, err := s.Events(t.Context(), audit.Filter{AllOrgs: true, Limit: limit})
		if !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("Events with limit %d: %v, want ErrInvalid", limit, err)
		}
	}
}

func testCursor(t *testing.T, s audit.Store) {
	org := authz.NewOrgID()
	var old []audit.Event
	for i := range 10 {
		old = append(old, add(t, s, event(org, audit.OrgRename, base.Add(time.Duration(i)*time.Second))))
	}
	old = newestFirst(old...)
	f := audit.Filter{Orgs: []authz.OrgID{org}, Limit: 4}
	var pages [][]audit.Event
	var fresh []audit.Event
	for page := 0; ; page++ {
		es := query(t, s, f)
		if len(es) == 0 {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		pages = append(pages, es)
		f.Before = es[len(es)-1].ID
		// New events arrive between pages, some at earlier times.
		fresh = append(fresh, add(t, s, event(org, audit.OrgRename, base.Add(-time.Duration(page+1)*time.Hour))))
	}
	want := [][]audit.Event{old[:4], old[4:8], old[8:]}
	if len(pages) != len(want) {
		t.Fatalf("%d pages, want %d: %v", len(pages), len(want), pages)
	}
	for i := range want {
		checkIDs(t, fmt.Sprintf("page %d", i+1), pages[i], want[i]...)
	}
	// A fresh first page starts with the new events.
	checkIDs(t, "first page after the new events", query(t, s, audit.Filter{Orgs: []authz.OrgID{org}, Limit: len(fresh)}), newestFirst(fresh...)...)
	// The cursor is exclusive, and a cursor below every ID ends the log.
	checkIDs(t, "Before the newest old event", query(t, s, audit.Filter{Orgs: []authz.OrgID{org}, Before: old[0].ID, Limit: 2}), old[1:3]...)
	checkIDs(t, "Before the oldest", query(t, s, audit.Filter{Orgs: []authz.OrgID{org}, Before: old[len(old)-1].ID}))
}

func testCursorFilter(t *testing.T, s audit.Store) {
	org := authz.NewOrgID()
	alice := authz.NewUserID()
	var mine []audit.Event
	for i := range 9 {
		e := event(org, audit.MemberRoleChange, base.Add(time.Duration(i)*time.Second))
		if i%3 == 0 {
			e.Actor = alice
		}
		e = add(t, s, e)
		if e.Actor == alice {
			mine = append(mine, e)
		}
	}
	mine = newestFirst(mine...)
	f := audit.Filter{AllOrgs: true, Actor: alice, Limit: 2}
	p1 := query(t, s, f)
	checkIDs(t, "page 1", p1, mine[:2]...)
	if len(p1) == 2 {
		f.Before = p1[1].ID
		checkIDs(t, "page 2", query(t, s, f), mine[2:]...)
	}
}

func testConcurrentAppend(t *testing.T, s audit.Store) {
	const writers, each = 8, 25
	org := authz.NewOrgID()
	got := make([][]audit.Event, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var prev int64
			for i := range each {
				e, err := s.Append(t.Context(), event(org, audit.MemberRoleChange, base.Add(time.Duration(i)*time.Millisecond)))
				if err != nil {
					errs[w] = err
					return
				}
				if e.ID <= prev {
					errs[w] = fmt.Errorf("writer %d: ID %d after its own ID %d", w, e.ID, prev)
					return
				}
				prev = e.ID
				got[w] = append(got[w], e)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var appended []audit.Event
	for _, es := range got {
		appended = append(appended, es...)
	}
	if n := len(slices.Compact(slices.Sorted(slices.Values(ids(appended))))); n != writers*each {
		t.Fatalf("%d distinct IDs for %d appends", n, writers*each)
	}
	checkIDs(t, "Events", query(t, s, all), newestFirst(appended...)...)
	// Concurrent appends never fork the chain.
	res := verify(t, s)
	if !res.OK() || res.Events != writers*each {
		t.Errorf("Verify after concurrent appends = %+v (break %v), want %d intact events", res, res.Break, writers*each)
	}
}

// log reads the whole log, oldest first, a page at a time.
func log(t *testing.T, s audit.Store) []audit.Event {
	t.Helper()
	var es []audit.Event
	f := all
	for {
		page := query(t, s, f)
		es = append(es, page...)
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	slices.Reverse(es)
	return es
}

// verify runs audit.Verify over the whole log.
func verify(t *testing.T, s audit.Store) audit.VerifyResult {
	t.Helper()
	res, err := audit.Verify(seq(log(t, s)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

func seq(es []audit.Event) func(func(audit.Event, error) bool) {
	return func(yield func(audit.Event, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func testChain(t *testing.T, s audit.Store) {
	if res := verify(t, s); !res.OK() || res.Events != 0 || res.Head.ID != 0 || res.Head.Hash != audit.Genesis() {
		t.Errorf("Verify of an empty log = %+v, want intact, no events, head Genesis", res)
	}
	var stored []audit.Event
	for i := range 12 {
		e := event(authz.NewOrgID(), audit.Actions()[i%len(audit.Actions())], base.Add(time.Duration(-i)*time.Minute))
		if i%3 == 1 {
			e.Deny(authz.ErrForbidden)
		}
		stored = append(stored, add(t, s, e))
	}
	for i, e := range stored {
		prev := audit.Genesis()
		if i > 0 {
			prev = stored[i-1].Hash
		}
		if e.PrevHash != prev {
			t.Errorf("event %d: PrevHash %s, want the Hash %s of the event appended before", e.ID, e.PrevHash, prev)
		}
	}
	got := log(t, s)
	checkIDs(t, "the log oldest first", got, stored...)
	for i := range min(len(got), len(stored)) {
		checkEqual(t, "event read back", got[i], stored[i])
	}
	res := verify(t, s)
	last := stored[len(stored)-1]
	if !res.OK() || res.Events != int64(len(stored)) || res.Head.ID != last.ID || res.Head.Hash != last.Hash {
		t.Errorf("Verify = %+v (break %v), want %d intact events ending at %d", res, res.Break, len(stored), last.ID)
	}
	// A checkpoint of the head holds while the log grows.
	cp := res.Head
	more := add(t, s, event("", audit.SessionLogin, base))
	if more.PrevHash != last.Hash {
		t.Errorf("event %d after a verification: PrevHash %s, want %s", more.ID, more.PrevHash, last.Hash)
	}
	if res, err := audit.VerifyWithCheckpoint(seq(log(t, s)), cp); err != nil || !res.OK() || res.Head.ID != more.ID {
		t.Errorf("VerifyWithCheckpoint = %+v, %v; want intact up to %d", res, err, more.ID)
	}
}

func testInvalidFilter(t *testing.T, s audit.Store) {
	add(t, s, event(authz.NewOrgID(), audit.OrgCreate, base))
	org := authz.NewOrgID()
	for _, tc := range []struct {
		name string
		f    audit.Filter
	}{
		{"no scope", audit.Filter{}},
		{"empty scope", audit.Filter{Orgs: []authz.OrgID{}}},
		{"both scopes", audit.Filter{AllOrgs: true, Orgs: []authz.OrgID{org}}},
		{"bad scope org", audit.Filter{Orgs: []authz.OrgID{"*"}}},
		{"bad org", audit.Filter{AllOrgs: true, Org: "org_*"}},
		{"bad actor", audit.Filter{AllOrgs: true, Actor: "usr_"}},
		{"bad target", audit.Filter{AllOrgs: true, Target: "x"}},
		{"unknown action", audit.Filter{AllOrgs: true, Action: "org.*"}},
		{"unknown outcome", audit.Filter{AllOrgs: true, Outcome: 3}},
		{"until before since", audit.Filter{AllOrgs: true, Since: base, Until: base.Add(-time.Second)}},
		{"empty range", audit.Filter{AllOrgs: true, Since: base, Until: base}},
		{"negative cursor", audit.Filter{AllOrgs: true, Before: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.Events(t.Context(), tc.f)
			if !errors.Is(err, authz.ErrInvalid) || len(es) != 0 {
				t.Errorf("Events = %v, %v; want ErrInvalid", ids(es), err)
			}
		})
	}
}

func testNoSharedMemory(t *testing.T, s audit.Store) {
	e := event(authz.NewOrgID(), audit.MemberRoleChange, base)
	e.Before, e.After = json.RawMessage(`{"role":"member"}`), json.RawMessage(`{"role":"manager"}`)
	stored, err := s.Append(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Before) != string(e.Before) || string(stored.After) != string(e.After) {
		t.Fatalf("Append returned %s", show(stored))
	}
	e.After[10] = 'X' // the caller reuses its buffer
	stored.Before[10] = 'X'
	got := query(t, s, all)
	if len(got) != 1 || string(got[0].Before) != `{"role":"member"}` || string(got[0].After) != `{"role":"manager"}` {
		t.Fatalf("stored event changed through the caller's slices: %v", got)
	}
	got[0].After[10] = 'X'
	if again := query(t, s, all); len(again) != 1 || string(again[0].After) != `{"role":"manager"}` {
		t.Errorf("stored event changed through a returned slice: %v", again)
	}
}
