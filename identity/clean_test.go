package identity_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

func TestCanonicalEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string // want "" means refused
	}{
		{"plain", "jane@example.com", "jane@example.com"},
		{"case", "Jane.Doe@Example.COM", "jane.doe@example.com"},
		{"surrounding space", " \tjane@example.com\n", "jane@example.com"},
		{"plus", "jane+iam@example.com", "jane+iam@example.com"},
		{"intranet host", "admin@localhost", "admin@localhost"},
		{"NFD to NFC", norm.NFD.String("José@Example.com"), norm.NFC.String("josé@example.com")},
		{"unicode domain", "ΑΘΗΝΑ@παράδειγμα.δοκιμή", "αθηνα@παράδειγμα.δοκιμή"},
		{"254 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com"},
		{"255 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", ""},
		{"65-byte local part", strings.Repeat("a", 65) + "@example.com", ""},
		{"empty", "", ""},
		{"spaces only", "   ", ""},
		{"no @", "jane.example.com", ""},
		{"two @", "jane@doe@example.com", ""},
		{"nothing before @", "@example.com", ""},
		{"nothing after @", "jane@", ""},
		{"inner space", "jane doe@example.com", ""},
		{"NUL", "jane\x00@example.com", ""},
		{"zero-width space", "ja\u200bne@example.com", ""},
		{"bidi override", "jane\u202e@example.com", ""},
		{"angle brackets", "Jane <jane@example.com>", ""},
		{"comma", "jane,doe@example.com", ""},
		{"leading dot", ".jane@example.com", ""},
		{"double dot", "jane..doe@example.com", ""},
		{"dot before @", "jane.@example.com", ""},
		{"domain dot", "jane@.example.com", ""},
		{"domain double dot", "jane@example..com", ""},
		{"trailing domain dot", "jane@example.com.", ""},
		{"invalid UTF-8", "jane\xff@example.com", ""},
		{"wildcard is just a character", "*@example.com", "*@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := identity.CanonicalEmail(tc.in)
			if tc.want == "" {
				var ie *authz.InvalidError
				if !errors.As(err, &ie) || !errors.Is(err, authz.ErrInvalid) || ie.Field != "email" || ie.Reason == "" {
					t.Fatalf("CanonicalEmail(%q) = %q, %v; want an *authz.InvalidError for the email", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CanonicalEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			// Canonical forms are fixed points.
			if again, err := identity.CanonicalEmail(got); err != nil || again != got {
				t.Fatalf("CanonicalEmail(%q) = %q, %v; not a fixed point", got, again, err)
			}
		})
	}
}

func TestCleanNames(t *testing.T) {
	t.Parallel()
	for _, clean := range []func(string) (string, error){identity.CleanName, identity.CleanOrgName} {
		for _, tc := range []struct {
			name, in, want string // want "" means refused
		}{
			{"plain", "Jane Doe", "Jane Doe"},
			{"trimmed", "  Jane Doe \n", "Jane Doe"},
			{"NFC", norm.NFD.String("Zoë Ångström"), norm.NFC.String("Zoë Ångström")},
			{"looks like a role", "platformadmin", "platformadmin"},
			{"looks like a wildcard", "*", "*"},
			{"persian with ZWNJ", "می\u200cخواهم", "می\u200cخواهم"},
			{"100 code points", strings.Repeat("é", 100), strings.Repeat("é", 100)},
			{"101 code points", strings.Repeat("é", 101), ""},
			{"100 after NFC", strings.Repeat(norm.NFD.String("é"), 100), strings.Repeat("é", 100)},
			{"empty", "", ""},
			{"blank", " \t ", ""},
			{"NUL", "Jane\x00Doe", ""},
			{"tab inside", "Jane\tDoe", ""},
			{"newline inside", "Jane\nDoe", ""},
			{"line separator", "Jane\u2028Doe", ""},
			{"bidi override", "Jane\u202eeoD", ""},
			{"bidi isolate", "Jane\u2066Doe", ""},
			{"invalid UTF-8", "Jane\xffDoe", ""},
			{"megabytes", strings.Repeat("a", 1<<20), ""},
		} {
			got, err := clean(tc.in)
			if tc.want == "" {
				var ie *authz.InvalidError
				if !errors.As(err, &ie) || !errors.Is(err, authz.ErrInvalid) || ie.Reason == "" {
					t.Errorf("%s: clean(%.20q) = %q, %v; want an *authz.InvalidError", tc.name, tc.in, got, err)
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("%s: clean(%q) = %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
			}
		}
	}
	_, err := identity.CleanOrgName("")
	var ie *authz.InvalidError
	if !errors.As(err, &ie) || ie.Field != "org name" {
		t.Fatalf("CleanOrgName error names field %q, want org name", ie.Field)
	}
}
