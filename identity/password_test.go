package identity_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// A strong password that breaks no rule, and pieces to build others.
const strong = "vivid-otter-carries-lantern"

func checkRule(t *testing.T, password, email, name string, want identity.PasswordRule) {
	t.Helper()
	err := identity.CheckPassword(password, email, name)
	if want == 0 {
		if err != nil {
			t.Fatalf("CheckPassword(%q) = %v, want nil", password, err)
		}
		return
	}
	var pe *identity.PasswordError
	if !errors.As(err, &pe) {
		t.Fatalf("CheckPassword(%q) = %v, want a *PasswordError (%v)", password, err, want)
	}
	if pe.Rule != want {
		t.Fatalf("CheckPassword(%q) broke rule %v (%s), want %v", password, pe.Rule, pe.Reason, want)
	}
	if !errors.Is(err, authz.ErrInvalid) {
		t.Fatalf("CheckPassword(%q) error does not match authz.ErrInvalid", password)
	}
	if pe.Reason == "" {
		t.Fatalf("CheckPassword(%q): empty reason", password)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("CheckPassword(%q): the error %q shows the password", password, err)
	}
}

// TestPasswordLength checks the 12 and 128 code-point bounds, counted
// after NFKC, with multi-byte characters counting one each.
func TestPasswordLength(t *testing.T) {
	t.Parallel()
	// distinct builds a password of n code points drawn at random (with a
	// fixed seed) from pool, so only its length can break a rule.
	distinct := func(n int, pool string) string {
		rng := rand.New(rand.NewPCG(uint64(n), uint64(len(pool))))
		r := []rune(pool)
		var b strings.Builder
		for range n {
			b.WriteRune(r[rng.IntN(len(r))])
		}
		return b.String()
	}
	ascii := "q7Zk2mWx9RbT4vLp8NcY3hJd6GsF5eUa"
	greek := "αβγδεζηθικλμνξοπρστυφχψω" // 2 bytes each
	cjk := "猫犬鳥魚馬牛羊豚鹿熊狐狸兎亀蛇龍虎象"         // 3 bytes each
	emoji := "🦊🐙🦉🐢🦄🐝🦋🐬🦀🐌🦔🦩🐳🦘"           // 4 bytes each
	for _, tc := range []struct {
		name     string
		password string
		want     identity.PasswordRule
	}{
		{"11 ascii", distinct(11, ascii), identity.PasswordTooShort},
		{"12 ascii", distinct(12, ascii), 0},
		{"64 ascii", distinct(64, ascii), 0},
		{"128 ascii", distinct(128, ascii), 0},
		{"129 ascii", distinct(129, ascii), identity.PasswordTooLong},
		{"11 greek (22 bytes)", distinct(11, greek), identity.PasswordTooShort},
		{"12 greek (24 bytes)", distinct(12, greek), 0},
		{"12 cjk (36 bytes)", distinct(12, cjk), 0},
		{"128 cjk (384 bytes)", distinct(128, cjk), 0},
		{"129 cjk", distinct(129, cjk), identity.PasswordTooLong},
		{"12 emoji (48 bytes)", distinct(12, emoji), 0},
		{"11 emoji", distinct(11, emoji), identity.PasswordTooShort},
		// 12 code points in NFD that are 11 after NFKC: too short.
		{"NFD composes to 11", norm.NFD.String("é") + distinct(10, ascii), identity.PasswordTooShort},
		// 10 code points that NFKC expands to 12 ("ﬃ" is "ffi").
		{"NFKC expands to 12", "ﬃ" + distinct(9, ascii), 0},
		// 128 code points that NFKC expands past 128.
		{"NFKC expands past 128", "ﬃ" + distinct(127, ascii), identity.PasswordTooLong},
		{"megabytes", strings.Repeat(distinct(64, ascii), 20000), identity.PasswordTooLong},
		{"spaces count and are kept", "  " + distinct(10, ascii), 0},
		{"invalid UTF-8", distinct(12, ascii) + "\xff", identity.PasswordNotText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkRule(t, tc.password, "", "", tc.want)
		})
	}
}

// TestPasswordReasons checks that the reasons read as sentences about the
// length rule.
func TestPasswordReasons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ password, want string }{
		{"short", "identity: unacceptable password: must be at least 12 characters"},
		{strings.Repeat("q7Zk2mWx", 17), "identity: unacceptable password: must be at most 128 characters"},
		{"password1234", "identity: unacceptable password: is a commonly used password"},
		{"Password1234!", "identity: unacceptable password: is a commonly used password with digits or symbols added"},
	} {
		if err := identity.CheckPassword(tc.password, "", ""); err == nil || err.Error() != tc.want {
			t.Errorf("CheckPassword(%q) = %v, want %q", tc.password, err, tc.want)
		}
	}
}

