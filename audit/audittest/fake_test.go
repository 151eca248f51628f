package audittest_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/audit/audittest"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/mutanttest"
)

func TestStore(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Store { return audittest.NewStore() })
}

func TestFailWith(t *testing.T) {
	t.Parallel()
	s := audittest.NewStore()
	boom := errors.New("injected")
	var ops []string
	s.FailWith(func(op string) error { ops = append(ops, op); return boom })
	e := audit.NewEvent(time.Now(), authz.NewUserID(), audit.SessionLogin)
	if _, err := s.Append(t.Context(), e); err != boom {
		t.Errorf("Append with a failing hook = %v, want the injected error", err)
	}
	if _, err := s.Events(t.Context(), audit.Filter{AllOrgs: true}); err != boom {
		t.Errorf("Events with a failing hook = %v, want the injected error", err)
	}
	if !slices.Equal(ops, []string{"Append", "Events"}) || s.Len() != 0 {
		t.Errorf("hook saw %v; %d events stored", ops, s.Len())
	}
	s.FailWith(nil)
	if got, err := s.Append(t.Context(), e); err != nil || got.ID != 1 || s.Len() != 1 {
		t.Errorf("after FailWith(nil): Append = %d, %v; Len = %d", got.ID, err, s.Len())
	}
}

// The mutants below are stores with one bug each. TestRunCatchesMutants
// runs the suite on each of them in a child process and requires the
// named subtests to fail: a suite that passes a broken store is broken.
var mutants = map[string]struct {
	wrap     func(audit.Store) audit.Store
	mustFail []string
}{
	"oldest-first":     {wrapEvents(func(f audit.Filter) audit.Filter { return f }, slices.Reverse[[]audit.Event]), []string{"NewestFirst", "AppendAssignsIncreasingIDs"}},
	"ignore-scope":     {wrapEvents(func(f audit.Filter) audit.Filter { f.Orgs, f.AllOrgs = nil, true; return f }, nil), []string{"Scope"}},
	"inclusive-cursor": {wrapEvents(func(f audit.Filter) audit.Filter { f.Before += min(f.Before, 1); return f }, nil), []string{"CursorPagination", "CursorWithFilter"}},
	"ignore-outcome":   {wrapEvents(func(f audit.Filter) audit.Filter { f.Outcome = audit.AnyOutcome; return f }, nil), []string{"FilterFields"}},
	"inclusive-until": {wrapEvents(func(f audit.Filter) audit.Filter {
		if !f.Until.IsZero() {
			f.Until = f.Until.Add(time.Microsecond)
		}
		return f
	}, nil), []string{"TimeRange"}},
	"no-default-limit": {wrapEvents(func(f audit.Filter) audit.Filter {
		if f.Limit == 0 {
			f.Limit = audit.MaxLimit
		}
		return f
	}, nil), []string{"Limit"}},
	"wall-clock-times": {wrapEvents(func(f audit.Filter) audit.Filter {
		// Compares times as if every zone were UTC, like text comparison
		// of timestamps with offsets.
		if !f.Since.IsZero() {
			f.Since = wallAsUTC(f.Since)
		}
		if !f.Until.IsZero() {
			f.Until = wallAsUTC(f.Until)
		}
		return f
	}, nil), []string{"TimeRange"}},
	"normalized-json": {func(s audit.Store) audit.Store { return compactJSON{s} }, []string{"RoundTrip"}},
	"no-validation":   {func(s audit.Store) audit.Store { return noValidation{s} }, []string{"AppendRefusesInvalid"}},
	"unlinked-chain":  {func(s audit.Store) audit.Store { return genesisOnly{s} }, []string{"Chain", "ConcurrentAppend"}},
}

// genesisOnly reads every event as if it were linked to Genesis: a store
// that forks its chain at every append.
type genesisOnly struct{ audit.Store }

func (s genesisOnly) Events(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	es, err := s.Store.Events(ctx, f)
	for i := range es {
		es[i].Link(audit.Genesis())
	}
	return es, err
}

func (s genesisOnly) Append(ctx context.Context, e audit.Event) (audit.Event, error) {
	e, err := s.Store.Append(ctx, e)
	e.Link(audit.Genesis())
	return e, err
}

func wallAsUTC(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// eventsMutant rewrites the filter before, and the result after, the real
// Events.
type eventsMutant struct {
	audit.Store
	filter func(audit.Filter) audit.Filter
	result func([]audit.Event)
}

func wrapEvents(filter func(audit.Filter) audit.Filter, result func([]audit.Event)) func(audit.Store) audit.Store {
	return func(s audit.Store) audit.Store { return eventsMutant{s, filter, result} }
}

func (m eventsMutant) Events(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	es, err := m.Store.Events(ctx, m.filter(f))
	if m.result != nil {
		m.result(es)
	}
	return es, err
}

// compactJSON returns Before and After re-encoded, as jsonb would.
type compactJSON struct{ audit.Store }

func (s compactJSON) Events(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	es, err := s.Store.Events(ctx, f)
	for i := range es {
		for _, raw := range []*json.RawMessage{&es[i].Before, &es[i].After} {
			var v any
			if len(*raw) > 0 && json.Unmarshal(*raw, &v) == nil {
				*raw, _ = json.Marshal(v)
			}
		}
	}
	return es, err
}

// noValidation stores events Validate refuses, by cleaning them first.
type noValidation struct{ audit.Store }

func (s noValidation) Append(ctx context.Context, e audit.Event) (audit.Event, error) {
	e.ID, e.Before, e.After = 0, nil, nil
	e.Time = e.Time.Truncate(time.Microsecond)
	if e.Time.IsZero() {
		e.Time = time.Now().UTC().Truncate(time.Microsecond)
	}
	return s.Store.Append(ctx, e)
}

const mutantEnv = "AUDITTEST_MUTANT"

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
	audittest.Run(t, func(t *testing.T) audit.Store { return m.wrap(audittest.NewStore()) })
}
