package iam_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

const auditTable = "iam_audit_events"

// history runs a few operations of every kind (successes, a denial, a
// failed login) and returns the IDs of the audit log, oldest first.
func (e *env) history() []int64 {
	e.t.Helper()
	acme := e.org("Acme")
	globex := e.org("Globex")
	bob := e.member("bob@example.com", acme, authz.Manager, 0)
	carol := e.member("carol@example.com", acme, authz.Member, authz.NewCategorySet(authz.Infra))
	e.member("dave@example.com", globex, authz.Member, 0)
	e.must(e.svc.RenameOrg(e.ctx, e.admin, acme, "Acme Corp"))
	e.must(e.svc.SetCategories(e.ctx, bob, carol, acme, authz.NewCategorySet(authz.VPN, authz.Audit)))
	if err := e.svc.ChangeRole(e.ctx, carol, bob, acme, authz.Member); err == nil {
		e.t.Fatal("a Member changed a Manager's role")
	}
	if _, err := e.svc.Login(e.ctx, "nobody@example.com", pw); err == nil {
		e.t.Fatal("an unknown account logged in")
	}
	e.must(e.svc.ChangeName(e.ctx, carol, "Carol C."))
	return e.auditIDs()
}

func (e *env) auditIDs() []int64 {
	e.t.Helper()
	var ids []int64
	e.must(e.db.Table(auditTable).Order("id").Pluck("id", &ids).Error)
	return ids
}

// verify runs VerifyAudit and returns its result.
func (e *env) verify() audit.VerifyResult {
	e.t.Helper()
	res, err := e.svc.VerifyAudit(e.ctx)
	e.must(err)
	return res
}

// intact fails unless the log verifies with n events.
func (e *env) intact(res audit.VerifyResult, n int) {
	e.t.Helper()
	if !res.OK() || res.Events != int64(n) {
		e.t.Fatalf("VerifyAudit = %d events, break %v; want %d intact events", res.Events, res.Break, n)
	}
}

// broken fails unless res reports problem p at event id.
func (e *env) broken(res audit.VerifyResult, id int64, p audit.Problem) {
	e.t.Helper()
	if res.Break == nil {
		e.t.Fatalf("VerifyAudit found the log intact (%d events), want %s at event %d", res.Events, p, id)
	}
	if res.Break.ID != id || res.Break.Problem != p {
		e.t.Fatalf("VerifyAudit: %v; want %s at event %d", res.Break, p, id)
	}
	e.t.Logf("detected: %v", res.Break)
}

// rawEvent is one row of the audit table, as an intruder edits it.
type rawEvent map[string]any

func (e *env) rawEvent(id int64) rawEvent {
	e.t.Helper()
	var rows []map[string]any
	e.must(e.db.Table(auditTable).Where("id = ?", id).Find(&rows).Error)
	if len(rows) != 1 {
		e.t.Fatalf("event %d: %d rows", id, len(rows))
	}
	return rows[0]
}

// contentColumns are the columns of an event's contents (not id, prev_hash
// and hash).
var contentColumns = []string{"occurred_at", "actor_id", "action", "target_id", "org_id", "client_addr", "outcome", "reason", "before_change", "after_change"}

func (e *env) overwrite(id int64, row rawEvent, cols []string) {
	e.t.Helper()
	upd := map[string]any{}
	for _, c := range cols {
		upd[c] = row[c]
	}
	res := e.db.Table(auditTable).Where("id = ?", id).Updates(upd)
	e.must(res.Error)
	if res.RowsAffected != 1 {
		e.t.Fatalf("overwriting event %d updated %d rows", id, res.RowsAffected)
	}
}

func (e *env) deleteEvents(ids ...int64) {
	e.t.Helper()
	res := e.db.Table(auditTable).Where("id IN ?", ids).Delete(nil)
	e.must(res.Error)
	if res.RowsAffected != int64(len(ids)) {
		e.t.Fatalf("deleting events %v deleted %d rows", ids, res.RowsAffected)
	}
}

func TestAuditChainVerifies(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		if res := e.verify(); !res.OK() || res.Events != 1 {
			t.Fatalf("VerifyAudit after the bootstrap = %+v", res)
		}
		ids := e.history()
		res := e.verify()
		e.intact(res, len(ids))
		cp, err := e.svc.AuditCheckpoint(e.ctx)
		e.must(err)
		if cp.ID != ids[len(ids)-1] || cp.Hash != res.Head.Hash || !cp.At.Equal(e.clock.Now().Truncate(time.Microsecond)) {
			t.Errorf("AuditCheckpoint = %+v, want event %d with hash %s at %v", cp, ids[len(ids)-1], res.Head.Hash, e.clock.Now())
		}
		// The checkpoint survives JSON, and holds as the log grows.
		b, err := json.Marshal(cp)
		e.must(err)
		var back audit.Checkpoint
		e.must(json.Unmarshal(b, &back))
		e.must(e.svc.ChangeName(e.ctx, e.admin, "Ada A."))
		res, err = e.svc.VerifyAuditCheckpoint(e.ctx, back)
		e.must(err)
		e.intact(res, len(ids)+1)
		// The events the Service reads back carry their chain.
		evs, err := e.svc.AuditEvents(e.ctx, e.admin, audit.Filter{Limit: 2})
		e.must(err)
		if len(evs) != 2 || evs[1].Hash != cp.Hash || evs[0].PrevHash != cp.Hash || evs[0].Hash != res.Head.Hash {
			t.Errorf("AuditEvents read back %+v, want the chain ending in %s", evs, res.Head.Hash)
		}
		// A restarted Service verifies the same log, which now holds the
		// audit.view event of that read too.
		res, err = e.open().VerifyAudit(e.ctx)
		e.must(err)
		e.intact(res, len(ids)+2)
	})
}

func TestAuditChainDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name string
		// tamper edits the log of ids and returns the event and problem
		// Verify must report.
		tamper func(e *env, ids []int64) (int64, audit.Problem)
	}{
		{"field changed", func(e *env, ids []int64) (int64, audit.Problem) {
			m := ids[len(ids)/2]
			e.must(e.db.Table(auditTable).Where("id = ?", m).Update("actor_id", string(authz.NewUserID())).Error)
			return m, audit.Changed
		}},
		{"reason changed", func(e *env, ids []int64) (int64, audit.Problem) {
			m := ids[1]
			e.must(e.db.Table(auditTable).Where("id = ?", m).Update("client_addr", "203.0.113.9").Error)
			return m, audit.Changed
		}},
		{"time changed by a microsecond", func(e *env, ids []int64) (int64, audit.Problem) {
			m := ids[len(ids)-1]
			var at []time.Time
			e.must(e.db.Table(auditTable).Where("id = ?", m).Pluck("occurred_at", &at).Error)
			if len(at) != 1 {
				e.t.Fatalf("event %d: times %v", m, at)
			}
			e.must(e.db.Table(auditTable).Where("id = ?", m).Update("occurred_at", at[0].UTC().Add(time.Microsecond)).Error)
			return m, audit.Changed
		}},
		{"first event deleted", func(e *env, ids []int64) (int64, audit.Problem) {
			e.deleteEvents(ids[0])
			return ids[1], audit.Unlinked
		}},
		{"middle event deleted", func(e *env, ids []int64) (int64, audit.Problem) {
			i := len(ids) / 2
			e.deleteEvents(ids[i])
			return ids[i+1], audit.Unlinked
		}},
		{"forged event inserted", func(e *env, ids []int64) (int64, audit.Problem) {
			// Correctly hashed, but linked to nothing in the log.
			forged := audit.NewEvent(e.clock.Now(), e.admin, audit.UserDelete)
			forged.ID = ids[len(ids)-1] + 1
			forged.Target = authz.NewUserID()
			forged.Link(audit.ChainHash(audit.Genesis(), forged))
			e.insertRaw(forged)
			return forged.ID, audit.Unlinked
		}},
		{"forged event linked to the head", func(e *env, ids []int64) (int64, audit.Problem) {
			// Linked to the head, but with a hash of the forger's making.
			head := e.rawEvent(ids[len(ids)-1])
			forged := audit.NewEvent(e.clock.Now(), e.admin, audit.UserDelete)
			forged.ID = ids[len(ids)-1] + 1
			var err error
			forged.PrevHash, err = audit.ParseHash(fmt.Sprint(head["hash"]))
			e.must(err)
			forged.Hash = audit.ChainHash(forged.PrevHash, audit.Event{ID: forged.ID})
			e.insertRaw(forged)
			return forged.ID, audit.Changed
		}},
		{"contents of two events swapped", func(e *env, ids []int64) (int64, audit.Problem) {
			a, b := ids[2], ids[len(ids)-2]
			ra, rb := e.rawEvent(a), e.rawEvent(b)
			e.overwrite(a, rb, contentColumns)
			e.overwrite(b, ra, contentColumns)
			return a, audit.Changed
		}},
		{"two events swapped with their hashes", func(e *env, ids []int64) (int64, audit.Problem) {
			a, b := ids[3], ids[4]
			cols := append([]string{"prev_hash", "hash"}, contentColumns...)
			ra, rb := e.rawEvent(a), e.rawEvent(b)
			// prev_hash is unique: clear it on one row first.
			e.must(e.db.Table(auditTable).Where("id = ?", a).Update("prev_hash", nil).Error)
			e.overwrite(b, ra, cols)
			e.overwrite(a, rb, cols)
			return a, audit.Changed
		}},
		{"hash removed", func(e *env, ids []int64) (int64, audit.Problem) {
			m := ids[len(ids)/2]
			e.must(e.db.Table(auditTable).Where("id = ?", m).Update("hash", nil).Error)
			return m, audit.Unchained
		}},
		{"outcome set to something else", func(e *env, ids []int64) (int64, audit.Problem) {
			m := ids[len(ids)/3]
			e.must(e.db.Table(auditTable).Where("id = ?", m).Update("outcome", "allowed").Error)
			return m, audit.Changed
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachKind(t, func(t *testing.T, e *env) {
				ids := e.history()
				e.intact(e.verify(), len(ids))
				id, p := tc.tamper(e, ids)
				e.broken(e.verify(), id, p)
				// The Service goes on appending; the break stays found.
				e.must(e.svc.ChangeName(e.ctx, e.admin, "Ada A."))
				e.broken(e.verify(), id, p)
			})
		})
	}
}

