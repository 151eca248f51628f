package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kiops/iam/internal/iamtest"
	"github.com/kiops/iam/internal/serve"
)

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
	base, stop := iamtest.StartProgram(t, serve.Flags{DB: db, Admin: serve.Admin{Name: "Platform Admin"}}, &term, program.Run)
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
	base, stop = iamtest.StartProgram(t, serve.Flags{DB: db, Admin: serve.Admin{Email: "eve@example.com", Password: "eve's own long passphrase", Name: "Eve"}}, &again, program.Run)
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

// TestRunTLS: with --tls-cert and --tls-key the console serves HTTPS only,
// and its cookies are Secure there (TestCookieAttributes checks every
// attribute on both schemes).
func TestRunTLS(t *testing.T) {
	cert, key, client := iamtest.TLSFiles(t)
	f := serve.Flags{DB: "sqlite:" + filepath.Join(t.TempDir(), "console.db"), TLSCert: cert, TLSKey: key, Admin: serve.Admin{Name: "Platform Admin"}}
	base, stop := iamtest.StartProgram(t, f, io.Discard, program.Run)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base URL %s", base)
	}
	res, err := client.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	if res.StatusCode != http.StatusOK || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("GET /login over TLS: %s, %+v", res.Status, res.TLS)
	}
	if cs := res.Cookies(); len(cs) == 0 || !slices.ContainsFunc(cs, func(c *http.Cookie) bool { return c.Secure }) || slices.ContainsFunc(cs, func(c *http.Cookie) bool { return !c.Secure }) {
		t.Errorf("cookies over TLS: %v, want every one Secure", cs)
	}
	// Plain HTTP on the same port gets no page.
	if res, err := http.Get("http" + strings.TrimPrefix(base, "https") + "/login"); err == nil {
		body := readAll(t, res)
		if res.StatusCode == http.StatusOK || strings.Contains(body, "csrf") {
			t.Errorf("plain HTTP on the TLS port: %s\n%s", res.Status, body)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
