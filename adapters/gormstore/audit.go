package gormstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"gorm.io/gorm"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// lockClassAudit is the advisory lock class (see lockClassMigrate) of
// audit appends on PostgreSQL.
const lockClassAudit = "1767992579" // "iam" 0x69616d03

// eventRow is an audit event as the table iam_audit_events holds it. The
// ID is an auto-incrementing integer (bigserial on PostgreSQL, INTEGER
// PRIMARY KEY AUTOINCREMENT on SQLite, so an ID is never reused). Empty
// ids are stored as "" (never NULL), so that an Orgs scope, which holds
// canonical ids only, never selects an event without an org. Before and
// After are text (not jsonb, which would normalize them) and NULL when
// nil, so they read back byte for byte. The indexes on (actor_id, id),
// (target_id, id) and (org_id, id) serve "this one's events, newest
// first" a page at a time; the one on occurred_at, time ranges.
//
// PrevHash and Hash hold the chain (audit.ChainHash) as 64 hex digits;
// NULL only in rows written before the chain existed, until Open or the
// next Append chains them. The unique index on prev_hash makes a fork
// impossible whatever the writers do: no two events can follow the same
// one (NULLs are distinct, so unchained rows do not collide).
type eventRow struct {
	ID         int64     `gorm:"column:id;primaryKey;autoIncrement;index:idx_iam_audit_events_actor,priority:2;index:idx_iam_audit_events_target,priority:2;index:idx_iam_audit_events_org,priority:2"`
	OccurredAt time.Time `gorm:"column:occurred_at;not null;index:idx_iam_audit_events_time"`
	ActorID    string    `gorm:"column:actor_id;size:64;not null;index:idx_iam_audit_events_actor,priority:1"`
	Action     string    `gorm:"column:action;size:64;not null"`
	TargetID   string    `gorm:"column:target_id;size:64;not null;index:idx_iam_audit_events_target,priority:1"`
	OrgID      string    `gorm:"column:org_id;size:64;not null;index:idx_iam_audit_events_org,priority:1"`
	ClientAddr string    `gorm:"column:client_addr;not null"`
	Outcome    string    `gorm:"column:outcome;size:16;not null"`
	Reason     string    `gorm:"column:reason;not null"`
	Before     *string   `gorm:"column:before_change;type:text"`
	After      *string   `gorm:"column:after_change;type:text"`
	PrevHash   *string   `gorm:"column:prev_hash;size:64;uniqueIndex:idx_iam_audit_events_prev"`
	Hash       *string   `gorm:"column:hash;size:64"`
}

func (eventRow) TableName() string { return "iam_audit_events" }

// migrateAudit creates the table, or adds what is missing to an existing
// one (the chain's columns and index, through GORM's migrator), then
// chains the events of an existing log that carry no hash yet.
func migrateAudit(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&eventRow{}); err != nil {
		return fmt.Errorf("migrate %s: %w", eventRow{}.TableName(), err)
	}
	if err := tx.AutoMigrate(&pruneRow{}); err != nil {
		return fmt.Errorf("migrate %s: %w", pruneRow{}.TableName(), err)
	}
	head, err := readHead(tx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", eventRow{}.TableName(), err)
	}
	if head.ID == 0 || head.Hash != nil {
		return nil
	}
	if isPostgres(tx) {
		if err := lockAudit(tx); err != nil {
			return fmt.Errorf("migrate %s: %w", eventRow{}.TableName(), err)
		}
	}
	if err := chainTail(tx); err != nil {
		return fmt.Errorf("migrate %s: chain the events written before the hash chain: %w", eventRow{}.TableName(), err)
	}
	return nil
}

