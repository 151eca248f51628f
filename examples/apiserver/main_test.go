package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiops/iam/internal/iamtest"
	"github.com/kiops/iam/internal/serve"
)

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
	base, stop := iamtest.StartProgram(t, serve.Flags{DB: db, Admin: serve.Admin{Name: "Platform Admin"}}, &console, program.Run)
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
	base, stop = iamtest.StartProgram(t, serve.Flags{DB: db, Admin: serve.Admin{Email: "eve@example.com", Password: "eve's own long passphrase", Name: "Eve"}}, &again, program.Run)
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
