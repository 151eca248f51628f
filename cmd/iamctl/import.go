package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbopen"
)

// maxImportLine bounds one line of an import file: an account with a
// membership in every one of hundreds of orgs still fits.
const maxImportLine = 1 << 20

// importRecord is one line of an import file: an org or an account.
type importRecord struct {
	Org  *importOrg  `json:"org"`
	User *importUser `json:"user"`
}

type importOrg struct {
	ID   authz.OrgID `json:"id"`
	Name string      `json:"name"`
}

type importUser struct {
	ID            authz.UserID                 `json:"id"`
	Email         string                       `json:"email"`
	Name          string                       `json:"name"`
	PasswordHash  string                       `json:"password_hash"`
	PlatformAdmin bool                         `json:"platform_admin"`
	Memberships   map[authz.OrgID]importMember `json:"memberships"`
}

type importMember struct {
	Role       authz.Role       `json:"role"`
	Categories []authz.Category `json:"categories"`
}

func importCmd() *command {
	return &command{
		name: "import",
		usage: `Usage: iamctl import --db DB [--in FILE] [--batch N]

Imports orgs and accounts with their roles and grants from another system
(iam.Service.Import): JSON Lines from FILE or standard input, one record a
line, an org or an account:

  {"org":{"id":"org_…","name":"Operations"}}
  {"user":{"id":"usr_…","email":"omar@example.com","name":"Omar",
    "password_hash":"$argon2id$v=19$m=19456,t=2,p=1$…$…",
    "platform_admin":false,
    "memberships":{"org_…":{"role":"member","categories":["infra","vpn"]}}}}

(each record on one line). Ids are the module's (usr_ or org_ and 24
base32 letters); generate new ones for the other system's records. A
password_hash is an argon2id hash in the PHC format, carried over as it
is; without one the account signs in after a password reset. An org
comes before its members. Every N accounts (and the orgs read with
them) are one transaction with one audit event; a refused batch names
the line at fault, stops the import and leaves that batch unwritten
(the batches before it stay). Progress goes to standard error.
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			in := fs.String("in", "", "the JSON Lines `file` to read (default: standard input)")
			batch := fs.Int("batch", 5000, "accounts per transaction")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				if *batch < 1 || *batch > 100000 {
					return usageError("--batch %d: want 1 to 100000", *batch)
				}
				r := e.stdin
				if *in != "" {
					f, err := os.Open(*in)
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				svc, done, err := openService(ctx, *db, e)
				if err != nil {
					return err
				}
				defer done()
				total, err := importLines(ctx, svc, r, *batch, e.stderr)
				fmt.Fprintf(e.stdout, "imported %d orgs, %d users, %d rules into %s\n", total.Orgs, total.Users, total.Rules, dbopen.Redact(*db))
				return err
			}
		},
	}
}

// importLines reads records from r and imports them in batches of n
// accounts, reporting each batch on progress, and returns what it
// imported.
func importLines(ctx context.Context, svc *iam.Service, r io.Reader, n int, progress io.Writer) (iam.ImportResult, error) {
	var (
		total iam.ImportResult
		b     iam.ImportBatch
		lines struct{ orgs, users []int } // the line of each record of b
	)
	flush := func() error {
		res, err := svc.Import(ctx, b)
		var ie *iam.ImportError
		if errors.As(err, &ie) {
			at := lines.users
			if ie.InOrgs {
				at = lines.orgs
			}
			if ie.Index >= 0 && ie.Index < len(at) {
				return fmt.Errorf("line %d: %w (nothing of this batch was written)", at[ie.Index], ie.Err)
			}
		}
		if err != nil {
			return fmt.Errorf("%w (nothing of this batch was written)", err)
		}
		total.Orgs, total.Users, total.Rules = total.Orgs+res.Orgs, total.Users+res.Users, total.Rules+res.Rules
		if res.Event > 0 {
			fmt.Fprintf(progress, "iamctl: import: %d users so far (audit event %d)\n", total.Users, res.Event)
		}
		b, lines.orgs, lines.users = iam.ImportBatch{}, nil, nil
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		var rec importRecord
		if err := dec.Decode(&rec); err != nil || dec.More() || (rec.Org == nil) == (rec.User == nil) {
			why := "want one object with either \"org\" or \"user\""
			if err != nil {
				why = err.Error()
			}
			return total, fmt.Errorf("line %d: %s", line, why)
		}
		if o := rec.Org; o != nil {
			b.Orgs = append(b.Orgs, iam.ImportOrg{ID: o.ID, Name: o.Name})
			lines.orgs = append(lines.orgs, line)
			continue
		}
		u := rec.User
		ms := make(map[authz.OrgID]authz.Membership, len(u.Memberships))
		for o, m := range u.Memberships {
			ms[o] = authz.Membership{Role: m.Role, Categories: authz.NewCategorySet(m.Categories...)}
		}
		b.Users = append(b.Users, iam.ImportUser{ID: u.ID, Email: u.Email, Name: u.Name, PasswordHash: u.PasswordHash, PlatformAdmin: u.PlatformAdmin, Memberships: ms})
		lines.users = append(lines.users, line)
		if len(b.Users) == n {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return total, fmt.Errorf("reading: %w", err)
	}
	return total, flush()
}
