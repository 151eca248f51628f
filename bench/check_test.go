package bench

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/kiops/iam/authz"
)

var (
	scaleFlag    = flag.String("users", "1000,100000", "comma-separated scale points (users) of the check benchmarks")
	requestsFlag = flag.Int("requests", 1<<16, "distinct requests the check benchmarks cycle through (a power of two)")
)

func scales(tb testing.TB) []int {
	var out []int
	for _, f := range strings.Split(*scaleFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("-users: bad scale %q", f)
		}
		out = append(out, n)
	}
	return out
}

// loadEngine returns an engine loaded with w's policy.
func loadEngine(tb testing.TB, w *Workload) *authz.Engine {
	tb.Helper()
	e, err := authz.NewEngine()
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.Load(w.Rows()); err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestWorkload checks the generator against the workload and that
// the engine and Casbin both answer every request as the policy says, so
// that no benchmark measures a refusal it did not mean.
func TestWorkload(t *testing.T) {
	w := Generate(1000, 1)
	if len(w.Orgs) != 10 || len(w.Users) != 1005 {
		t.Fatalf("%d orgs, %d users; want 10, 1005", len(w.Orgs), len(w.Users))
	}
	var managers, members, grants int
	for _, u := range w.Users {
		switch {
		case u.PlatformAdmin:
		case u.Membership.Role == authz.Manager:
			managers++
		default:
			members++
			grants += u.Membership.Categories.Len()
		}
	}
	if managers != 20 || members != 980 {
		t.Errorf("%d managers, %d members; want 20, 980", managers, members)
	}
	if avg := float64(grants) / float64(members); avg < 2.7 || avg > 3.3 {
		t.Errorf("members hold %.2f categories on average; want about 3", avg)
	}
	reqs := w.Requests(1 << 12)
	var allowed int
	for _, q := range reqs {
		if q.Allowed {
			allowed++
		}
	}
	if share := float64(allowed) / float64(len(reqs)); share < 0.88 || share > 0.92 {
		t.Errorf("%.1f%% of requests allowed; want 90%%", 100*share)
	}
	if again := Generate(1000, 1); again.Users[17] != w.Users[17] || again.Orgs[3] != w.Orgs[3] {
		t.Error("the same seed gave another workload")
	}
	e := loadEngine(t, w)
	if n := Warm(EngineChecker{e}, reqs); n != 0 {
		t.Errorf("engine: %d answers differ from the policy", n)
	}
	c, err := NewCasbin(w)
	if err != nil {
		t.Fatal(err)
	}
	if n := Warm(CasbinChecker{c.Enforcer}, reqs); n != 0 {
		t.Errorf("casbin: %d answers differ from the policy", n)
	}
	if n := Warm(CasbinChecker{c}, reqs); n != 0 {
		t.Errorf("cached casbin: %d answers differ from the policy", n)
	}
}

// BenchmarkCheck compares the engine with plain Casbin and Casbin's cached
// enforcer (warm) on the same users, grants and requests. Run:
//
//	go test -run '^$' -bench BenchmarkCheck -benchmem ./bench -users 1000,100000,1000000
func BenchmarkCheck(b *testing.B) {
	for _, n := range scales(b) {
		w := Generate(n, 1)
		if n := *requestsFlag; n < 1 || n&(n-1) != 0 {
			b.Fatalf("-requests %d: want a power of two", n)
		}
		reqs := w.Requests(*requestsFlag)
		e := loadEngine(b, w)
		b.Run(fmt.Sprintf("users=%d/engine", n), func(b *testing.B) { CheckSerial(b, EngineChecker{e}, reqs) })
		b.Run(fmt.Sprintf("users=%d/engine-parallel", n), func(b *testing.B) { CheckParallel(b, EngineChecker{e}, reqs) })
		if n > 100_000 {
			continue // Casbin at 1,000,000 users: the report command loads it from a database
		}
		c, err := NewCasbin(w)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("users=%d/casbin", n), func(b *testing.B) { CheckSerial(b, CasbinChecker{c.Enforcer}, reqs) })
		Warm(CasbinChecker{c}, reqs)
		b.Run(fmt.Sprintf("users=%d/casbin-cached", n), func(b *testing.B) { CheckSerial(b, CasbinChecker{c}, reqs) })
	}
}