// lockAudit takes the log-wide advisory lock on PostgreSQL, held until the
// transaction ends. One key for the whole log: IDs are taken, chained and
// committed in one order. The SQL text is constant.
func lockAudit(db *gorm.DB) error {
	if err := db.Exec("SELECT pg_advisory_xact_lock(" + lockClassAudit + ", 0)").Error; err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// headRow is the newest event's id and hash.
type headRow struct {
	ID   int64
	Hash *string
}

// readHead reads the newest event's id and hash: ID 0 for an empty log.
func readHead(db *gorm.DB) (headRow, error) {
	var rows []headRow
	if err := db.Model(&eventRow{}).Select("id, hash").Order("id DESC").Limit(1).Find(&rows).Error; err != nil {
		return headRow{}, err
	}
	if len(rows) == 0 {
		return headRow{}, nil
	}
	return rows[0], nil
}

// chainBatch is how many unchained events chainTail reads at a time.
const chainBatch = 500

// chainTail chains the events after the newest chained one (all events,
// if none is chained), oldest first: the rows a version of this module
// without the chain wrote. Run it under the log-wide exclusion.
func chainTail(db *gorm.DB) error {
	var last []headRow
	if err := db.Model(&eventRow{}).Select("id, hash").Where("hash IS NOT NULL").Order("id DESC").Limit(1).Find(&last).Error; err != nil {
		return err
	}
	prev, after := audit.Genesis(), int64(0)
	start, err := readPruned(db, true)
	if err != nil {
		return err
	}
	if start.ID > 0 {
		prev = start.Hash
	}
	if len(last) > 0 {
		h, err := audit.ParseHash(*last[0].Hash)
		if err != nil || h.IsZero() {
			return corrupt(eventRow{}.TableName(), fmt.Sprint(last[0].ID), "hash is not 64 hex digits")
		}
		prev, after = h, last[0].ID
	}
	for {
		// A batch at a time, read to the end before updating: a
		// connection runs one statement at a time.
		var rows []eventRow
		if err := db.Where("id > ?", after).Order("id").Limit(chainBatch).Find(&rows).Error; err != nil {
			return err
		}
		for _, row := range rows {
			e, err := row.event()
			if err != nil {
				return err
			}
			e.Link(prev)
			ph, h := e.PrevHash.String(), e.Hash.String()
			res := db.Model(&eventRow{}).Where("id = ?", row.ID).Updates(map[string]any{"prev_hash": ph, "hash": h})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return fmt.Errorf("chaining event %d updated %d rows", row.ID, res.RowsAffected)
			}
			prev, after = e.Hash, row.ID
		}
		if len(rows) < chainBatch {
			return nil
		}
	}
}

func nullText(b json.RawMessage) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

