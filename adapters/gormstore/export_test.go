package gormstore

import "gorm.io/gorm"

// SetBeforeDelete installs a hook that runs inside the transaction before
// each verified delete, to simulate a row vanishing under a write.
func (s *Store) SetBeforeDelete(f func(tx *gorm.DB)) { s.beforeDelete = f }
