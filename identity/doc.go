// Package identity holds the accounts side of KIOPS IAM: users and
// organizations, the password policy and password hashing, session and
// password-reset tokens, login throttling, and the Store interface through
// which the Service keeps them. It is a domain package: it knows nothing
// of GORM, HTTP or the Service, and every function here is pure or works
// on memory only.
//
// # Identity and input
//
// Users and orgs are identified by the opaque ids of package
// [github.com/kiops/iam/authz] ([authz.UserID], [authz.OrgID]); only those
// ever reach the authorization policy. Emails, names and org titles are
// data: [CanonicalEmail] gives an address the one spelling under which it
// is unique (trimmed, NFC, lower case), [CleanName] and [CleanOrgName]
// give display text its stored form. Each refuses bad input with an
// *[authz.InvalidError] whose reason a person understands.
//
// # Passwords
//
// [CheckPassword] is the password policy of DESIGN.md section 5 (ASVS 5.0
// V6.2, NIST SP 800-63B): 12 to 128 Unicode code points after NFKC
// normalization, no composition rules, no common or breached password
// (a blocklist of 30,000 plus rules for their decorated, repeated and
// keyboard-run variants) and nothing containing the user's email or name.
// Each refusal is a *[PasswordError] with its reason.
//
// [Hasher] hashes with argon2id at no less than 19 MiB, 2 passes and 1
// lane with a 16-byte random salt, in the standard PHC string form, and
// verifies in constant time with the parameters read from the stored
// string. [Hasher.VerifyDummy] does the same work for an unknown account,
// so the time a login takes does not reveal whether the email exists.
// Tests may use a cheaper cost only through [TestingHasherConfig], which
// needs a *testing.T.
//
// # Tokens
//
// [NewToken] makes 256-bit tokens from crypto/rand; only their SHA-256
// ([TokenHash]) is stored. A [Token] prints, formats, logs and encodes as
// "[REDACTED]" or nothing; [Token.Reveal] is the one way to its value.
// [NewSession] and [NewResetToken] issue sessions (12 hours by default)
// and password-reset tokens (at most 30 minutes).
//
// # Throttling
//
// [Throttle] limits failed logins per account and per client address
// with exponential delays, in bounded memory. Password-reset requests are
// not throttled by it, so asking for a reset never locks anyone out.
//
// # Storage
//
// [Store] is the interface the GORM adapter implements and the Service
// calls inside its transactions. Package
// [github.com/kiops/iam/identity/identitytest] has an in-memory fake and
// the conformance suite every implementation must pass.
package identity
