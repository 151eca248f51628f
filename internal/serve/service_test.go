package serve_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/iamtest"
	"github.com/kiops/iam/internal/serve"
)

// TestOpenServiceRefuses: the admin flags come in pairs, --db names a
// known kind of database that can be written, and a given admin password
// must pass the password policy. Both example programs start through
// OpenService, so this holds for their command lines.
func TestOpenServiceRefuses(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	for _, f := range []serve.Flags{
		{DB: "sqlite:" + filepath.Join(dir, "a.db"), Admin: serve.Admin{Email: "ada@example.com", Name: "Ada"}},
		{DB: "sqlite:" + filepath.Join(dir, "b.db"), Admin: serve.Admin{Password: "a long passphrase", Name: "Ada"}},
		{DB: "mysql://localhost/iam"},
		{DB: "sqlite:"},
		{DB: "sqlite:" + filepath.Join(dir, "c.db") + "?mode=ro"},
		{DB: "sqlite:" + filepath.Join(dir, "d.db"), Admin: serve.Admin{Email: "ada@example.com", Password: "password", Name: "Ada"}},
	} {
		_, done, err := serve.OpenService(t.Context(), f, serve.Program{Name: "test"}, io.Discard, quiet, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
		if err == nil {
			done()
			t.Errorf("OpenService(%+v) opened", f)
		}
	}
}

// TestRunRefusesTLS: the TLS flags come in a pair, and files that do not
// hold a certificate and its key stop the program before it listens.
func TestRunRefusesTLS(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cert, key, _ := iamtest.TLSFiles(t)
	otherCert, _, _ := iamtest.TLSFiles(t)
	for _, f := range []serve.Flags{
		{TLSCert: cert},
		{TLSKey: key},
		{TLSCert: filepath.Join(t.TempDir(), "missing.pem"), TLSKey: key},
		{TLSCert: key, TLSKey: cert},
		{TLSCert: otherCert, TLSKey: key}, // not this key's certificate
	} {
		f.Addr, f.ShutdownTimeout = "127.0.0.1:0", time.Second
		f.Listening = func(a net.Addr) { t.Errorf("Run(%+v) listened on %s", f, a) }
		if err := serve.Run(t.Context(), serve.Config{Flags: f, Name: "test", Handler: http.NotFoundHandler(), Log: quiet}); err == nil {
			t.Errorf("Run(%+v) served", f)
		}
	}
}
