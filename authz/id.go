package authz

import (
	"crypto/rand"
	"encoding/base32"
)

// IDs are opaque, generated here and canonical: a fixed prefix and 24
// characters of lower-case base32 encoding 120 random bits. Every one of
// those strings is its own only spelling, so no case variant, wildcard,
// separator, space or NUL can ever stand for an ID, and a name or email
// that a person chooses never reaches the policy.
const (
	userIDPrefix = "usr_"
	orgIDPrefix  = "org_"
	idRandBytes  = 15 // 120 bits: exactly 24 base32 characters, no padding
	idRandChars  = idRandBytes * 8 / 5
	idLen        = 4 + idRandChars
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// UserID identifies a user. Obtain one from NewUserID or ParseUserID; a
// UserID converted from an arbitrary string is refused by every method
// that writes, and simply matches nothing where one reads.
type UserID string

// OrgID identifies an organization, like UserID.
type OrgID string

// NewUserID returns a fresh random UserID such as "usr_…" (28 bytes).
func NewUserID() UserID { return UserID(newID(userIDPrefix)) }

// NewOrgID returns a fresh random OrgID such as "org_…" (28 bytes).
func NewOrgID() OrgID { return OrgID(newID(orgIDPrefix)) }

func newID(prefix string) string {
	var b [idRandBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return prefix + idEncoding.EncodeToString(b[:])
}

// ParseUserID checks that s is a canonical UserID. Anything else is an
// *InvalidError matching ErrInvalid.
func ParseUserID(s string) (UserID, error) {
	if !validID(s, userIDPrefix) {
		return "", invalid("user id", s, "not an id this module issued")
	}
	return UserID(s), nil
}

// ParseOrgID checks that s is a canonical OrgID. Anything else is an
// *InvalidError matching ErrInvalid.
func ParseOrgID(s string) (OrgID, error) {
	if !validID(s, orgIDPrefix) {
		return "", invalid("org id", s, "not an id this module issued")
	}
	return OrgID(s), nil
}

// Valid reports whether u is a canonical UserID.
func (u UserID) Valid() bool { return validID(string(u), userIDPrefix) }

// Valid reports whether o is a canonical OrgID.
func (o OrgID) Valid() bool { return validID(string(o), orgIDPrefix) }

func (u UserID) String() string { return string(u) }
func (o OrgID) String() string  { return string(o) }

func validID(s, prefix string) bool {
	if len(s) != idLen || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

func (u UserID) check() error {
	if !u.Valid() {
		return invalid("user id", string(u), "not an id this module issued")
	}
	return nil
}

func (o OrgID) check() error {
	if !o.Valid() {
		return invalid("org id", string(o), "not an id this module issued")
	}
	return nil
}
