// Command iamctl is the operator's tool for a KIOPS IAM database: it
// migrates the schema, creates the first PlatformAdmin, imports orgs and
// accounts from another system, and verifies, checkpoints and exports the
// audit log.
//
// Usage:
//
//	iamctl migrate    --db DB
//	iamctl bootstrap  --db DB --email EMAIL [--name NAME]
//	iamctl import     --db DB [--in FILE] [--batch N]
//	iamctl audit verify     --db DB [--checkpoint FILE] [--pruned FILE]
//	iamctl audit checkpoint --db DB [--out FILE]
//	iamctl audit prune      --db DB --before T --out FILE
//	iamctl audit export     --db DB --format csv|jsonl [--org ID] [--actor ID] [--target ID]
//	                        [--action A] [--outcome success|denied] [--since T] [--until T] [--out FILE]
//
// DB is sqlite:PATH (an SQLite file) or a postgres:// URL, as for
// examples/apiserver. Every command and subcommand takes --help.
//
// bootstrap reads the new administrator's password from the environment
// variable IAM_ADMIN_PASSWORD or, when that is unset or empty, from the
// first line of standard input; never from the command line, where other
// users could read it in ps. It refuses when the platform already has a
// PlatformAdmin.
//
// import reads orgs and accounts with their roles and grants, as JSON
// Lines, from --in or standard input, and writes them with
// iam.Service.Import, --batch accounts (5000 by default) per
// transaction: a migration from another system. Password hashes are
// carried over, never computed. A refused batch names its line and stops
// the import; the batches before it stay.
//
// audit verify walks the whole audit log and checks its hash chain. It
// exits 0 and prints the number of events and the head (the newest event's
// id and hash) when the log is intact, and exits 1 naming the first broken
// event and what is wrong with it otherwise. With --checkpoint, it also
// checks the log against a checkpoint written earlier by audit checkpoint
// and kept apart from the database, which detects a tail cut off since.
// With --pruned, it also checks the database's record of the latest prune
// against the checkpoint audit prune wrote, which detects events deleted
// at the head of the log with a forged record.
//
// audit prune deletes the oldest events, those before --before (the
// longest run of them from the oldest on), after verifying the whole log
// (a broken log is not pruned). It records the prune in the database and
// as an audit.prune event, and writes the checkpoint of the last pruned
// event as JSON to --out, a file that must not exist yet: keep it apart
// from the database, signed off, and pass it to audit verify --pruned.
// The log verifies after a prune: its chain starts at that checkpoint.
//
// audit export writes the log of every org, newest first, as CSV
// (formula-escaped) or JSON Lines (package audit's Export), a page at a
// time, with a progress line on standard error every --progress events
// (10000 by default). --since and --until take RFC 3339 or a date
// (YYYY-MM-DD, UTC); Since <= time < Until.
//
// Exit status: 0 on success; 1 when the command failed, was refused, or
// found the audit log broken; 2 for a usage error (an unknown command, a
// bad flag). Errors are one line on standard error, starting "iamctl:".
//
// Except for migrate and bootstrap, iamctl refuses an SQLite path that
// does not exist rather than create an empty database (which would verify
// as intact). Every command migrates the schema when it is behind, as
// iam.New does; the audit commands read the store directly
// (adapters/gormstore) and do not load the authorization policy.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbopen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command failed or was refused, or the log is broken
	exitUsage = 2 // unknown command, bad flag, missing argument
)

// envPassword names the environment variable bootstrap reads the
// password from.
const envPassword = "IAM_ADMIN_PASSWORD"

const topUsage = `iamctl: the operator's tool for a KIOPS IAM database

Usage:
  iamctl migrate    --db DB                        create or update the schema
  iamctl bootstrap  --db DB --email EMAIL [--name NAME]
                                                   create the first PlatformAdmin
  iamctl import     --db DB [--in FILE] [--batch N]
                                                   import orgs and accounts (JSON Lines)
  iamctl audit verify     --db DB [--checkpoint FILE] [--pruned FILE]
                                                   check the audit log's hash chain
  iamctl audit checkpoint --db DB [--out FILE]     write the head of the log as JSON
  iamctl audit prune      --db DB --before T --out FILE
                                                   delete the events before T, keeping
                                                   a checkpoint of them in FILE
  iamctl audit export     --db DB --format csv|jsonl [--org ID] [--actor ID]
                          [--target ID] [--action A] [--outcome O]
                          [--since T] [--until T] [--out FILE]
                                                   export the audit log

DB is sqlite:PATH or a postgres:// URL. Run 'iamctl COMMAND --help' for
a command's flags. Exit status: 0 success, 1 failure (or a broken audit
log), 2 usage error.
`

