package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbopen"
	"github.com/kiops/iam/internal/dbtest"
)

// result is what one run of iamctl did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// iamctl runs iamctl through run with args and stdin.
func iamctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// oneErrorLine fails t unless r's stderr is exactly one line starting with
// "iamctl".
func oneErrorLine(t *testing.T, r result) {
	t.Helper()
	if !strings.HasPrefix(r.stderr, "iamctl") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("want one line starting with iamctl on stderr; %v", r)
	}
}

// kind is a kind of database a --db string can name.
type kind struct {
	name string
	// spec returns a --db value naming a new, empty database, and
	// removes it in t.Cleanup.
	spec func(t *testing.T) string
}

func sqliteSpec(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "iam.db")
}

// postgresSpec creates a schema of its own on the server of
// IAM_TEST_POSTGRES_DSN and returns that DSN with search_path set to it,
// so that iamctl, given the string, reaches the same database.
func postgresSpec(t *testing.T) string {
	t.Helper()
	base := os.Getenv(dbtest.EnvPostgresDSN)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("%s is not a postgres:// URL", dbtest.EnvPostgresDSN)
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "iamctl_" + hex.EncodeToString(b[:])
	admin, err := dbopen.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbopen.Close(admin) })
	// schema is made of hex digits: safe to splice into DDL.
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// kinds returns SQLite (a file) always, and PostgreSQL when
// IAM_TEST_POSTGRES_DSN is set.
func kinds(t *testing.T) []kind {
	ks := []kind{{"sqlite-file", sqliteSpec}}
	if os.Getenv(dbtest.EnvPostgresDSN) == "" {
		t.Logf("%s is not set; skipping PostgreSQL", dbtest.EnvPostgresDSN)
		return ks
	}
	return append(ks, kind{"postgres", postgresSpec})
}

// openTestDB opens the database of spec for the test to look at or tamper
// with, closed in t.Cleanup.
func openTestDB(t *testing.T, spec string) *gorm.DB {
	t.Helper()
	db, err := dbopen.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbopen.Close(db) })
	return db
}

