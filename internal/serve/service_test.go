package serve_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/identity"
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
