package dbopen_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiops/iam/internal/dbopen"
)

func TestOpenSQLite(t *testing.T) {
	db, err := dbopen.Open("sqlite:" + filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dbopen.Close(db)
	var mode string
	if err := db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, spec := range []string{"", "mysql://localhost/iam", "sqlite:", "sqlite::memory:", "sqlite:x.db?mode=ro", "sqlite:a#b", "ftp://u:s3cret@h/x"} {
		db, err := dbopen.Open(spec)
		if err == nil {
			dbopen.Close(db)
			t.Errorf("Open(%q) succeeded", spec)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): %v shows the password", spec, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://iam:s3cret@db:5432/iam": "postgres://iam:xxxxx@db:5432/iam",
		"postgres://iam@db:5432/iam":        "postgres://iam@db:5432/iam",
		"sqlite:/tmp/a@b:c":                 "sqlite:/tmp/a@b:c",
	} {
		if got := dbopen.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
