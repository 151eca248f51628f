package authz

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseRole(t *testing.T) {
	t.Parallel()
	for _, r := range []Role{Member, Manager, PlatformAdmin} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", r.String(), got, err, r)
		}
	}
	for _, s := range []string{"", "none", "Manager", "MANAGER", " manager", "manager ", "admin", "*", "role:manager", "platform_admin", "member\x00"} {
		got, err := ParseRole(s)
		var ie *InvalidError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) || ie.Field != "role" || got != RoleNone {
			t.Errorf("ParseRole(%q) = %v, %v; want RoleNone and an *InvalidError", s, got, err)
		}
	}
}

func TestParseCategory(t *testing.T) {
	t.Parallel()
	want := []string{"infra", "service", "backup", "device", "database", "vpn", "audit"}
	for i, c := range Categories() {
		if c.String() != want[i] {
			t.Errorf("category %d is %q, want %q", i, c, want[i])
		}
		got, err := ParseCategory(want[i])
		if err != nil || got != c {
			t.Errorf("ParseCategory(%q) = %v, %v", want[i], got, err)
		}
	}
	for _, s := range []string{"", "Infra", "VPN", "infra ", "*", "cat:infra", "all", "infra,vpn"} {
		if got, err := ParseCategory(s); !errors.Is(err, ErrInvalid) || got != 0 {
			t.Errorf("ParseCategory(%q) = %v, %v; want 0 and ErrInvalid", s, got, err)
		}
	}
	if Category(0).Valid() || Category(8).Valid() {
		t.Error("zero or out-of-range Category reported valid")
	}
}

