package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/iamtest"
	"github.com/kiops/iam/internal/serve"
)

// start runs the program on cfg in the background (see iamtest.Start).
func start(t *testing.T, cfg config, console io.Writer) (string, func() error) {
	t.Helper()
	cfg.addr, cfg.shutdownTimeout = "127.0.0.1:0", 5*time.Second
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return iamtest.Start(t, func(ctx context.Context, listening func(net.Addr)) error {
		cfg.listening = listening
		return run(ctx, cfg, console, quiet, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	})
}

func login(t *testing.T, base, email, password string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, err := http.Post(base+"/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRun starts the program on a fresh SQLite file: it creates a
// PlatformAdmin with a random password printed once, serves, and shuts
// down cleanly; a second start on the same file creates nobody, whatever
// the flags say.
func TestRun(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "iam.db")
	var console iamtest.Buffer
	base, stop := start(t, config{db: db, admin: serve.Admin{Name: "Platform Admin"}}, &console)
	res, err := http.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	m := regexp.MustCompile(`email: +(\S+)\n +password: +(\S+)`).FindStringSubmatch(console.String())
	if m == nil {
		t.Fatalf("no generated password on the console:\n%s", console.String())
	}
	if code := login(t, base, m[1], m[2]); code != 200 {
		t.Errorf("login with the printed password: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	var again iamtest.Buffer
	base, stop = start(t, config{db: db, admin: serve.Admin{Email: "eve@example.com", Password: "eve's own long passphrase", Name: "Eve"}}, &again)
	if code := login(t, base, "eve@example.com", "eve's own long passphrase"); code != 401 {
		t.Errorf("a second bootstrap created an account: login %d", code)
	}
	if code := login(t, base, m[1], m[2]); code != 200 {
		t.Errorf("the first PlatformAdmin after a restart: login %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if strings.Contains(again.String(), "password:") {
		t.Errorf("a restart printed a password:\n%s", again.String())
	}
}

// TestRunFlags: the bootstrap flags come in pairs and --db names a known
// kind of database.
func TestRunFlags(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	for _, cfg := range []config{
		{db: "sqlite:" + filepath.Join(dir, "a.db"), admin: serve.Admin{Email: "ada@example.com"}},
		{db: "sqlite:" + filepath.Join(dir, "b.db"), admin: serve.Admin{Password: "a long passphrase"}},
		{db: "mysql://localhost/iam"},
		{db: "sqlite:"},
		{db: "sqlite:" + filepath.Join(dir, "c.db") + "?mode=ro"},
		{db: "sqlite:" + filepath.Join(dir, "d.db"), admin: serve.Admin{Email: "ada@example.com", Password: "password", Name: "Ada"}},
	} {
		cfg.addr = "127.0.0.1:0"
		if err := run(t.Context(), cfg, io.Discard, quiet, iam.WithPasswordHasher(identity.TestingHasherConfig(t))); err == nil {
			t.Errorf("run(%+v) started", cfg)
		}
	}
}