// populate bootstraps a PlatformAdmin who creates orgs, for an audit log
// of orgs+1 events, and returns the events' ids oldest first.
func populate(t *testing.T, spec string, orgs int) []int64 {
	t.Helper()
	db := openTestDB(t, spec)
	svc, err := iam.New(t.Context(), db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	admin, err := svc.Bootstrap(t.Context(), "ada@example.com", "Ada", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	for i := range orgs {
		if _, err := svc.CreateOrg(t.Context(), admin, fmt.Sprintf("Org %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return eventIDs(t, db)
}

func eventIDs(t *testing.T, db *gorm.DB) []int64 {
	t.Helper()
	var ids []int64
	if err := db.Table("iam_audit_events").Order("id").Pluck("id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestMigrateAndBootstrap(t *testing.T) {
	// Not parallel: t.Setenv.
	const password = "correct horse battery staple"
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			spec := k.spec(t)
			for range 2 {
				r := iamctl(t, "", "migrate", "--db", spec)
				if r.code != 0 || !strings.Contains(r.stdout, "schema is up to date") || r.stderr != "" {
					t.Fatalf("migrate: %v", r)
				}
			}

			// From stdin, with the variable empty.
			t.Setenv(envPassword, "")
			r := iamctl(t, password+"\n", "bootstrap", "--db", spec, "--email", "ada@example.com", "--name", "Ada")
			if r.code != 0 || !strings.Contains(r.stdout, "created the first PlatformAdmin ada@example.com") {
				t.Fatalf("bootstrap from stdin: %v", r)
			}
			// Refused the second time, from the environment.
			t.Setenv(envPassword, "another long passphrase")
			r = iamctl(t, "", "bootstrap", "--db", spec, "--email", "bob@example.com")
			if r.code != 1 || !strings.Contains(r.stderr, "already has a PlatformAdmin") || r.stdout != "" {
				t.Errorf("second bootstrap: %v", r)
			}
			oneErrorLine(t, r)

			// The administrator can log in with the password from stdin.
			db := openTestDB(t, spec)
			svc, err := iam.New(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			if _, err := svc.Login(t.Context(), "ada@example.com", password); err != nil {
				t.Errorf("login with the password read from stdin: %v", err)
			}

			// From the environment, on a fresh database; stdin unread.
			spec2 := k.spec(t)
			t.Setenv(envPassword, password)
			r = iamctl(t, "not this one\n", "bootstrap", "--db", spec2, "--email", "bob@example.com")
			if r.code != 0 || !strings.Contains(r.stdout, "bob@example.com") {
				t.Fatalf("bootstrap from env: %v", r)
			}
			db2 := openTestDB(t, spec2)
			svc2, err := iam.New(t.Context(), db2)
			if err != nil {
				t.Fatal(err)
			}
			defer svc2.Close()
			if _, err := svc2.Login(t.Context(), "bob@example.com", password); err != nil {
				t.Errorf("login with the password from the environment: %v", err)
			}
			t.Setenv(envPassword, "")
			r = iamctl(t, password+"\n", "bootstrap", "--db", spec2, "--email", "carol@example.com")
			if r.code != 1 || !strings.Contains(r.stderr, "already has a PlatformAdmin") {
				t.Errorf("second bootstrap: %v", r)
			}
		})
	}
}

func TestBootstrapRefusesBadInput(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv(envPassword, "")
	spec := sqliteSpec(t)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"no password", "", nil, 1, "no password"},
		{"empty line", "\n", nil, 1, "no password"},
		{"short password", "tooshort\n", nil, 1, "unacceptable password"},
		{"long line", strings.Repeat("x", 5000) + "\n", nil, 1, "too long"},
		{"bad email", "a long enough passphrase\n", []string{"--email", "not an email"}, 1, "email"},
		{"no email", "a long enough passphrase\n", []string{"--email", ""}, 2, "--email is required"},
		{"password in argv", "", []string{"--password", "a long enough passphrase"}, 2, "flag provided but not defined"},
		{"password as an argument", "", []string{"a long enough passphrase"}, 2, "takes flags only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bootstrap", "--db", spec, "--email", "ada@example.com"}, tc.args...)
			r := iamctl(t, tc.stdin, args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit %d and %q; %v", tc.code, tc.want, r)
			}
			oneErrorLine(t, r)
			if strings.Contains(r.stderr, "tooshort") || strings.Contains(r.stderr, "passphrase") {
				t.Errorf("the password is shown: %v", r)
			}
		})
	}
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			spec := k.spec(t)
			ids := populate(t, spec, 5)
			if len(ids) != 6 {
				t.Fatalf("%d events, want 6", len(ids))
			}
			db := openTestDB(t, spec)

			r := iamctl(t, "", "audit", "verify", "--db", spec)
			var head string
			if err := db.Raw("SELECT hash FROM iam_audit_events WHERE id = ?", ids[5]).Scan(&head).Error; err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("audit log intact: 6 events, head event %d hash %s\n", ids[5], head)
			if r.code != 0 || r.stdout != want || r.stderr != "" {
				t.Fatalf("verify: %v; want stdout %q", r, want)
			}

			// A checkpoint, to stdout and to a file.
			r = iamctl(t, "", "audit", "checkpoint", "--db", spec)
			if r.code != 0 {
				t.Fatalf("checkpoint: %v", r)
			}
			var cp audit.Checkpoint
			if err := json.Unmarshal([]byte(r.stdout), &cp); err != nil || cp.ID != ids[5] || cp.Hash.String() != head || cp.At.IsZero() {
				t.Fatalf("checkpoint %q: %+v, %v", r.stdout, cp, err)
			}
			cpFile := filepath.Join(t.TempDir(), "checkpoint.json")
			r = iamctl(t, "", "audit", "checkpoint", "--db", spec, "--out", cpFile)
			if r.code != 0 || r.stdout != "" {
				t.Fatalf("checkpoint --out: %v", r)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec, "--checkpoint", cpFile)
			if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("holds checkpoint event %d", ids[5])) {
				t.Fatalf("verify --checkpoint on the intact log: %v", r)
			}

			// Truncate the tail: the chain alone still verifies, the
			// checkpoint does not.
			if err := db.Exec("DELETE FROM iam_audit_events WHERE id >= ?", ids[4]).Error; err != nil {
				t.Fatal(err)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec)
			if r.code != 0 || !strings.Contains(r.stdout, "4 events") {
				t.Errorf("verify after truncation, without checkpoint: %v", r)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec, "--checkpoint", cpFile)
			if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("event %d: truncated", ids[5])) || r.stdout != "" {
				t.Errorf("verify --checkpoint after truncation: %v", r)
			}
			oneErrorLine(t, r)

			// Tamper with one field of the second event.
			if err := db.Exec("UPDATE iam_audit_events SET reason = ? WHERE id = ?", "forged", ids[1]).Error; err != nil {
				t.Fatal(err)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec)
			if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("event %d: changed", ids[1])) || !strings.Contains(r.stderr, "1 event verified") {
				t.Errorf("verify after tampering: %v", r)
			}
			oneErrorLine(t, r)
		})
	}
}

func TestAuditVerifyEmptyAndErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := "sqlite:" + filepath.Join(dir, "iam.db")

	// A missing SQLite file is refused, not created.
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "checkpoint"}} {
		r := iamctl(t, "", append(args, "--db", spec)...)
		if r.code != 1 || !strings.Contains(r.stderr, "no such file") {
			t.Errorf("%v on a missing file: %v", args, r)
		}
		oneErrorLine(t, r)
	}
	if _, err := os.Stat(filepath.Join(dir, "iam.db")); !os.IsNotExist(err) {
		t.Errorf("verify created the database: %v", err)
	}

	if r := iamctl(t, "", "migrate", "--db", spec); r.code != 0 {
		t.Fatal(r)
	}
	r := iamctl(t, "", "audit", "verify", "--db", spec)
	if r.code != 0 || !strings.Contains(r.stdout, "0 events, head event 0 hash "+audit.Genesis().String()) {
		t.Errorf("verify on an empty log: %v", r)
	}

	for name, content := range map[string]string{
		"not json":      "nope",
		"unknown field": `{"id":1,"hash":"` + audit.Genesis().String() + `","extra":1}`,
		"no hash":       `{"id":3}`,
		"bad hash":      `{"id":3,"hash":"abc"}`,
		"two values":    `{"id":0} {"id":0}`,
	} {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r := iamctl(t, "", "audit", "verify", "--db", spec, "--checkpoint", f)
		if r.code != 1 || !strings.Contains(r.stderr, "--checkpoint") {
			t.Errorf("%s: %v", name, r)
		}
		oneErrorLine(t, r)
	}
	r = iamctl(t, "", "audit", "verify", "--db", spec, "--checkpoint", filepath.Join(dir, "missing.json"))
	if r.code != 1 {
		t.Errorf("missing checkpoint file: %v", r)
	}
	oneErrorLine(t, r)

	// A password in a --db URL never shows, even when connecting fails.
	r = iamctl(t, "", "migrate", "--db", "postgres://iam:s3cretpw@127.0.0.1:1/iam?sslmode=disable&connect_timeout=2")
	if r.code != 1 || strings.Contains(r.stdout+r.stderr, "s3cretpw") {
		t.Errorf("unreachable postgres: %v", r)
	}
	oneErrorLine(t, r)
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"migrate", "--help"}, {"migrate", "-h"},
		{"bootstrap", "--help"},
		{"audit", "--help"},
		{"audit", "verify", "--help"},
		{"audit", "checkpoint", "--help"},
		{"audit", "prune", "--help"},
		{"audit", "export", "--help"},
		{"audit", "verify", "--db", "sqlite:x.db", "--help"},
	} {
		r := iamctl(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage") || r.stderr != "" {
			t.Errorf("%v: %v", args, r)
		}
		if len(args) > 1 && args[0] != "audit" || len(args) > 2 {
			if !strings.Contains(r.stdout, "-db") {
				t.Errorf("%v: no flags listed: %v", args, r)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"frobnicate"},
		{"audit"},
		{"audit", "frobnicate"},
		{"migrate"},
		{"migrate", "--db"},
		{"migrate", "--nope"},
		{"migrate", "--db", "sqlite:x.db", "extra"},
		{"migrate", "--db", "mysql://localhost/iam"},
		{"bootstrap", "--email", "ada@example.com"},
		{"audit", "verify"},
		{"audit", "checkpoint", "--out"},
		{"audit", "prune", "--db", "sqlite:x.db", "--out", "cp.json"},
		{"audit", "prune", "--db", "sqlite:x.db", "--before", "2026-01-01"},
		{"audit", "prune", "--db", "sqlite:x.db", "--before", "last year", "--out", "cp.json"},
		{"audit", "prune", "--before", "2026-01-01", "--out", "cp.json"},
		{"audit", "export", "--db", "sqlite:x.db"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "xml"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "csv", "--action", "nope"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "csv", "--outcome", "any"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "csv", "--org", "*"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "csv", "--since", "yesterday"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "csv", "--since", "2026-02-01", "--until", "2026-01-01"},
		{"audit", "export", "--db", "sqlite:x.db", "--format", "csv", "--progress", "-1"},
	} {
		r := iamctl(t, "", args...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%v: %v", args, r)
		}
		oneErrorLine(t, r)
	}
	if r := iamctl(t, ""); r.code != 2 || !strings.Contains(r.stderr, "Usage") {
		t.Errorf("no arguments: %v", r)
	}
}

