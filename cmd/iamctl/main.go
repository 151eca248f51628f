// Command iamctl is the operator's tool for a KIOPS IAM database: it
// migrates the schema, creates the first PlatformAdmin, and verifies,
// checkpoints and exports the audit log.
//
// Usage:
//
//	iamctl migrate    --db DB
//	iamctl bootstrap  --db DB --email EMAIL [--name NAME]
//	iamctl audit verify     --db DB [--checkpoint FILE]
//	iamctl audit checkpoint --db DB [--out FILE]
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
// audit verify walks the whole audit log and checks its hash chain. It
// exits 0 and prints the number of events and the head (the newest event's
// id and hash) when the log is intact, and exits 1 naming the first broken
// event and what is wrong with it otherwise. With --checkpoint, it also
// checks the log against a checkpoint written earlier by audit checkpoint
// and kept apart from the database, which detects a tail cut off since.
//
// Exit status: 0 on success; 1 when the command failed, was refused, or
// found the audit log broken; 2 for a usage error (an unknown command, a
// bad flag). Errors are one line on standard error, starting "iamctl:".
//
// Except for migrate and bootstrap, iamctl refuses an SQLite path that
// does not exist rather than create an empty database (which would verify
// as intact). Every command migrates the schema when it is behind, as
// iam.New does.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gorm.io/gorm"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
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
  iamctl audit verify     --db DB [--checkpoint FILE]
                                                   check the audit log's hash chain
  iamctl audit checkpoint --db DB [--out FILE]     write the head of the log as JSON

DB is sqlite:PATH or a postgres:// URL. Run 'iamctl COMMAND --help' for
a command's flags. Exit status: 0 success, 1 failure (or a broken audit
log), 2 usage error.
`

const auditUsage = `Usage:
  iamctl audit verify     --db DB [--checkpoint FILE]
  iamctl audit checkpoint --db DB [--out FILE]

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
	case "audit":
		if len(args) < 2 {
			fmt.Fprintln(stderr, "iamctl: audit: missing subcommand (verify or checkpoint); see 'iamctl audit --help'")
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
		fmt.Fprintf(stderr, "iamctl %s: unexpected argument %q; see 'iamctl %s --help'\n", cmd.name, fs.Arg(0), cmd.name)
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

// open opens and migrates the database of spec and returns a Service on
// it, and a function that closes both. When mustExist is set, an SQLite
// file that does not exist is refused instead of created.
func open(ctx context.Context, spec string, mustExist bool, e *env) (*iam.Service, *gorm.DB, func(), error) {
	if spec == "" {
		return nil, nil, nil, usageError("--db is required")
	}
	if !strings.HasPrefix(spec, "sqlite:") && !strings.HasPrefix(spec, "postgres://") && !strings.HasPrefix(spec, "postgresql://") {
		return nil, nil, nil, usageError("--db %q: want sqlite:PATH or a postgres:// URL", dbopen.Redact(spec))
	}
	if path, ok := strings.CutPrefix(spec, "sqlite:"); ok && mustExist && path != "" {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, nil, fmt.Errorf("--db %s: no such file (run 'iamctl migrate' to create a database)", spec)
			}
			return nil, nil, nil, fmt.Errorf("--db %s: %w", spec, err)
		}
	}
	db, err := dbopen.Open(spec)
	if err != nil {
		return nil, nil, nil, redact(err, spec)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := iam.New(ctx, db, iam.WithLogger(log))
	if err != nil {
		dbopen.Close(db)
		return nil, nil, nil, redact(err, spec)
	}
	return svc, db, func() { svc.Close(); dbopen.Close(db) }, nil
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
				_, _, done, err := open(ctx, *db, false, e)
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
				svc, _, done, err := open(ctx, *db, false, e)
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
		usage: `Usage: iamctl audit verify --db DB [--checkpoint FILE]

Walks the whole audit log oldest first and checks its hash chain. Exit
status 0 and a summary (events, head id and hash) when the log is intact;
1 and the first broken event (its id and what is wrong) otherwise. With
--checkpoint, also checks the log still holds the event of a checkpoint
written earlier by 'iamctl audit checkpoint', so that a tail deleted since
is detected.
`,
		flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
			db := dbFlag(fs)
			cpFile := fs.String("checkpoint", "", "a checkpoint JSON `file` to verify against")
			return func(ctx context.Context, e *env) error {
				if *db == "" {
					return usageError("--db is required")
				}
				var cp audit.Checkpoint
				if *cpFile != "" {
					var err error
					if cp, err = readCheckpoint(*cpFile); err != nil {
						return err
					}
				}
				svc, _, done, err := open(ctx, *db, true, e)
				if err != nil {
					return err
				}
				defer done()
				res, err := svc.VerifyAuditCheckpoint(ctx, cp)
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

// readCheckpoint reads a checkpoint JSON file as 'audit checkpoint'
// writes it. Unknown fields are refused, and so is a checkpoint of an
// event without a hash.
func readCheckpoint(path string) (audit.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("--checkpoint: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var cp audit.Checkpoint
	if err := dec.Decode(&cp); err != nil {
		return audit.Checkpoint{}, fmt.Errorf("--checkpoint %s: not a checkpoint: %w", path, err)
	}
	if dec.More() {
		return audit.Checkpoint{}, fmt.Errorf("--checkpoint %s: not a checkpoint: more than one JSON value", path)
	}
	switch {
	case cp.ID < 0:
		return audit.Checkpoint{}, fmt.Errorf("--checkpoint %s: negative event id %d", path, cp.ID)
	case cp.ID > 0 && cp.Hash.IsZero():
		return audit.Checkpoint{}, fmt.Errorf("--checkpoint %s: event %d has no hash", path, cp.ID)
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
				svc, _, done, err := open(ctx, *db, true, e)
				if err != nil {
					return err
				}
				defer done()
				cp, err := svc.AuditCheckpoint(ctx)
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