const auditUsage = `Usage:
  iamctl audit verify     --db DB [--checkpoint FILE] [--pruned FILE]
  iamctl audit checkpoint --db DB [--out FILE]
  iamctl audit prune      --db DB --before T --out FILE
  iamctl audit export     --db DB --format csv|jsonl [filters] [--out FILE]

Run 'iamctl audit SUBCOMMAND --help' for its flags.
`

// command is one subcommand: its name as typed ("audit verify"), its
// usage text, and what it does once its flags are parsed.
type command struct {
	name  string
	usage string
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env) error
}

// env is what a command runs with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// exitError is an error with its own exit status (and message, which may
// be empty when the command printed its own).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a usage error: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// run runs iamctl with args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	var cmd *command
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	case "migrate":
		cmd, args = migrateCmd(), args[1:]
	case "bootstrap":
		cmd, args = bootstrapCmd(), args[1:]
	case "import":
		cmd, args = importCmd(), args[1:]
	case "audit":
		if len(args) < 2 {
			fmt.Fprintln(stderr, "iamctl: audit: missing subcommand (verify, checkpoint, prune or export); see 'iamctl audit --help'")
			return exitUsage
		}
		switch args[1] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, auditUsage)
			return exitOK
		case "verify":
			cmd = verifyCmd()
		case "checkpoint":
			cmd = checkpointCmd()
		case "prune":
			cmd = pruneCmd()
		case "export":
			cmd = exportCmd()
		default:
			fmt.Fprintf(stderr, "iamctl: audit: unknown subcommand %q; see 'iamctl audit --help'\n", args[1])
			return exitUsage
		}
		args = args[2:]
	default:
		fmt.Fprintf(stderr, "iamctl: unknown command %q; see 'iamctl --help'\n", args[0])
		return exitUsage
	}

	fs := flag.NewFlagSet("iamctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line below
	do := cmd.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, cmd.usage)
			fmt.Fprintln(stdout, "\nFlags:")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprintf(stderr, "iamctl %s: %s; see 'iamctl %s --help'\n", cmd.name, oneLine(err.Error()), cmd.name)
		return exitUsage
	}
	if fs.NArg() > 0 {
		// The argument is not shown: it may be a password typed where
		// it does not belong.
		hint := ""
		if cmd.name == "bootstrap" {
			hint = fmt.Sprintf(" (the password is read from %s or standard input)", envPassword)
		}
		fmt.Fprintf(stderr, "iamctl %s: takes flags only, no arguments%s; see 'iamctl %s --help'\n", cmd.name, hint, cmd.name)
		return exitUsage
	}
	err := do(ctx, e)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			if ee.code == exitUsage {
				fmt.Fprintf(stderr, "iamctl %s: %s; see 'iamctl %s --help'\n", cmd.name, oneLine(ee.msg), cmd.name)
			} else {
				fmt.Fprintf(stderr, "iamctl: %s\n", oneLine(ee.msg))
			}
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "iamctl: %s: %s\n", cmd.name, oneLine(err.Error()))
	return exitFail
}

// oneLine turns s into one line: line breaks become spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// dbFlag declares --db on fs.
func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", "", "the database: sqlite:PATH or a postgres:// URL (required)")
}

