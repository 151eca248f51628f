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

// validID reports whether s is a canonical id with the given prefix: the
// prefix, then 24 lower-case base32 digits. Every stored id passed it (see
// rawKey).
func validID(s, prefix string) bool {
	if len(s) != idLen || word4(s) != word4(prefix) {
		return false
	}
	for i := 4; i < idLen; i++ {
		if !isIDDigit[s[i]] {
			return false
		}
	}
	return true
}

// isIDDigit tells the characters of the id alphabet.
var isIDDigit = func() (t [256]bool) {
	for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		t[c] = true
	}
	return t
}()

// rawKey is an id's 24 characters after the prefix, as three words: the
// index's key for users and orgs. A check compares a request's characters
// with the stored ones and never decodes them. That is exact because only
// canonical ids are ever stored (every write and Load validates ids with
// validID first), and a canonical id is its own only spelling: a string with
// the same 28 bytes is that id, and any other string matches nothing.
type rawKey struct{ a, b, c uint64 }

// rawKeyOf returns the key of s if it has the shape of an id with the
// given prefix (its length and prefix), without checking its characters:
// that is enough to look an id up (see rawKey), and it is what makes a
// check cheap. Writers validate an id before storing its key.
func rawKeyOf(s, prefix string) (rawKey, bool) {
	if len(s) != idLen || word4(s) != word4(prefix) {
		return rawKey{}, false
	}
	return rawKey{word8(s[4:]), word8(s[12:]), word8(s[20:])}, true
}

// slot returns the home slot of k in a table of mask+1 slots. The
// characters are random (ids are generated here, 5 random bits a
// character), so a multiply and a shift spread them well enough.
func (k rawKey) slot(mask uint64) uint64 {
	h := (k.a ^ k.b*0x9e3779b97f4a7c15 ^ k.c*0xc2b2ae3d27d4eb4f) * 0x165667b19e3779f9
	return (h >> 32) & mask
}

// id spells k as the id it was taken from.
func (k rawKey) id(prefix string) string {
	var b [idLen]byte
	copy(b[:], prefix)
	for i, w := range [3]uint64{k.a, k.b, k.c} {
		for j := range 8 {
			b[4+8*i+j] = byte(w >> (8 * j))
		}
	}
	return string(b[:])
}

// word8 returns the first 8 bytes of s as one little-endian word (one
// load on the usual processors).
func word8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// word4 returns the first 4 bytes of s as one word.
func word4(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
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
