package approvaltest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
)

// Run is the conformance suite of approval.Store: every implementation
// must pass it. newStore is called once per subtest and must return a
// Store of its own (each subtest works in fresh orgs and users, so a store
// shared by subtests works too, as long as nothing else writes those).
// Subtests run in parallel (t.Parallel), so newStore may be called from
// several goroutines at once; clean up with t.Cleanup.
//
// The suite checks, among others: requests read back as written (times to
// the microsecond), a second Pending request of a person for an org is
// ErrPending while re-applying after a decision is allowed, of concurrent
// CreateRequest and DecideRequest calls exactly one wins, a request is
// decided once, the period boundary is inclusive, lists are newest first,
// the pending count, and deletion by user and by org.
func Run(t *testing.T, newStore func(t *testing.T) approval.Store) {
	t.Helper()
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// base is the suite's clock: every time is a whole microsecond in UTC.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var suite = []struct {
	name string
	run  func(*testing.T, approval.Store)
}{
	{"CreateAndRead", testCreateAndRead},
	{"CreateInvalid", testCreateInvalid},
	{"RequestNotFound", testRequestNotFound},
	{"SecondPendingRefused", testSecondPending},
	{"ConcurrentCreate", testConcurrentCreate},
	{"DuplicateID", testDuplicateID},
	{"ReapplyAfterDecision", testReapply},
	{"Decide", testDecide},
	{"DecideOnlyFromPending", testDecideTwice},
	{"DecideNotFound", testDecideNotFound},
	{"DecideInvalid", testDecideInvalid},
	{"ConcurrentDecide", testConcurrentDecide},
	{"NewestFirst", testNewestFirst},
	{"PeriodBoundaries", testPeriodBoundaries},
	{"StatusFilter", testStatusFilter},
	{"OrgIsolation", testOrgIsolation},
	{"PendingCount", testPendingCount},
	{"DeleteUserRequests", testDeleteUser},
	{"DeleteOrgRequests", testDeleteOrg},
}

// newRequest returns a valid Pending request made at at.
func newRequest(t *testing.T, org authz.OrgID, user authz.UserID, at time.Time) approval.Request {
	t.Helper()
	r, err := approval.NewRequest(org, user, "ada@example.com", "Ada Lovelace", at)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	return r
}

// create stores a new Pending request made at at and returns it.
func create(t *testing.T, s approval.Store, org authz.OrgID, user authz.UserID, at time.Time) approval.Request {
	t.Helper()
	r := newRequest(t, org, user, at)
	if err := s.CreateRequest(t.Context(), r); err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	return r
}

// decide records a decision on r and returns r as it should now be stored.
func decide(t *testing.T, s approval.Store, r approval.Request, to approval.Status, reason string, at time.Time) approval.Request {
	t.Helper()
	by := authz.NewUserID()
	if err := s.DecideRequest(t.Context(), r.ID, to, by, reason, at); err != nil {
		t.Fatalf("DecideRequest(%s): %v", to, err)
	}
	r.Status, r.DecidedBy, r.Reason, r.DecidedAt = to, by, reason, at
	return r
}

// get reads the request id, which must exist.
func get(t *testing.T, s approval.Store, id approval.RequestID) approval.Request {
	t.Helper()
	r, err := s.Request(t.Context(), id)
	if err != nil {
		t.Fatalf("Request(%s): %v", id, err)
	}
	return r
}

// checkEqual fails unless got and want are the same request (times
// compared as instants).
func checkEqual(t *testing.T, got, want approval.Request) {
	t.Helper()
	if got.ID != want.ID || got.Org != want.Org || got.User != want.User ||
		got.Email != want.Email || got.Name != want.Name || got.Status != want.Status ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.DecidedAt.Equal(want.DecidedAt) ||
		got.DecidedBy != want.DecidedBy || got.Reason != want.Reason {
		t.Errorf("request read back as\n\t%+v\nwant\n\t%+v", got, want)
	}
}