// openDB opens the database of spec. When mustExist is set, an SQLite
// file that does not exist is refused instead of created.
func openDB(spec string, mustExist bool) (*gorm.DB, error) {
	if spec == "" {
		return nil, usageError("--db is required")
	}
	if !strings.HasPrefix(spec, "sqlite:") && !strings.HasPrefix(spec, "postgres://") && !strings.HasPrefix(spec, "postgresql://") {
		return nil, usageError("--db %q: want sqlite:PATH or a postgres:// URL", dbopen.Redact(spec))
	}
	if path, ok := strings.CutPrefix(spec, "sqlite:"); ok && mustExist && path != "" {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("--db %s: no such file (run 'iamctl migrate' to create a database)", spec)
			}
			return nil, fmt.Errorf("--db %s: %w", spec, err)
		}
	}
	db, err := dbopen.Open(spec)
	if err != nil {
		return nil, redact(err, spec)
	}
	return db, nil
}

// openService opens and migrates the database of spec and returns a
// Service on it (which loads the policy), and a function that closes both.
func openService(ctx context.Context, spec string, e *env) (*iam.Service, func(), error) {
	db, err := openDB(spec, false)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := iam.New(ctx, db, iam.WithLogger(log))
	if err != nil {
		dbopen.Close(db)
		return nil, nil, redact(err, spec)
	}
	return svc, func() { svc.Close(); dbopen.Close(db) }, nil
}

// openStore opens the database of spec, which must exist, and returns
// its store (migrated if behind, as iam.New would), without loading the
// policy into memory, which the audit commands do not need; and a function
// that closes it.
func openStore(ctx context.Context, spec string) (*gormstore.Store, func(), error) {
	db, err := openDB(spec, true)
	if err != nil {
		return nil, nil, err
	}
	store, err := gormstore.Open(ctx, db)
	if err != nil {
		dbopen.Close(db)
		return nil, nil, redact(err, spec)
	}
	return store, func() { dbopen.Close(db) }, nil
}

// redact returns err with the password of spec, a postgres:// URL,
// replaced wherever its text shows it.
func redact(err error, spec string) error {
	u, perr := url.Parse(spec)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

func migrateCmd() *command {
	return &command{
		name: "migrate",
		usage: `Usage: iamctl migrate --db DB

Creates the database's tables, or brings them up to date, and exits.
Running it again changes nothing. An SQLite file is created if missing.
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			return func(ctx context.Context, e *env) error {
				_, done, err := openService(ctx, *db, e)
				if err != nil {
					return err
				}
				done()
				fmt.Fprintf(e.stdout, "migrated %s: the schema is up to date\n", dbopen.Redact(*db))
				return nil
			}
		},
	}
}

func bootstrapCmd() *command {
	return &command{
		name: "bootstrap",
		usage: `Usage: iamctl bootstrap --db DB --email EMAIL [--name NAME]

Creates the first PlatformAdmin. The password is read from the
environment variable IAM_ADMIN_PASSWORD or, when that is unset or empty,
from the first line of standard input; never from the command line.
Refused (exit status 1) when the platform already has a PlatformAdmin.
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			email := fs.String("email", "", "the administrator's email (required)")
			name := fs.String("name", "Platform Admin", "the administrator's display name")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				if *email == "" {
					return usageError("--email is required")
				}
				password, err := readPassword(e)
				if err != nil {
					return err
				}
				svc, done, err := openService(ctx, *db, e)
				if err != nil {
					return err
				}
				defer done()
				id, err := svc.Bootstrap(ctx, *email, *name, password)
				switch {
				case errors.Is(err, iam.ErrConflict):
					return &exitError{code: exitFail, msg: "bootstrap: refused: the platform already has a PlatformAdmin"}
				case err != nil:
					return err
				}
				fmt.Fprintf(e.stdout, "created the first PlatformAdmin %s (%s)\n", *email, id)
				return nil
			}
		},
	}
}

// maxPasswordLine bounds the line of standard input bootstrap reads: more
// than any acceptable password (128 code points of at most 4 bytes).
const maxPasswordLine = 4096

