// Command console is a server-rendered web console over KIOPS IAM: the
// pages of the product documentation (Login with Forgot Password, Sign up,
// User Management with its Pending Approvals, Users by Organization and
// All Users tabs, Permission Management, Organization Management, the
// Audit Log with its exports, Profile, and a sample feature page per
// category with the "Insufficient permissions" answer), as plain HTML
// forms (html/template, embedded with embed; no JavaScript), on top of the
// Service's public API.
//
// Run it:
//
//	go run ./examples/console                        # http://127.0.0.1:8090, ./kiops-console.db
//	IAM_ADMIN_EMAIL=ada@example.com IAM_ADMIN_PASSWORD='a long passphrase' go run ./examples/console
//	go run ./examples/console --db 'postgres://user@127.0.0.1:5432/iam?sslmode=disable'
//
// Flags: --addr, --db (sqlite:PATH or a postgres:// URL), --admin-email,
// --admin-password and --admin-name (or IAM_ADMIN_EMAIL,
// IAM_ADMIN_PASSWORD, IAM_ADMIN_NAME). The first PlatformAdmin is created
// only when the platform has none; without --admin-email it is
// admin@localhost with a random password printed once on the terminal.
// The console sends no mail: Forgot Password prints the reset token on
// the terminal. SIGINT or SIGTERM shut it down gracefully.
//
// See server.go for the URL layout and the session and CSRF design.
package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/internal/serve"
)

// program is what the console says about itself on the terminal.
var program = serve.Program{Name: "console", ChangePassword: "on the Profile page", Redeem: "open /reset-password"}

func main() {
	f := serve.ParseFlags("127.0.0.1:8090", "sqlite:kiops-console.db")
	serve.Main(program.Name, func(ctx context.Context, term io.Writer, log *slog.Logger) error { return run(ctx, f, term, log) })
}

// run serves the console until ctx ends, then shuts down gracefully.
// Operator messages (the generated password, reset tokens) go to term;
// opts are extra Service options (tests pass a cheap password hasher).
func run(ctx context.Context, f serve.Flags, term io.Writer, log *slog.Logger, opts ...iam.Option) error {
	svc, done, err := serve.OpenService(ctx, f, program, term, log, opts...)
	if err != nil {
		return err
	}
	defer done()
	h, err := newConsole(svc, log)
	if err != nil {
		return err
	}
	return serve.Run(ctx, serve.Config{Flags: f, Name: program.Name, Handler: h, Log: log, WriteTimeout: time.Minute})
}
