package gormstore

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"gorm.io/gorm"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// pruneRow is one prune of the audit log, as the table iam_audit_prunes
// holds it: the checkpoint of the last event it deleted (its id and hash),
// when, the cutoff it was asked for, and how many events it deleted. The
// row with the greatest last_event_id is where the chain of the remaining
// events starts (see Store.AuditPruned); older rows are kept as history.
type pruneRow struct {
	ID          int64     `gorm:"column:id;primaryKey;autoIncrement"`
	LastEventID int64     `gorm:"column:last_event_id;not null;uniqueIndex:idx_iam_audit_prunes_last"`
	LastHash    string    `gorm:"column:last_hash;size:64;not null"`
	PrunedAt    time.Time `gorm:"column:pruned_at;not null"`
	BeforeTime  time.Time `gorm:"column:before_time;not null"`
	Events      int64     `gorm:"column:events;not null"`
}

func (pruneRow) TableName() string { return "iam_audit_prunes" }

// readPruned reads the latest prune marker as a checkpoint: the zero
// Checkpoint when the log was never pruned. strict refuses a marker whose
// hash is not 64 hex digits (for appending); otherwise such a hash reads
// as zero, which no event links to (for verification).
func readPruned(db *gorm.DB, strict bool) (audit.Checkpoint, error) {
	var rows []pruneRow
	if err := db.Order("last_event_id DESC").Limit(1).Find(&rows).Error; err != nil {
		return audit.Checkpoint{}, err
	}
	if len(rows) == 0 {
		return audit.Checkpoint{}, nil
	}
	h, err := audit.ParseHash(rows[0].LastHash)
	if (err != nil || h.IsZero()) && strict {
		return audit.Checkpoint{}, corrupt(pruneRow{}.TableName(), fmt.Sprint(rows[0].ID), "last_hash is not 64 hex digits")
	}
	return audit.Checkpoint{ID: rows[0].LastEventID, Hash: h, At: rows[0].PrunedAt.UTC()}, nil
}

// AuditPruned returns the checkpoint of the latest prune (see PruneAudit):
// the id and hash of the last event it deleted, At when it ran; the zero
// Checkpoint when the log was never pruned. It reads the database's
// record, which an intruder could rewrite: compare it with the checkpoint
// PruneAudit returned (VerifyAuditPruned does). Errors are wrapped with
// "gormstore: audit pruned". Safe for concurrent use.
func (s *Store) AuditPruned(ctx context.Context) (audit.Checkpoint, error) {
	cp, err := readPruned(s.db.WithContext(ctx), false)
	return cp, wrap("audit pruned", err)
}

// PruneAudit deletes the oldest events of the audit log, those before
// the time before, and returns the checkpoint of the last one it deleted
// (its ID and Hash, At the time of the prune). Keep that checkpoint apart
// from the database, signed off as the record of what was pruned: after
// the prune the chain starts at an event whose PrevHash is its Hash, and
// VerifyAuditPruned checks the database's record of the prune against it.
//
// Only a prefix of the log is pruned, so that what remains is one
// contiguous chain: the longest run of events, oldest first, all of whose
// times are before the cutoff (an event at or after it ends the run, even
// if events after that one are older). When there is no such event,
// PruneAudit writes nothing and returns the zero Checkpoint (ID 0) and no
// error.
//
// In one transaction, under the log-wide lock of Append (so appends wait
// and then chain to what remains), PruneAudit verifies the whole log and
// refuses a broken one (the error wraps the *audit.Break, so that
// deleting events never destroys the evidence of tampering); records the
// prune in the table iam_audit_prunes; deletes the events; and appends an
// audit.prune event (no actor; After holds the last pruned event's ID,
// the number of events and the cutoff) to the chain. So the log never
// ends at the prune marker: a marker with no event after it means events
// were deleted since (VerifyAudit reports Truncated).
//
// Errors: a zero before is an *authz.InvalidError (authz.ErrInvalid); a
// database failure rolls everything back. Errors are wrapped with
// "gormstore: prune audit log". Safe for concurrent use; it reads the
// whole log, so it takes as long as VerifyAudit.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (audit.Checkpoint, error) {
	const op = "prune audit log"
	if before.IsZero() {
		return audit.Checkpoint{}, wrap(op, &authz.InvalidError{Field: "prune before", Value: "", Reason: "missing"})
	}
	cutoff := dbTimeCeil(before) // t < before exactly when t < cutoff, for a stored t
	now := dbTime(time.Now())
	var cp audit.Checkpoint
	err := s.Transaction(ctx, func(tx *Tx) error {
		db := tx.db
		if isPostgres(db) {
			if err := lockAudit(db); err != nil {
				return wrap(op, err)
			}
		}
		start, err := readPruned(db, true)
		if err != nil {
			return wrap(op, err)
		}
		var last audit.Event
		var n int64
		prefix := true
		events := func(yield func(audit.Event, error) bool) {
			for e, err := range chainOf(db) {
				if err == nil && prefix {
					if e.Time.Before(cutoff) {
						last, n = e, n+1
					} else {
						prefix = false
					}
				}
				if !yield(e, err) {
					return
				}
			}
		}
		res, err := verifyFrom(start, events, audit.Checkpoint{})
		if err != nil {
			return wrap(op, err)
		}
		if !res.OK() {
			return wrap(op, fmt.Errorf("refusing to prune a broken audit log: %w", res.Break))
		}
		if n == 0 {
			return nil
		}
		cp = audit.Checkpoint{ID: last.ID, Hash: last.Hash, At: now}
		if err := db.Create(&pruneRow{LastEventID: last.ID, LastHash: last.Hash.String(), PrunedAt: now, BeforeTime: cutoff, Events: n}).Error; err != nil {
			return wrap(op, fmt.Errorf("record the prune: %w", err))
		}
		del := db.Where("id <= ?", last.ID).Delete(&eventRow{})
		if del.Error != nil {
			return wrap(op, fmt.Errorf("delete events: %w", del.Error))
		}
		if del.RowsAffected != n {
			return wrap(op, fmt.Errorf("deleting the %d events through event %d deleted %d rows", n, last.ID, del.RowsAffected))
		}
		ev := audit.NewEvent(now, "", audit.AuditPrune)
		after, err := json.Marshal(struct {
			Through int64  `json:"through_event"`
			Events  int64  `json:"events"`
			Before  string `json:"before"`
		}{last.ID, n, cutoff.Format(time.RFC3339Nano)})
		if err != nil {
			return wrap(op, err)
		}
		ev.After = after
		if _, err := tx.Audit().Append(ctx, ev); err != nil {
			return wrap(op, err)
		}
		return nil
	})
	if err != nil {
		return audit.Checkpoint{}, err
	}
	return cp, nil
}

