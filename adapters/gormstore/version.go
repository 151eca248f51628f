package gormstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// policyVersion is the one-row table that counts committed management
// transactions. Every management transaction bumps it first (BumpVersion):
//
//   - the row lock it takes serializes management transactions on every
//     dialect, so an invariant read inside one ("is this the last
//     PlatformAdmin?") cannot be invalidated by another before it commits;
//   - on SQLite, writing first takes the database's write lock at the start
//     of the transaction, so it never has to upgrade a read lock later,
//     which SQLite refuses under concurrency instead of waiting;
//   - its value orders the changes, for replicas and consistency tokens.
type policyVersion struct {
	ID      int   `gorm:"primaryKey;autoIncrement:false"`
	Version int64 `gorm:"not null"`
	// LogFrom is the version the change log starts after (see
	// policyChange): the log of a database migrated by an earlier release
	// holds nothing of the versions before.
	LogFrom int64 `gorm:"not null;default:0"`
}

func (policyVersion) TableName() string { return "iam_policy_version" }

const versionRowID = 1

// migrateVersion creates the version table and its single row.
func migrateVersion(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&policyVersion{}); err != nil {
		return fmt.Errorf("migrate %s: %w", policyVersion{}.TableName(), err)
	}
	row := policyVersion{ID: versionRowID}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return fmt.Errorf("seed %s: %w", policyVersion{}.TableName(), err)
	}
	return nil
}

// BumpVersion increments the policy version and returns the new value,
// which becomes visible to others when the transaction commits. Call it
// first in a management transaction: it waits for any other management
// transaction holding the version row to end, and from then on this
// transaction has the management writes to itself (see policyVersion).
//
// Errors: a database failure spoils the transaction (it will roll back),
// wrapped with "gormstore: bump version".
func (t *Tx) BumpVersion() (int64, error) {
	const op = "bump version"
	if err := t.usable(op); err != nil {
		return 0, err
	}
	res := t.db.Model(&policyVersion{}).Where("id = ?", versionRowID).UpdateColumn("version", gorm.Expr("version + 1"))
	if res.Error != nil {
		return 0, t.fail(op, res.Error)
	}
	if res.RowsAffected != 1 {
		return 0, t.fail(op, fmt.Errorf("version row missing (%d rows updated): was the store opened with gormstore.Open?", res.RowsAffected))
	}
	var v int64
	if err := t.db.Model(&policyVersion{}).Where("id = ?", versionRowID).Select("version").Scan(&v).Error; err != nil {
		return 0, t.fail(op, err)
	}
	return v, nil
}

// Version returns the policy version last committed.
//
// Errors: database failures, wrapped with "gormstore: version".
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.WithContext(ctx).Model(&policyVersion{}).Where("id = ?", versionRowID).Select("version").Scan(&v).Error
	if err != nil {
		return 0, fmt.Errorf("gormstore: version: %w", err)
	}
	return v, nil
}