// readPassword returns the password of IAM_ADMIN_PASSWORD or, when that is
// unset or empty, the first line of stdin (without its line ending).
func readPassword(e *env) (string, error) {
	if pw := os.Getenv(envPassword); pw != "" {
		return pw, nil
	}
	if f, ok := e.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(e.stderr, "password for the new PlatformAdmin (one line; it is echoed, or set %s): ", envPassword)
		}
	}
	r := bufio.NewReaderSize(io.LimitReader(e.stdin, maxPasswordLine+1), maxPasswordLine+1)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("bootstrap: reading the password from standard input: %w", err)
	}
	if len(line) > maxPasswordLine {
		return "", errors.New("bootstrap: the password line on standard input is too long")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", fmt.Errorf("bootstrap: no password: set %s or write it as the first line of standard input", envPassword)
	}
	return line, nil
}

func verifyCmd() *command {
	return &command{
		name: "audit verify",
		usage: `Usage: iamctl audit verify --db DB [--checkpoint FILE] [--pruned FILE]

Walks the whole audit log oldest first and checks its hash chain. Exit
status 0 and a summary (events, head id and hash) when the log is intact;
1 and the first broken event (its id and what is wrong) otherwise. With
--checkpoint, also checks the log still holds the event of a checkpoint
written earlier by 'iamctl audit checkpoint', so that a tail deleted since
is detected. A log pruned by 'iamctl audit prune' verifies from the last
pruned event on; with --pruned, the checkpoint that prune wrote must
match the database's record of the latest prune, so that events deleted
at the head of the log under a forged record are detected.
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			cpFile := fs.String("checkpoint", "", "a checkpoint JSON `file` to verify against")
			prunedFile := fs.String("pruned", "", "the checkpoint JSON `file` the latest 'audit prune' wrote")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				var cp, pruned audit.Checkpoint
				if *cpFile != "" {
					var err error
					if cp, err = readCheckpoint("--checkpoint", *cpFile); err != nil {
						return err
					}
				}
				if *prunedFile != "" {
					var err error
					if pruned, err = readCheckpoint("--pruned", *prunedFile); err != nil {
						return err
					}
					if pruned.ID == 0 {
						return fmt.Errorf("--pruned %s: names no event: not a checkpoint 'audit prune' writes", *prunedFile)
					}
				}
				store, done, err := openStore(ctx, *db)
				if err != nil {
					return err
				}
				defer done()
				res, err := store.VerifyAuditPruned(ctx, cp, pruned)
				if err != nil {
					return err
				}
				if !res.OK() {
					return &exitError{code: exitFail, msg: fmt.Sprintf("audit log is BROKEN (%s verified before it): %s", plural(res.Events, "event"), res.Break.Error())}
				}
				msg := fmt.Sprintf("audit log intact: %s, head event %d hash %s", plural(res.Events, "event"), res.Head.ID, res.Head.Hash)
				if *cpFile != "" && cp.ID > 0 {
					msg += fmt.Sprintf("; holds checkpoint event %d", cp.ID)
				}
				if *prunedFile != "" {
					msg += fmt.Sprintf("; pruned through event %d as the kept checkpoint says", pruned.ID)
				} else if start, err := store.AuditPruned(ctx); err == nil && start.ID > 0 {
					msg += fmt.Sprintf("; pruned through event %d (check with --pruned FILE)", start.ID)
				}
				fmt.Fprintln(e.stdout, msg)
				return nil
			}
		},
	}
}

// plural returns "1 event", "2 events".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// readCheckpoint reads a checkpoint JSON file as 'audit checkpoint' and
// 'audit prune' write it, given as the flag name. Unknown fields are refused, and
// so is a checkpoint of an event without a hash.
func readCheckpoint(name, path string) (audit.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("%s: %w", name, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var cp audit.Checkpoint
	if err := dec.Decode(&cp); err != nil {
		return audit.Checkpoint{}, fmt.Errorf("%s %s: not a checkpoint: %w", name, path, err)
	}
	if dec.More() {
		return audit.Checkpoint{}, fmt.Errorf("%s %s: not a checkpoint: more than one JSON value", name, path)
	}
	switch {
	case cp.ID < 0:
		return audit.Checkpoint{}, fmt.Errorf("%s %s: negative event id %d", name, path, cp.ID)
	case cp.ID > 0 && cp.Hash.IsZero():
		return audit.Checkpoint{}, fmt.Errorf("%s %s: event %d has no hash", name, path, cp.ID)
	}
	return cp, nil
}

func checkpointCmd() *command {
	return &command{
		name: "audit checkpoint",
		usage: `Usage: iamctl audit checkpoint --db DB [--out FILE]

Writes the head of the audit log now (the newest event's id and hash, and
the time) as JSON, to standard output or FILE. Keep it apart from the
database: 'iamctl audit verify --checkpoint FILE' then detects a tail
deleted since. It does not verify the log; run audit verify for that.
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			out := fs.String("out", "", "write to `file` instead of standard output")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				store, done, err := openStore(ctx, *db)
				if err != nil {
					return err
				}
				defer done()
				cp, err := store.AuditHead(ctx)
				if err != nil {
					return err
				}
				b, err := json.Marshal(cp)
				if err != nil {
					return err
				}
				b = append(b, '\n')
				if *out == "" {
					_, err := e.stdout.Write(b)
					return err
				}
				if err := writeFile(*out, b); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "iamctl: wrote checkpoint of event %d to %s\n", cp.ID, *out)
				return nil
			}
		},
	}
}

