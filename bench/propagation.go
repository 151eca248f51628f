package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

// Propagation measures how long a revocation committed through one
// replica takes to be refused by another on the same PostgreSQL database
// (issue 7): two Services, each with its own connection pool, the second
// following the first with WithReplicaSync (the periodic check set to an
// hour, so only notifications count). Each of n rounds grants a Member a
// category, waits until the second replica allows it, revokes it through
// the first, and times from the revocation's return (its commit) until the
// second replica denies. d must be a PostgreSQL database.
func Propagation(ctx context.Context, d *Database, n int) (Latency, error) {
	writer, err := iam.New(ctx, d.DB)
	if err != nil {
		return Latency{}, err
	}
	defer writer.Close()
	db2, err := d.Reopen()
	if err != nil {
		return Latency{}, err
	}
	defer CloseDB(db2)
	replica, err := iam.New(ctx, db2, iam.WithReplicaSync(time.Hour))
	if err != nil {
		return Latency{}, err
	}
	defer replica.Close()

	w := Generate(UsersPerOrg, 7)
	if _, err := Populate(ctx, writer, d.DB, w); err != nil {
		return Latency{}, err
	}
	admin := w.Users[len(w.Users)-1].ID
	var member User
	for _, u := range w.Users {
		if !u.PlatformAdmin && u.Membership.Role == authz.Member {
			member = u
			break
		}
	}
	until := func(want bool) error {
		for deadline := time.Now().Add(10 * time.Second); replica.Check(ctx, member.ID, member.Org, authz.VPN).Allowed != want; runtime.Gosched() {
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: the replica did not see the change in 10 s (listener %+v)", replica.SyncState())
			}
		}
		return nil
	}
	return timedAfter(n, func() error {
		if err := writer.SetCategories(ctx, admin, member.ID, member.Org, authz.NewCategorySet(authz.VPN)); err != nil {
			return err
		}
		if err := until(true); err != nil {
			return err
		}
		return writer.SetCategories(ctx, admin, member.ID, member.Org, 0)
	}, func() error { return until(false) })
}

// timedAfter runs prepare then measure n times, timing measure only.
func timedAfter(n int, prepare, measure func() error) (Latency, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		if err := prepare(); err != nil {
			return Latency{}, err
		}
		start := time.Now()
		if err := measure(); err != nil {
			return Latency{}, err
		}
		ds = append(ds, time.Since(start))
	}
	return LatencyOf(ds), nil
}
