package identity

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/kiops/iam/authz"
)

// Password length limits, in Unicode code points after NFKC normalization
// (DESIGN.md section 5; ASVS 5.0 V6.2; NIST SP 800-63B).
const (
	MinPasswordLength = 12
	MaxPasswordLength = 128
	// MaxPasswordBytes bounds the input that CheckPassword, Hash and
	// Verify normalize at all, so that hostile megabytes cost nothing.
	// It is far above what any password of MaxPasswordLength code points
	// can take, in any normalization form.
	MaxPasswordBytes = 4096
)

// PasswordRule names the rule a refused password broke, so that a user
// interface can explain it in its own words. The order of the constants
// never changes.
type PasswordRule uint8

const (
	// PasswordTooShort: fewer than MinPasswordLength code points.
	PasswordTooShort PasswordRule = iota + 1
	// PasswordTooLong: more than MaxPasswordLength code points.
	PasswordTooLong
	// PasswordNotText: not valid UTF-8.
	PasswordNotText
	// PasswordCommon: a common or breached password, one of them with
	// digits or symbols around it, a repetition or a keyboard or
	// alphabet run.
	PasswordCommon
	// PasswordPersonal: contains the user's email address or name.
	PasswordPersonal
)

var passwordRuleNames = [...]string{
	PasswordTooShort: "too short",
	PasswordTooLong:  "too long",
	PasswordNotText:  "not text",
	PasswordCommon:   "common",
	PasswordPersonal: "personal",
}

// String returns the rule's short name ("too short", "common", …).
func (r PasswordRule) String() string {
	if r >= PasswordTooShort && int(r) < len(passwordRuleNames) {
		return passwordRuleNames[r]
	}
	return "PasswordRule(" + strconv.Itoa(int(r)) + ")"
}

// PasswordError says why a password was refused, in Reason, a sentence
// fragment a person understands ("must be at least 12 characters"). It
// never contains the password. It matches authz.ErrInvalid.
type PasswordError struct {
	Rule   PasswordRule
	Reason string
}

// Error returns "identity: unacceptable password: " and the reason.
func (e *PasswordError) Error() string { return "identity: unacceptable password: " + e.Reason }

// Is makes a *PasswordError match authz.ErrInvalid.
func (e *PasswordError) Is(target error) bool { return target == authz.ErrInvalid }

// CheckPassword applies the password policy to a new password of the
// account with the given email and display name (either may be empty, for
// example when a reset does not know the name). It returns nil or a
// *PasswordError (matching authz.ErrInvalid) whose Reason says which rule
// the password breaks:
//
//   - Length: 12 to 128 Unicode code points, counted after NFKC
//     normalization (the form Hasher hashes), so "é" is one character
//     however it was typed, and an emoji is one too. Spaces and every
//     printable character are allowed; nothing is trimmed.
//   - No composition rules: no required digits, cases or symbols.
//   - Not common: compared case-insensitively after NFKC, the password
//     is not on the blocklist (see below), is not a blocklisted password
//     with digits, punctuation or symbols added before or after it
//     ("Password1234!", "2024dragon!!"), nor one spelled with common
//     character substitutions ("p@ssw0rd"), is not a shorter string
//     repeated ("abcabcabcabc") and is not one run of consecutive
//     alphabet, digit or keyboard-row characters ("abcdefghijkl",
//     "qwertyuiopas").
//   - Not personal: it does not contain, case-insensitively, the email
//     address, the part before the @, any piece of that part split at
//     . _ - or +, the name (with or without its spaces) or any word of
//     the name, where that text has at least 4 code points. Containment
//     rather than equality, because "jane.doe2024" is as guessable as
//     "jane.doe" (NIST SP 800-63B's context-specific words).
//
// # The blocklist
//
// The blocklist is the "passwords" frequency list of zxcvbn 4.4.2 (the
// 30,000 most common passwords of the 10 million that Mark Burnett
// published in 2015, as ranked by Dropbox's zxcvbn, MIT licence),
// through the Go port github.com/trustelem/zxcvbn v1.0.1 (MIT licence,
// package frequency), plus a short list of common passwords of 12 or more
// characters kept in this package. Most entries are shorter than 12
// characters and so refused by length already; they still matter as the
// base of the "with digits or symbols added" and substitution rules,
// which is what catches "password1234" and "qwertyuiop123".
//
// CheckPassword is a pure function, safe for concurrent use. The first
// call builds the blocklist index (a few milliseconds, about 2 MB).
func CheckPassword(password, email, name string) error {
	refuse := func(rule PasswordRule, reason string) error {
		return &PasswordError{Rule: rule, Reason: reason}
	}
	if !utf8.ValidString(password) {
		return refuse(PasswordNotText, "is not valid UTF-8 text")
	}
	if len(password) > MaxPasswordBytes {
		return refuse(PasswordTooLong, "must be at most 128 characters")
	}
	p := norm.NFKC.String(password)
	switch n := utf8.RuneCountInString(p); {
	case n < MinPasswordLength:
		return refuse(PasswordTooShort, "must be at least 12 characters")
	case n > MaxPasswordLength:
		return refuse(PasswordTooLong, "must be at most 128 characters")
	}
	folded := strings.ToLower(p)
	if reason := commonReason(folded); reason != "" {
		return refuse(PasswordCommon, reason)
	}
	if reason := personalReason(folded, email, name); reason != "" {
		return refuse(PasswordPersonal, reason)
	}
	return nil
}

