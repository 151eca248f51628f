package dbtest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"
)

type item struct {
	ID   uint `gorm:"primaryKey"`
	Name string
}

func TestOpenEveryKind(t *testing.T) {
	for _, kind := range Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			db := Open(t, kind)
			if err := db.AutoMigrate(&item{}); err != nil {
				t.Fatal(err)
			}
			if err := db.Create(&item{Name: "a"}).Error; err != nil {
				t.Fatal(err)
			}
			var got []item
			if err := db.Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Name != "a" {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	kinds := Kinds(t)
	want := 2
	if os.Getenv(EnvPostgresDSN) != "" {
		want = 3
	}
	if len(kinds) != want || kinds[0] != SQLiteMemory || kinds[1] != SQLiteFile {
		t.Fatalf("Kinds = %v, want %d kinds starting with the SQLite ones", kinds, want)
	}
	for _, k := range []Kind{SQLiteMemory, SQLiteFile, Postgres, 0} {
		if k.String() == "" {
			t.Errorf("Kind(%d) has no name", int(k))
		}
	}
}

// Two databases of one kind never share anything, even in one test.
func TestPrivate(t *testing.T) {
	for _, kind := range Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			a, b := Open(t, kind), Open(t, kind)
			if err := a.AutoMigrate(&item{}); err != nil {
				t.Fatal(err)
			}
			if b.Migrator().HasTable(&item{}) {
				t.Fatal("second database sees the first one's table")
			}
		})
	}
}

// Concurrent read-then-write transactions all succeed: the settings Open
// documents make them wait for each other instead of failing with
// SQLITE_BUSY or SQLITE_LOCKED.
func TestConcurrentTransactions(t *testing.T) {
	const workers, each = 6, 15
	for _, kind := range Kinds(t) {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			db := Open(t, kind)
			if err := db.AutoMigrate(&item{}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						errs <- db.Transaction(func(tx *gorm.DB) error {
							var n int64
							if err := tx.Model(&item{}).Count(&n).Error; err != nil {
								return err
							}
							return tx.Create(&item{Name: fmt.Sprintf("%d/%d/%d", w, i, n)}).Error
						})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			if err := db.Model(&item{}).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != workers*each {
				t.Fatalf("%d rows, want %d", n, workers*each)
			}
		})
	}
}

func TestSQLiteFileUsesWAL(t *testing.T) {
	t.Parallel()
	db := Open(t, SQLiteFile)
	var mode string
	if err := db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

// The schema of a PostgreSQL test database is gone once its test ends.
func TestPostgresSchemaDropped(t *testing.T) {
	if os.Getenv(EnvPostgresDSN) == "" {
		t.Skipf("%s is not set", EnvPostgresDSN)
	}
	t.Parallel()
	var schema string
	t.Run("inner", func(t *testing.T) {
		db := Open(t, Postgres)
		if err := db.Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.AutoMigrate(&item{}); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.HasPrefix(schema, "iamtest_") {
		t.Fatalf("schema %q", schema)
	}
	other := Open(t, Postgres)
	var n int64
	if err := other.Raw("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", schema).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s still exists after its test", schema)
	}
}

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s1&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?search_path=s1"},
		{"host=h user=u dbname=db", "host=h user=u dbname=db search_path=s1"},
	} {
		got, err := withSearchPath(tc.dsn, "s1")
		if err != nil || got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
}
