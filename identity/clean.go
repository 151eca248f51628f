package identity

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/kiops/iam/authz"
)

// Limits of the cleaned inputs.
const (
	// MaxEmailBytes is the longest email address accepted (RFC 5321's
	// limit on a forward path, in bytes).
	MaxEmailBytes = 254
	// MaxEmailLocalBytes is the longest part before the @ (RFC 5321).
	MaxEmailLocalBytes = 64
	// MaxNameLength is the longest display name or org name, in Unicode
	// code points after NFC normalization.
	MaxNameLength = 100
)

// CanonicalEmail returns the one spelling of an email address under which
// the account is stored and looked up: surrounding white space removed,
// Unicode NFC, lower case. Addresses that differ only in case or
// surrounding space are therefore the same account.
//
// It checks the basic shape local@domain, not deliverability: exactly one
// @; a local part of 1 to 64 bytes and a domain of at least one character
// made of dot-separated non-empty labels; no white space, control or
// invisible formatting characters, and none of the characters
// ( ) < > [ ] , ; : \ " anywhere; at most 254 bytes. Internationalized
// addresses are accepted as Unicode (a domain spelled in punycode is a
// different spelling). Any fault is an *authz.InvalidError matching
// authz.ErrInvalid whose Reason says what is wrong.
//
// CanonicalEmail is a pure function, safe for concurrent use.
func CanonicalEmail(s string) (string, error) {
	bad := func(reason string) (string, error) {
		return "", &authz.InvalidError{Field: "email", Value: s, Reason: reason}
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8 text")
	}
	e := strings.TrimFunc(s, unicode.IsSpace)
	if e == "" {
		return bad("empty")
	}
	if len(e) > 4*MaxEmailBytes { // before normalizing hostile input
		return bad("longer than 254 bytes")
	}
	e = norm.NFC.String(strings.ToLower(norm.NFC.String(e)))
	if len(e) > MaxEmailBytes {
		return bad("longer than 254 bytes")
	}
	for _, r := range e {
		switch {
		case unicode.IsSpace(r):
			return bad("contains white space")
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			return bad("contains a control or invisible character")
		case strings.ContainsRune(`()<>[],;:\"`, r):
			return bad("contains " + string(r))
		}
	}
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case !ok:
		return bad("missing @: want local@domain")
	case strings.Contains(domain, "@"):
		return bad("more than one @")
	case local == "":
		return bad("nothing before the @")
	case len(local) > MaxEmailLocalBytes:
		return bad("more than 64 bytes before the @")
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return bad("misplaced dot before the @")
	case domain == "":
		return bad("nothing after the @")
	case strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, ".."):
		return bad("misplaced dot in the domain")
	}
	return e, nil
}

// CleanName returns a person's display name in its stored form: white
// space trimmed, Unicode NFC; 1 to 100 code points with no control
// characters (NUL, tab, newline, …), line or paragraph separators or
// bidirectional overrides, which could disguise what a screen shows.
// Joiners and other formatting characters that scripts need are kept.
// Any fault is an *authz.InvalidError matching authz.ErrInvalid.
//
// Names are display text only: they never reach the authorization policy,
// so a name that looks like a role, an org or a wildcard confers nothing.
// CleanName is a pure function, safe for concurrent use.
func CleanName(s string) (string, error) { return cleanText("name", s) }

// CleanOrgName returns an organization's title in its stored form, by the
// rules of CleanName. Any fault is an *authz.InvalidError matching
// authz.ErrInvalid. It is a pure function, safe for concurrent use.
func CleanOrgName(s string) (string, error) { return cleanText("org name", s) }

func cleanText(field, s string) (string, error) {
	bad := func(reason string) (string, error) {
		return "", &authz.InvalidError{Field: field, Value: s, Reason: reason}
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8 text")
	}
	n := strings.TrimFunc(s, unicode.IsSpace)
	if n == "" {
		return bad("empty")
	}
	if len(n) > 16*MaxNameLength { // before normalizing hostile input
		return bad("longer than 100 characters")
	}
	n = norm.NFC.String(n)
	count := 0
	for _, r := range n {
		count++
		switch {
		case unicode.IsControl(r), r == utf8.RuneError:
			return bad("contains a control character")
		case unicode.In(r, unicode.Zl, unicode.Zp):
			return bad("contains a line break")
		case unicode.Is(unicode.Bidi_Control, r):
			return bad("contains a bidirectional text control")
		}
	}
	if count > MaxNameLength {
		return bad("longer than 100 characters")
	}
	return n, nil
}