// insertRaw writes ev into the audit table directly, as a forger would.
func (e *env) insertRaw(ev audit.Event) {
	e.t.Helper()
	e.must(e.db.Table(auditTable).Create(map[string]any{
		"id": ev.ID, "occurred_at": ev.Time.UTC(), "actor_id": string(ev.Actor), "action": string(ev.Action),
		"target_id": string(ev.Target), "org_id": string(ev.Org), "client_addr": ev.ClientAddr,
		"outcome": ev.Outcome.String(), "reason": ev.Reason, "prev_hash": ev.PrevHash.String(), "hash": ev.Hash.String(),
	}).Error)
	if e.kind == dbtest.Postgres {
		// A thorough forger moves the id sequence past the row, so that
		// the Service's next append does not collide with it.
		e.must(e.db.Exec("SELECT setval(pg_get_serial_sequence('"+auditTable+"', 'id'), ?)", ev.ID).Error)
	}
}

func TestAuditChainCheckpointDetectsTruncation(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		ids := e.history()
		cp, err := e.svc.AuditCheckpoint(e.ctx)
		e.must(err)
		if cp.ID != ids[len(ids)-1] {
			t.Fatalf("checkpoint at %d, want %d", cp.ID, ids[len(ids)-1])
		}
		e.deleteEvents(ids[len(ids)-3:]...)
		// What is left is a valid chain: only the checkpoint tells.
		e.intact(e.verify(), len(ids)-3)
		res, err := e.svc.VerifyAuditCheckpoint(e.ctx, cp)
		e.must(err)
		e.broken(res, cp.ID, audit.Truncated)
		// New events after the truncation do not hide it.
		e.must(e.svc.ChangeName(e.ctx, e.admin, "Ada A."))
		e.must(e.svc.ChangeName(e.ctx, e.admin, "Ada B."))
		e.must(e.svc.ChangeName(e.ctx, e.admin, "Ada C."))
		e.must(e.svc.ChangeName(e.ctx, e.admin, "Ada D."))
		e.intact(e.verify(), len(ids)+1)
		res, err = e.svc.VerifyAuditCheckpoint(e.ctx, cp)
		e.must(err)
		// Deleted IDs are not reused (SQLite's AUTOINCREMENT, PostgreSQL's
		// sequence): the checkpoint's event is gone for good.
		e.broken(res, cp.ID, audit.Truncated)
		// A checkpoint of another history (the log rewritten up to the
		// checkpoint's event) is found too.
		forged := cp
		forged.ID = ids[len(ids)-4]
		res, err = e.svc.VerifyAuditCheckpoint(e.ctx, forged)
		e.must(err)
		e.broken(res, forged.ID, audit.Rewritten)
	})
}

func TestAuditChainConcurrentReplicas(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		org := e.org("Acme")
		const replicas, workers, each = 3, 8, 15
		svcs := []*iam.Service{e.svc}
		for range replicas - 1 {
			svcs = append(svcs, e.open())
		}
		users := make([]authz.UserID, workers)
		for w := range users {
			users[w] = e.member(fmt.Sprintf("w%d@example.com", w), org, authz.Member, 0)
		}
		before := len(e.auditIDs())
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				svc := svcs[w%len(svcs)]
				for i := range each {
					var err error
					switch i % 3 {
					case 0: // a success, recorded in the operation's transaction
						err = svc.ChangeName(e.ctx, users[w], fmt.Sprintf("Worker %d.%d", w, i))
					case 1: // a denial, recorded in a transaction of its own
						if err = svc.SetCategories(e.ctx, users[w], users[(w+1)%workers], org, authz.NewCategorySet(authz.VPN)); errors.Is(err, authz.ErrForbidden) {
							err = nil
						}
					case 2: // a management operation that bumps the policy version
						err = svc.SetCategories(e.ctx, e.admin, users[w], org, authz.NewCategorySet(authz.Category(1+i%7)))
					}
					if err != nil {
						errs[w] = fmt.Errorf("worker %d op %d: %w", w, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		e.must(errors.Join(errs...))
		n := len(e.auditIDs())
		if n != before+workers*each {
			t.Errorf("%d events after %d operations, want %d", n, workers*each, before+workers*each)
		}
		e.intact(e.verify(), n)
	})
}