func fromNullText(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func parseNullHash(s *string) (audit.Hash, error) {
	if s == nil {
		return audit.Hash{}, nil
	}
	h, err := audit.ParseHash(*s)
	if err == nil && h.IsZero() {
		err = fmt.Errorf("empty hash")
	}
	return h, err
}

func (row eventRow) event() (audit.Event, error) {
	o, err := audit.ParseOutcome(row.Outcome)
	if err != nil {
		return audit.Event{}, corrupt(row.TableName(), fmt.Sprint(row.ID), fmt.Sprintf("outcome %q", row.Outcome))
	}
	prev, err := parseNullHash(row.PrevHash)
	if err != nil {
		return audit.Event{}, corrupt(row.TableName(), fmt.Sprint(row.ID), "prev_hash is not 64 hex digits")
	}
	hash, err := parseNullHash(row.Hash)
	if err != nil {
		return audit.Event{}, corrupt(row.TableName(), fmt.Sprint(row.ID), "hash is not 64 hex digits")
	}
	return audit.Event{
		PrevHash:   prev,
		Hash:       hash,
		ID:         row.ID,
		Time:       row.OccurredAt,
		Actor:      authz.UserID(row.ActorID),
		Action:     audit.Action(row.Action),
		Target:     authz.UserID(row.TargetID),
		Org:        authz.OrgID(row.OrgID),
		ClientAddr: row.ClientAddr,
		Outcome:    o,
		Reason:     row.Reason,
		Before:     fromNullText(row.Before),
		After:      fromNullText(row.After),
	}, nil
}

// auditStore implements audit.Store over the table iam_audit_events, in a
// Tx or on the Store's database.
type auditStore struct{ scope }

var _ audit.Store = (*auditStore)(nil)

// Audit returns the audit log as an audit.Store bound to this
// transaction: an appended event commits with the transaction's other
// writes or not at all. Like the Tx, it is not for concurrent use and is
// dead once Transaction's function returns (every method then fails).
//
// A method that fails in the database spoils the Tx (it rolls back even
// if the function returns nil); an invalid event or filter is an
// *authz.InvalidError (authz.ErrInvalid) and leaves the Tx usable.
//
// Concurrency: on PostgreSQL, Append takes an advisory lock that it holds
// until the transaction ends, so that transactions appending events
// commit one after the other, in the order of their IDs: a reader never
// sees an event appear below an ID it has already read past, and the
// paging cursor of audit.Filter stays exact. Under the same lock Append
// reads the newest committed event and chains the new one to it, so the
// chain never forks, however many goroutines and replicas append (this
// needs PostgreSQL's default READ COMMITTED isolation, in which a
// statement sees what committed before it began). Append last in a
// transaction, after BumpVersion and the other writes, to keep the lock
// short and its order with other locks fixed. (SQLite serializes writing
// transactions by itself, with the same effect.)
func (t *Tx) Audit() audit.Store { return &auditStore{scope{tx: t}} }

// Audit returns the audit log as an audit.Store on the Store's database,
// each method in a transaction of its own: for reads outside a management
// operation, denied attempts recorded on their own, and tests. It is safe
// for concurrent use; appends are ordered as described at Tx.Audit.
func (s *Store) Audit() audit.Store { return &auditStore{scope{db: s.db}} }

// Append implements audit.Store.
func (s *auditStore) Append(ctx context.Context, e audit.Event) (audit.Event, error) {
	const op = "append audit event"
	if e.ID != 0 {
		return audit.Event{}, wrap(op, &authz.InvalidError{Field: "audit event id", Value: fmt.Sprint(e.ID), Reason: "assigned by the store: leave it zero"})
	}
	if !e.PrevHash.IsZero() || !e.Hash.IsZero() {
		return audit.Event{}, wrap(op, &authz.InvalidError{Field: "audit event hash", Value: e.Hash.String(), Reason: "set by the store: leave PrevHash and Hash zero"})
	}
	if err := e.Validate(); err != nil {
		return audit.Event{}, wrap(op, err)
	}
	row := eventRow{
		OccurredAt: dbTime(e.Time),
		ActorID:    string(e.Actor),
		Action:     string(e.Action),
		TargetID:   string(e.Target),
		OrgID:      string(e.Org),
		ClientAddr: e.ClientAddr,
		Outcome:    e.Outcome.String(),
		Reason:     e.Reason,
		Before:     nullText(e.Before),
		After:      nullText(e.After),
	}
	err := s.write(ctx, op, func(db *gorm.DB) error {
		if isPostgres(db) {
			if err := lockAudit(db); err != nil {
				return failed(err)
			}
		}
		// The head, read under the exclusion (on SQLite, the transaction
		// is the only writer, or fails at its first write if another
		// committed since it read).
		head, err := readHead(db)
		if err != nil {
			return failed(fmt.Errorf("read the head of the chain: %w", err))
		}
		if head.ID > 0 && head.Hash == nil {
			// Events a version without the chain wrote: chain them first.
			if err := chainTail(db); err != nil {
				return failed(fmt.Errorf("chain the events written before the hash chain: %w", err))
			}
			if head, err = readHead(db); err != nil {
				return failed(fmt.Errorf("read the head of the chain: %w", err))
			}
		}
		prev := audit.Genesis()
		if head.ID > 0 {
			if prev, err = parseNullHash(head.Hash); err != nil {
				return corrupt(row.TableName(), fmt.Sprint(head.ID), "hash is not 64 hex digits")
			}
		} else {
			// Empty: never written to, or pruned through its newest
			// event. The chain goes on from the last pruned one.
			start, err := readPruned(db, true)
			if err != nil {
				return failed(fmt.Errorf("read the prune marker: %w", err))
			}
			if start.ID > 0 {
				prev = start.Hash
			}
		}
		// The ID is part of the hash: insert, then set the hash.
		ph := prev.String()
		row.PrevHash = &ph
		if err := db.Create(&row).Error; err != nil {
			return failed(err)
		}
		if row.ID <= 0 {
			return failed(fmt.Errorf("the database assigned no id (got %d)", row.ID))
		}
		if row.ID <= head.ID {
			return failed(fmt.Errorf("the database assigned id %d after %d", row.ID, head.ID))
		}
		e.ID = row.ID
		e.Link(prev)
		res := db.Model(&eventRow{}).Where("id = ?", row.ID).Update("hash", e.Hash.String())
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected != 1 {
			return failed(fmt.Errorf("setting the hash of event %d updated %d rows", row.ID, res.RowsAffected))
		}
		return nil
	})
	if err != nil {
		return audit.Event{}, err
	}
	e.Before, e.After = bytes.Clone(e.Before), bytes.Clone(e.After)
	return e, nil
}

// Events implements audit.Store. Every condition is a constant string
// with bound parameters; the scope is an explicit org_id condition, never
// a struct condition.
func (s *auditStore) Events(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	const op = "audit events"
	f, err := f.Normalize()
	if err != nil {
		return nil, wrap(op, err)
	}
	var out []audit.Event
	err = s.read(ctx, op, func(db *gorm.DB) error {
		q := db.Model(&eventRow{})
		if !f.AllOrgs {
			orgs := make([]string, len(f.Orgs))
			for i, o := range f.Orgs {
				orgs[i] = string(o)
			}
			q = q.Where("org_id IN ?", orgs)
		}
		if f.Org != "" {
			q = q.Where("org_id = ?", string(f.Org))
		}
		if f.Actor != "" {
			q = q.Where("actor_id = ?", string(f.Actor))
		}
		if f.Target != "" {
			q = q.Where("target_id = ?", string(f.Target))
		}
		if f.Action != "" {
			q = q.Where("action = ?", string(f.Action))
		}
		if f.Outcome != audit.AnyOutcome {
			q = q.Where("outcome = ?", f.Outcome.String())
		}
		if !f.Since.IsZero() {
			q = q.Where("occurred_at >= ?", dbTimeCeil(f.Since))
		}
		if !f.Until.IsZero() {
			q = q.Where("occurred_at < ?", dbTimeCeil(f.Until))
		}
		if f.Before > 0 {
			q = q.Where("id < ?", f.Before)
		}
		var rows []eventRow
		if err := q.Order("id DESC").Limit(f.Limit).Find(&rows).Error; err != nil {
			return failed(err)
		}
		out = make([]audit.Event, 0, len(rows))
		for _, row := range rows {
			e, err := row.event()
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuditChain yields every event of the audit log oldest first (ID
// ascending), streaming them from one query (on PostgreSQL a consistent
// snapshot of committed events) without holding them in memory: the
// input of audit.Verify. A row this module would not write (an unknown
// outcome, a hash that is not 64 hex digits) is yielded as read as far as
// possible (the outcome as audit.AnyOutcome, the hash as zero), so that
// Verify reports it as a broken event rather than failing. On a database
// failure it yields one error, wrapped with "gormstore: audit chain", and
// stops. Stopping the iteration early closes the query.
//
// While the iteration runs it holds a database connection: on a database
// limited to one connection (SQLite in memory, typically), do not use the
// same *gorm.DB in the loop body. AuditChain is safe for concurrent use.
func (s *Store) AuditChain(ctx context.Context) iter.Seq2[audit.Event, error] {
	return chainOf(s.db.WithContext(ctx))
}

// chainEvent is row.event, lenient for verification: what cannot be
// parsed reads as a value whose hash cannot match.
func (row eventRow) chainEvent() audit.Event {
	o, _ := audit.ParseOutcome(row.Outcome) // AnyOutcome when unknown
	prev, _ := parseNullHash(row.PrevHash)
	hash, _ := parseNullHash(row.Hash)
	return audit.Event{
		ID:         row.ID,
		Time:       row.OccurredAt,
		Actor:      authz.UserID(row.ActorID),
		Action:     audit.Action(row.Action),
		Target:     authz.UserID(row.TargetID),
		Org:        authz.OrgID(row.OrgID),
		ClientAddr: row.ClientAddr,
		Outcome:    o,
		Reason:     row.Reason,
		Before:     fromNullText(row.Before),
		After:      fromNullText(row.After),
		PrevHash:   prev,
		Hash:       hash,
	}
}

// VerifyAudit verifies the whole audit log: audit.Verify over AuditChain
// or, when the log was pruned (PruneAudit), audit.VerifyFrom the
// database's record of the latest prune (see VerifyAuditPruned). A
// broken chain is reported in the result (its Break names the first
// broken event), not as an error; the error is a database failure. It
// reads the log in one streaming query (see AuditChain). Safe for
// concurrent use, also while events are appended.
func (s *Store) VerifyAudit(ctx context.Context) (audit.VerifyResult, error) {
	return s.VerifyAuditPruned(ctx, audit.Checkpoint{}, audit.Checkpoint{})
}

// VerifyAuditCheckpoint is VerifyAudit that also requires the log to hold
// cp's event with cp's hash (audit.VerifyWithCheckpoint), so that a log
// whose tail was deleted after cp was taken is reported (Truncated). A
// cp of an event pruned since (see audit.VerifyFrom) checks nothing more.
func (s *Store) VerifyAuditCheckpoint(ctx context.Context, cp audit.Checkpoint) (audit.VerifyResult, error) {
	return s.VerifyAuditPruned(ctx, cp, audit.Checkpoint{})
}

// AuditHead returns the head of the audit log: the ID and hash of its
// newest committed event (ID 0 and audit.Genesis for an empty log), with
// At the time it was read, in UTC whole microseconds. Export it and keep
// it apart from the database to detect later truncation with
// VerifyAuditCheckpoint. AuditHead does not verify the log (run
// VerifyAudit for that); an unchained or malformed head is an error.
// Errors are wrapped with "gormstore: audit head". Safe for concurrent use.
func (s *Store) AuditHead(ctx context.Context) (audit.Checkpoint, error) {
	const op = "audit head"
	at := dbTime(time.Now())
	head, err := readHead(s.db.WithContext(ctx))
	if err != nil {
		return audit.Checkpoint{}, wrap(op, err)
	}
	if head.ID == 0 {
		// Empty: the head is the last pruned event, if any.
		start, err := readPruned(s.db.WithContext(ctx), true)
		if err != nil {
			return audit.Checkpoint{}, wrap(op, err)
		}
		if start.ID > 0 {
			return audit.Checkpoint{ID: start.ID, Hash: start.Hash, At: at}, nil
		}
		return audit.Checkpoint{Hash: audit.Genesis(), At: at}, nil
	}
	h, err := parseNullHash(head.Hash)
	if err != nil || h.IsZero() {
		return audit.Checkpoint{}, wrap(op, corrupt(eventRow{}.TableName(), fmt.Sprint(head.ID), "no valid hash"))
	}
	return audit.Checkpoint{ID: head.ID, Hash: h, At: at}, nil
}
