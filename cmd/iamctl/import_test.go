package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// TestImport imports a JSON Lines file in batches on every kind of
// database and checks what a Service then answers; a bad line stops the
// import with its line number and leaves its batch unwritten.
func TestImport(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			spec := k.spec(t)
			h, err := identity.NewHasher(identity.TestingHasherConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			hash, err := h.Hash("correct horse battery staple")
			if err != nil {
				t.Fatal(err)
			}
			org := authz.NewOrgID()
			var lines []string
			lines = append(lines, fmt.Sprintf(`{"org":{"id":%q,"name":"Operations"}}`, org), "")
			users := make([]authz.UserID, 5)
			for i := range users {
				users[i] = authz.NewUserID()
				role := "member"
				if i == 0 {
					role = "manager"
				}
				lines = append(lines, fmt.Sprintf(`{"user":{"id":%q,"email":"p%d@example.com","name":"Person %d","password_hash":%q,"memberships":{%q:{"role":%q,"categories":["infra","vpn"]}}}}`,
					users[i], i, i, hash, org, role))
			}
			admin := authz.NewUserID()
			lines = append(lines, fmt.Sprintf(`{"user":{"id":%q,"email":"root@example.com","name":"Root","platform_admin":true}}`, admin))
			in := filepath.Join(t.TempDir(), "in.jsonl")
			if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			r := iamctl(t, "", "import", "--db", spec, "--in", in, "--batch", "2")
			if r.code != 0 || !strings.Contains(r.stdout, "imported 1 orgs, 6 users, 16 rules") || strings.Count(r.stderr, "users so far") != 3 {
				t.Fatalf("import: %v", r)
			}

			svc, err := iam.New(t.Context(), openTestDB(t, spec), iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			for i, u := range users {
				if !svc.Check(t.Context(), u, org, authz.VPN).Allowed || svc.Check(t.Context(), u, org, authz.Backup).Allowed != (i == 0) {
					t.Errorf("user %d: wrong grants", i)
				}
			}
			if svc.CheckOperations(t.Context(), admin) != nil {
				t.Error("the PlatformAdmin was not imported as one")
			}
			if _, err := svc.Login(t.Context(), "p3@example.com", "correct horse battery staple"); err != nil {
				t.Errorf("login with the imported hash: %v", err)
			}

			// Standard input; the second batch holds a bad line (an email
			// taken), the first is written.
			fresh := authz.NewUserID()
			stdin := fmt.Sprintf(`{"user":{"id":%q,"email":"new@example.com","name":"New"}}`+"\n"+
				`{"user":{"id":%q,"email":"other@example.com","name":"Other"}}`+"\n"+
				`{"user":{"id":%q,"email":"P1@example.com","name":"Twin"}}`+"\n", fresh, authz.NewUserID(), authz.NewUserID())
			r = iamctl(t, stdin, "import", "--db", spec, "--batch", "2")
			if r.code != 1 || !strings.Contains(r.stderr, "line 3") || !strings.Contains(r.stdout, "imported 0 orgs, 2 users") {
				t.Errorf("import with a taken email: %v", r)
			}
			if errLines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"); !strings.HasPrefix(errLines[len(errLines)-1], "iamctl: import: line 3: ") {
				t.Errorf("the error is not the last line: %v", r)
			}
			// The running Service reads accounts from the database: the
			// first batch is there, the refused one is not.
			if _, err := svc.Profile(t.Context(), fresh); err != nil {
				t.Errorf("profile of the first batch's account: %v", err)
			}
			if _, err := svc.Login(t.Context(), "P1@example.com", "correct horse battery staple"); err != nil {
				t.Errorf("the account whose email the refused line repeated: %v", err)
			}
		})
	}
}

// TestImportBadLines checks that malformed lines are refused with their
// line number before anything of their batch is written.
func TestImportBadLines(t *testing.T) {
	t.Parallel()
	spec := sqliteSpec(t)
	org := authz.NewOrgID()
	for _, tc := range []struct{ name, line string }{
		{"not JSON", `{"user":`},
		{"unknown field", `{"user":{"id":"` + string(authz.NewUserID()) + `","email":"a@example.com","name":"A","admin":true}}`},
		{"neither", `{}`},
		{"both", `{"org":{"id":"` + string(org) + `","name":"O"},"user":{"id":"` + string(authz.NewUserID()) + `"}}`},
		{"two objects", `{"org":{"id":"` + string(org) + `","name":"O"}} {}`},
		{"unknown category", `{"user":{"id":"` + string(authz.NewUserID()) + `","email":"a@example.com","name":"A","memberships":{"` + string(org) + `":{"role":"member","categories":["games"]}}}}`},
		{"PlatformAdmin as org role", `{"user":{"id":"` + string(authz.NewUserID()) + `","email":"a@example.com","name":"A","memberships":{"` + string(org) + `":{"role":"platformadmin"}}}}`},
		{"unknown org", `{"user":{"id":"` + string(authz.NewUserID()) + `","email":"a@example.com","name":"A","memberships":{"` + string(org) + `":{"role":"member"}}}}`},
		{"bad hash", `{"user":{"id":"` + string(authz.NewUserID()) + `","email":"a@example.com","name":"A","password_hash":"secret"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdin := fmt.Sprintf(`{"user":{"id":%q,"email":"ok@example.com","name":"OK"}}`+"\n", authz.NewUserID()) + tc.line + "\n"
			r := iamctl(t, stdin, "import", "--db", spec)
			if r.code != 1 || !strings.Contains(r.stderr, "line 2") || !strings.Contains(r.stdout, "imported 0 orgs, 0 users") {
				t.Errorf("%v", r)
			}
			oneErrorLine(t, r)
		})
	}
	for _, args := range [][]string{{"import"}, {"import", "--db", spec, "--batch", "0"}, {"import", "--db", spec, "extra"}} {
		if r := iamctl(t, "", args...); r.code != 2 {
			t.Errorf("%v: %v", args, r)
		}
	}
	if r := iamctl(t, "", "import", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage") || !strings.Contains(r.stdout, "-batch") {
		t.Errorf("help: %v", r)
	}
}