// TestPasswordBlocklist checks that common passwords and their trivial
// variants are refused with the "common" rule, and that passphrases and
// random strings are not.
func TestPasswordBlocklist(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		password string
		want     identity.PasswordRule
	}{
		// On the list itself (zxcvbn's 30,000), any case.
		{"password1234", identity.PasswordCommon},
		{"PASSWORD1234", identity.PasswordCommon},
		{"ＰＡＳＳＷＯＲＤ１２３４", identity.PasswordCommon}, // fullwidth: NFKC first
		{"1qaz2wsx3edc", identity.PasswordCommon},
		{"iloveyoubaby", identity.PasswordCommon}, // extra list
		{"correcthorsebatterystaple", identity.PasswordCommon},
		{"kiopspassword", identity.PasswordCommon},
		// A listed password with digits or symbols added.
		{"qwertyuiop123", identity.PasswordCommon},
		{"Password1234!", identity.PasswordCommon},
		{"monkey123456", identity.PasswordCommon},
		{"!!dragon2024!!", identity.PasswordCommon},
		{"sunshine19871987", identity.PasswordCommon},
		{"Football2025!", identity.PasswordCommon},
		{"kiops2024!!!!", identity.PasswordCommon},
		// Substitutions.
		{"P@ssw0rd1234", identity.PasswordCommon},
		{"$up3rm@n2024!", identity.PasswordCommon},
		// Repetitions and runs.
		{"aaaaaaaaaaaa", identity.PasswordCommon},
		{"abcabcabcabc", identity.PasswordCommon},
		{"xK9!xK9!xK9!", identity.PasswordCommon},
		{"123456789012", identity.PasswordCommon},
		{"0987654321098", identity.PasswordCommon},
		{"abcdefghijklm", identity.PasswordCommon},
		{"qwertyuiopas", identity.PasswordCommon},
		{"ZYXWVUTSRQPONM", identity.PasswordCommon},
		{"abcdefghij12", identity.PasswordCommon},
		// Not common: passphrases, random strings, a common word with
		// a random (non-trivial) tail, non-Latin text.
		{strong, 0},
		{"Tr0ub4dor&3-horse-staple", 0},
		{"q7Zk2mWx9RbT", 0},
		{"dragon8394720561", 0},
		{"moje heslo je dlouhé", 0},
		{"我的密码是很长的一句话吧", 0},
		{"correct horse battery", 0},
	} {
		t.Run(tc.password, func(t *testing.T) {
			t.Parallel()
			checkRule(t, tc.password, "", "", tc.want)
		})
	}
}

// TestPasswordPersonal checks the email and name rules.
func TestPasswordPersonal(t *testing.T) {
	t.Parallel()
	const email, name = "jane.doe@example.com", "Jane van Doorn"
	for _, tc := range []struct {
		password string
		want     identity.PasswordRule
	}{
		{"jane.doe@example.com", identity.PasswordPersonal},     // equal to the email
		{"JANE.DOE@EXAMPLE.COM", identity.PasswordPersonal},     // case-insensitively
		{"my jane.doe@example.com!", identity.PasswordPersonal}, // containing it
		{"jane.doe-lantern-otter", identity.PasswordPersonal},   // the local part
		{"otter-lantern-doe-jane", identity.PasswordPersonal},   // a piece of it: "jane"
		{"Jane van Doorn", identity.PasswordPersonal},           // the name
		{"janevandoorn-otter!", identity.PasswordPersonal},      // without spaces
		{"vivid-doorn-lantern", identity.PasswordPersonal},      // a word of the name
		{"vivid van lantern otter", 0},                          // "van" has 3 letters: too short to count
		{"example-lantern-otter", 0},                            // the domain is not personal
		{strong, 0},
	} {
		t.Run(tc.password, func(t *testing.T) {
			t.Parallel()
			checkRule(t, tc.password, email, name, tc.want)
		})
	}
	// Without email or name, nothing is personal.
	checkRule(t, "jane.doe@example.com", "", "", 0)
}

// TestBlocklistCoverage measures how many distinct passwords of 12 or
// more code points the blocklist refuses when built from its most common
// entries with common endings: ASVS 5.0 V6.2.4 asks for at least the top
// 3,000 passwords that match the policy.
func TestBlocklistCoverage(t *testing.T) {
	t.Parallel()
	n, refused := identity.BlocklistLen()
	if n < 30000 {
		t.Fatalf("blocklist has %d entries, want at least 30,000", n)
	}
	if refused < 200 {
		t.Fatalf("only %d blocklist entries have 12 or more characters", refused)
	}
	seen := map[string]bool{}
	for _, base := range identity.BlocklistTop(1000) {
		for _, suffix := range []string{"1234", "12345", "123456", "2024!", "2025", "!!!!", "123!", "1234567890"} {
			p := base + suffix
			if len([]rune(p)) < identity.MinPasswordLength || seen[p] {
				continue
			}
			seen[p] = true
			if err := identity.CheckPassword(p, "", ""); err == nil {
				t.Errorf("CheckPassword(%q) = nil, want refused as common", p)
			}
		}
	}
	if len(seen) < 3000 {
		t.Fatalf("built %d candidates, want at least 3,000", len(seen))
	}
	t.Logf("%d blocklist entries (%d of 12+ characters); %d decorated candidates of 12+ refused", n, refused, len(seen))
}
