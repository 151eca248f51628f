package authz

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets of the vocabulary: whatever the input, a parser either
// returns a valid value whose canonical spelling parses back to it, or an
// *InvalidError and the zero value; never a panic, never a half-parsed
// value. Each compares the parser with a reference written differently
// (a map lookup, a split-and-count), so a bug has to be in both to pass.
// The seed corpora live in testdata/fuzz/<target>; .ci/run fuzzes each
// target for a few seconds, and RELIABILITY.md says how to run them longer.

// wantInvalid fails unless err is an *InvalidError about one of fields.
func wantInvalid(t *testing.T, err error, input string, fields ...string) {
	t.Helper()
	var ie *InvalidError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) || !slices.Contains(fields, ie.Field) {
		t.Fatalf("%q: err = %v, want an *InvalidError about %v", input, err, fields)
	}
}

func FuzzParseRole(f *testing.F) {
	names := map[string]Role{"member": Member, "manager": Manager, "platformadmin": PlatformAdmin}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRole(s)
		want, known := names[s]
		if !known {
			wantInvalid(t, err, s, "role")
			if r != RoleNone {
				t.Fatalf("ParseRole(%q) = %v with an error", s, r)
			}
			var u Role
			if u.UnmarshalText([]byte(s)) == nil || u != RoleNone {
				t.Fatalf("UnmarshalText(%q) accepted it as %v", s, u)
			}
			return
		}
		if err != nil || r != want || !r.Valid() || r.String() != s {
			t.Fatalf("ParseRole(%q) = %v, %v; want %v", s, r, err, want)
		}
		text, err := r.MarshalText()
		if err != nil || string(text) != s {
			t.Fatalf("MarshalText(%v) = %q, %v", r, text, err)
		}
	})
}

func FuzzParseCategory(f *testing.F) {
	names := map[string]Category{}
	for _, c := range Categories() {
		names[c.String()] = c
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCategory(s)
		want, known := names[s]
		if !known {
			wantInvalid(t, err, s, "category")
			if c != 0 {
				t.Fatalf("ParseCategory(%q) = %v with an error", s, c)
			}
			return
		}
		if err != nil || c != want || !c.Valid() || c.String() != s {
			t.Fatalf("ParseCategory(%q) = %v, %v; want %v", s, c, err, want)
		}
		var u Category
		if err := u.UnmarshalText([]byte(s)); err != nil || u != c {
			t.Fatalf("UnmarshalText(%q) = %v, %v", s, u, err)
		}
	})
}

// FuzzParseCategorySet checks ParseCategorySet, ParseCategoryNames and the
// JSON form against a reference: a set is accepted exactly when its
// comma-separated elements are distinct category names.
func FuzzParseCategorySet(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		set, err := ParseCategorySet(s)
		var names []string
		if s != "" {
			names = strings.Split(s, ",")
		}
		want, ok := referenceSet(names)
		if !ok {
			wantInvalid(t, err, s, "category", "category set")
			if set != 0 {
				t.Fatalf("ParseCategorySet(%q) = %v with an error", s, set)
			}
			if _, err := ParseCategoryNames(names); !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseCategoryNames(%q) accepted what ParseCategorySet refused", names)
			}
			return
		}
		if err != nil || set != want || !set.Valid() || set.Len() != len(names) {
			t.Fatalf("ParseCategorySet(%q) = %v, %v; want %v", s, set, err, want)
		}
		// One set, one canonical spelling, whatever order it came in.
		again, err := ParseCategorySet(set.String())
		if err != nil || again != set {
			t.Fatalf("the canonical form %q of %q parses to %v, %v", set.String(), s, again, err)
		}
		if got, err := ParseCategoryNames(names); err != nil || got != set {
			t.Fatalf("ParseCategoryNames(%q) = %v, %v; want %v", names, got, err, set)
		}
		b, err := json.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		var back CategorySet
		if err := json.Unmarshal(b, &back); err != nil || back != set {
			t.Fatalf("JSON %s of %v reads back as %v, %v", b, set, back, err)
		}
	})
}

// referenceSet is the set named by names when they are distinct category
// names, by a route other than ParseCategory's.
func referenceSet(names []string) (CategorySet, bool) {
	all := []string{"infra", "service", "backup", "device", "database", "vpn", "audit"}
	var set CategorySet
	for _, n := range names {
		i := slices.Index(all, n)
		if i < 0 || set&(1<<i) != 0 {
			return 0, false
		}
		set |= 1 << i
	}
	return set, true
}

// Fixed ids, so that the corpus can hold their near misses.
const (
	fuzzUser  UserID = "usr_abcdefghijklmnopqrstuvwx"
	fuzzAdmin UserID = "usr_234567abcdefghij234567ab"
	fuzzOrg   OrgID  = "org_zyxwvutsrqponmlkjihgfedc"
)

// FuzzIDs feeds arbitrary strings as a user id and an org id: parsing
// agrees with encoding/base32 (validByLibrary), and an engine holding one
// Member (granted vpn in one org) and one PlatformAdmin matches only the
// exact stored spellings, since checks compare raw bytes (see rawKey).
func FuzzIDs(f *testing.F) {
	e, err := NewEngine()
	if err != nil {
		f.Fatal(err)
	}
	if err := e.SetMembership(fuzzUser, fuzzOrg, Membership{Role: Member, Categories: NewCategorySet(VPN)}); err != nil {
		f.Fatal(err)
	}
	if err := e.SetPlatformAdmin(fuzzAdmin, true); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user, org string) {
		u, err := ParseUserID(user)
		if valid := validByLibrary(user, userIDPrefix); valid != (err == nil) || (valid && (u != UserID(user) || !u.Valid())) {
			t.Fatalf("ParseUserID(%q) = %q, %v; library says valid=%v", user, u, err, valid)
		}
		o, err := ParseOrgID(org)
		if valid := validByLibrary(org, orgIDPrefix); valid != (err == nil) || (valid && (o != OrgID(org) || !o.Valid())) {
			t.Fatalf("ParseOrgID(%q) = %q, %v; library says valid=%v", org, o, err, valid)
		}
		// The Member is allowed vpn in its org, the PlatformAdmin in every
		// canonical org, and no other string is either of them.
		validOrg := validByLibrary(org, orgIDPrefix)
		d := e.Check(UserID(user), OrgID(org), VPN)
		if want := (user == string(fuzzUser) && org == string(fuzzOrg)) || (user == string(fuzzAdmin) && validOrg); d.Allowed != want {
			t.Fatalf("Check(%q, %q, vpn) = %+v, want allowed=%v", user, org, d, want)
		}
		if admin := e.Check(fuzzAdmin, OrgID(org), Audit); admin.Allowed != validOrg {
			t.Fatalf("PlatformAdmin in %q: %+v, want allowed=%v", org, admin, validOrg)
		}
		if e.IsPlatformAdmin(UserID(user)) != (user == string(fuzzAdmin)) {
			t.Fatalf("IsPlatformAdmin(%q) is wrong", user)
		}
	})
}