// chainOf is AuditChain on db (a transaction, or the Store's database).
func chainOf(db *gorm.DB) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		fail := func(err error) { yield(audit.Event{}, fmt.Errorf("gormstore: audit chain: %w", err)) }
		rows, err := db.Model(&eventRow{}).Order("id").Rows()
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var row eventRow
			if err := db.ScanRows(rows, &row); err != nil {
				fail(err)
				return
			}
			if !yield(row.chainEvent(), nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	}
}

// verifyFrom is audit.VerifyFrom, and also reports a log pruned through
// start with no event after it as Truncated at start.ID: PruneAudit
// always appends its own event after what it prunes, so the events after
// the prune were deleted.
func verifyFrom(start audit.Checkpoint, events iter.Seq2[audit.Event, error], cp audit.Checkpoint) (audit.VerifyResult, error) {
	res, err := audit.VerifyFrom(start, events, cp)
	if err == nil && res.OK() && start.ID > 0 && res.Events == 0 {
		res.Break = &audit.Break{ID: start.ID, Problem: audit.Truncated, Detail: fmt.Sprintf("the log was pruned through event %d, but no event follows: the prune's own audit.prune event and every event after it were deleted", start.ID)}
	}
	return res, err
}

// VerifyAuditPruned is VerifyAuditCheckpoint for a log that may have
// been pruned, checked against pruned, the checkpoint the latest
// PruneAudit returned and the operator kept apart from the database: the
// database's record of the latest prune must name the same event and
// hash, else the result's Break is audit.Rewritten at pruned.ID (an
// intruder rewrote or deleted the record, or pruned again; after a later
// legitimate prune, verify against that prune's checkpoint). The zero
// pruned checks nothing more than VerifyAuditCheckpoint, which trusts the
// database's record as where the chain starts (a record that does not
// link to the first remaining event is still a break there).
//
// Errors are database failures, as for VerifyAudit. Safe for concurrent
// use, also while events are appended or the log pruned: when a prune
// commits while it reads, it verifies again.
func (s *Store) VerifyAuditPruned(ctx context.Context, cp, pruned audit.Checkpoint) (audit.VerifyResult, error) {
	for attempt := 0; ; attempt++ {
		start, err := s.AuditPruned(ctx)
		if err != nil {
			return audit.VerifyResult{}, err
		}
		if pruned.ID > 0 && (start.ID != pruned.ID || start.Hash != pruned.Hash) {
			d := fmt.Sprintf("the kept prune checkpoint says the log was pruned through event %d with hash %s, the database's record of the latest prune says ", pruned.ID, pruned.Hash)
			if start.ID == 0 {
				d += "it was never pruned"
			} else {
				d += fmt.Sprintf("through event %d with hash %s", start.ID, start.Hash)
			}
			return audit.VerifyResult{Head: audit.Checkpoint{Hash: audit.Genesis()}, Break: &audit.Break{ID: pruned.ID, Problem: audit.Rewritten, Detail: d}}, nil
		}
		res, err := verifyFrom(start, s.AuditChain(ctx), cp)
		if err != nil || res.OK() || attempt > 0 {
			return res, err
		}
		again, err := s.AuditPruned(ctx)
		if err != nil || again == start {
			return res, err
		}
	}
}