// list returns org's requests as Requests gives them.
func list(t *testing.T, s approval.Store, org authz.OrgID, since time.Time, st approval.Status) []approval.Request {
	t.Helper()
	rs, err := s.Requests(t.Context(), org, since, st)
	if err != nil {
		t.Fatalf("Requests(since %v, %v): %v", since, st, err)
	}
	return rs
}

// checkIDs fails unless rs are the requests want, in that order.
func checkIDs(t *testing.T, what string, rs []approval.Request, want ...approval.Request) {
	t.Helper()
	got := make([]approval.RequestID, len(rs))
	for i, r := range rs {
		got[i] = r.ID
	}
	w := make([]approval.RequestID, len(want))
	for i, r := range want {
		w[i] = r.ID
	}
	if !slices.Equal(got, w) {
		t.Errorf("%s: got requests %v, want %v", what, got, w)
	}
}

func count(t *testing.T, s approval.Store, org authz.OrgID) int {
	t.Helper()
	n, err := s.PendingCount(t.Context(), org)
	if err != nil {
		t.Fatalf("PendingCount: %v", err)
	}
	return n
}

func checkCount(t *testing.T, s approval.Store, org authz.OrgID, want int) {
	t.Helper()
	if n := count(t, s, org); n != want {
		t.Errorf("PendingCount = %d, want %d", n, want)
	}
}

// checkErr fails unless err matches every one of targets.
func checkErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: error %v, want one matching %v", what, err, target)
		}
	}
}

func testCreateAndRead(t *testing.T, s approval.Store) {
	org, user := authz.NewOrgID(), authz.NewUserID()
	r := newRequest(t, org, user, base.Add(123456*time.Microsecond))
	r.Email, r.Name = "Zoë.Ünal+kiops@example.com", "Zoë Ünal 趙"
	if err := s.CreateRequest(t.Context(), r); err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	checkEqual(t, get(t, s, r.ID), r)
	checkIDs(t, "Requests", list(t, s, org, time.Time{}, approval.AnyStatus), r)
	checkCount(t, s, org, 1)
}

func testCreateInvalid(t *testing.T, s approval.Store) {
	org, user := authz.NewOrgID(), authz.NewUserID()
	valid := newRequest(t, org, user, base)
	for _, tc := range []struct {
		name string
		edit func(*approval.Request)
	}{
		{"zero", func(r *approval.Request) { *r = approval.Request{ID: r.ID} }},
		{"bad id", func(r *approval.Request) { r.ID = approval.RequestID(strings.ToUpper(string(r.ID))) }},
		{"bad org", func(r *approval.Request) { r.Org = "org_*" }},
		{"bad user", func(r *approval.Request) { r.User = "ada@example.com" }},
		{"empty email", func(r *approval.Request) { r.Email = " " }},
		{"control char in name", func(r *approval.Request) { r.Name = "Ada\nLovelace" }},
		{"approved", func(r *approval.Request) {
			r.Status, r.DecidedBy, r.DecidedAt = approval.Approved, authz.NewUserID(), base
		}},
		{"pending with reason", func(r *approval.Request) { r.Reason = "no" }},
		{"no creation time", func(r *approval.Request) { r.CreatedAt = time.Time{} }},
		{"nanoseconds", func(r *approval.Request) { r.CreatedAt = base.Add(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid
			tc.edit(&r)
			checkErr(t, "CreateRequest", s.CreateRequest(t.Context(), r), authz.ErrInvalid)
			if _, err := s.Request(t.Context(), r.ID); !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("invalid request was stored: Request = %v", err)
			}
		})
	}
	checkCount(t, s, org, 0)
	checkIDs(t, "Requests", list(t, s, org, time.Time{}, approval.AnyStatus))
}

func testRequestNotFound(t *testing.T, s approval.Store) {
	create(t, s, authz.NewOrgID(), authz.NewUserID(), base)
	for _, id := range []approval.RequestID{approval.NewRequestID(), "", "req_*", "req_aaaaaaaaaaaaaaaaaaaaaaa%"} {
		_, err := s.Request(t.Context(), id)
		checkErr(t, fmt.Sprintf("Request(%q)", id), err, authz.ErrNotFound)
	}
}

