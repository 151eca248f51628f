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
// Flags: --addr, --db (sqlite:PATH or a postgres:// URL), --tls-cert and
// --tls-key (PEM files: serve HTTPS instead of HTTP), --admin-email,
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
	"net/http"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/internal/serve"
)

// program is the console: what it says about itself on the terminal,
// and its handler. The write timeout is for pages; an audit export lifts
// it for its own response (auditlog.go).
var program = serve.Program{Name: "console", ChangePassword: "on the Profile page", Redeem: "open /reset-password",
	Handler: func(svc *iam.Service, log *slog.Logger) (http.Handler, error) { return newConsole(svc, log) }, WriteTimeout: time.Minute}

func main() {
	f := serve.ParseFlags("127.0.0.1:8090", "sqlite:kiops-console.db")
	serve.Main(program.Name, func(ctx context.Context, term io.Writer, log *slog.Logger) error {
		return program.Run(ctx, f, term, log)
	})
}
