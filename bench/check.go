package bench

import (
	"math/rand/v2"
	"testing"

	"github.com/casbin/casbin/v2"

	"github.com/kiops/iam/authz"
)

// A Checker is what a check benchmark measures: the module's Engine or
// Service, or a baseline.
type Checker interface {
	Check(authz.UserID, authz.OrgID, authz.Category) bool
}

// EngineChecker checks with the module's engine.
type EngineChecker struct{ *authz.Engine }

// Check returns the engine's verdict.
func (e EngineChecker) Check(u authz.UserID, o authz.OrgID, c authz.Category) bool {
	return e.Engine.Check(u, o, c).Allowed
}

// CasbinChecker checks with a Casbin enforcer (plain or cached), passing
// the request as the model's (sub, dom, obj) strings.
type CasbinChecker struct{ casbin.IEnforcer }

// Check returns Casbin's verdict; an error denies.
func (c CasbinChecker) Check(u authz.UserID, o authz.OrgID, cat authz.Category) bool {
	ok, err := c.Enforce(string(u), string(o), cat.String())
	return err == nil && ok
}

// CheckSerial measures one check at a time, cycling through reqs (whose
// length must be a power of two).
func CheckSerial(b *testing.B, c Checker, reqs []Request) {
	b.ReportAllocs()
	mask := len(reqs) - 1
	i := 0
	for b.Loop() {
		q := &reqs[i&mask]
		i++
		c.Check(q.User, q.Org, q.Category)
	}
}

// CheckParallel measures checks from GOMAXPROCS goroutines at once, each
// starting at a random point of reqs (whose length must be a power of
// two). With no global lock on the read path, the time per check falls
// with the number of cores.
func CheckParallel(b *testing.B, c Checker, reqs []Request) {
	b.ReportAllocs()
	mask := len(reqs) - 1
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(reqs))
		for pb.Next() {
			q := &reqs[i&mask]
			i++
			c.Check(q.User, q.Org, q.Category)
		}
	})
}

// Warm runs every request through c once: it fills a cached enforcer's
// cache, and reports how many answers differ from the policy's (which
// must be none).
func Warm(c Checker, reqs []Request) (wrong int) {
	for _, q := range reqs {
		if c.Check(q.User, q.Org, q.Category) != q.Allowed {
			wrong++
		}
	}
	return wrong
}
