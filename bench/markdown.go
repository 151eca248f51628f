package bench

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// Markdown writes the report as one Markdown table, the module beside
// Casbin with their ratio and the goal of issue 6, then the machine.
func (r *Report) Markdown(w io.Writer) {
	head := []string{"measure"}
	for _, s := range r.Scales {
		head = append(head, fmt.Sprintf("%s users", thousands(s.Users)))
	}
	head = append(head, "goal")
	rows := [][]string{head, dashes(len(head))}
	row := func(name, goal string, cell func(s *Scale) string) {
		cells := []string{name}
		for i := range r.Scales {
			cells = append(cells, cell(&r.Scales[i]))
		}
		rows = append(rows, append(cells, goal))
	}
	row("policy rules (grouping rows)", "", func(s *Scale) string { return thousands(s.Rules) })
	row("check, engine (Service.Check)", "0 allocs", func(s *Scale) string { return nsAllocs(s.Service) })
	row("check, engine alone", "", func(s *Scale) string { return nsAllocs(s.Engine) })
	row("check, Casbin Enforce", "", func(s *Scale) string { return nsAllocs(s.Casbin) })
	row("**Casbin Enforce / engine**", "≥ 200×", func(s *Scale) string { return ratio(ns(s.Casbin), ns(s.Service)) })
	row("check, Casbin CachedEnforcer (warm)", "", func(s *Scale) string { return nsAllocs(s.CasbinCached) })
	row("**CachedEnforcer / engine**", "≥ 10×", func(s *Scale) string { return ratio(ns(s.CasbinCached), ns(s.Service)) })
	first := &r.Scales[0]
	row("**engine check / engine check at first scale**", "≤ 1.5× at 1M", func(s *Scale) string { return ratio(ns(s.Service), ns(first.Service)) })
	row("parallel check, engine (2 goroutines)", "", func(s *Scale) string { return nsAllocs(s.EngineParallel) })
	row("**engine serial / parallel** (scaling)", "≈ cores", func(s *Scale) string { return ratio(ns(s.Engine), ns(s.EngineParallel)) })
	row("parallel check, Casbin Enforce", "", func(s *Scale) string { return nsAllocs(s.CasbinParallel) })
	row("heap, engine", "", func(s *Scale) string { return mib(s.EngineHeap) })
	row("heap, Casbin enforcer (loaded by gorm-adapter)", "", func(s *Scale) string { return mib(s.CasbinHeap) })
	row("**engine heap / Casbin heap**", "≤ 0.1 at 1M", func(s *Scale) string { return fraction(float64(s.EngineHeap), float64(s.CasbinHeap)) })
	row("heap, engine with Casbin cross-check on", "", func(s *Scale) string { return mib(s.CrossCheckHeap) })
	for k, kind := range r.kinds() {
		db := func(s *Scale) *DBScale {
			if k < len(s.DBs) {
				return &s.DBs[k]
			}
			return &DBScale{}
		}
		row(kind+": bulk import (Service.Import)", "", func(s *Scale) string { return secs(db(s).Import) })
		row(kind+": start-up, iam.New (load)", "", func(s *Scale) string { return secs(db(s).Startup) })
		row(kind+": start-up, Casbin LoadPolicy", "", func(s *Scale) string { return secs(db(s).CasbinStartup) })
		row("**"+kind+": start-up / Casbin's**", "≤ 0.25", func(s *Scale) string {
			return fraction(float64(db(s).Startup), float64(db(s).CasbinStartup))
		})
		for _, op := range []string{WriteSetCategories, WriteChangeRole, WriteApprove} {
			row(kind+": "+op, "flat in users", func(s *Scale) string { return db(s).Writes[op].String() })
		}
		row(kind+": gorm-adapter AddPolicy (bare)", "", func(s *Scale) string { return db(s).AddPolicy.String() })
		row(kind+": page of Members (50)", "flat in users", func(s *Scale) string { return micros(db(s).ListMembers) })
		row(kind+": page of MembersWith vpn (50)", "flat in users", func(s *Scale) string { return micros(db(s).ListMembersWith) })
		row(kind+": page of Access vpn (50)", "flat in users", func(s *Scale) string { return micros(db(s).ListAccess) })
	}
	for _, cells := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	m := r.Middleware
	fmt.Fprintf(w, "\nMiddleware, one request: bare handler %s; behind Authenticate + RequireCategories %s; **added %s** (goal < 2 µs); guarded from 2 goroutines %s.\n",
		nsAllocs(m.Bare), nsAllocs(m.Guarded), nsDiff(m.Guarded, m.Bare), nsAllocs(m.GuardedParallel))
	fmt.Fprintf(w, "\nMachine: %s. Report took %s.\n", r.Machine, r.Took.Round(time.Second))
}

// kinds returns the database kinds measured, in order.
func (r *Report) kinds() []string {
	var out []string
	for _, s := range r.Scales {
		for i, d := range s.DBs {
			if i >= len(out) {
				out = append(out, d.Kind)
			}
		}
	}
	return out
}

func dashes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "---"
	}
	return out
}

func ns(r testing.BenchmarkResult) float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

func nsAllocs(r testing.BenchmarkResult) string {
	if r.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s ns, %d allocs", number(ns(r)), r.AllocsPerOp())
}

func micros(r testing.BenchmarkResult) string {
	if r.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s µs", number(ns(r)/1e3))
}

func nsDiff(a, b testing.BenchmarkResult) string {
	if a.N == 0 || b.N == 0 {
		return "–"
	}
	return number(ns(a)-ns(b)) + " ns"
}

func number(f float64) string {
	switch {
	case f >= 100:
		return thousands(int(f + 0.5))
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return number(a/b) + "×"
}

func fraction(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", a/b)
}

func mib(b uint64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func secs(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
