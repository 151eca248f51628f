// Command console is a server-rendered web console over KIOPS IAM: the
// User Management and Permission Management pages of the product
// documentation, as plain HTML forms (html/template, embedded with embed;
// no JavaScript), on top of the Service's public API.
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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/internal/dbopen"
	"github.com/kiops/iam/internal/serve"
)

// config is what the flags set.
type config struct {
	addr, db string
	admin    serve.Admin
	// shutdownTimeout bounds how long shutdown waits for requests under way.
	shutdownTimeout time.Duration
	// listening, if set, is told the address the console listens on.
	listening func(net.Addr)
}

func main() {
	cfg := config{shutdownTimeout: 10 * time.Second}
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "address to listen on")
	flag.StringVar(&cfg.db, "db", "sqlite:kiops-console.db", "database: sqlite:PATH or a postgres:// URL")
	cfg.admin.Flags(flag.CommandLine)
	flag.Parse()
	cfg.admin.FromEnv()
	serve.Main("console", func(ctx context.Context, term io.Writer, log *slog.Logger) error { return run(ctx, cfg, term, log) })
}

// run serves the console until ctx ends, then shuts down gracefully.
// Operator messages (the generated password, reset tokens) go to term;
// opts are extra Service options (tests pass a cheap password hasher).
func run(ctx context.Context, cfg config, term io.Writer, log *slog.Logger, opts ...iam.Option) error {
	opts = append([]iam.Option{iam.WithNotifier(&terminalNotifier{w: term}), iam.WithLogger(log)}, opts...)
	svc, done, err := serve.OpenService(ctx, cfg.db, cfg.admin, serve.Program{Name: "console", ChangePassword: "with Forgot Password on the login page"}, term, log, opts...)
	if err != nil {
		return err
	}
	defer done()
	h, err := newConsole(svc, log)
	if err != nil {
		return err
	}
	return serve.Run(ctx, serve.Config{
		Name: "console", Addr: cfg.addr, Handler: h, Log: log,
		WriteTimeout: time.Minute, ShutdownTimeout: cfg.shutdownTimeout, Listening: cfg.listening,
		Attrs: []any{"db", dbopen.Redact(cfg.db)},
	})
}

// terminalNotifier prints password-reset tokens on the terminal, since the
// example sends no mail; a real host mails them and never prints them.
type terminalNotifier struct {
	mu sync.Mutex
	w  io.Writer
}

func (n *terminalNotifier) PasswordReset(_ context.Context, m iam.ResetMessage) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := fmt.Fprintf(n.w, "[console password reset for %s <%s>; a real host mails this] reset token: %s (open /reset-password; expires %s)\n",
		m.Name, m.Email, m.Token.Reveal(), m.Expires.UTC().Format(time.RFC3339))
	return err
}
