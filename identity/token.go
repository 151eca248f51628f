package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/kiops/iam/authz"
)

// Token lifetimes.
const (
	// TokenBytes is the number of random bytes in a Token: 256 bits from
	// crypto/rand, twice the 128 that DESIGN.md requires.
	TokenBytes = 32

	// DefaultSessionLifetime is how long a session lasts when no lifetime
	// is configured: an absolute limit, counted from login, after which
	// the user logs in again (NIST SP 800-63B's re-authentication bound
	// at AAL2). A session does not extend itself by being used.
	DefaultSessionLifetime = 12 * time.Hour
	// MaxSessionLifetime is the longest lifetime NewSession accepts.
	MaxSessionLifetime = 30 * 24 * time.Hour

	// DefaultResetTokenLifetime is how long a password-reset token stays
	// usable when no lifetime is configured; it is also the maximum.
	DefaultResetTokenLifetime = 30 * time.Minute
	// MaxResetTokenLifetime is the longest lifetime NewResetToken
	// accepts (DESIGN.md: reset tokens expire within 30 minutes).
	MaxResetTokenLifetime = 30 * time.Minute
)

// redacted is what a Token shows instead of its value.
const redacted = "[REDACTED]"

// Token is a bearer secret handed to a user once: a session token after
// login, or a password-reset token through the host's notifier. Only its
// TokenHash is ever stored.
//
// A Token never shows its value by accident: fmt prints "[REDACTED]" for
// every verb (%v, %+v, %#v, %s, %q, %x, …), log/slog logs "[REDACTED]",
// encoding/json encodes it as {} (it has no exported fields), and inside
// another value printed with fmt it appears redacted, or as a pointer
// where fmt cannot call its methods (an unexported field). The value is
// available only through Reveal, to send it to its owner. The zero Token
// holds no value. Tokens are immutable and safe for concurrent use.
type Token struct {
	v *string // a pointer, so that reflection-based printers show an address
}

// NewToken returns a fresh Token of TokenBytes random bytes from
// crypto/rand, encoded as unpadded base64url (43 characters), and its
// hash for storage. It never fails: crypto/rand.Read never returns an
// error (it crashes the program if the system's source fails).
// Safe for concurrent use.
func NewToken() (Token, TokenHash) {
	var b [TokenBytes]byte
	_, _ = rand.Read(b[:]) // documented never to fail
	s := base64.RawURLEncoding.EncodeToString(b[:])
	return Token{v: &s}, HashToken(s)
}

// Reveal returns the token's value, to hand it to its owner (in a
// response body or through the notifier). Never log it.
func (t Token) Reveal() string {
	if t.v == nil {
		return ""
	}
	return *t.v
}

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.v == nil }

// Hash returns the SHA-256 of the token's value, as stored.
func (t Token) Hash() TokenHash { return HashToken(t.Reveal()) }

// String returns "[REDACTED]".
func (t Token) String() string { return redacted }

// GoString returns "[REDACTED]", for %#v.
func (t Token) GoString() string { return redacted }

