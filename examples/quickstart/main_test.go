package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs the walk-through on a fresh SQLite file and checks
// the decisions it prints, the denied ones with their missing categories.
func TestQuickstart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quickstart.db")
	var out bytes.Buffer
	if err := run(context.Background(), path, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no database file: %v", err)
	}
	want := []string{
		`Ada \(PlatformAdmin\) +Busan Lab +device +allowed +PlatformAdmin`,
		`Mina \(Manager, Seoul\) +Seoul DC +database,audit +allowed +Manager of the org`,
		`Mina \(Manager, Seoul\) +Busan Lab +infra +DENIED +not a member of the org`,
		`Joon \(Member, Seoul\) +Seoul DC +vpn +allowed +granted`,
		`Joon \(Member, Seoul\) +Seoul DC +infra,backup,database +DENIED +Insufficient permissions: ask your Manager for backup,database`,
		`Hana \(Member, both\) +Busan Lab +audit +DENIED +Insufficient permissions: ask your Manager for audit`,
		`Reloaded 11 rules from the database into a fresh engine: all 8 decisions are the same\.`,
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(out.String()) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	// A second run starts from scratch on the same path.
	out.Reset()
	if err := run(context.Background(), path, &out); err != nil || !strings.Contains(out.String(), "Reloaded 11 rules") {
		t.Errorf("second run: %v\n%s", err, out.String())
	}
}