// TestBinary builds iamctl and runs the real binary.
func TestBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "iamctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exe := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}

	if code, out, _ := exe("--help"); code != 0 || !strings.Contains(out, "iamctl audit verify") {
		t.Errorf("iamctl --help: exit %d, %q", code, out)
	}
	if code, _, errOut := exe("nope"); code != 2 || !strings.Contains(errOut, `unknown command "nope"`) {
		t.Errorf("iamctl nope: exit %d, %q", code, errOut)
	}

	spec := sqliteSpec(t)
	ids := populate(t, spec, 2)
	code, out, errOut := exe("audit", "verify", "--db", spec)
	if code != 0 || !strings.HasPrefix(out, "audit log intact: 3 events") {
		t.Errorf("iamctl audit verify: exit %d, %q, %q", code, out, errOut)
	}
	if err := openTestDB(t, spec).Exec("UPDATE iam_audit_events SET client_addr = ? WHERE id = ?", "203.0.113.9", ids[0]).Error; err != nil {
		t.Fatal(err)
	}
	code, out, errOut = exe("audit", "verify", "--db", spec)
	if code != 1 || out != "" || !strings.Contains(errOut, fmt.Sprintf("event %d: changed", ids[0])) {
		t.Errorf("iamctl audit verify on a tampered log: exit %d, %q, %q", code, out, errOut)
	}
}

