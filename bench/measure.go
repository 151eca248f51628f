package bench

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
)

// HeapGrowth returns how much the live heap grew while build ran and its
// result was kept: the memory that result holds. It collects garbage
// before and after, so only what is still reachable counts.
func HeapGrowth[T any](build func() (T, error)) (uint64, T, error) {
	before := liveHeap()
	v, err := build()
	after := liveHeap()
	runtime.KeepAlive(v)
	if after < before {
		return 0, v, err
	}
	return after - before, v, err
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Latency summarizes the durations of repeated operations.
type Latency struct {
	N        int
	P50, P99 time.Duration
}

// LatencyOf returns the median and 99th percentile of ds (nearest rank).
func LatencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return Latency{N: len(s), P50: rank(0.50), P99: rank(0.99)}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %s, p99 %s", roundDuration(l.P50), roundDuration(l.P99))
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}

// timed runs op n times and returns the latency of each call.
func timed(n int, op func(i int) error) (Latency, error) {
	ds := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if err := op(i); err != nil {
			return Latency{}, err
		}
		ds = append(ds, time.Since(start))
	}
	return LatencyOf(ds), nil
}

// The management writes WriteLatencies measures.
const (
	WriteSetCategories = "set-categories"
	WriteChangeRole    = "role change"
	WriteApprove       = "approval"
)

// WriteLatencies times n of each management write on svc, which holds w:
// setting a random Member's categories, changing a Member's role to
// Manager and back, and approving a registration request (n sign-ups are
// made first, outside the timing). Each is one transaction with its audit
// event, as a host calls it; a PlatformAdmin of w acts.
func WriteLatencies(ctx context.Context, svc *iam.Service, w *Workload, n int) (map[string]Latency, error) {
	rng := rand.New(rand.NewPCG(w.seed, 0x7772697465))
	admin := w.Users[len(w.Users)-1].ID
	members := make([]User, 0, len(w.Users))
	for _, u := range w.Users {
		if !u.PlatformAdmin && u.Membership.Role == authz.Member {
			members = append(members, u)
		}
	}
	pick := func() User { return members[rng.IntN(len(members))] }
	out := map[string]Latency{}
	var err error
	out[WriteSetCategories], err = timed(n, func(int) error {
		u := pick()
		return svc.SetCategories(ctx, admin, u.ID, u.Org, authz.CategorySet(rng.IntN(128)))
	})
	if err != nil {
		return nil, fmt.Errorf("bench: set categories: %w", err)
	}
	promoted := make([]User, n)
	for i := range promoted {
		promoted[i] = pick()
	}
	slices.SortFunc(promoted, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	promoted = slices.CompactFunc(promoted, func(a, b User) bool { return a.ID == b.ID })
	out[WriteChangeRole], err = timed(2*len(promoted), func(i int) error {
		u, to := promoted[i/2], authz.Manager
		if i%2 == 1 {
			to = authz.Member
		}
		return svc.ChangeRole(ctx, admin, u.ID, u.Org, to)
	})
	if err != nil {
		return nil, fmt.Errorf("bench: change role: %w", err)
	}
	org := w.Orgs[0]
	for i := range n {
		email := fmt.Sprintf("applicant%d-%d@example.com", i, rng.Uint32())
		if err := svc.SignUp(ctx, email, fmt.Sprintf("Person %d", i), fmt.Sprintf("kiops-bench-%d-Zq9-%x", i, rng.Uint64()), org); err != nil {
			return nil, fmt.Errorf("bench: sign up: %w", err)
		}
	}
	reqs, err := svc.Registrations(ctx, admin, org, approval.AllTime, approval.Pending)
	if err != nil {
		return nil, fmt.Errorf("bench: registrations: %w", err)
	}
	if len(reqs) < n {
		return nil, fmt.Errorf("bench: %d pending requests, want %d", len(reqs), n)
	}
	out[WriteApprove], err = timed(n, func(i int) error { return svc.Approve(ctx, admin, reqs[i].ID) })
	if err != nil {
		return nil, fmt.Errorf("bench: approve: %w", err)
	}
	return out, nil
}

// AddPolicyLatency times n of gorm-adapter's bare AddPolicy on the rule
// table of db, the baseline for WriteLatencies: one row inserted in its
// own statement, no rules checked, no audit, no transaction around it.
// The rows are grants of fresh users in w's first org: they do not change
// any decision about w's users.
func AddPolicyLatency(ctx context.Context, w *Workload, a interface {
	AddPolicyCtx(ctx context.Context, sec, ptype string, rule []string) error
}, n int) (Latency, error) {
	rng := rand.New(rand.NewPCG(w.seed, 0x616464))
	return timed(n, func(i int) error {
		u := newID(rng, "usr_")
		return a.AddPolicyCtx(ctx, "g", "g", []string{u, "cat:" + randomCategory(rng).String(), string(w.Orgs[0])})
	})
}
