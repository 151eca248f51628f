package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestQuickstart runs the walk-through on a fresh SQLite file and checks
// what it prints: the queue, the decisions (the denied ones with their
// missing categories), the refusals, the audit trail and the restart.
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
		`Pending Approvals \(3\) in Seoul DC`,
		`Ada \(PlatformAdmin\) +Busan Lab +device +allowed +PlatformAdmin`,
		`Mina +Seoul DC +database,audit +allowed +Manager of the org`,
		`Mina +Busan Lab +infra +DENIED +not a member of the org`,
		`Joon +Seoul DC +infra,backup,database +DENIED +Insufficient permissions: ask your Manager for backup,database`,
		`Hana +Busan Lab +audit +DENIED +Insufficient permissions: ask your Manager for audit`,
		`refused: authz: a Manager may assign only the Member and Manager roles`,
		`refused: authz: nobody may change their own role`,
		`Joon +Seoul DC +database +allowed +Manager of the org`,
		`Hana +Seoul DC +audit +DENIED +not a member of the org`,
		`Mina +member\.role\.change +Mina +Seoul DC +denied +nobody may change their own role`,
		`Mina +member\.remove +Hana +Seoul DC +success`,
		`Restarted on the same file: all 8 decisions are the same\.`,
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(out.String()) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	// A second run starts from scratch on the same path.
	out.Reset()
	if err := run(context.Background(), path, &out); err != nil {
		t.Errorf("second run: %v\n%s", err, out.String())
	}
}
