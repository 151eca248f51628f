// Package textcheck says whether a one-line text a person typed is fit to
// be stored and shown to other people: valid UTF-8, with no control
// character and no bidirectional formatting character (which can reorder
// what a reader sees: Trojan Source, CVE-2021-42574).
package textcheck

import (
	"unicode"
	"unicode/utf8"
)

// Problem says what is wrong with s, or "" when nothing is.
func Problem(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
		if unicode.Is(unicode.Bidi_Control, r) {
			return "contains a bidirectional formatting character"
		}
	}
	return ""
}

// Unsafe reports whether r is a control or bidirectional formatting
// character.
func Unsafe(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }
