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
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/internal/dbopen"
)

// config is what the flags set.
type config struct {
	addr, db                             string
	adminEmail, adminPassword, adminName string
	// shutdownTimeout bounds how long shutdown waits for requests under way.
	shutdownTimeout time.Duration
	// listening, if set, is told the address the console listens on.
	listening func(net.Addr)
}

func main() {
	cfg := config{shutdownTimeout: 10 * time.Second}
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "address to listen on")
	flag.StringVar(&cfg.db, "db", "sqlite:kiops-console.db", "database: sqlite:PATH or a postgres:// URL")
	flag.StringVar(&cfg.adminEmail, "admin-email", "", "email of the first PlatformAdmin, created when none exists (or IAM_ADMIN_EMAIL)")
	flag.StringVar(&cfg.adminPassword, "admin-password", "", "password of the first PlatformAdmin (or IAM_ADMIN_PASSWORD, which ps does not show)")
	flag.StringVar(&cfg.adminName, "admin-name", "", `display name of the first PlatformAdmin (or IAM_ADMIN_NAME; default "Platform Admin")`)
	flag.Parse()
	// The environment is read after parsing so that -help never shows a
	// password.
	for dst, env := range map[*string]string{&cfg.adminEmail: "IAM_ADMIN_EMAIL", &cfg.adminPassword: "IAM_ADMIN_PASSWORD", &cfg.adminName: "IAM_ADMIN_NAME"} {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
	}
	if cfg.adminName == "" {
		cfg.adminName = "Platform Admin"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, cfg, os.Stderr, log); err != nil {
		log.Error("console: " + err.Error())
		os.Exit(1)
	}
}

// run serves the console until ctx ends, then shuts down gracefully.
// Operator messages (the generated password, reset tokens) go to term;
// opts are extra Service options (tests pass a cheap password hasher).
func run(ctx context.Context, cfg config, term io.Writer, log *slog.Logger, opts ...iam.Option) error {
	if (cfg.adminEmail == "") != (cfg.adminPassword == "") {
		return errors.New("give both --admin-email and --admin-password (or the IAM_ADMIN_* variables), or neither")
	}
	db, err := dbopen.Open(cfg.db)
	if err != nil {
		return err
	}
	defer dbopen.Close(db)
	opts = append([]iam.Option{iam.WithNotifier(&terminalNotifier{w: term}), iam.WithLogger(log)}, opts...)
	svc, err := iam.New(ctx, db, opts...)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := ensureAdmin(ctx, svc, cfg, term, log); err != nil {
		return err
	}
	h, err := newConsole(svc, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("console: serving", "url", "http://"+ln.Addr().String(), "db", dbopen.Redact(cfg.db))
	if cfg.listening != nil {
		cfg.listening(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("console: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ensureAdmin gives a fresh platform its first PlatformAdmin. Bootstrap
// answers ErrConflict once one exists, which is every start but the first.
func ensureAdmin(ctx context.Context, svc *iam.Service, cfg config, term io.Writer, log *slog.Logger) error {
	email, password := cfg.adminEmail, cfg.adminPassword
	generated := email == ""
	if generated {
		email, password = "admin@localhost", rand.Text()
	}
	_, err := svc.Bootstrap(ctx, email, cfg.adminName, password)
	switch {
	case errors.Is(err, iam.ErrConflict):
		return nil
	case err != nil:
		return fmt.Errorf("creating the first PlatformAdmin: %w", err)
	case generated:
		fmt.Fprintf(term, "\nKIOPS console: created the first PlatformAdmin\n  email:    %s\n  password: %s\nShown this once; sign in and keep it safe, or start a fresh database with --admin-email and --admin-password.\n\n", email, password)
	default:
		log.Info("console: created the first PlatformAdmin", "email", email)
	}
	return nil
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
