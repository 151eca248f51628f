package authz

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkCheck compares the Engine's Check with Casbin's Enforce on the
// same users and grants (100 users per org, 2 Managers, Members holding
// about 3 of the 7 categories, 5 PlatformAdmins), Casbin in the faster of
// its two natural encodings: categories as roles in the org's domain,
// which is the encoding this module stores (Model). Run:
//
//	go test -run '^$' -bench BenchmarkCheck -benchmem ./authz
func BenchmarkCheck(b *testing.B) {
	for _, users := range []int{1_000, 100_000} {
		rng := rand.New(rand.NewPCG(uint64(users), 42))
		g := genWorkload(rng, users/100)
		// Each request carries its own copy of the ids, as one parsed from
		// a header or path would, rather than pointing into the
		// generator's memory; Casbin gets the same strings.
		reqs := g.requests(rng, 1<<16)
		for i := range reqs {
			reqs[i].u = UserID(strings.Clone(string(reqs[i].u)))
			reqs[i].o = OrgID(strings.Clone(string(reqs[i].o)))
		}
		e := newTestEngine(b)
		must(b, e.Load(seq(g.rows)))
		truth := make(rowSet, len(g.rows))
		for _, r := range g.rows {
			truth[r] = true
		}
		enf := casbinFrom(b, truth)
		var allowed int
		for _, q := range reqs {
			if e.Check(q.u, q.o, q.c).Allowed {
				allowed++
			}
		}
		b.Logf("users=%d: %d rules, %.0f%% of requests allowed", users, len(g.rows), 100*float64(allowed)/float64(len(reqs)))

		b.Run(fmt.Sprintf("users=%d/engine=index", users), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := reqs[i&(len(reqs)-1)]
				i++
				e.Check(q.u, q.o, q.c)
			}
		})
		b.Run(fmt.Sprintf("users=%d/engine=index-parallel", users), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(reqs))
				for pb.Next() {
					q := reqs[i&(len(reqs)-1)]
					i++
					e.Check(q.u, q.o, q.c)
				}
			})
		})
		b.Run(fmt.Sprintf("users=%d/engine=casbin", users), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := reqs[i&(len(reqs)-1)]
				i++
				if _, err := enf.Enforce(string(q.u), string(q.o), q.c.String()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