func pruneCmd() *command {
	return &command{
		name: "audit prune",
		usage: `Usage: iamctl audit prune --db DB --before T --out FILE

Deletes the oldest events of the audit log: those before T (RFC 3339, or
a date YYYY-MM-DD in UTC), from the oldest on up to the first event at or
after T, so that what remains is one unbroken chain. The whole log is
verified first, and a broken log is not pruned. The prune is recorded in
the database and as an audit.prune event, in the same transaction.

The checkpoint of the last pruned event (its id and hash, and the time)
is written as JSON to FILE, which must not exist yet. Keep it apart from
the database, signed off as the record of what was pruned: the log goes
on verifying from it, and 'iamctl audit verify --pruned FILE' checks the
database's record of the prune against it. When no event is before T,
nothing is pruned and no FILE is written (exit status 0).
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			before := fs.String("before", "", "prune the events before this `time` (RFC 3339, or a date YYYY-MM-DD in UTC; required)")
			out := fs.String("out", "", "write the checkpoint of what was pruned to this new `file` (required)")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				if *before == "" {
					return usageError("--before is required")
				}
				if *out == "" {
					return usageError("--out is required: the checkpoint of what is pruned must be kept")
				}
				t, err := parseTime(*before)
				if err != nil {
					return usageError("--before: %v", err)
				}
				store, done, err := openStore(ctx, *db)
				if err != nil {
					return err
				}
				defer done()
				// Created before pruning, so that a checkpoint that could
				// not be written never leaves a prune without its record;
				// never over an existing one (an earlier prune's).
				f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				cp, err := store.PruneAudit(ctx, t)
				if err != nil || cp.ID == 0 {
					f.Close()
					os.Remove(*out)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "nothing to prune: no event before %s at the start of the audit log; nothing written to %s\n", t.Format(time.RFC3339Nano), *out)
					return nil
				}
				b, err := json.Marshal(cp)
				if err != nil {
					return err
				}
				b = append(b, '\n')
				_, err = f.Write(b)
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					// The prune committed: show the checkpoint so it is not lost.
					return fmt.Errorf("pruned through event %d, but writing the checkpoint to %s failed (%v); keep this checkpoint: %s", cp.ID, *out, err, strings.TrimSpace(string(b)))
				}
				fmt.Fprintf(e.stdout, "pruned the audit log through event %d (the events before %s); checkpoint written to %s: keep it apart from the database\n", cp.ID, t.Format(time.RFC3339Nano), *out)
				return nil
			}
		},
	}
}

// writeFile writes b to path, creating or truncating it, and reports a
// failure to flush it to disk.
func writeFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progressEvery is how many events audit export writes between progress
// lines, by default.
const progressEvery = 10000

func exportCmd() *command {
	return &command{
		name: "audit export",
		usage: `Usage: iamctl audit export --db DB --format csv|jsonl [filters] [--out FILE]

Exports the audit log of every org (and the events without one), newest
first, as CSV (a header row, cells escaped against spreadsheet formulas)
or JSON Lines, to standard output or FILE. Times are RFC 3339 in UTC.
The filters narrow the export; each applies only when given. The log is
read a page at a time, never held in memory. A progress line goes to
standard error every --progress events, and a summary at the end. On a
failure, FILE is removed (standard output is left as written so far).
This operator's export reads the database directly: it is not recorded
in the audit log (exports through the Service are).
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			format := fs.String("format", "", "csv or jsonl (required)")
			org := fs.String("org", "", "only events of this org `id`")
			actor := fs.String("actor", "", "only events by this user `id`")
			target := fs.String("target", "", "only events on this user `id`")
			action := fs.String("action", "", "only events of this `action` (e.g. member.role.change)")
			outcome := fs.String("outcome", "", "only events with this outcome: success or denied")
			since := fs.String("since", "", "only events at or after this `time` (RFC 3339, or a date YYYY-MM-DD in UTC)")
			until := fs.String("until", "", "only events before this `time` (RFC 3339, or a date YYYY-MM-DD in UTC)")
			out := fs.String("out", "", "write to `file` instead of standard output")
			every := fs.Int("progress", progressEvery, "print a progress line every `n` events (0: none)")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				if *format == "" {
					return usageError("--format is required (csv or jsonl)")
				}
				fmtv, err := audit.ParseFormat(*format)
				if err != nil {
					return usageError("--format: %v", err)
				}
				if *every < 0 {
					return usageError("--progress: want 0 or more")
				}
				f := audit.Filter{AllOrgs: true, Limit: audit.MaxLimit}
				f.Org, f.Actor, f.Target = authz.OrgID(*org), authz.UserID(*actor), authz.UserID(*target)
				if *action != "" {
					if f.Action, err = audit.ParseAction(*action); err != nil {
						return usageError("--action: %v", err)
					}
				}
				if *outcome != "" {
					if f.Outcome, err = audit.ParseOutcome(*outcome); err != nil {
						return usageError("--outcome: %v", err)
					}
				}
				if f.Since, err = parseTime(*since); err != nil {
					return usageError("--since: %v", err)
				}
				if f.Until, err = parseTime(*until); err != nil {
					return usageError("--until: %v", err)
				}
				if _, err := f.Normalize(); err != nil {
					return usageError("%v", err)
				}

				store, done, err := openStore(ctx, *db)
				if err != nil {
					return err
				}
				defer done()

				w := e.stdout
				var file *os.File
				if *out != "" {
					if file, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
						return err
					}
					w = file
				}
				var n int64
				events := func(yield func(audit.Event, error) bool) {
					for ev, err := range pages(ctx, store.Audit(), f) {
						if err == nil {
							n++
						}
						if !yield(ev, err) {
							return
						}
						if err == nil && *every > 0 && n%int64(*every) == 0 {
							fmt.Fprintf(e.stderr, "iamctl: audit export: %s written\n", plural(n, "event"))
						}
					}
				}
				err = audit.Export(w, fmtv, events)
				if file != nil {
					if err == nil {
						err = file.Sync()
					}
					if cerr := file.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						os.Remove(*out)
					}
				}
				if err != nil {
					return fmt.Errorf("after %s: %w", plural(n, "event"), err)
				}
				dest := "standard output"
				if *out != "" {
					dest = *out
				}
				fmt.Fprintf(e.stderr, "iamctl: audit export: %s written as %s to %s\n", plural(n, "event"), fmtv, dest)
				return nil
			}
		},
	}
}

// pages yields the events f selects, newest first, reading them from s a
// page of f.Limit at a time: one page in memory, and no connection held
// between pages. Pages stay stable while events are appended.
func pages(ctx context.Context, s audit.Store, f audit.Filter) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for {
			evs, err := s.Events(ctx, f)
			if err != nil {
				yield(audit.Event{}, err)
				return
			}
			for _, ev := range evs {
				if !yield(ev, nil) {
					return
				}
			}
			if len(evs) < f.Limit {
				return
			}
			f.Before = evs[len(evs)-1].ID
		}
	}
}

// parseTime parses a --since or --until value: RFC 3339, or a date
// (YYYY-MM-DD, midnight UTC). "" is the zero time (no bound).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
}
