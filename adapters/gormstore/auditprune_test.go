package gormstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

var pruneBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// prunable appends n events an hour apart from pruneBase (the times of
// those in older, if any, set instead) and returns them.
func prunable(t *testing.T, s *gormstore.Store, n int, older map[int]time.Time) []audit.Event {
	t.Helper()
	var out []audit.Event
	for i := range n {
		at := pruneBase.Add(time.Duration(i) * time.Hour)
		if o, ok := older[i]; ok {
			at = o
		}
		e, err := s.Audit().Append(t.Context(), audit.NewEvent(at, authz.NewUserID(), audit.OrgRename))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func chainIDs(t *testing.T, db *gorm.DB) []int64 {
	t.Helper()
	var ids []int64
	if err := db.Table("iam_audit_events").Order("id").Pluck("id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestAuditPrune(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		ctx := t.Context()
		if _, err := s.PruneAudit(ctx, time.Time{}); !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("PruneAudit(zero time) = %v, want ErrInvalid", err)
		}
		// Event 7 is old, but after the prefix: it stays.
		es := prunable(t, s, 10, map[int]time.Time{7: pruneBase.Add(-time.Hour)})
		verifyStore(t, s, 10)

		// Nothing before the cutoff: a no-op.
		cp, err := s.PruneAudit(ctx, pruneBase)
		if err != nil || cp != (audit.Checkpoint{}) {
			t.Fatalf("PruneAudit of nothing = %+v, %v", cp, err)
		}
		if got := chainIDs(t, db); len(got) != 10 {
			t.Fatalf("a no-op prune left %d events", len(got))
		}
		if p, err := s.AuditPruned(ctx); err != nil || p != (audit.Checkpoint{}) {
			t.Errorf("AuditPruned before any prune = %+v, %v", p, err)
		}

		// Prune the first five (times +0h to +4h; +5h is not before).
		cp, err = s.PruneAudit(ctx, pruneBase.Add(5*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if cp.ID != es[4].ID || cp.Hash != es[4].Hash || cp.At.IsZero() {
			t.Fatalf("PruneAudit = %+v, want event %d with hash %s", cp, es[4].ID, es[4].Hash)
		}
		ids := chainIDs(t, db)
		if len(ids) != 6 || ids[0] != es[5].ID || ids[4] != es[9].ID {
			t.Fatalf("after the prune: events %v", ids)
		}
		evs, err := s.Audit().Events(ctx, audit.Filter{AllOrgs: true, Limit: 1})
		if err != nil || len(evs) != 1 || evs[0].Action != audit.AuditPrune || evs[0].Actor != "" || evs[0].PrevHash != es[9].Hash {
			t.Fatalf("the newest event = %+v, %v; want audit.prune chained to event %d", evs, err, es[9].ID)
		}
		var after struct {
			Through int64 `json:"through_event"`
			Events  int64 `json:"events"`
		}
		if err := json.Unmarshal(evs[0].After, &after); err != nil || after.Through != es[4].ID || after.Events != 5 {
			t.Errorf("audit.prune after = %s, %v", evs[0].After, err)
		}
		verifyStore(t, s, 6)
		if p, err := s.AuditPruned(ctx); err != nil || p.ID != cp.ID || p.Hash != cp.Hash || !p.At.Equal(cp.At) {
			t.Errorf("AuditPruned = %+v, %v; want %+v", p, err, cp)
		}
		// The kept checkpoint survives JSON and matches the record.
		b, _ := json.Marshal(cp)
		var kept audit.Checkpoint
		if err := json.Unmarshal(b, &kept); err != nil {
			t.Fatal(err)
		}
		if res, err := s.VerifyAuditPruned(ctx, audit.Checkpoint{}, kept); err != nil || !res.OK() || res.Events != 6 {
			t.Errorf("VerifyAuditPruned = %+v, %v", res, err)
		}
		// A checkpoint taken before the prune: its event is gone by
		// design, nothing more to check; the one at the prune matches.
		for _, old := range []audit.Checkpoint{{ID: es[2].ID, Hash: es[2].Hash}, {ID: es[4].ID, Hash: es[4].Hash}} {
			if res, err := s.VerifyAuditCheckpoint(ctx, old); err != nil || !res.OK() {
				t.Errorf("VerifyAuditCheckpoint(%d) = %+v, %v", old.ID, res, err)
			}
		}
		if res, err := s.VerifyAuditCheckpoint(ctx, audit.Checkpoint{ID: es[4].ID, Hash: es[3].Hash}); err != nil || res.Break == nil || res.Break.Problem != audit.Rewritten {
			t.Errorf("VerifyAuditCheckpoint of another history at the prune = %+v, %v", res, err)
		}

		// Appends go on; then prune everything, the first prune's event
		// included: the chain goes on from the marker.
		more := prunable(t, s, 2, nil)
		verifyStore(t, s, 8)
		cp2, err := s.PruneAudit(ctx, time.Now().Add(time.Hour))
		if err != nil || cp2.ID != more[1].ID || cp2.Hash != more[1].Hash {
			t.Fatalf("second PruneAudit = %+v, %v; want event %d", cp2, err, more[1].ID)
		}
		verifyStore(t, s, 1)
		if res, err := s.VerifyAuditPruned(ctx, audit.Checkpoint{}, cp2); err != nil || !res.OK() {
			t.Errorf("VerifyAuditPruned(second) = %+v, %v", res, err)
		}
		if res, err := s.VerifyAuditPruned(ctx, audit.Checkpoint{}, cp); err != nil || res.Break == nil || res.Break.ID != cp.ID || res.Break.Problem != audit.Rewritten {
			t.Errorf("VerifyAuditPruned(first, superseded) = %+v, %v", res, err)
		}
		var markers int64
		if err := db.Table("iam_audit_prunes").Count(&markers).Error; err != nil || markers != 2 {
			t.Errorf("%d prune markers, %v; want 2", markers, err)
		}
		// A reopened store (a restart) verifies and appends the same.
		s2, err := gormstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		prunable(t, s2, 1, nil)
		verifyStore(t, s2, 2)
	})
}

func TestAuditPruneTamperingDetected(t *testing.T) {
	exec := func(t *testing.T, db *gorm.DB, sql string, args ...any) {
		t.Helper()
		res := db.Exec(sql, args...)
		if res.Error != nil || res.RowsAffected == 0 {
			t.Fatalf("%s: %d rows, %v", sql, res.RowsAffected, res.Error)
		}
	}
	for _, tc := range []struct {
		name string
		// tamper edits a log pruned through cp whose remaining events
		// (the prune's own last) are left, and returns the break
		// VerifyAudit must report, and the one VerifyAuditPruned with
		// cp must report (the same when zero).
		tamper func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (id int64, p audit.Problem, keptID int64, keptP audit.Problem)
	}{
		{"marker hash edited", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "UPDATE iam_audit_prunes SET last_hash = ?", left[2].Hash.String())
			return left[0].ID, audit.Unlinked, cp.ID, audit.Rewritten
		}},
		{"marker deleted", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "DELETE FROM iam_audit_prunes")
			return left[0].ID, audit.Unlinked, cp.ID, audit.Rewritten
		}},
		{"more events deleted", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "DELETE FROM iam_audit_events WHERE id <= ?", left[1].ID)
			return left[2].ID, audit.Unlinked, 0, 0
		}},
		{"more events deleted, marker rewritten to match", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "DELETE FROM iam_audit_events WHERE id <= ?", left[1].ID)
			exec(t, db, "UPDATE iam_audit_prunes SET last_event_id = ?, last_hash = ?", left[1].ID, left[1].Hash.String())
			// The database alone cannot tell: the kept checkpoint does.
			return 0, 0, cp.ID, audit.Rewritten
		}},
		{"everything after the marker deleted", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "DELETE FROM iam_audit_events")
			return cp.ID, audit.Truncated, 0, 0
		}},
		{"remaining event edited", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "UPDATE iam_audit_events SET client_addr = ? WHERE id = ?", "203.0.113.9", left[1].ID)
			return left[1].ID, audit.Changed, 0, 0
		}},
		{"marker moved past remaining events", func(t *testing.T, db *gorm.DB, cp audit.Checkpoint, left []audit.Event) (int64, audit.Problem, int64, audit.Problem) {
			exec(t, db, "UPDATE iam_audit_prunes SET last_event_id = ?", left[1].ID)
			return left[0].ID, audit.OutOfOrder, cp.ID, audit.Rewritten
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachKind(t, func(t *testing.T, kind dbtest.Kind) {
				db, s := openStore(t, kind)
				prunable(t, s, 8, nil)
				cp, err := s.PruneAudit(t.Context(), pruneBase.Add(4*time.Hour))
				if err != nil || cp.ID == 0 {
					t.Fatalf("PruneAudit = %+v, %v", cp, err)
				}
				var left []audit.Event
				for e, err := range s.AuditChain(t.Context()) {
					if err != nil {
						t.Fatal(err)
					}
					left = append(left, e)
				}
				if len(left) != 5 {
					t.Fatalf("%d events left, want 5", len(left))
				}
				id, p, keptID, keptP := tc.tamper(t, db, cp, left)
				if keptID == 0 {
					keptID, keptP = id, p
				}
				res, err := s.VerifyAudit(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case id == 0 && !res.OK():
					t.Errorf("VerifyAudit: %v, want intact", res.Break)
				case id != 0 && (res.Break == nil || res.Break.ID != id || res.Break.Problem != p):
					t.Errorf("VerifyAudit: %+v, want %s at %d", res.Break, p, id)
				}
				res, err = s.VerifyAuditPruned(t.Context(), audit.Checkpoint{}, cp)
				if err != nil {
					t.Fatal(err)
				}
				if res.Break == nil || res.Break.ID != keptID || res.Break.Problem != keptP {
					t.Errorf("VerifyAuditPruned: %+v, want %s at %d", res.Break, keptP, keptID)
				} else {
					t.Logf("detected: %v", res.Break)
				}
			})
		})
	}
}

