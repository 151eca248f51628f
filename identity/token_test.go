package identity_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// TestTokenEntropy checks that tokens carry at least 128 bits (they carry
// 256) from a random source: 43 base64url characters without padding
// decoding to 32 bytes, all distinct, and hashed with SHA-256.
func TestTokenEntropy(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		tok, h := identity.NewToken()
		v := tok.Reveal()
		if len(v) != 43 || strings.ContainsAny(v, "=+/") {
			t.Fatalf("token %q: want 43 unpadded base64url characters", v)
		}
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw)*8 < 128 {
			t.Fatalf("token %q decodes to %d bits (%v), want at least 128", v, len(raw)*8, err)
		}
		if seen[v] {
			t.Fatalf("token %q issued twice", v)
		}
		seen[v] = true
		if h != tok.Hash() || h != identity.HashToken(v) || h.IsZero() {
			t.Fatalf("NewToken's hash %v, Token.Hash %v, HashToken %v differ", h, tok.Hash(), identity.HashToken(v))
		}
	}
	var zero identity.Token
	if !zero.IsZero() || zero.Reveal() != "" {
		t.Fatal("the zero Token is not empty")
	}
}

// TestHashToken: HashToken is SHA-256 of the token's bytes, at every
// length (the stack buffer's edge included), and allocates nothing for a
// session token, since the middleware calls it on every request.
func TestHashToken(t *testing.T) {
	for _, n := range []int{0, 1, 43, 63, 64, 65, 1000} {
		tok := strings.Repeat("x", n)
		if got, want := identity.HashToken(tok), identity.TokenHash(sha256.Sum256([]byte(tok))); got != want {
			t.Errorf("HashToken of %d bytes = %v, want %v", n, got, want)
		}
	}
	tok, _ := identity.NewToken()
	v := tok.Reveal()
	if n := testing.AllocsPerRun(100, func() { identity.HashToken(v) }); n != 0 {
		t.Errorf("HashToken of a session token allocates %v times", n)
	}
}

// TestTokenRedacted checks that no fmt verb and no slog handler shows a
// token's value, alone or inside other values, and that encoding/json
// does not either.
func TestTokenRedacted(t *testing.T) {
	t.Parallel()
	tok, _ := identity.NewToken()
	secret := tok.Reveal()
	type withExported struct{ Token identity.Token }
	type withUnexported struct{ tok identity.Token }
	type withPointer struct{ Token *identity.Token }
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10.3s", "%p"} {
		for _, arg := range []any{tok, &tok, withExported{tok}, withUnexported{tok}, withPointer{&tok}, []identity.Token{tok}, map[string]identity.Token{"k": tok}} {
			outs = append(outs, fmt.Sprintf(verb, arg))
		}
	}
	outs = append(outs, fmt.Sprint(tok), fmt.Sprintln(tok), tok.String(), tok.GoString(), fmt.Sprint(errors.New("login: "+fmt.Sprint(tok))))

	var buf bytes.Buffer
	for _, hd := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(hd)
		l.Info("login", "token", tok, "ptr", &tok)
		l.Info("login", slog.Any("token", tok), slog.Group("g", "token", tok))
		l.With("token", tok).Info("login")
	}
	outs = append(outs, buf.String())
	for _, v := range []any{tok, withExported{tok}, map[string]identity.Token{"k": tok}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
	}
	for _, out := range outs {
		if strings.Contains(out, secret) {
			t.Fatalf("token value leaked: %q", out)
		}
	}
	if got := fmt.Sprintf("%v|%s|%#v", tok, tok, tok); got != "[REDACTED]|[REDACTED]|[REDACTED]" {
		t.Fatalf("Token printed as %q", got)
	}
	if !strings.Contains(buf.String(), "[REDACTED]") {
		t.Fatalf("slog did not log the redaction: %s", buf.String())
	}
}

// TestTokenHashText checks TokenHash's text and database forms.
func TestTokenHashText(t *testing.T) {
	t.Parallel()
	_, h := identity.NewToken()
	s := h.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("TokenHash.String() = %q, want 64 lower-case hex digits", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := identity.ParseTokenHash(in)
		if err != nil || got != h {
			t.Fatalf("ParseTokenHash(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:]} {
		if _, err := identity.ParseTokenHash(bad); !errors.Is(err, authz.ErrInvalid) {
			t.Fatalf("ParseTokenHash(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	v, err := h.Value()
	if err != nil || v != s {
		t.Fatalf("Value() = %v, %v", v, err)
	}
	for _, src := range []any{s, []byte(s)} {
		var got identity.TokenHash
		if err := got.Scan(src); err != nil || got != h {
			t.Fatalf("Scan(%T) = %v, %v", src, got, err)
		}
	}
	var got identity.TokenHash
	if err := got.Scan(42); !errors.Is(err, authz.ErrInvalid) {
		t.Fatalf("Scan(42) = %v, want ErrInvalid", err)
	}
	b, err := json.Marshal(map[string]identity.TokenHash{"h": h})
	if err != nil || string(b) != `{"h":"`+s+`"}` {
		t.Fatalf("json = %s, %v", b, err)
	}
	var back map[string]identity.TokenHash
	if err := json.Unmarshal(b, &back); err != nil || back["h"] != h {
		t.Fatalf("json round trip = %v, %v", back, err)
	}
}

// TestNewSessionAndResetToken checks lifetimes: defaults, the 30-minute
// ceiling of reset tokens, refusals.
func TestNewSessionAndResetToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := authz.NewUserID()

	tok, s, err := identity.NewSession(u, now, 0)
	if err != nil || s.User != u || !s.CreatedAt.Equal(now) || !s.ExpiresAt.Equal(now.Add(identity.DefaultSessionLifetime)) || s.Hash != tok.Hash() {
		t.Fatalf("NewSession(0) = %+v, %v", s, err)
	}
	if s.Validate() != nil || s.Expired(now) || !s.Expired(s.ExpiresAt) || s.Expired(s.ExpiresAt.Add(-time.Nanosecond)) {
		t.Fatalf("session %+v: Validate or Expired wrong", s)
	}
	tok, r, err := identity.NewResetToken(u, now, 0)
	if err != nil || r.User != u || !r.ExpiresAt.Equal(now.Add(30*time.Minute)) || r.Hash != tok.Hash() {
		t.Fatalf("NewResetToken(0) = %+v, %v", r, err)
	}
	if r.Validate() != nil || r.Expired(now) || !r.Expired(r.ExpiresAt) {
		t.Fatalf("reset token %+v: Validate or Expired wrong", r)
	}
	if _, r, err := identity.NewResetToken(u, now, 10*time.Minute); err != nil || !r.ExpiresAt.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("NewResetToken(10m) = %+v, %v", r, err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"reset 31m", second(identity.NewResetToken(u, now, 31*time.Minute))},
		{"reset negative", second(identity.NewResetToken(u, now, -time.Minute))},
		{"reset bad user", second(identity.NewResetToken("usr_x", now, 0))},
		{"session negative", second(identity.NewSession(u, now, -time.Minute))},
		{"session 31 days", second(identity.NewSession(u, now, 31*24*time.Hour))},
		{"session bad user", second(identity.NewSession("", now, 0))},
	} {
		if !errors.Is(tc.err, authz.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, tc.err)
		}
	}
}

func second[A, B any](_ A, _ B, err error) error { return err }