func TestCategorySet(t *testing.T) {
	t.Parallel()
	s := NewCategorySet(VPN, Infra)
	if s.String() != "infra,vpn" || s.Len() != 2 || !s.Has(Infra) || s.Has(Audit) {
		t.Fatalf("set %v: wrong contents", s)
	}
	for _, in := range []string{"", "audit", "infra,vpn", "infra,service,backup,device,database,vpn,audit"} {
		got, err := ParseCategorySet(in)
		if err != nil || got.String() != in {
			t.Errorf("ParseCategorySet(%q) = %v, %v", in, got, err)
		}
	}
	if AllCategories.Len() != 7 || !AllCategories.Contains(s) || s.Contains(AllCategories) {
		t.Error("AllCategories is wrong")
	}
	for _, in := range []string{",", "infra,", ",infra", "infra,,vpn", "infra, vpn", "infra,infra", "infra,root", "*"} {
		if got, err := ParseCategorySet(in); !errors.Is(err, ErrInvalid) || got != 0 {
			t.Errorf("ParseCategorySet(%q) = %v, %v; want ErrInvalid", in, got, err)
		}
	}
	if _, err := ParseCategoryNames([]string{"vpn", "vpn"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate names accepted: %v", err)
	}
	if got, err := ParseCategoryNames([]string{"audit", "infra"}); err != nil || got != NewCategorySet(Infra, Audit) {
		t.Errorf("ParseCategoryNames = %v, %v", got, err)
	}
	if _, err := CategorySet(0x80).MarshalText(); !errors.Is(err, ErrInvalid) {
		t.Error("a set with unknown bits marshalled")
	}
	if s.Minus(NewCategorySet(VPN)) != NewCategorySet(Infra) || s.Without(Infra).With(Audit) != NewCategorySet(VPN, Audit) {
		t.Error("set arithmetic is wrong")
	}
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	type doc struct {
		Role Role
		Cat  Category
		Set  CategorySet
	}
	in := doc{Manager, Backup, NewCategorySet(Device, Audit)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"Role":"manager","Cat":"backup","Set":"device,audit"}` {
		t.Errorf("JSON = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip = %+v, %v", out, err)
	}
	for _, bad := range []string{`{"Role":"root"}`, `{"Cat":"Infra"}`, `{"Set":"infra,*"}`} {
		if err := json.Unmarshal([]byte(bad), &out); !errors.Is(err, ErrInvalid) {
			t.Errorf("Unmarshal(%s) = %v; want ErrInvalid", bad, err)
		}
	}
	if _, err := json.Marshal(doc{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Role and Category marshalled: %v", err)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	u, o := NewUserID(), NewOrgID()
	if !u.Valid() || !o.Valid() || len(u) != 28 || !strings.HasPrefix(string(u), "usr_") || !strings.HasPrefix(string(o), "org_") {
		t.Fatalf("fresh ids %q, %q are not canonical", u, o)
	}
	if u2 := NewUserID(); u2 == u {
		t.Fatal("two fresh ids are equal")
	}
	if got, err := ParseUserID(string(u)); err != nil || got != u {
		t.Errorf("ParseUserID(%q) = %q, %v", u, got, err)
	}
	tail := string(u)[4:]
	bad := []string{
		"", "*", "usr_*", "usr_", "global", "role:manager", string(o),
		"USR_" + tail, "usr_" + strings.ToUpper(tail), " " + string(u), string(u) + " ",
		string(u) + "\x00", string(u)[:27], string(u) + "a", "usr_" + tail[:23] + "1", "usr_" + tail[:23] + "*",
		"usr_" + tail[:22] + "::",
	}
	for _, s := range bad {
		if _, err := ParseUserID(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseUserID(%q) accepted", s)
		}
		if _, err := ParseOrgID(strings.Replace(s, "usr_", "org_", 1)); !errors.Is(err, ErrInvalid) && s != string(o) {
			t.Errorf("ParseOrgID(%q) accepted", s)
		}
	}
}

func TestRowEncoding(t *testing.T) {
	t.Parallel()
	u, o := NewUserID(), NewOrgID()
	for _, r := range []Rule{PlatformAdminRule(u), RoleRule(u, o, Member), RoleRule(u, o, Manager), GrantRule(u, o, VPN), DeactivationRule(u)} {
		row, err := r.Row()
		if err != nil {
			t.Fatalf("%v.Row(): %v", r, err)
		}
		got, err := ParseRow(row)
		if err != nil || got != r {
			t.Errorf("ParseRow(%v.Row()) = %v, %v", r, got, err)
		}
	}
	us, os := string(u), string(o)
	for _, row := range []Row{
		{PType: "p", V0: "role:manager", V1: "infra"},
		{PType: "g", V0: "*", V1: "role:manager", V2: os},
		{PType: "g", V0: us, V1: "role:manager", V2: "*"},
		{PType: "g", V0: us, V1: "role:platformadmin", V2: os},
		{PType: "g", V0: us, V1: "role:manager", V2: "global"},
		{PType: "g", V0: us, V1: "cat:infra", V2: "global"},
		{PType: "g", V0: us, V1: "role:root", V2: os},
		{PType: "g", V0: us, V1: "cat:*", V2: os},
		{PType: "g", V0: us, V1: "manager", V2: os},
		{PType: "g", V0: us, V1: us, V2: os},
		{PType: "g", V0: us, V1: "role:member", V2: os, V3: "x"},
		{PType: "g2", V0: us, V1: "role:member", V2: os},
		{PType: "g", V0: us, V1: "status:deactivated", V2: os},
		{PType: "g", V0: us, V1: "status:active", V2: "global"},
	} {
		if _, err := ParseRow(row); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRow(%v) accepted", row)
		}
	}
	for _, r := range []Rule{{User: u}, {User: u, Org: o}, {User: u, Role: PlatformAdmin, Org: o}, {User: u, Role: Member}, {User: u, Org: o, Role: Member, Category: Infra}, {User: "x", Org: o, Role: Member}, {User: u, Deactivated: true, Org: o}, {User: u, Deactivated: true, Role: PlatformAdmin}} {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v validated", r)
		}
		if row, err := r.Row(); !errors.Is(err, ErrInvalid) || row != (Row{}) {
			t.Errorf("%+v encoded as %v, %v", r, row, err)
		}
	}
	if _, err := MembershipRules(u, o, Membership{Role: PlatformAdmin}); !errors.Is(err, ErrInvalid) {
		t.Error("MembershipRules accepted PlatformAdmin as an org role")
	}
	if _, err := MembershipRules(u, o, Membership{Role: Member, Categories: 0x80}); !errors.Is(err, ErrInvalid) {
		t.Error("MembershipRules accepted unknown category bits")
	}
	if _, err := MembershipRules(u, "*", Membership{Role: Member}); !errors.Is(err, ErrInvalid) {
		t.Error("MembershipRules accepted a wildcard org")
	}
	long := strings.Repeat("é", 40)
	if msg := (&InvalidError{Field: "name", Value: long}).Error(); !utf8.ValidString(msg) {
		t.Errorf("truncated message is not valid UTF-8: %q", msg)
	}
	if len(BaseRows()) != 21 {
		t.Errorf("BaseRows has %d rules, want 21", len(BaseRows()))
	}
}
