package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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
func start(t *testing.T, cfg config, term io.Writer) (string, func() error) {
	t.Helper()
	cfg.addr, cfg.shutdownTimeout = "127.0.0.1:0", 5*time.Second
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return iamtest.Start(t, func(ctx context.Context, listening func(net.Addr)) error {
		cfg.listening = listening
		return run(ctx, cfg, term, quiet, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	})
}

// signIn posts the login form of the console at base and reports whether
// it opened a session.
func signIn(t *testing.T, base, email, password string) bool {
	t.Helper()
	jar, _ := newJar()
	c := &http.Client{Jar: jar}
	res, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	tok := csrfRE.FindStringSubmatch(readAll(t, res))[1]
	res, err = c.PostForm(base+"/login", url.Values{"csrf": {tok}, "email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	return res.StatusCode == http.StatusOK && res.Request.URL.Path != "/login"
}

// TestRun starts the program on a fresh SQLite file: it creates a
// PlatformAdmin with a random password printed once on the terminal,
// serves the login page, and shuts down cleanly; a second start on the
// same file creates nobody and prints no password.
func TestRun(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "console.db")
	var term iamtest.Buffer
	base, stop := start(t, config{db: db, admin: serve.Admin{Name: "Platform Admin"}}, &term)
	m := regexp.MustCompile(`email: +(\S+)\n +password: +(\S+)`).FindStringSubmatch(term.String())
	if m == nil {
		t.Fatalf("no generated password on the terminal:\n%s", term.String())
	}
	if !signIn(t, base, m[1], m[2]) {
		t.Error("the printed password does not sign in")
	}
	if res, err := http.Get(base + "/static/console.css"); err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("the stylesheet: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	var again iamtest.Buffer
	base, stop = start(t, config{db: db, admin: serve.Admin{Email: "eve@example.com", Password: "eve's own long passphrase", Name: "Eve"}}, &again)
	if signIn(t, base, "eve@example.com", "eve's own long passphrase") {
		t.Error("a second start created another PlatformAdmin")
	}
	if !signIn(t, base, m[1], m[2]) {
		t.Error("the first PlatformAdmin cannot sign in after a restart")
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if strings.Contains(again.String(), "password:") {
		t.Errorf("a restart printed a password:\n%s", again.String())
	}
}

// TestRunFlags: the admin flags come in pairs, and --db names a known
// kind of database.
func TestRunFlags(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	for _, cfg := range []config{
		{db: "sqlite:" + filepath.Join(dir, "a.db"), admin: serve.Admin{Email: "ada@example.com"}},
		{db: "sqlite:" + filepath.Join(dir, "b.db"), admin: serve.Admin{Password: "a long passphrase"}},
		{db: "mysql://localhost/iam"},
	} {
		cfg.addr = "127.0.0.1:0"
		if err := run(t.Context(), cfg, io.Discard, quiet); err == nil {
			t.Errorf("run(%+v) started", cfg)
		}
	}
}