// Format implements fmt.Formatter: every verb prints "[REDACTED]".
func (t Token) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer: loggers record "[REDACTED]".
func (t Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// TokenHash is the SHA-256 of a token's value: what a store keeps and
// looks up. It is not secret in the way a Token is (the token cannot be
// recovered from it), but it still identifies a live session, so audit
// events do not carry it either. The zero TokenHash is no hash.
//
// As text (String, MarshalText) and as a database value (Value) it is 64
// lower-case hex digits; ParseTokenHash, UnmarshalText and Scan read that
// form back.
type TokenHash [sha256.Size]byte

// HashToken returns the SHA-256 of a token's value as presented by a
// client: the bytes of the string, whatever they are. A malformed or
// unknown token simply hashes to something no store holds, so callers
// need not parse presented tokens first. It allocates nothing for tokens
// of up to 64 bytes (a session's is 43): it runs on every request. Safe
// for concurrent use.
func HashToken(token string) TokenHash {
	// A plain []byte(token) is copied to the heap above 32 bytes; this
	// stack buffer holds every token this package issues.
	var buf [64]byte
	return sha256.Sum256(append(buf[:0], token...))
}

// ParseTokenHash parses 64 hex digits (either case). Anything else is an
// *authz.InvalidError matching authz.ErrInvalid.
func ParseTokenHash(s string) (TokenHash, error) {
	var h TokenHash
	if len(s) != 2*len(h) {
		return TokenHash{}, &authz.InvalidError{Field: "token hash", Value: s, Reason: "want 64 hex digits"}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return TokenHash{}, &authz.InvalidError{Field: "token hash", Value: s, Reason: "want 64 hex digits"}
	}
	return h, nil
}

// IsZero reports whether h is the zero TokenHash.
func (h TokenHash) IsZero() bool { return h == TokenHash{} }

// String returns h as 64 lower-case hex digits.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (64 hex digits).
func (h TokenHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseTokenHash.
func (h *TokenHash) UnmarshalText(b []byte) error {
	v, err := ParseTokenHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Value implements database/sql/driver.Valuer: 64 lower-case hex digits,
// a portable text column that every database indexes.
func (h TokenHash) Value() (driver.Value, error) { return h.String(), nil }

// Scan implements database/sql.Scanner, reading a string or []byte of 64
// hex digits. Anything else is an error matching authz.ErrInvalid.
func (h *TokenHash) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return h.UnmarshalText([]byte(v))
	case []byte:
		return h.UnmarshalText(v)
	}
	return &authz.InvalidError{Field: "token hash", Value: fmt.Sprintf("%T", src), Reason: "want a string of 64 hex digits"}
}

// NewSession starts a session for user at now: a fresh Token to hand to
// the user and the Session to store. A lifetime of 0 means
// DefaultSessionLifetime; a negative one, one above MaxSessionLifetime or
// a non-canonical user id is an error matching authz.ErrInvalid. Safe for
// concurrent use.
func NewSession(user authz.UserID, now time.Time, lifetime time.Duration) (Token, Session, error) {
	if lifetime == 0 {
		lifetime = DefaultSessionLifetime
	}
	if lifetime < 0 || lifetime > MaxSessionLifetime {
		return Token{}, Session{}, &authz.InvalidError{Field: "session lifetime", Value: lifetime.String(), Reason: "want more than 0 and at most 720h"}
	}
	if !user.Valid() {
		return Token{}, Session{}, &authz.InvalidError{Field: "user id", Value: string(user), Reason: "not an id this module issued"}
	}
	tok, h := NewToken()
	return tok, Session{Hash: h, User: user, CreatedAt: now, ExpiresAt: now.Add(lifetime)}, nil
}

// NewResetToken issues a password-reset token for user at now: a fresh
// Token to send to the user and the ResetToken to store. A lifetime of 0
// means DefaultResetTokenLifetime; a negative one, one above
// MaxResetTokenLifetime or a non-canonical user id is an error matching
// authz.ErrInvalid. Safe for concurrent use.
func NewResetToken(user authz.UserID, now time.Time, lifetime time.Duration) (Token, ResetToken, error) {
	if lifetime == 0 {
		lifetime = DefaultResetTokenLifetime
	}
	if lifetime < 0 || lifetime > MaxResetTokenLifetime {
		return Token{}, ResetToken{}, &authz.InvalidError{Field: "reset token lifetime", Value: lifetime.String(), Reason: "want more than 0 and at most 30m"}
	}
	if !user.Valid() {
		return Token{}, ResetToken{}, &authz.InvalidError{Field: "user id", Value: string(user), Reason: "not an id this module issued"}
	}
	tok, h := NewToken()
	return tok, ResetToken{Hash: h, User: user, CreatedAt: now, ExpiresAt: now.Add(lifetime)}, nil
}