// A broken log is not pruned: that would destroy the evidence.
func TestAuditPruneRefusesBrokenLog(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		es := prunable(t, s, 6, nil)
		if err := db.Exec("UPDATE iam_audit_events SET reason = ? WHERE id = ?", "forged", es[1].ID).Error; err != nil {
			t.Fatal(err)
		}
		cp, err := s.PruneAudit(t.Context(), pruneBase.Add(3*time.Hour))
		var b *audit.Break
		if !errors.As(err, &b) || b.ID != es[1].ID || b.Problem != audit.Changed || cp != (audit.Checkpoint{}) {
			t.Fatalf("PruneAudit of a broken log = %+v, %v", cp, err)
		}
		if ids := chainIDs(t, db); len(ids) != 6 {
			t.Errorf("%d events left, want all 6", len(ids))
		}
	})
}

// Pruning while writers append and a verifier reads: the appends chain to
// what remains (or to the marker), every verification passes, and the
// log verifies at the end.
func TestAuditPruneConcurrent(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s := openStore(t, kind)
		const writers, each, prunes, seeded = 4, 40, 5, 3
		// A few events before anything runs, so that the first prune has
		// something to prune however the goroutines are scheduled (on a
		// loaded machine all prunes could otherwise finish before the
		// first append).
		for range seeded {
			if _, err := s.Audit().Append(t.Context(), audit.NewEvent(pruneBase, authz.NewUserID(), audit.OrgRename)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, writers+2)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if _, err := s.Audit().Append(t.Context(), audit.NewEvent(pruneBase, authz.NewUserID(), audit.OrgRename)); err != nil {
						errs[w] = fmt.Errorf("writer %d, event %d: %w", w, i, err)
						return
					}
				}
			})
		}
		var pruned []audit.Checkpoint
		wg.Go(func() {
			for range prunes {
				cp, err := s.PruneAudit(t.Context(), pruneBase.Add(time.Hour))
				if err != nil {
					errs[writers] = fmt.Errorf("prune: %w", err)
					return
				}
				if cp.ID > 0 {
					pruned = append(pruned, cp)
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				res, err := s.VerifyAudit(t.Context())
				if err == nil && !res.OK() {
					err = res.Break
				}
				if err != nil {
					errs[writers+1] = fmt.Errorf("verify: %w", err)
					return
				}
			}
		})
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if len(pruned) == 0 {
			t.Fatal("nothing was pruned")
		}
		last := pruned[len(pruned)-1]
		res, err := s.VerifyAuditPruned(t.Context(), audit.Checkpoint{}, last)
		if err != nil || !res.OK() {
			t.Fatalf("VerifyAuditPruned = %+v, %v", res, err)
		}
		var left, gone int64
		if err := db.Table("iam_audit_events").Where("action = ?", string(audit.OrgRename)).Count(&left).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Table("iam_audit_prunes").Select("COALESCE(SUM(events), 0)").Scan(&gone).Error; err != nil {
			t.Fatal(err)
		}
		// Every event was either pruned or is still there (pruned
		// audit.prune events count among the pruned).
		var prunesLeft int64
		if err := db.Table("iam_audit_events").Where("action = ?", string(audit.AuditPrune)).Count(&prunesLeft).Error; err != nil {
			t.Fatal(err)
		}
		if left+gone+prunesLeft != seeded+writers*each+int64(len(pruned)) {
			t.Errorf("%d events left, %d pruned, %d prune events left; want %d in all", left, gone, prunesLeft, seeded+writers*each+len(pruned))
		}
	})
}
