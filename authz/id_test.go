package authz

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// keyByLibrary decodes an id's random part with encoding/base32, the
// reference that keyOf's word-at-a-time decoding must agree with.
func keyByLibrary(s, prefix string) (idKey, bool) {
	if len(s) != idLen || s[:4] != prefix {
		return idKey{}, false
	}
	b, err := idEncoding.DecodeString(s[4:])
	if err != nil || len(b) != idRandBytes || idEncoding.EncodeToString(b) != s[4:] {
		return idKey{}, false
	}
	var k idKey
	for _, c := range b[:7] {
		k.hi = k.hi<<8 | uint64(c)
	}
	k.hi = k.hi<<4 | uint64(b[7]>>4)
	k.lo = uint64(b[7] & 0x0f)
	for _, c := range b[8:] {
		k.lo = k.lo<<8 | uint64(c)
	}
	return k, true
}

// TestKeyOfMatchesLibrary compares keyOf with encoding/base32 on random
// ids and on every id that differs from one in a single byte, for every
// byte value at every position: each character class boundary of the
// word-at-a-time validation is crossed.
func TestKeyOfMatchesLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		id := []byte(newID(userIDPrefix))
		for range 4 {
			id[4+rng.IntN(idRandChars)] = "abcdefghijklmnopqrstuvwxyz234567"[rng.IntN(32)]
		}
		check := func(s string) {
			got, gotOK := keyOf(s, userIDPrefix)
			want, wantOK := keyByLibrary(s, userIDPrefix)
			if gotOK != wantOK || (gotOK && got != want) {
				t.Fatalf("keyOf(%q) = %x, %v; want %x, %v", s, got, gotOK, want, wantOK)
			}
			if gotOK && got.id(userIDPrefix) != s {
				t.Fatalf("key of %q spells %q", s, got.id(userIDPrefix))
			}
		}
		check(string(id))
		pos := 4 + rng.IntN(idRandChars)
		for c := range 256 {
			mutated := append([]byte(nil), id...)
			mutated[pos] = byte(c)
			check(string(mutated))
		}
	}
}

// TestUserKeyExact: checks look users up by the raw characters of the id
// (userKey), unvalidated; only the stored, canonical spelling may match.
// Every one-byte change of a stored id, whatever the byte, finds nobody.
func TestUserKeyExact(t *testing.T) {
	e, err := NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	u, o := NewUserID(), NewOrgID()
	if err := e.SetMembership(u, o, Membership{Role: Manager}); err != nil {
		t.Fatal(err)
	}
	if !e.Check(u, o, VPN).Allowed {
		t.Fatal("the stored id itself is denied")
	}
	if k, ok := userKeyOf(string(u)); !ok || k.id() != u {
		t.Fatalf("userKeyOf(%q) spells %q, %v", u, k.id(), ok)
	}
	for pos := range idLen {
		for c := range 256 {
			b := []byte(u)
			if b[pos] == byte(c) {
				continue
			}
			b[pos] = byte(c)
			if d := e.Check(UserID(b), o, VPN); d.Allowed || d.Role != RoleNone {
				t.Fatalf("Check(%q) = %+v: a changed id matched the stored one", b, d)
			}
		}
	}
	for _, s := range []string{strings.ToUpper(string(u)), string(u) + " ", " " + string(u), string(u)[:idLen-1], string(u) + "\x00"} {
		if e.Check(UserID(s), o, VPN).Allowed || e.IsPlatformAdmin(UserID(s)) {
			t.Fatalf("Check(%q) matched %q", s, u)
		}
	}
}
