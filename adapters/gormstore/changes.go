package gormstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"gorm.io/gorm"

	"github.com/kiops/iam/authz"
)

// policyChange is one row of the change log: a user whose rules the
// management transaction of a version may have changed. Replicas of a
// service on one database read it to bring their engines up to a version
// by reloading only those users (ChangesSince), instead of the whole
// policy.
type policyChange struct {
	Version int64  `gorm:"primaryKey;autoIncrement:false"`
	UserID  string `gorm:"primaryKey;size:64"`
}

func (policyChange) TableName() string { return "iam_policy_changes" }

// migrateChanges creates the change log. A log created now holds nothing
// of the versions before: the version row's log_from records where it
// starts, so that a replica further behind reloads everything.
func migrateChanges(tx *gorm.DB) error {
	m := tx.Migrator()
	fresh := !m.HasTable(&policyChange{})
	if err := m.AutoMigrate(&policyChange{}); err != nil {
		return fmt.Errorf("migrate %s: %w", policyChange{}.TableName(), err)
	}
	if !fresh {
		return nil
	}
	err := tx.Model(&policyVersion{}).Where("id = ?", versionRowID).UpdateColumn("log_from", gorm.Expr("version")).Error
	if err != nil {
		return fmt.Errorf("start %s: %w", policyChange{}.TableName(), err)
	}
	return nil
}

// LogChanges records in the change log, under version (the one
// BumpVersion returned), every user whose rules this transaction's writes
// touched, and on PostgreSQL sends a notification with the version on the
// store's Channel. Both are part of the transaction: the log rows become
// visible, and the notification is delivered, only when it commits. Call it
// after the policy writes, before the audit event.
//
// Errors: a database failure spoils the transaction, wrapped with
// "gormstore: log changes".
func (t *Tx) LogChanges(version int64) error {
	const op = "log changes"
	if err := t.usable(op); err != nil {
		return err
	}
	users := slices.Sorted(maps.Keys(t.touched))
	ids := make(pgTextArray, len(users))
	for i, u := range users {
		ids[i] = string(u)
	}
	// One statement however many users (a bulk import touches thousands):
	// an array parameter on PostgreSQL, one JSON parameter on SQLite, as
	// Import inserts; GORM's batched insert elsewhere.
	var err error
	switch {
	case len(ids) == 0:
	case t.pg:
		err = t.insertArrays(op, "changes", len(ids),
			"INSERT INTO iam_policy_changes (version, user_id) SELECT ?, u FROM unnest(?::text[]) AS u", version, ids)
	case t.sqlite():
		rows := make([][2]any, len(ids))
		for i, u := range ids {
			rows[i] = [2]any{version, u}
		}
		err = t.insertJSON(op, "changes", len(ids), rows,
			"INSERT INTO iam_policy_changes (version, user_id) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true")
	default:
		rows := make([]policyChange, len(ids))
		for i, u := range ids {
			rows[i] = policyChange{Version: version, UserID: u}
		}
		if e := t.db.CreateInBatches(rows, 1000).Error; e != nil {
			err = t.fail(op, e)
		}
	}
	if err != nil {
		return err
	}
	if t.pg {
		if err := t.db.Exec("SELECT pg_notify(?, ?)", t.store.channel, fmt.Sprint(version)).Error; err != nil {
			return t.fail(op, err)
		}
	}
	return nil
}

// SessionsEnded notes, for the change log, that this transaction ends
// sessions of users (a logout, a password change): with LogChanges, other
// replicas then drop what they cached of those users' sessions. Their
// rules are unchanged; a replica reloads them all the same, which is
// harmless.
func (t *Tx) SessionsEnded(users ...authz.UserID) { t.touch(users...) }

// Channel returns the PostgreSQL notification channel on which LogChanges
// announces committed versions of this store: one per schema, so that
// services in different schemas of one database do not wake each other.
// It is "" on other databases.
func (s *Store) Channel() string { return s.channel }

// channelFor names the notification channel of a PostgreSQL schema: a
// plain identifier, whatever the schema is called.
func channelFor(schema string) string {
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("kiops_iam_%016x", h.Sum64())
}

// Changes is what changed in the policy after some version.
type Changes struct {
	// Version is the latest committed version: the one a replica reaches
	// by reloading Users.
	Version int64
	// Users are those whose rules changed after the version asked about,
	// up to Version, sorted. Meaningless when Complete is false.
	Users []authz.UserID
	// Complete is false when the change log does not reach back to the
	// version asked about (it started later): the replica must reload
	// everything.
	Complete bool
}

// ChangesSince returns the users whose rules changed in the versions after
// after, and the latest version. Versions committed while it reads are
// left for the next call.
//
// Errors: database failures, wrapped with "gormstore: changes since".
func (s *Store) ChangesSince(ctx context.Context, after int64) (Changes, error) {
	var row policyVersion
	db := s.db.WithContext(ctx)
	if err := db.Where("id = ?", versionRowID).Take(&row).Error; err != nil {
		return Changes{}, fmt.Errorf("gormstore: changes since: %w", err)
	}
	ch := Changes{Version: row.Version, Complete: after >= row.LogFrom}
	if !ch.Complete || after >= row.Version {
		return ch, nil
	}
	var ids []string
	err := db.Model(&policyChange{}).Distinct("user_id").
		Where("version > ? AND version <= ?", after, row.Version).Order("user_id").Pluck("user_id", &ids).Error
	if err != nil {
		return Changes{}, fmt.Errorf("gormstore: changes since: %w", err)
	}
	for _, id := range ids {
		u, err := authz.ParseUserID(id)
		if err != nil {
			return Changes{}, fmt.Errorf("gormstore: changes since: %w", corrupt(policyChange{}.TableName(), id, "not a user id"))
		}
		ch.Users = append(ch.Users, u)
	}
	return ch, nil
}

// UsersRules returns the stored rules of each of users, read in one
// query per thousand users (an org's deletion or an import batch changes
// many at once).
//
// Errors: an invalid id is an *authz.InvalidError; database failures and
// rows authz.ParseRow refuses are wrapped with "gormstore: users rules".
func (s *Store) UsersRules(ctx context.Context, users []authz.UserID) (map[authz.UserID][]authz.Rule, error) {
	const op = "users rules"
	ids := make([]string, len(users))
	for i, u := range users {
		if _, err := authz.ParseUserID(string(u)); err != nil {
			return nil, fmt.Errorf("gormstore: %s: %w", op, err)
		}
		ids[i] = string(u)
	}
	out := make(map[authz.UserID][]authz.Rule, len(users))
	err := s.Transaction(ctx, func(tx *Tx) error {
		for chunk := range slices.Chunk(ids, 1000) {
			rules, err := tx.readRules(op, tx.db.Where("ptype = ? AND v0 IN ?", "g", chunk))
			if err != nil {
				return err
			}
			for _, r := range rules {
				out[r.User] = append(out[r.User], r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gormstore: %s: %w", op, err)
	}
	return out, nil
}