func testSecondPending(t *testing.T, s approval.Store) {
	org, user := authz.NewOrgID(), authz.NewUserID()
	first := create(t, s, org, user, base)
	second := newRequest(t, org, user, base.Add(time.Minute))
	checkErr(t, "second pending CreateRequest", s.CreateRequest(t.Context(), second), approval.ErrPending, authz.ErrConflict)
	if _, err := s.Request(t.Context(), second.ID); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("refused request was stored: Request = %v", err)
	}
	checkIDs(t, "Requests", list(t, s, org, time.Time{}, approval.AnyStatus), first)
	checkCount(t, s, org, 1)

	// The same person in another org, and another person in the same
	// org, are separate queues entries.
	create(t, s, authz.NewOrgID(), user, base)
	create(t, s, org, authz.NewUserID(), base)
	checkCount(t, s, org, 2)
}

func testConcurrentCreate(t *testing.T, s approval.Store) {
	const n = 8
	org, user := authz.NewOrgID(), authz.NewUserID()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		r := newRequest(t, org, user, base.Add(time.Duration(i)*time.Second))
		wg.Go(func() { errs[i] = s.CreateRequest(t.Context(), r) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, approval.ErrPending):
			t.Errorf("losing CreateRequest: %v, want ErrPending", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent CreateRequest calls for one person and org succeeded, want 1", won, n)
	}
	checkCount(t, s, org, 1)
	if rs := list(t, s, org, time.Time{}, approval.AnyStatus); len(rs) != 1 {
		t.Errorf("Requests returned %d requests, want 1", len(rs))
	}
}

func testDuplicateID(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	r := create(t, s, org, authz.NewUserID(), base)
	dup := newRequest(t, authz.NewOrgID(), authz.NewUserID(), base.Add(time.Hour))
	dup.ID = r.ID
	checkErr(t, "CreateRequest with a stored id", s.CreateRequest(t.Context(), dup), authz.ErrConflict)
	checkEqual(t, get(t, s, r.ID), r)
}

func testReapply(t *testing.T, s approval.Store) {
	for _, to := range []approval.Status{approval.Rejected, approval.Approved} {
		t.Run(to.String(), func(t *testing.T) {
			org, user := authz.NewOrgID(), authz.NewUserID()
			first := create(t, s, org, user, base)
			first = decide(t, s, first, to, "", base.Add(time.Hour))
			again := create(t, s, org, user, base.Add(2*time.Hour))
			checkEqual(t, get(t, s, first.ID), first)
			checkIDs(t, "Requests", list(t, s, org, time.Time{}, approval.AnyStatus), again, first)
			checkCount(t, s, org, 1)
			// Now the new one is pending: a third is refused again.
			third := newRequest(t, org, user, base.Add(3*time.Hour))
			checkErr(t, "CreateRequest while the re-application is pending", s.CreateRequest(t.Context(), third), approval.ErrPending)
		})
	}
}

func testDecide(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	a := create(t, s, org, authz.NewUserID(), base)
	r := create(t, s, org, authz.NewUserID(), base.Add(time.Second))
	checkCount(t, s, org, 2)
	a = decide(t, s, a, approval.Approved, "", base.Add(time.Hour+7*time.Microsecond))
	checkEqual(t, get(t, s, a.ID), a)
	checkCount(t, s, org, 1)
	r = decide(t, s, r, approval.Rejected, "Please use your work address — ünïcode, «quoted»", base.Add(2*time.Hour))
	checkEqual(t, get(t, s, r.ID), r)
	checkCount(t, s, org, 0)
}

func testDecideTwice(t *testing.T, s approval.Store) {
	for _, tc := range []struct{ first, second approval.Status }{
		{approval.Approved, approval.Approved},
		{approval.Approved, approval.Rejected},
		{approval.Rejected, approval.Approved},
		{approval.Rejected, approval.Rejected},
	} {
		t.Run(tc.first.String()+"Then"+tc.second.String(), func(t *testing.T) {
			r := create(t, s, authz.NewOrgID(), authz.NewUserID(), base)
			reason := ""
			if tc.first == approval.Rejected {
				reason = "first decision"
			}
			r = decide(t, s, r, tc.first, reason, base.Add(time.Minute))
			err := s.DecideRequest(t.Context(), r.ID, tc.second, authz.NewUserID(), "", base.Add(time.Hour))
			checkErr(t, "second DecideRequest", err, approval.ErrDecided, authz.ErrConflict)
			checkEqual(t, get(t, s, r.ID), r)
		})
	}
}

func testDecideNotFound(t *testing.T, s approval.Store) {
	create(t, s, authz.NewOrgID(), authz.NewUserID(), base)
	err := s.DecideRequest(t.Context(), approval.NewRequestID(), approval.Approved, authz.NewUserID(), "", base)
	checkErr(t, "DecideRequest of a missing request", err, authz.ErrNotFound)
}

func testDecideInvalid(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	r := create(t, s, org, authz.NewUserID(), base)
	by := authz.NewUserID()
	for _, tc := range []struct {
		name   string
		to     approval.Status
		by     authz.UserID
		reason string
		at     time.Time
	}{
		{"to pending", approval.Pending, by, "", base},
		{"to any", approval.AnyStatus, by, "", base},
		{"to unknown", approval.Status(9), by, "", base},
		{"bad decider", approval.Approved, "usr_X", "", base},
		{"approval with a reason", approval.Approved, by, "fine", base},
		{"untrimmed reason", approval.Rejected, by, " no ", base},
		{"reason with a line break", approval.Rejected, by, "no\r\nway", base},
		{"overlong reason", approval.Rejected, by, strings.Repeat("é", approval.MaxReasonLen+1), base},
		{"no time", approval.Rejected, by, "", time.Time{}},
		{"nanoseconds", approval.Rejected, by, "", base.Add(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.DecideRequest(t.Context(), r.ID, tc.to, tc.by, tc.reason, tc.at)
			checkErr(t, "DecideRequest", err, authz.ErrInvalid)
			checkEqual(t, get(t, s, r.ID), r)
		})
	}
	checkCount(t, s, org, 1)
}

func testConcurrentDecide(t *testing.T, s approval.Store) {
	const rounds, n = 10, 8
	for round := range rounds {
		r := create(t, s, authz.NewOrgID(), authz.NewUserID(), base)
		type attempt struct {
			to  approval.Status
			by  authz.UserID
			err error
		}
		attempts := make([]attempt, n)
		var wg sync.WaitGroup
		for i := range attempts {
			a := &attempts[i]
			a.to, a.by = approval.Approved, authz.NewUserID()
			if i%2 == 1 {
				a.to = approval.Rejected
			}
			wg.Go(func() { a.err = s.DecideRequest(t.Context(), r.ID, a.to, a.by, "", base.Add(time.Hour)) })
		}
		wg.Wait()
		var winners []attempt
		for _, a := range attempts {
			switch {
			case a.err == nil:
				winners = append(winners, a)
			case !errors.Is(a.err, approval.ErrDecided):
				t.Errorf("round %d: losing DecideRequest: %v, want ErrDecided", round, a.err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d of %d concurrent DecideRequest calls succeeded, want exactly 1", round, len(winners), n)
		}
		got := get(t, s, r.ID)
		if got.Status != winners[0].to || got.DecidedBy != winners[0].by {
			t.Errorf("round %d: stored decision %v by %v, but the winner was %v by %v", round, got.Status, got.DecidedBy, winners[0].to, winners[0].by)
		}
	}
}

func testNewestFirst(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	at := func(d time.Duration) time.Time { return base.Add(d) }
	// Created out of order; two at the same instant.
	r2 := create(t, s, org, authz.NewUserID(), at(2*time.Hour))
	r0 := create(t, s, org, authz.NewUserID(), at(0))
	r3 := create(t, s, org, authz.NewUserID(), at(3*time.Hour+time.Microsecond))
	r1a := create(t, s, org, authz.NewUserID(), at(time.Hour))
	r1b := create(t, s, org, authz.NewUserID(), at(time.Hour))
	r3a := create(t, s, org, authz.NewUserID(), at(3*time.Hour))
	if r1a.ID < r1b.ID {
		r1a, r1b = r1b, r1a // same time: the greater ID first
	}
	checkIDs(t, "Requests", list(t, s, org, time.Time{}, approval.AnyStatus), r3, r3a, r2, r1a, r1b, r0)
}

func testPeriodBoundaries(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	// The Service's clock may be in any zone; requests are stored in UTC.
	// A store must compare instants, not wall clocks.
	now := base.Add(100 * 24 * time.Hour).In(time.FixedZone("JST", 9*3600))
	d7, d30 := approval.Last7Days.Since(now), approval.Last30Days.Since(now)
	if !d7.Equal(now.Add(-7*24*time.Hour)) || !d30.Equal(now.Add(-30*24*time.Hour)) {
		t.Fatalf("Since: 7d = %v, 30d = %v from %v", d7, d30, now)
	}
	recent := create(t, s, org, authz.NewUserID(), now.Add(-time.Minute))
	at7 := create(t, s, org, authz.NewUserID(), d7)
	before7 := create(t, s, org, authz.NewUserID(), d7.Add(-time.Microsecond))
	at30 := create(t, s, org, authz.NewUserID(), d30)
	before30 := create(t, s, org, authz.NewUserID(), d30.Add(-time.Microsecond))
	old := create(t, s, org, authz.NewUserID(), base)
	for _, tc := range []struct {
		p    approval.Period
		want []approval.Request
	}{
		{approval.Last7Days, []approval.Request{recent, at7}},
		{approval.Last30Days, []approval.Request{recent, at7, before7, at30}},
		{approval.AllTime, []approval.Request{recent, at7, before7, at30, before30, old}},
	} {
		t.Run(tc.p.String(), func(t *testing.T) {
			checkIDs(t, "Requests since "+tc.p.String(), list(t, s, org, tc.p.Since(now), approval.Pending), tc.want...)
		})
	}
	checkCount(t, s, org, 6)
}

func testStatusFilter(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	p := create(t, s, org, authz.NewUserID(), base.Add(3*time.Second))
	a := create(t, s, org, authz.NewUserID(), base.Add(2*time.Second))
	r := create(t, s, org, authz.NewUserID(), base.Add(1*time.Second))
	decide(t, s, a, approval.Approved, "", base.Add(time.Hour))
	decide(t, s, r, approval.Rejected, "spam", base.Add(time.Hour))
	for _, tc := range []struct {
		st   approval.Status
		want []approval.Request
	}{
		{approval.AnyStatus, []approval.Request{p, a, r}},
		{approval.Pending, []approval.Request{p}},
		{approval.Approved, []approval.Request{a}},
		{approval.Rejected, []approval.Request{r}},
	} {
		t.Run(tc.st.String(), func(t *testing.T) {
			checkIDs(t, "Requests with status "+tc.st.String(), list(t, s, org, time.Time{}, tc.st), tc.want...)
		})
	}
	_, err := s.Requests(t.Context(), org, time.Time{}, approval.Status(9))
	checkErr(t, "Requests with an invalid status", err, authz.ErrInvalid)
}

func testOrgIsolation(t *testing.T, s approval.Store) {
	orgA, orgB, user := authz.NewOrgID(), authz.NewOrgID(), authz.NewUserID()
	ra := create(t, s, orgA, user, base)
	rb := create(t, s, orgB, authz.NewUserID(), base)
	checkIDs(t, "Requests of org A", list(t, s, orgA, time.Time{}, approval.AnyStatus), ra)
	checkIDs(t, "Requests of org B", list(t, s, orgB, time.Time{}, approval.AnyStatus), rb)
	checkIDs(t, "Requests of an empty org", list(t, s, authz.NewOrgID(), time.Time{}, approval.AnyStatus))
	for _, bad := range []authz.OrgID{"", "org_*", authz.OrgID(strings.ToUpper(string(orgA)))} {
		checkIDs(t, fmt.Sprintf("Requests of org %q", bad), list(t, s, bad, time.Time{}, approval.AnyStatus))
		if n := count(t, s, bad); n != 0 {
			t.Errorf("PendingCount(%q) = %d, want 0", bad, n)
		}
	}
}

func testPendingCount(t *testing.T, s approval.Store) {
	org := authz.NewOrgID()
	checkCount(t, s, org, 0)
	var rs []approval.Request
	for i := range 5 {
		// Of any age: the count ignores the period filter.
		rs = append(rs, create(t, s, org, authz.NewUserID(), base.Add(-time.Duration(i)*365*24*time.Hour)))
	}
	create(t, s, authz.NewOrgID(), authz.NewUserID(), base) // another org's
	checkCount(t, s, org, 5)
	decide(t, s, rs[0], approval.Approved, "", base.Add(time.Hour))
	decide(t, s, rs[4], approval.Rejected, "", base.Add(time.Hour))
	checkCount(t, s, org, 3)
}

func testDeleteUser(t *testing.T, s approval.Store) {
	orgA, orgB := authz.NewOrgID(), authz.NewOrgID()
	gone, kept := authz.NewUserID(), authz.NewUserID()
	g1 := create(t, s, orgA, gone, base)
	g2 := create(t, s, orgB, gone, base)
	decide(t, s, g2, approval.Rejected, "", base.Add(time.Hour))
	g3 := create(t, s, orgB, gone, base.Add(2*time.Hour))
	k := create(t, s, orgA, kept, base.Add(time.Second))
	if err := s.DeleteUserRequests(t.Context(), gone); err != nil {
		t.Fatalf("DeleteUserRequests: %v", err)
	}
	for _, r := range []approval.Request{g1, g2, g3} {
		if _, err := s.Request(t.Context(), r.ID); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("deleted user's request %s: Request = %v, want ErrNotFound", r.ID, err)
		}
	}
	checkEqual(t, get(t, s, k.ID), k)
	checkIDs(t, "Requests of org A", list(t, s, orgA, time.Time{}, approval.AnyStatus), k)
	checkIDs(t, "Requests of org B", list(t, s, orgB, time.Time{}, approval.AnyStatus))
	checkCount(t, s, orgA, 1)
	if err := s.DeleteUserRequests(t.Context(), gone); err != nil {
		t.Errorf("DeleteUserRequests again: %v, want nil", err)
	}
	// The person may apply again afterwards.
	create(t, s, orgA, gone, base.Add(3*time.Hour))
}

func testDeleteOrg(t *testing.T, s approval.Store) {
	gone, kept := authz.NewOrgID(), authz.NewOrgID()
	user := authz.NewUserID()
	g1 := create(t, s, gone, user, base)
	g2 := create(t, s, gone, authz.NewUserID(), base)
	decide(t, s, g2, approval.Approved, "", base.Add(time.Hour))
	k := create(t, s, kept, user, base)
	if err := s.DeleteOrgRequests(t.Context(), gone); err != nil {
		t.Fatalf("DeleteOrgRequests: %v", err)
	}
	for _, r := range []approval.Request{g1, g2} {
		if _, err := s.Request(t.Context(), r.ID); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("deleted org's request %s: Request = %v, want ErrNotFound", r.ID, err)
		}
	}
	checkIDs(t, "Requests of the deleted org", list(t, s, gone, time.Time{}, approval.AnyStatus))
	checkCount(t, s, gone, 0)
	checkEqual(t, get(t, s, k.ID), k)
	checkCount(t, s, kept, 1)
	if err := s.DeleteOrgRequests(t.Context(), gone); err != nil {
		t.Errorf("DeleteOrgRequests again: %v, want nil", err)
	}
}
