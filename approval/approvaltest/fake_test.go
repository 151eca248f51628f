package approvaltest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/approval/approvaltest"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/mutanttest"
)

func TestStore(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) approval.Store { return approvaltest.NewStore() })
}

// TestSharedStore runs the suite with one store for every subtest, as the
// suite's documentation allows.
func TestSharedStore(t *testing.T) {
	s := approvaltest.NewStore()
	approvaltest.Run(t, func(t *testing.T) approval.Store { return s })
}

func TestFailWith(t *testing.T) {
	t.Parallel()
	s := approvaltest.NewStore()
	ctx := t.Context()
	boom := errors.New("injected")
	var ops []string
	s.FailWith(func(op string) error { ops = append(ops, op); return boom })

	r, err := approval.NewRequest(authz.NewOrgID(), authz.NewUserID(), "a@example.com", "A", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		op   string
		call func() error
	}{
		{"CreateRequest", func() error { return s.CreateRequest(ctx, r) }},
		{"Request", func() error { _, err := s.Request(ctx, r.ID); return err }},
		{"Requests", func() error { _, err := s.Requests(ctx, r.Org, time.Time{}, approval.AnyStatus); return err }},
		{"PendingCount", func() error { _, err := s.PendingCount(ctx, r.Org); return err }},
		{"DecideRequest", func() error {
			return s.DecideRequest(ctx, r.ID, approval.Approved, authz.NewUserID(), "", r.CreatedAt)
		}},
		{"DeleteUserRequests", func() error { return s.DeleteUserRequests(ctx, r.User) }},
		{"DeleteOrgRequests", func() error { return s.DeleteOrgRequests(ctx, r.Org) }},
	}
	var want []string
	for _, c := range calls {
		if err := c.call(); err != boom {
			t.Errorf("%s with a failing hook = %v, want the injected error", c.op, err)
		}
		want = append(want, c.op)
	}
	if !slices.Equal(ops, want) {
		t.Errorf("hook saw %v, want %v", ops, want)
	}
	if s.Len() != 0 {
		t.Errorf("failed CreateRequest stored %d requests", s.Len())
	}
	s.FailWith(nil)
	if err := s.CreateRequest(ctx, r); err != nil || s.Len() != 1 {
		t.Errorf("after FailWith(nil): CreateRequest = %v, Len = %d", err, s.Len())
	}
}

// The mutants below are stores with one bug each. TestRunCatchesMutants
// runs the suite on each of them in a child process and requires the
// named subtests to fail: a suite that passes a broken store is broken.
var mutants = map[string]struct {
	wrap     func(approval.Store) approval.Store
	mustFail []string
}{
	"lost-update":      {func(s approval.Store) approval.Store { return lostUpdate{s} }, []string{"DecideOnlyFromPending", "ConcurrentDecide"}},
	"second-pending":   {func(s approval.Store) approval.Store { return secondPending{s} }, []string{"SecondPendingRefused", "ConcurrentCreate"}},
	"oldest-first":     {func(s approval.Store) approval.Store { return oldestFirst{s} }, []string{"NewestFirst", "ReapplyAfterDecision"}},
	"exclusive-since":  {func(s approval.Store) approval.Store { return exclusiveSince{s} }, []string{"PeriodBoundaries"}},
	"count-everything": {func(s approval.Store) approval.Store { return countAll{s} }, []string{"PendingCount", "Decide"}},
	"seconds-only":     {func(s approval.Store) approval.Store { return secondsOnly{s} }, []string{"CreateAndRead"}},
	"keep-org":         {func(s approval.Store) approval.Store { return keepOrg{s} }, []string{"DeleteOrgRequests"}},
	"wall-clock-since": {func(s approval.Store) approval.Store { return wallClock{s} }, []string{"PeriodBoundaries"}},
}

const mutantEnv = "APPROVALTEST_MUTANT"

func TestRunCatchesMutants(t *testing.T) {
	mustFail := map[string][]string{}
	for name, m := range mutants {
		mustFail[name] = m.mustFail
	}
	mutanttest.Run(t, mutantEnv, "TestMutant", mustFail)
}

func TestMutant(t *testing.T) {
	name := mutanttest.Name(t, mutantEnv)
	m, ok := mutants[name]
	if !ok {
		t.Fatalf("no mutant %q", name)
	}
	approvaltest.Run(t, func(t *testing.T) approval.Store { return m.wrap(approvaltest.NewStore()) })
}

// lostUpdate reports success for a decision on a decided request.
type lostUpdate struct{ approval.Store }

func (s lostUpdate) DecideRequest(ctx context.Context, id approval.RequestID, to approval.Status, by authz.UserID, reason string, at time.Time) error {
	if err := s.Store.DecideRequest(ctx, id, to, by, reason, at); !errors.Is(err, approval.ErrDecided) {
		return err
	}
	return nil
}

// secondPending reports success for a second pending request (and drops it).
type secondPending struct{ approval.Store }

func (s secondPending) CreateRequest(ctx context.Context, r approval.Request) error {
	if err := s.Store.CreateRequest(ctx, r); !errors.Is(err, approval.ErrPending) {
		return err
	}
	return nil
}

type oldestFirst struct{ approval.Store }

func (s oldestFirst) Requests(ctx context.Context, org authz.OrgID, since time.Time, st approval.Status) ([]approval.Request, error) {
	rs, err := s.Store.Requests(ctx, org, since, st)
	slices.Reverse(rs)
	return rs, err
}

type exclusiveSince struct{ approval.Store }

func (s exclusiveSince) Requests(ctx context.Context, org authz.OrgID, since time.Time, st approval.Status) ([]approval.Request, error) {
	rs, err := s.Store.Requests(ctx, org, since, st)
	return slices.DeleteFunc(rs, func(r approval.Request) bool { return r.CreatedAt.Equal(since) }), err
}

type countAll struct{ approval.Store }

func (s countAll) PendingCount(ctx context.Context, org authz.OrgID) (int, error) {
	rs, err := s.Store.Requests(ctx, org, time.Time{}, approval.AnyStatus)
	return len(rs), err
}

type secondsOnly struct{ approval.Store }

func (s secondsOnly) CreateRequest(ctx context.Context, r approval.Request) error {
	r.CreatedAt = r.CreatedAt.Truncate(time.Second)
	return s.Store.CreateRequest(ctx, r)
}

type keepOrg struct{ approval.Store }

func (keepOrg) DeleteOrgRequests(context.Context, authz.OrgID) error { return nil }

// wallClock compares since's wall clock as if it were UTC, as a text
// comparison of timestamps with offsets would.
type wallClock struct{ approval.Store }

func (s wallClock) Requests(ctx context.Context, org authz.OrgID, since time.Time, st approval.Status) ([]approval.Request, error) {
	if !since.IsZero() {
		y, mo, d := since.Date()
		h, mi, sec := since.Clock()
		since = time.Date(y, mo, d, h, mi, sec, since.Nanosecond(), time.UTC)
	}
	return s.Store.Requests(ctx, org, since, st)
}
