package serve

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/internal/dbopen"
)

// Admin is the first PlatformAdmin an example program creates on a fresh
// platform.
type Admin struct {
	Email, Password, Name string
}

// Flags registers --admin-email, --admin-password and --admin-name on fs.
// Call FromEnv after parsing.
func (a *Admin) Flags(fs *flag.FlagSet) {
	fs.StringVar(&a.Email, "admin-email", "", "email of the first PlatformAdmin, created when none exists (or IAM_ADMIN_EMAIL)")
	fs.StringVar(&a.Password, "admin-password", "", "password of the first PlatformAdmin (or IAM_ADMIN_PASSWORD, which other users cannot see in ps)")
	fs.StringVar(&a.Name, "admin-name", "", `display name of the first PlatformAdmin (or IAM_ADMIN_NAME; default "Platform Admin")`)
}

// FromEnv fills what the flags left empty from IAM_ADMIN_EMAIL,
// IAM_ADMIN_PASSWORD and IAM_ADMIN_NAME. It runs after parsing, so that
// -help never prints a password.
func (a *Admin) FromEnv() {
	for dst, env := range map[*string]string{&a.Email: "IAM_ADMIN_EMAIL", &a.Password: "IAM_ADMIN_PASSWORD", &a.Name: "IAM_ADMIN_NAME"} {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
	}
	if a.Name == "" {
		a.Name = "Platform Admin"
	}
}

// DefaultAdminEmail is the email of the PlatformAdmin created with a
// random password when no --admin-email is given.
const DefaultAdminEmail = "admin@localhost"

// Program is an example program: what OpenService says about it on the
// terminal, and the server it runs (see Program.Run).
type Program struct {
	// Name is the program's name ("apiserver").
	Name string
	// ChangePassword says where to change the generated password.
	ChangePassword string
	// Redeem says where a printed reset token is used.
	Redeem string
	// Handler builds the program's HTTP handler over the Service.
	Handler func(svc *iam.Service, log *slog.Logger) (http.Handler, error)
	// WriteTimeout bounds writing a response (see Config).
	WriteTimeout time.Duration
}

// Run serves p until ctx ends, then shuts down gracefully: it opens the
// Service for f (OpenService, with opts), serves p.Handler over it on
// f.Addr (the package's Run) and closes the Service. Operator messages
// (the generated password, reset tokens) go to term.
func (p Program) Run(ctx context.Context, f Flags, term io.Writer, log *slog.Logger, opts ...iam.Option) error {
	svc, done, err := OpenService(ctx, f, p, term, log, opts...)
	if err != nil {
		return err
	}
	defer done()
	h, err := p.Handler(svc, log)
	if err != nil {
		return err
	}
	return Run(ctx, Config{Flags: f, Name: p.Name, Handler: h, Log: log, WriteTimeout: p.WriteTimeout})
}

// OpenService opens the database f.DB (sqlite:PATH or a postgres:// URL),
// creates the Service on it, printing reset tokens on term (see Notifier)
// and logging to log, with opts after those, and makes sure the platform
// has a PlatformAdmin: f.Admin, or without an email admin@localhost with
// a random password printed once on term. done closes the Service and
// the database.
func OpenService(ctx context.Context, f Flags, p Program, term io.Writer, log *slog.Logger, opts ...iam.Option) (svc *iam.Service, done func(), err error) {
	admin := f.Admin
	if (admin.Email == "") != (admin.Password == "") {
		return nil, nil, errors.New("give both --admin-email and --admin-password (or IAM_ADMIN_EMAIL and IAM_ADMIN_PASSWORD), or neither")
	}
	db, err := dbopen.Open(f.DB)
	if err != nil {
		return nil, nil, err
	}
	opts = append([]iam.Option{iam.WithNotifier(Notifier(p, term)), iam.WithLogger(log)}, opts...)
	svc, err = iam.New(ctx, db, opts...)
	if err != nil {
		dbopen.Close(db)
		return nil, nil, err
	}
	done = func() { svc.Close(); dbopen.Close(db) }
	if err := ensureAdmin(ctx, svc, admin, p, term, log); err != nil {
		done()
		return nil, nil, err
	}
	return svc, done, nil
}

// ensureAdmin makes sure the platform has a PlatformAdmin. The Service
// has no "does one exist" query: Bootstrap refuses with ErrConflict when
// one does, which is the normal case on every start but the first.
func ensureAdmin(ctx context.Context, svc *iam.Service, admin Admin, p Program, term io.Writer, log *slog.Logger) error {
	email, password, generated := admin.Email, admin.Password, false
	if email == "" {
		email, password, generated = DefaultAdminEmail, randomPassword(), true
	}
	_, err := svc.Bootstrap(ctx, email, admin.Name, password)
	switch {
	case errors.Is(err, iam.ErrConflict):
		if !generated {
			log.Info(p.Name + ": the platform has a PlatformAdmin already; --admin-email is not used")
		}
		return nil
	case err != nil:
		return fmt.Errorf("bootstrapping the first PlatformAdmin: %w", err)
	case generated:
		fmt.Fprintf(term, `
=====================================================================
 KIOPS IAM %s: created the first PlatformAdmin
   email:    %s
   password: %s
 The password is shown this once and stored only as a hash. Sign in
 and change it (%s), or start a fresh database with
 --admin-email and --admin-password.
=====================================================================

`, p.Name, email, password, p.ChangePassword)
	default:
		log.Info(p.Name+": created the first PlatformAdmin", "email", email)
	}
	return nil
}

// randomPassword returns 130 bits from crypto/rand as a passphrase of five
// dash-separated groups.
func randomPassword() string {
	b := make([]byte, 17)
	rand.Read(b) // never fails (crypto/rand documents it)
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:25]
	return s[0:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:20] + "-" + s[20:25]
}
