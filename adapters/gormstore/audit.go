package gormstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
}

func (eventRow) TableName() string { return "iam_audit_events" }

func migrateAudit(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&eventRow{}); err != nil {
		return fmt.Errorf("migrate %s: %w", eventRow{}.TableName(), err)
	}
	return nil
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

func (row eventRow) event() (audit.Event, error) {
	o, err := audit.ParseOutcome(row.Outcome)
	if err != nil {
		return audit.Event{}, corrupt(row.TableName(), fmt.Sprint(row.ID), fmt.Sprintf("outcome %q", row.Outcome))
	}
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
// paging cursor of audit.Filter stays exact. Append last in a
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
			// One key for the whole log: IDs are taken and committed in
			// one order. The SQL text is constant.
			if err := db.Exec("SELECT pg_advisory_xact_lock(" + lockClassAudit + ", 0)").Error; err != nil {
				return failed(fmt.Errorf("lock: %w", err))
			}
		}
		if err := db.Create(&row).Error; err != nil {
			return failed(err)
		}
		if row.ID <= 0 {
			return failed(fmt.Errorf("the database assigned no id (got %d)", row.ID))
		}
		return nil
	})
	if err != nil {
		return audit.Event{}, err
	}
	e.ID = row.ID
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