func TestAuditExport(t *testing.T) {
	t.Parallel()
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			spec := k.spec(t)
			ids := populate(t, spec, 5)
			db := openTestDB(t, spec)
			var hashes []string
			if err := db.Table("iam_audit_events").Order("id DESC").Pluck("hash", &hashes).Error; err != nil {
				t.Fatal(err)
			}
			var org string
			if err := db.Raw("SELECT org_id FROM iam_audit_events WHERE id = ?", ids[2]).Scan(&org).Error; err != nil || org == "" {
				t.Fatalf("org of event %d: %q, %v", ids[2], org, err)
			}

			// CSV to standard output: a header and every event, newest first.
			r := iamctl(t, "", "audit", "export", "--db", spec, "--format", "csv")
			if r.code != 0 || r.stderr != "iamctl: audit export: 6 events written as csv to standard output\n" {
				t.Fatalf("export csv: %v", r)
			}
			rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
			if err != nil || len(rows) != 7 || rows[0][0] != "id" {
				t.Fatalf("csv: %d rows, %v:\n%s", len(rows), err, r.stdout)
			}
			for i, row := range rows[1:] {
				if row[0] != fmt.Sprint(ids[5-i]) || row[len(row)-1] != hashes[i] {
					t.Errorf("row %d: %q, want id %d hash %s", i+1, row, ids[5-i], hashes[i])
				}
			}

			// JSON Lines to a file, with progress lines.
			out := filepath.Join(t.TempDir(), "audit.jsonl")
			r = iamctl(t, "", "audit", "export", "--db", spec, "--format", "jsonl", "--out", out, "--progress", "2")
			wantErr := "iamctl: audit export: 2 events written\niamctl: audit export: 4 events written\niamctl: audit export: 6 events written\n" +
				"iamctl: audit export: 6 events written as jsonl to " + out + "\n"
			if r.code != 0 || r.stdout != "" || r.stderr != wantErr {
				t.Fatalf("export jsonl: %v", r)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			var n int
			for sc.Scan() {
				var line struct {
					ID   int64  `json:"id"`
					Hash string `json:"hash"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.ID != ids[5-n] || line.Hash != hashes[n] {
					t.Errorf("line %d: %s: %+v, %v", n+1, sc.Bytes(), line, err)
				}
				n++
			}
			if n != 6 {
				t.Errorf("%d lines, want 6", n)
			}

			// Filters.
			for _, tc := range []struct {
				name string
				args []string
				want []int64
			}{
				{"action", []string{"--action", "org.create"}, []int64{ids[5], ids[4], ids[3], ids[2], ids[1]}},
				{"org", []string{"--org", org}, []int64{ids[2]}},
				{"outcome denied", []string{"--outcome", "denied"}, nil},
				{"action and since", []string{"--action", "platform.bootstrap", "--since", "2000-01-01"}, []int64{ids[0]}},
				{"until past", []string{"--until", "2000-01-01T00:00:00Z"}, nil},
				{"since future", []string{"--since", "2999-01-01"}, nil},
			} {
				r := iamctl(t, "", append([]string{"audit", "export", "--db", spec, "--format", "csv"}, tc.args...)...)
				if r.code != 0 {
					t.Errorf("%s: %v", tc.name, r)
					continue
				}
				rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
				if err != nil || len(rows) == 0 {
					t.Errorf("%s: %v, %q", tc.name, err, r.stdout)
					continue
				}
				var got []int64
				for _, row := range rows[1:] {
					var id int64
					fmt.Sscan(row[0], &id)
					got = append(got, id)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("%s: ids %v, want %v", tc.name, got, tc.want)
				}
			}
		})
	}
}

func TestAuditExportPages(t *testing.T) {
	t.Parallel()
	// More events than one page (audit.MaxLimit), on SQLite.
	spec := sqliteSpec(t)
	populate(t, spec, 0)
	db := openTestDB(t, spec)
	st, err := gormstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	const more = audit.MaxLimit + 10
	for i := range more {
		ev := audit.NewEvent(time.Now(), "", audit.SessionLogin)
		ev.ClientAddr = fmt.Sprintf("192.0.2.%d", i%250)
		ev.Outcome, ev.Reason = audit.Denied, "unauthenticated"
		if _, err := st.Audit().Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	r := iamctl(t, "", "audit", "export", "--db", spec, "--format", "jsonl", "--progress", "500")
	if r.code != 0 || strings.Count(r.stdout, "\n") != more+1 || strings.Count(r.stderr, "\n") != 3 ||
		!strings.HasSuffix(r.stderr, fmt.Sprintf("%d events written as jsonl to standard output\n", more+1)) {
		t.Errorf("export: %d lines, stderr %q", strings.Count(r.stdout, "\n"), r.stderr)
	}
	r = iamctl(t, "", "audit", "verify", "--db", spec)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d events", more+1)) {
		t.Errorf("verify: %v", r)
	}
}

// TestAuditVerifyDetectsTampering tampers with the log as an intruder
// with write access to the database would (see auditchain_test.go in the
// root) and checks that audit verify exits 1 naming the right event.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	type row = map[string]any
	read := func(t *testing.T, db *gorm.DB, id int64) row {
		t.Helper()
		var rows []row
		if err := db.Table("iam_audit_events").Where("id = ?", id).Find(&rows).Error; err != nil || len(rows) != 1 {
			t.Fatalf("event %d: %d rows, %v", id, len(rows), err)
		}
		return rows[0]
	}
	overwrite := func(t *testing.T, db *gorm.DB, id int64, r row, cols []string) {
		t.Helper()
		upd := row{}
		for _, c := range cols {
			upd[c] = r[c]
		}
		res := db.Table("iam_audit_events").Where("id = ?", id).Updates(upd)
		if res.Error != nil || res.RowsAffected != 1 {
			t.Fatalf("overwrite event %d: %d rows, %v", id, res.RowsAffected, res.Error)
		}
	}
	insert := func(t *testing.T, db *gorm.DB, spec string, ev audit.Event) {
		t.Helper()
		if err := db.Table("iam_audit_events").Create(row{
			"id": ev.ID, "occurred_at": ev.Time.UTC(), "actor_id": string(ev.Actor), "action": string(ev.Action),
			"target_id": string(ev.Target), "org_id": string(ev.Org), "client_addr": ev.ClientAddr,
			"outcome": ev.Outcome.String(), "reason": ev.Reason, "prev_hash": ev.PrevHash.String(), "hash": ev.Hash.String(),
		}).Error; err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(spec, "sqlite:") {
			if err := db.Exec("SELECT setval(pg_get_serial_sequence('iam_audit_events', 'id'), ?)", ev.ID).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	contents := []string{"occurred_at", "actor_id", "action", "target_id", "org_id", "client_addr", "outcome", "reason", "before_change", "after_change"}
	for _, tc := range []struct {
		name string
		// tamper edits the log of ids (6 events) and returns the event
		// and problem verify must name.
		tamper func(t *testing.T, db *gorm.DB, spec string, ids []int64) (int64, audit.Problem)
	}{
		{"first event deleted", func(t *testing.T, db *gorm.DB, _ string, ids []int64) (int64, audit.Problem) {
			if err := db.Exec("DELETE FROM iam_audit_events WHERE id = ?", ids[0]).Error; err != nil {
				t.Fatal(err)
			}
			return ids[1], audit.Unlinked
		}},
		{"middle event deleted", func(t *testing.T, db *gorm.DB, _ string, ids []int64) (int64, audit.Problem) {
			if err := db.Exec("DELETE FROM iam_audit_events WHERE id = ?", ids[3]).Error; err != nil {
				t.Fatal(err)
			}
			return ids[4], audit.Unlinked
		}},
		{"forged event inserted", func(t *testing.T, db *gorm.DB, spec string, ids []int64) (int64, audit.Problem) {
			// Correctly hashed, but linked to nothing in the log.
			forged := audit.NewEvent(time.Now(), "", audit.UserDelete)
			forged.ID = ids[len(ids)-1] + 1
			forged.Link(audit.ChainHash(audit.Genesis(), forged))
			insert(t, db, spec, forged)
			return forged.ID, audit.Unlinked
		}},
		{"forged event linked to the head", func(t *testing.T, db *gorm.DB, spec string, ids []int64) (int64, audit.Problem) {
			// Linked to the head, with a hash of the forger's making.
			forged := audit.NewEvent(time.Now(), "", audit.UserDelete)
			forged.ID = ids[len(ids)-1] + 1
			var err error
			if forged.PrevHash, err = audit.ParseHash(fmt.Sprint(read(t, db, ids[len(ids)-1])["hash"])); err != nil {
				t.Fatal(err)
			}
			forged.Hash = audit.ChainHash(forged.PrevHash, audit.Event{ID: forged.ID})
			insert(t, db, spec, forged)
			return forged.ID, audit.Changed
		}},
		{"contents of two events swapped", func(t *testing.T, db *gorm.DB, _ string, ids []int64) (int64, audit.Problem) {
			a, b := ids[1], ids[4]
			ra, rb := read(t, db, a), read(t, db, b)
			overwrite(t, db, a, rb, contents)
			overwrite(t, db, b, ra, contents)
			return a, audit.Changed
		}},
		{"two events swapped with their hashes", func(t *testing.T, db *gorm.DB, _ string, ids []int64) (int64, audit.Problem) {
			a, b := ids[2], ids[3]
			cols := append([]string{"prev_hash", "hash"}, contents...)
			ra, rb := read(t, db, a), read(t, db, b)
			// prev_hash is unique: clear it on one row first.
			if err := db.Table("iam_audit_events").Where("id = ?", a).Update("prev_hash", nil).Error; err != nil {
				t.Fatal(err)
			}
			overwrite(t, db, b, ra, cols)
			overwrite(t, db, a, rb, cols)
			return a, audit.Changed
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, k := range kinds(t) {
				t.Run(k.name, func(t *testing.T) {
					spec := k.spec(t)
					ids := populate(t, spec, 5)
					if len(ids) != 6 {
						t.Fatalf("%d events, want 6", len(ids))
					}
					if r := iamctl(t, "", "audit", "verify", "--db", spec); r.code != 0 {
						t.Fatalf("verify before tampering: %v", r)
					}
					id, p := tc.tamper(t, openTestDB(t, spec), spec, ids)
					r := iamctl(t, "", "audit", "verify", "--db", spec)
					want := fmt.Sprintf("event %d: %s:", id, p)
					if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, want) {
						t.Errorf("verify after tampering: %v; want exit 1 and %q", r, want)
					}
					oneErrorLine(t, r)
				})
			}
		})
	}
}

func TestAuditPrune(t *testing.T) {
	t.Parallel()
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			spec := k.spec(t)
			if r := iamctl(t, "", "migrate", "--db", spec); r.code != 0 {
				t.Fatal(r)
			}
			db := openTestDB(t, spec)
			st, err := gormstore.Open(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			var es []audit.Event
			for i := range 6 {
				ev, err := st.Audit().Append(t.Context(), audit.NewEvent(base.Add(time.Duration(i)*time.Hour), "", audit.SessionLogout))
				if err != nil {
					t.Fatal(err)
				}
				es = append(es, ev)
			}
			dir := t.TempDir()
			out := filepath.Join(dir, "pruned.json")

			// Nothing before the date: nothing pruned, no file.
			r := iamctl(t, "", "audit", "prune", "--db", spec, "--before", "2024-12-31", "--out", out)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "nothing to prune") || r.stderr != "" {
				t.Errorf("prune of nothing: %v", r)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("prune of nothing wrote %s: %v", out, err)
			}
			if ids := eventIDs(t, db); len(ids) != 6 {
				t.Errorf("prune of nothing left %d events", len(ids))
			}

			// The first three (+0h, +1h, +2h).
			r = iamctl(t, "", "audit", "prune", "--db", spec, "--before", "2025-01-01T03:00:00Z", "--out", out)
			if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pruned the audit log through event %d", es[2].ID)) {
				t.Fatalf("prune: %v", r)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var cp audit.Checkpoint
			if err := json.Unmarshal(b, &cp); err != nil || cp.ID != es[2].ID || cp.Hash != es[2].Hash || cp.At.IsZero() {
				t.Fatalf("checkpoint %s: %+v, %v", b, cp, err)
			}
			ids := eventIDs(t, db)
			if len(ids) != 4 || ids[0] != es[3].ID {
				t.Fatalf("after the prune: events %v", ids)
			}

			// The log verifies, with and without the kept checkpoint.
			r = iamctl(t, "", "audit", "verify", "--db", spec)
			if r.code != 0 || !strings.Contains(r.stdout, "audit log intact: 4 events") || !strings.Contains(r.stdout, fmt.Sprintf("pruned through event %d", es[2].ID)) {
				t.Errorf("verify after the prune: %v", r)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec, "--pruned", out)
			if r.code != 0 || !strings.Contains(r.stdout, "as the kept checkpoint says") {
				t.Errorf("verify --pruned after the prune: %v", r)
			}

			// An existing checkpoint file is never overwritten.
			r = iamctl(t, "", "audit", "prune", "--db", spec, "--before", "2025-01-01T05:00:00Z", "--out", out)
			if r.code != 1 || !strings.Contains(r.stderr, "--out") || r.stdout != "" {
				t.Errorf("prune over an existing checkpoint: %v", r)
			}
			oneErrorLine(t, r)
			if ids := eventIDs(t, db); len(ids) != 4 {
				t.Errorf("the refused prune left %d events", len(ids))
			}

			// An intruder deletes the next event and rewrites the record
			// of the prune to match: only the kept checkpoint tells.
			if err := db.Exec("DELETE FROM iam_audit_events WHERE id = ?", es[3].ID).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("UPDATE iam_audit_prunes SET last_event_id = ?, last_hash = ?", es[3].ID, es[3].Hash.String()).Error; err != nil {
				t.Fatal(err)
			}
			if r := iamctl(t, "", "audit", "verify", "--db", spec); r.code != 0 {
				t.Errorf("verify without the kept checkpoint: %v", r)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec, "--pruned", out)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, fmt.Sprintf("event %d: rewritten:", es[2].ID)) {
				t.Errorf("verify --pruned after the record was rewritten: %v", r)
			}
			oneErrorLine(t, r)

			// Without rewriting the record, the chain alone tells.
			if err := db.Exec("UPDATE iam_audit_prunes SET last_event_id = ?, last_hash = ?", es[2].ID, es[2].Hash.String()).Error; err != nil {
				t.Fatal(err)
			}
			r = iamctl(t, "", "audit", "verify", "--db", spec)
			if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("event %d: unlinked:", es[4].ID)) {
				t.Errorf("verify after an event was deleted past the prune: %v", r)
			}
			oneErrorLine(t, r)

			// A broken log is not pruned.
			out2 := filepath.Join(dir, "pruned2.json")
			r = iamctl(t, "", "audit", "prune", "--db", spec, "--before", "2025-01-01T05:00:00Z", "--out", out2)
			if r.code != 1 || !strings.Contains(r.stderr, "refusing to prune a broken audit log") || !strings.Contains(r.stderr, fmt.Sprintf("event %d: unlinked", es[4].ID)) {
				t.Errorf("prune of a broken log: %v", r)
			}
			oneErrorLine(t, r)
			if _, err := os.Stat(out2); !os.IsNotExist(err) {
				t.Errorf("the refused prune left %s: %v", out2, err)
			}
		})
	}
}
