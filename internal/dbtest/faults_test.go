package dbtest_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/kiops/iam/internal/dbtest"
)

type faultRow struct {
	ID   int
	Name string
}

// TestFaults checks that the injector fails exactly the chosen statement,
// that a transaction it fails rolls back, and that counting works, on
// every kind.
func TestFaults(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			db := dbtest.Open(t, kind)
			if err := db.AutoMigrate(&faultRow{}); err != nil {
				t.Fatal(err)
			}
			f := dbtest.InjectFaults(t, db)
			op := func() error {
				return db.Transaction(func(tx *gorm.DB) error {
					if err := tx.Create(&faultRow{Name: "a"}).Error; err != nil {
						return err
					}
					if err := tx.Exec("UPDATE fault_rows SET name = ? WHERE name = ?", "b", "a").Error; err != nil {
						return err
					}
					var n int64
					return tx.Model(&faultRow{}).Count(&n).Error
				})
			}
			f.Reset(0)
			if err := op(); err != nil {
				t.Fatal(err)
			}
			if f.Count() != 3 {
				t.Fatalf("counted %d statements, want 3", f.Count())
			}
			for n := 1; n <= 3; n++ {
				var before int64
				f.Reset(0)
				db.Model(&faultRow{}).Count(&before)
				f.Reset(n)
				if err := op(); !errors.Is(err, dbtest.ErrInjected) {
					t.Fatalf("statement %d: err = %v, want the injected fault", n, err)
				}
				f.Reset(0)
				var after int64
				db.Model(&faultRow{}).Count(&after)
				if after != before {
					t.Fatalf("statement %d failed but the transaction left %d rows (was %d)", n, after, before)
				}
			}
		})
	}
}
