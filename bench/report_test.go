package bench

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/kiops/iam/internal/dbtest"
)

// TestRun runs the whole report at a small scale on SQLite and, when
// configured, PostgreSQL, with short benchmark times: the report command
// cannot rot unnoticed, and every figure it prints is filled in.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the report takes a while")
	}
	bt := flag.Lookup("test.benchtime")
	old := bt.Value.String()
	if err := flag.Set("test.benchtime", "20x"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("test.benchtime", old)

	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Scales:      []int{200, 300},
		PostgresDSN: os.Getenv(dbtest.EnvPostgresDSN),
		TempDir:     t.TempDir(),
		Writes:      4,
		Log:         &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var out strings.Builder
	rep.Markdown(&out)
	table := out.String()
	t.Log("\n" + table)
	for _, want := range []string{"| measure | 205 users | 305 users | goal |", "**Casbin Enforce / engine**", "sqlite-file: start-up, iam.New", "Middleware, one request", "Machine: "} {
		if !strings.Contains(table, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(table, "–") {
		t.Errorf("the report has empty cells (–)")
	}
	if os.Getenv(dbtest.EnvPostgresDSN) != "" && !strings.Contains(table, "postgres: start-up") {
		t.Errorf("the report lacks PostgreSQL")
	}
	for _, s := range rep.Scales {
		if s.Service.AllocsPerOp() != 0 || s.Engine.AllocsPerOp() != 0 {
			t.Errorf("%d users: a check allocates (Service %d, engine %d allocs)", s.Users, s.Service.AllocsPerOp(), s.Engine.AllocsPerOp())
		}
	}
}
