package authz

import (
	"iter"
	"math/rand/v2"
	"strings"
	"testing"
)

// validByLibrary decides with encoding/base32 whether s is a canonical id:
// the reference validID must agree with.
func validByLibrary(s, prefix string) bool {
	if len(s) != idLen || s[:4] != prefix {
		return false
	}
	b, err := idEncoding.DecodeString(s[4:])
	return err == nil && len(b) == idRandBytes && idEncoding.EncodeToString(b) == s[4:]
}

// TestValidIDMatchesLibrary compares validID with encoding/base32 on
// random ids and on every string that differs from one in a single byte,
// for every byte value at every position.
func TestValidIDMatchesLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		id := []byte(newID(userIDPrefix))
		for range 4 {
			id[4+rng.IntN(idRandChars)] = "abcdefghijklmnopqrstuvwxyz234567"[rng.IntN(32)]
		}
		check := func(s string) {
			if got, want := validID(s, userIDPrefix), validByLibrary(s, userIDPrefix); got != want {
				t.Fatalf("validID(%q) = %v, want %v", s, got, want)
			}
			if k, ok := rawKeyOf(s, userIDPrefix); ok && k.id(userIDPrefix) != s {
				t.Fatalf("the key of %q spells %q", s, k.id(userIDPrefix))
			}
		}
		check(string(id))
		for changed := range oneByteChanges(string(id)) {
			check(changed)
		}
	}
}

// TestRawKeysExact: checks look users and orgs up by the raw characters
// of their ids (rawKey), unvalidated; only the stored, canonical spelling
// may match. Every one-byte change of a stored id, whatever the byte,
// finds nothing.
func TestRawKeysExact(t *testing.T) {
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
	if k, ok := rawKeyOf(string(u), userIDPrefix); !ok || UserID(k.id(userIDPrefix)) != u {
		t.Fatalf("rawKeyOf(%q) spells %q, %v", u, k.id(userIDPrefix), ok)
	}
	for b := range oneByteChanges(string(u)) {
		if d := e.Check(UserID(b), o, VPN); d.Allowed || d.Role != RoleNone {
			t.Fatalf("Check(%q) = %+v: a changed id matched the stored one", b, d)
		}
	}
	for _, s := range []string{strings.ToUpper(string(u)), string(u) + " ", " " + string(u), string(u)[:idLen-1], string(u) + "\x00"} {
		if e.Check(UserID(s), o, VPN).Allowed || e.IsPlatformAdmin(UserID(s)) {
			t.Fatalf("Check(%q) matched %q", s, u)
		}
	}
	// Orgs are matched the same way; a malformed org is invalid even for
	// a PlatformAdmin, who is allowed in every canonical org.
	admin := NewUserID()
	if err := e.SetPlatformAdmin(admin, true); err != nil {
		t.Fatal(err)
	}
	for b := range oneByteChanges(string(o)) {
		other := OrgID(b)
		if d := e.Check(u, other, VPN); d.Allowed || d.Role != RoleNone {
			t.Fatalf("Check(%q) = %+v: a changed org matched the stored one", b, d)
		}
		d := e.Check(admin, other, VPN)
		if d.Allowed != other.Valid() || (!other.Valid() && d.Reason != ReasonInvalid) {
			t.Fatalf("PlatformAdmin in %q: %+v", b, d)
		}
	}
}

// oneByteChanges yields every string that differs from s in exactly one
// byte, whatever its value.
func oneByteChanges(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for pos := range len(s) {
			for c := range 256 {
				if s[pos] == byte(c) {
					continue
				}
				b := []byte(s)
				b[pos] = byte(c)
				if !yield(string(b)) {
					return
				}
			}
		}
	}
}
