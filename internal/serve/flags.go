package serve

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	iam "github.com/kiops/iam"
)

// Flags is the command line of an example program: where it listens, its
// database and its first PlatformAdmin.
type Flags struct {
	// Addr is the address to listen on; port 0 picks a free one.
	Addr string
	// DB is the database: sqlite:PATH or a postgres:// URL.
	DB    string
	Admin Admin
	// TLSCert and TLSKey, both or neither, are the PEM files of the
	// certificate and key to serve HTTPS with; without them the program
	// serves plain HTTP (for loopback, or behind a proxy that ends TLS).
	TLSCert, TLSKey string
	// ShutdownTimeout bounds how long shutdown waits for requests under way.
	ShutdownTimeout time.Duration
	// Listening, if set, is told the address the server listens on once it
	// does (tests use it with port 0).
	Listening func(net.Addr)
}

// ParseFlags parses the command line (--addr, --db, --tls-cert,
// --tls-key and the admin flags)
// with the program's default address and database, then fills the admin
// from the environment (see Admin.FromEnv).
func ParseFlags(addr, db string) Flags {
	f := Flags{ShutdownTimeout: 10 * time.Second}
	flag.StringVar(&f.Addr, "addr", addr, "address to listen on")
	flag.StringVar(&f.DB, "db", db, "database: sqlite:PATH or a postgres:// URL")
	flag.StringVar(&f.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM file; needs --tls-key)")
	flag.StringVar(&f.TLSKey, "tls-key", "", "the private key of --tls-cert (PEM file)")
	f.Admin.Flags(flag.CommandLine)
	flag.Parse()
	f.Admin.FromEnv()
	return f
}

// Notifier returns the example programs' iam.Notifier: it prints each
// password-reset token on term, labelled, because the examples send no
// mail. A real host implements iam.Notifier with its mailer and never
// prints or logs a token.
func Notifier(p Program, term io.Writer) iam.Notifier { return &notifier{p: p, w: term} }

type notifier struct {
	mu sync.Mutex
	p  Program
	w  io.Writer
}

func (n *notifier) PasswordReset(_ context.Context, m iam.ResetMessage) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	who := "requested on the login page"
	if m.ByAdmin {
		who = "started by a Manager or PlatformAdmin"
	}
	_, err := fmt.Fprintf(n.w, "[%s password reset: the example sends no mail; a real host mails this] to %s <%s> (%s), %s: reset token: %s (%s; expires %s)\n",
		n.p.Name, m.Name, m.Email, m.User, who, m.Token.Reveal(), n.p.Redeem, m.Expires.UTC().Format(time.RFC3339))
	return err
}
