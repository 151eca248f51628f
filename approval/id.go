package approval

import (
	"crypto/rand"
	"encoding/base32"

	"github.com/kiops/iam/authz"
)

// A RequestID is opaque, generated here and canonical, like the ids of
// package authz: "req_" and 24 characters of lower-case base32 encoding 120
// random bits from crypto/rand. Every such string is its own only spelling.
const (
	requestIDPrefix = "req_"
	idRandBytes     = 15 // 120 bits: exactly 24 base32 characters, no padding
	idLen           = len(requestIDPrefix) + idRandBytes*8/5
	idAlphabet      = "abcdefghijklmnopqrstuvwxyz234567"
)

var idEncoding = base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding)

// RequestID identifies a registration request. Obtain one from
// NewRequestID or ParseRequestID; a RequestID converted from an arbitrary
// string is refused by every method that writes and matches nothing where
// one reads.
type RequestID string

// NewRequestID returns a fresh random RequestID such as "req_…" (28 bytes).
// It is safe for concurrent use.
func NewRequestID() RequestID {
	var b [idRandBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return RequestID(requestIDPrefix + idEncoding.EncodeToString(b[:]))
}

// ParseRequestID checks that s is a canonical RequestID. Anything else
// (another prefix, upper case, padding, spaces) is an *authz.InvalidError
// matching authz.ErrInvalid.
func ParseRequestID(s string) (RequestID, error) {
	id := RequestID(s)
	if !id.Valid() {
		return "", &authz.InvalidError{Field: "request id", Value: s, Reason: "not an id this module issued"}
	}
	return id, nil
}

// Valid reports whether id is a canonical RequestID.
func (id RequestID) Valid() bool {
	s := string(id)
	if len(s) != idLen || s[:len(requestIDPrefix)] != requestIDPrefix {
		return false
	}
	for i := len(requestIDPrefix); i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// String returns id as it is stored and shown.
func (id RequestID) String() string { return string(id) }