// commonReason returns why the folded (NFKC, lower-case) password is
// common, or "".
//
// The password is common if some part of it, base, is common (on the
// blocklist, also after undoing substitutions, or a repetition or a run)
// and what comes before and after base is trivial. The whole password is
// such a part with nothing around it; "password1234!" is "password" with
// "1234!" after it.
func commonReason(folded string) string {
	bl := blocklist()
	if bl.has(folded) || bl.has(unleet(folded)) {
		return "is a commonly used password"
	}
	if isRepetition(folded) {
		return "only repeats a shorter sequence of characters"
	}
	if isRun(folded) {
		return "is a run of consecutive keyboard or alphabet characters"
	}
	// Rune boundaries, and which prefixes and suffixes are trivial.
	var at []int
	for i := range folded {
		at = append(at, i)
	}
	at = append(at, len(folded))
	n := len(at) - 1
	pre, suf := make([]bool, n+1), make([]bool, n+1)
	for i := 0; i <= n; i++ {
		pre[i] = trivial(folded[:at[i]])
		suf[i] = trivial(folded[at[i]:])
	}
	const minBase = 3
	for i := 0; i <= n-minBase; i++ {
		if !pre[i] {
			continue
		}
		for j := n; j >= i+minBase; j-- {
			if !suf[j] || (i == 0 && j == n) {
				continue
			}
			base := folded[at[i]:at[j]]
			if bl.has(base) || bl.has(unleet(base)) || isRepetition(base) || isRun(base) {
				return "is a commonly used password with digits or symbols added"
			}
		}
	}
	return ""
}

// personalReason returns why the folded password is too close to the
// account's email or name, or "".
func personalReason(folded, email, name string) string {
	const minWord = 4
	contains := func(word string) bool {
		return utf8.RuneCountInString(word) >= minWord && strings.Contains(folded, word)
	}
	fold := func(s string) string {
		if len(s) > MaxPasswordBytes {
			s = s[:MaxPasswordBytes]
		}
		return strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
	}
	if e := fold(email); e != "" {
		local, _, _ := strings.Cut(e, "@")
		if contains(e) || contains(local) {
			return "contains your email address"
		}
		for _, piece := range strings.FieldsFunc(local, func(r rune) bool { return strings.ContainsRune("._-+", r) }) {
			if contains(piece) {
				return "contains part of your email address"
			}
		}
	}
	if n := fold(name); n != "" {
		words := strings.Fields(n)
		if contains(n) || contains(strings.Join(words, "")) {
			return "contains your name"
		}
		for _, w := range words {
			if contains(w) {
				return "contains part of your name"
			}
		}
	}
	return ""
}

// unleet undoes the common character substitutions of "leet" spelling:
// p@ssw0rd → password.
func unleet(s string) string {
	return leetReplacer.Replace(s)
}

var leetReplacer = strings.NewReplacer(
	"@", "a", "4", "a", "8", "b", "(", "c", "3", "e", "6", "g", "9", "g",
	"1", "i", "!", "i", "|", "l", "0", "o", "$", "s", "5", "s", "7", "t", "+", "t", "2", "z",
)

// isRepetition reports whether s is a shorter string repeated two or more
// times ("abcabc", "zzzz").
func isRepetition(s string) bool {
	r := []rune(s)
	n := len(r)
outer:
	for unit := 1; unit <= n/2; unit++ {
		if n%unit != 0 {
			continue
		}
		for i := unit; i < n; i++ {
			if r[i] != r[i-unit] {
				continue outer
			}
		}
		return true
	}
	return false
}

// trivial reports whether s, found around a common password, adds next
// to nothing to it. s is split into pieces of letters, of digits and of
// other characters; each piece must be a run, a repetition or on the
// blocklist, or be short: a digit or symbol piece of at most 4 code
// points ("2024", "!!", "123!"), a letter piece of 1.
func trivial(s string) bool {
	class := func(r rune) int {
		switch {
		case unicode.IsLetter(r):
			return 0
		case unicode.IsDigit(r):
			return 1
		}
		return 2
	}
	for s != "" {
		c := class(firstRune(s))
		end := strings.IndexFunc(s, func(r rune) bool { return class(r) != c })
		if end < 0 {
			end = len(s)
		}
		piece := s[:end]
		s = s[end:]
		short := 4
		if c == 0 {
			short = 1
		}
		if utf8.RuneCountInString(piece) <= short || isRun(piece) || isRepetition(piece) || blocklist().has(piece) {
			continue
		}
		return false
	}
	return true
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// sequences are the orders in which a run counts as consecutive: the
// alphabet, the digits (wrapping from 9 to 0 as on a keyboard), and the
// letter rows of QWERTY and AZERTY keyboards read row after row.
var sequences = []string{
	"abcdefghijklmnopqrstuvwxyz",
	"0123456789",
	"qwertyuiopasdfghjklzxcvbnm",
	"azertyuiopqsdfghjklmwxcvbn",
	"1234567890qwertyuiop",
}

// isRun reports whether all of s (at least 3 code points) is one run of
// consecutive characters of one sequence, forwards or backwards, wrapping
// around its end.
func isRun(s string) bool {
	if utf8.RuneCountInString(s) < 3 {
		return false
	}
	for _, seq := range sequences {
		for _, dir := range []int{1, -1} {
			if runOf(s, seq, dir) {
				return true
			}
		}
	}
	return false
}

func runOf(s, seq string, dir int) bool {
	prev := -1
	for _, r := range s {
		if r >= utf8.RuneSelf {
			return false
		}
		i := strings.IndexByte(seq, byte(r))
		if i < 0 {
			return false
		}
		if prev >= 0 {
			want := (prev + dir + len(seq)) % len(seq)
			if seq[want] != byte(r) {
				return false
			}
			i = want
		}
		prev = i
	}
	return true
}
