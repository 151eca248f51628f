package audit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// checkInvalid fails unless err is an *authz.InvalidError.
func checkInvalid(t *testing.T, err error) *authz.InvalidError {
	t.Helper()
	var ie *authz.InvalidError
	if !errors.Is(err, authz.ErrInvalid) || !errors.As(err, &ie) {
		t.Fatalf("error %v, want an *authz.InvalidError", err)
	}
	return ie
}

// valid returns a valid event with every field set.
func valid() audit.Event {
	e := audit.NewEvent(t0, authz.NewUserID(), audit.MemberRoleChange)
	e.Target, e.Org, e.ClientAddr = authz.NewUserID(), authz.NewOrgID(), "192.0.2.1"
	e.Before, e.After = json.RawMessage(`{"role":"member"}`), json.RawMessage(`{"role":"manager"}`)
	return e
}

func TestActionNames(t *testing.T) {
	t.Parallel()
	// The names are stored and exported: they never change.
	want := map[audit.Action]string{
		audit.PlatformBootstrap:     "platform.bootstrap",
		audit.OrgCreate:             "org.create",
		audit.OrgRename:             "org.rename",
		audit.OrgDelete:             "org.delete",
		audit.RegistrationSubmit:    "registration.submit",
		audit.RegistrationApprove:   "registration.approve",
		audit.RegistrationReject:    "registration.reject",
		audit.MemberRoleChange:      "member.role.change",
		audit.MemberCategoriesSet:   "member.categories.set",
		audit.MemberRemove:          "member.remove",
		audit.UserDelete:            "user.delete",
		audit.UserDeactivate:        "user.deactivate",
		audit.UserReactivate:        "user.reactivate",
		audit.ProfileNameChange:     "profile.name.change",
		audit.ProfilePasswordChange: "profile.password.change",
		audit.ProfileDelete:         "profile.delete",
		audit.PasswordResetRequest:  "password.reset.request",
		audit.PasswordResetIssue:    "password.reset.issue",
		audit.PasswordResetComplete: "password.reset.complete",
		audit.SessionLogin:          "session.login",
		audit.SessionLogout:         "session.logout",
		audit.AuditView:             "audit.view",
		audit.AuditExport:           "audit.export",
		audit.AuditPrune:            "audit.prune",
		audit.UsersImport:           "users.import",
		audit.MembersView:           "members.view",
		audit.UsersView:             "users.view",
		audit.RegistrationsView:     "registrations.view",
	}
	for a, name := range want {
		if string(a) != name || a.String() != name {
			t.Errorf("action %q, want %q", a, name)
		}
	}
	got := audit.Actions()
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(maps.Keys(want))) {
		t.Errorf("Actions() = %v, want exactly the %d declared", got, len(want))
	}
	shape := regexp.MustCompile(`^[a-z]+(\.[a-z]+)+$`)
	for _, a := range got {
		if !a.Valid() || !shape.MatchString(string(a)) {
			t.Errorf("action %q: invalid or not lower-case dotted", a)
		}
		if p, err := audit.ParseAction(string(a)); err != nil || p != a {
			t.Errorf("ParseAction(%q) = %q, %v", a, p, err)
		}
	}
	got[0] = "mutated"
	if audit.Actions()[0] != audit.PlatformBootstrap {
		t.Error("Actions() shares its slice")
	}
	for _, s := range []string{"", "org", "org.", "ORG.CREATE", "org.create ", "org.*", "org.create\x00", "mutated"} {
		a, err := audit.ParseAction(s)
		if ie := checkInvalid(t, err); ie.Field != "audit action" || a != "" || audit.Action(s).Valid() {
			t.Errorf("ParseAction(%q) = %q, %v", s, a, err)
		}
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	for _, o := range []audit.Outcome{audit.Success, audit.Denied} {
		p, err := audit.ParseOutcome(o.String())
		b, merr := json.Marshal(o)
		var back audit.Outcome
		if err != nil || p != o || merr != nil || json.Unmarshal(b, &back) != nil || back != o {
			t.Errorf("%v: parse %v, %v; JSON %s, %v, %v", o, p, err, b, merr, back)
		}
	}
	if audit.Success.String() != "success" || audit.Denied.String() != "denied" || audit.AnyOutcome.String() != "any" || audit.Outcome(0) != audit.AnyOutcome {
		t.Error("outcome names or zero value wrong")
	}
	for _, s := range []string{"", "any", "Success", "DENIED", "ok", "failure"} {
		o, err := audit.ParseOutcome(s)
		checkInvalid(t, err)
		if o != audit.AnyOutcome {
			t.Errorf("ParseOutcome(%q) = %v", s, o)
		}
	}
	for _, o := range []audit.Outcome{audit.AnyOutcome, 3} {
		if _, err := o.MarshalText(); !errors.Is(err, authz.ErrInvalid) || o.Valid() {
			t.Errorf("%v: MarshalText = %v, Valid = %v", o, err, o.Valid())
		}
	}
}

func TestNewEvent(t *testing.T) {
	t.Parallel()
	actor := authz.NewUserID()
	at := time.Date(2025, 6, 1, 14, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	e := audit.NewEvent(at, actor, audit.OrgCreate)
	want := audit.Event{Time: time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC), Actor: actor, Action: audit.OrgCreate, Outcome: audit.Success}
	if !e.Time.Equal(want.Time) || e.Time.Location() != time.UTC || e.Actor != actor || e.Action != audit.OrgCreate || e.Outcome != audit.Success || e.ID != 0 {
		t.Errorf("NewEvent = %+v, want %+v", e, want)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("Validate(NewEvent(…)) = %v", err)
	}
	// A monotonic clock reading is dropped: the event compares with ==.
	if now := audit.NewEvent(time.Now(), actor, audit.OrgCreate).Time; now != now.Round(0) {
		t.Error("NewEvent kept the monotonic clock reading")
	}
}

func TestSetChange(t *testing.T) {
	t.Parallel()
	type role struct {
		Role authz.Role `json:"role"`
	}
	type cats struct {
		Categories []authz.Category `json:"categories"`
	}
	for _, tc := range []struct {
		name          string
		before, after any
		wantB, wantA  string
	}{
		{"role", role{authz.Member}, role{authz.Manager}, `{"role":"member"}`, `{"role":"manager"}`},
		{"categories", cats{authz.NewCategorySet(authz.Infra).Slice()}, cats{authz.NewCategorySet(authz.VPN, authz.Infra).Slice()}, `{"categories":["infra"]}`, `{"categories":["infra","vpn"]}`},
		{"no categories", cats{authz.CategorySet(0).Slice()}, nil, `{"categories":[]}`, ``},
		{"map keys sorted", nil, map[string]any{"name": "Acme", "b": 1, "a": true}, ``, `{"a":true,"b":1,"name":"Acme"}`},
		{"typed nil", (*role)(nil), map[string]string{}, ``, `{}`},
		{"raw message", json.RawMessage(` {"x": 1} `), nil, `{"x":1}`, ``},
		{"value mentioning a password", nil, map[string]string{"note": "password changed"}, ``, `{"note":"password changed"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e audit.Event
			if err := e.SetChange(tc.before, tc.after); err != nil {
				t.Fatalf("SetChange: %v", err)
			}
			if string(e.Before) != tc.wantB || string(e.After) != tc.wantA {
				t.Errorf("SetChange = %s → %s, want %s → %s", e.Before, e.After, tc.wantB, tc.wantA)
			}
			if (tc.wantB == "") != (e.Before == nil) || (tc.wantA == "") != (e.After == nil) {
				t.Errorf("nothing to say must be nil: Before %#v, After %#v", e.Before, e.After)
			}
		})
	}
	for _, tc := range []struct {
		name          string
		before, after any
	}{
		{"password field", nil, struct {
			Password string `json:"password"`
		}{"correct horse battery staple"}},
		{"hash in a nested map", map[string]any{"user": map[string]string{"PasswordHash": "$argon2id$…"}}, nil},
		{"token in a list", nil, map[string]any{"sessions": []map[string]string{{"token": "abc"}}}},
		{"array", []string{"infra"}, nil},
		{"string", nil, "manager"},
		{"number", 7, nil},
		{"unencodable", nil, map[string]any{"c": make(chan int)}},
		{"too long", nil, map[string]string{"x": strings.Repeat("a", audit.MaxChangeLen)}},
	} {
		t.Run("refuse "+tc.name, func(t *testing.T) {
			t.Parallel()
			e := valid()
			orig := e
			ie := checkInvalid(t, e.SetChange(tc.before, tc.after))
			if string(e.Before) != string(orig.Before) || string(e.After) != string(orig.After) {
				t.Errorf("a refused SetChange changed the event: %s → %s", e.Before, e.After)
			}
			for _, secret := range []string{"correct horse", "$argon2id", "abc"} {
				if strings.Contains(ie.Error(), secret) {
					t.Errorf("error %q repeats a secret", ie)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	bare := audit.Event{Time: t0, Action: audit.SessionLogin, Outcome: audit.Denied, Reason: "unauthenticated"}
	if err := bare.Validate(); err != nil {
		t.Errorf("Validate of an anonymous failed login = %v", err)
	}
	for _, tc := range []struct {
		name, field string
		edit        func(*audit.Event)
	}{
		{"no time", "audit event time", func(e *audit.Event) { e.Time = time.Time{} }},
		{"nanoseconds", "audit event time", func(e *audit.Event) { e.Time = e.Time.Add(999) }},
		{"year 10000", "audit event time", func(e *audit.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"no action", "audit action", func(e *audit.Event) { e.Action = "" }},
		{"unknown action", "audit action", func(e *audit.Event) { e.Action = "org.steal" }},
		{"no outcome", "audit outcome", func(e *audit.Event) { e.Outcome = audit.AnyOutcome }},
		{"bad actor", "audit actor user id", func(e *audit.Event) { e.Actor = "root" }},
		{"bad target", "audit target user id", func(e *audit.Event) { e.Target = authz.UserID(strings.ToUpper(string(e.Target))) }},
		{"bad org", "audit org id", func(e *audit.Event) { e.Org = "org_" }},
		{"client address too long", "audit client address", func(e *audit.Event) { e.ClientAddr = strings.Repeat("a", audit.MaxClientAddrLen+1) }},
		{"client address with CRLF", "audit client address", func(e *audit.Event) { e.ClientAddr = "1.2.3.4\r\n" }},
		{"denied without reason", "audit reason", func(e *audit.Event) { e.Outcome = audit.Denied }},
		{"success with reason", "audit reason", func(e *audit.Event) { e.Reason = "forbidden" }},
		{"reason too long", "audit reason", func(e *audit.Event) { e.Outcome, e.Reason = audit.Denied, strings.Repeat("x", audit.MaxReasonLen+1) }},
		{"reason with a newline", "audit reason", func(e *audit.Event) { e.Outcome, e.Reason = audit.Denied, "forbidden\nFAKE LOG LINE" }},
		{"reason with bidi override", "audit reason", func(e *audit.Event) { e.Outcome, e.Reason = audit.Denied, "a\u202eb" }},
		{"reason not UTF-8", "audit reason", func(e *audit.Event) { e.Outcome, e.Reason = audit.Denied, "\xff" }},
		{"before not JSON", "audit event before", func(e *audit.Event) { e.Before = json.RawMessage(`{`) }},
		{"after a list", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`[{"role":"x"}]`) }},
		{"after a string", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`"manager"`) }},
		{"after null", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`null`) }},
		{"after two values", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{} {}`) }},
		{"after not UTF-8", "audit event after", func(e *audit.Event) { e.After = json.RawMessage("{\"name\":\"\xff\"}") }},
		{"duplicate key", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"role":"member","role":"manager"}`) }},
		{"duplicate nested key", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"a":{"b":1,"b":2}}`) }},
		{"password", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"password":"x"}`) }},
		{"Password", "audit event before", func(e *audit.Event) { e.Before = json.RawMessage(`{"NewPassword":"x"}`) }},
		{"passwd", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"passwd":"x"}`) }},
		{"hash", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"pw_hash":"x"}`) }},
		{"token deep down", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"a":[1,{"b":[{"resetToken":"x"}]}]}`) }},
		{"secret", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"client_SECRET":"x"}`) }},
		{"salt", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"salt":"x"}`) }},
		{"escaped key", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"pass\u0077ord":"x"}`) }},
		{"argon2 hash value", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"x":"$argon2id$v=19$m=19456,t=2,p=1$abc$def"}`) }},
		{"bcrypt hash value", "audit event after", func(e *audit.Event) { e.After = json.RawMessage(`{"x":["$2b$12$abcdefghijklmnopqrstuv"]}`) }},
		{"too long", "audit event after", func(e *audit.Event) {
			e.After = json.RawMessage(`{"x":"` + strings.Repeat("a", audit.MaxChangeLen-7) + `"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := valid()
			tc.edit(&e)
			ie := checkInvalid(t, e.Validate())
			if ie.Field != tc.field {
				t.Errorf("error about %q, want %q: %v", ie.Field, tc.field, ie)
			}
			if strings.Contains(ie.Error(), `"x"`) || strings.Contains(ie.Error(), "$argon2") {
				t.Errorf("error %q repeats a value of Before or After", ie)
			}
		})
	}
	// At the bounds, and keys that merely resemble secret words.
	e := valid()
	e.Outcome, e.Reason = audit.Denied, strings.Repeat("é", audit.MaxReasonLen)
	e.ClientAddr = strings.Repeat("1", audit.MaxClientAddrLen)
	e.After = json.RawMessage(`{"x":"` + strings.Repeat("a", audit.MaxChangeLen-8) + `"}`)
	e.Before = json.RawMessage(`{"role":"member","categories":["infra"],"name":"Ada","email":"a@example.com","status":"active","request":"req_x","pass":1,"reason":"tokenless"}`)
	if err := e.Validate(); err != nil {
		t.Errorf("Validate at the bounds: %v", err)
	}
}

func TestDenialReason(t *testing.T) {
	t.Parallel()
	org := authz.NewOrgID()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"self role change", fmt.Errorf("iam: change role: %w", authz.ErrSelfRoleChange), "nobody may change their own role"},
		{"self approval", authz.ErrSelfApproval, "nobody may approve or reject their own registration request"},
		{"last platform admin", fmt.Errorf("x: %w", authz.ErrLastPlatformAdmin), strings.TrimPrefix(authz.ErrLastPlatformAdmin.Error(), "authz: ")},
		{"last manager", authz.ErrLastManager, strings.TrimPrefix(authz.ErrLastManager.Error(), "authz: ")},
		{"insufficient permissions", &authz.InsufficientPermissionsError{Org: org, Required: authz.NewCategorySet(authz.VPN, authz.Audit), Missing: authz.NewCategorySet(authz.Audit)}, "insufficient permissions: missing audit"},
		{"invalid input", fmt.Errorf("iam: %w", &authz.InvalidError{Field: "role", Value: "hunter2 my password", Reason: "want member or manager"}), "invalid role: want member or manager"},
		{"invalid with control characters", &authz.InvalidError{Field: "x\ny", Reason: "z\u202e"}, "invalid x y: z "},
		{"a rule's plain refusal", fmt.Errorf("iam: %w", authz.CanAdministerOrgs(authz.Subject{User: authz.NewUserID(), Role: authz.Manager})), "only a PlatformAdmin may do this"},
		{"forbidden", fmt.Errorf("iam: %w: internal detail 10.0.0.7", authz.ErrForbidden), "forbidden"},
		{"not found", fmt.Errorf("gorm: record not found in users: %w", authz.ErrNotFound), "not found"},
		{"conflict", fmt.Errorf("%w: already pending", authz.ErrConflict), "conflict"},
		{"unauthenticated", authz.ErrUnauthenticated, "unauthenticated"},
		{"plain invalid", authz.ErrInvalid, "invalid input"},
		{"unknown", errors.New("pq: connection refused to db.internal:5432"), "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := audit.DenialReason(tc.err); got != tc.want {
				t.Errorf("DenialReason(%v) = %q, want %q", tc.err, got, tc.want)
			}
			if tc.err == nil {
				return
			}
			e := valid()
			e.Deny(tc.err)
			if e.Outcome != audit.Denied || e.Reason != tc.want {
				t.Errorf("Deny: outcome %v, reason %q", e.Outcome, e.Reason)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("a denied event does not validate: %v", err)
			}
		})
	}
	long := &authz.InvalidError{Field: "f", Reason: strings.Repeat("é", 2*audit.MaxReasonLen)}
	e := valid()
	e.Deny(long)
	if err := e.Validate(); err != nil {
		t.Errorf("a long denial reason does not validate: %v", err)
	}
}

func TestEventJSON(t *testing.T) {
	t.Parallel()
	e := valid()
	e.ID = 42
	a, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(e)
	if string(a) != string(b) {
		t.Fatal("two encodings of one event differ")
	}
	want := fmt.Sprintf(`{"id":42,"time":"2025-06-01T12:00:00Z","actor":%q,"action":"member.role.change","target":%q,"org":%q,"client_addr":"192.0.2.1","outcome":"success","before":{"role":"member"},"after":{"role":"manager"}}`, e.Actor, e.Target, e.Org)
	if string(a) != want {
		t.Errorf("JSON\n\t%s\nwant\n\t%s", a, want)
	}
	var back audit.Event
	if err := json.Unmarshal(a, &back); err != nil || !back.Time.Equal(e.Time) || back.Actor != e.Actor || back.Outcome != e.Outcome || string(back.After) != string(e.After) {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
	bare, _ := json.Marshal(audit.Event{ID: 1, Time: t0, Action: audit.SessionLogout, Outcome: audit.Success})
	if string(bare) != `{"id":1,"time":"2025-06-01T12:00:00Z","action":"session.logout","outcome":"success"}` {
		t.Errorf("empty fields are not omitted: %s", bare)
	}
}

func TestFilterNormalize(t *testing.T) {
	t.Parallel()
	orgs := []authz.OrgID{authz.NewOrgID(), authz.NewOrgID()}
	f, err := audit.Filter{Orgs: orgs}.Normalize()
	if err != nil || f.Limit != audit.DefaultLimit || !slices.Equal(f.Orgs, orgs) {
		t.Fatalf("Normalize = %+v, %v", f, err)
	}
	f.Orgs[0] = "changed"
	if orgs[0] == "changed" {
		t.Error("Normalize shares the caller's Orgs")
	}
	if f, err := (audit.Filter{AllOrgs: true, Limit: audit.MaxLimit, Since: t0, Until: t0.Add(time.Microsecond), Before: 5}).Normalize(); err != nil || f.Limit != audit.MaxLimit {
		t.Errorf("Normalize at the bounds = %+v, %v", f, err)
	}
	for _, tc := range []struct {
		name, field string
		f           audit.Filter
	}{
		{"zero", "audit filter scope", audit.Filter{}},
		{"empty orgs", "audit filter scope", audit.Filter{Orgs: []authz.OrgID{}}},
		{"both", "audit filter scope", audit.Filter{AllOrgs: true, Orgs: orgs}},
		{"bad scope org", "audit filter org id", audit.Filter{Orgs: []authz.OrgID{orgs[0], ""}}},
		{"bad org", "audit filter org id", audit.Filter{AllOrgs: true, Org: "org_*"}},
		{"bad actor", "audit filter actor user id", audit.Filter{AllOrgs: true, Actor: "*"}},
		{"bad target", "audit filter target user id", audit.Filter{AllOrgs: true, Target: "*"}},
		{"bad action", "audit action", audit.Filter{AllOrgs: true, Action: "*"}},
		{"bad outcome", "audit outcome", audit.Filter{AllOrgs: true, Outcome: 9}},
		{"until before since", "audit filter time range", audit.Filter{AllOrgs: true, Since: t0, Until: t0.Add(-1)}},
		{"until at since", "audit filter time range", audit.Filter{AllOrgs: true, Since: t0, Until: t0}},
		{"negative limit", "audit filter limit", audit.Filter{AllOrgs: true, Limit: -1}},
		{"limit too high", "audit filter limit", audit.Filter{AllOrgs: true, Limit: audit.MaxLimit + 1}},
		{"negative cursor", "audit filter cursor", audit.Filter{AllOrgs: true, Before: -5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := tc.f.Normalize()
			if ie := checkInvalid(t, err); ie.Field != tc.field {
				t.Errorf("error about %q, want %q: %v", ie.Field, tc.field, err)
			}
			if f.AllOrgs || f.Orgs != nil || f.Limit != 0 {
				t.Errorf("Normalize returned %+v with its error", f)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	e := valid()
	e.ID = 10
	other := authz.NewUserID()
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want bool
	}{
		{"all orgs", audit.Filter{AllOrgs: true}, true},
		{"its org", audit.Filter{Orgs: []authz.OrgID{authz.NewOrgID(), e.Org}}, true},
		{"other orgs", audit.Filter{Orgs: []authz.OrgID{authz.NewOrgID()}}, false},
		{"no scope", audit.Filter{}, false},
		{"both scopes", audit.Filter{AllOrgs: true, Orgs: []authz.OrgID{e.Org}}, false},
		{"org", audit.Filter{AllOrgs: true, Org: e.Org}, true},
		{"other org", audit.Filter{AllOrgs: true, Org: authz.NewOrgID()}, false},
		{"actor", audit.Filter{AllOrgs: true, Actor: e.Actor}, true},
		{"other actor", audit.Filter{AllOrgs: true, Actor: other}, false},
		{"target", audit.Filter{AllOrgs: true, Target: e.Target}, true},
		{"actor as target", audit.Filter{AllOrgs: true, Target: e.Actor}, false},
		{"action", audit.Filter{AllOrgs: true, Action: audit.MemberRoleChange}, true},
		{"other action", audit.Filter{AllOrgs: true, Action: audit.MemberRemove}, false},
		{"outcome", audit.Filter{AllOrgs: true, Outcome: audit.Success}, true},
		{"other outcome", audit.Filter{AllOrgs: true, Outcome: audit.Denied}, false},
		{"since at", audit.Filter{AllOrgs: true, Since: t0}, true},
		{"since after", audit.Filter{AllOrgs: true, Since: t0.Add(time.Microsecond)}, false},
		{"until after", audit.Filter{AllOrgs: true, Until: t0.Add(time.Microsecond)}, true},
		{"until at", audit.Filter{AllOrgs: true, Until: t0}, false},
		{"before above", audit.Filter{AllOrgs: true, Before: 11}, true},
		{"before at", audit.Filter{AllOrgs: true, Before: 10}, false},
		{"limit ignored", audit.Filter{AllOrgs: true, Limit: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.f.Match(e); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
	orgless := valid()
	orgless.Org = ""
	if (audit.Filter{Orgs: []authz.OrgID{""}}).Match(orgless) {
		t.Error("an empty org in Orgs matched an event without org")
	}
	if !(audit.Filter{AllOrgs: true}).Match(orgless) {
		t.Error("AllOrgs did not match an event without org")
	}
}

// memberships turns a map into the iterator Scope takes.
func memberships(m map[authz.OrgID]authz.Membership) func(func(authz.OrgID, authz.Membership) bool) {
	return func(yield func(authz.OrgID, authz.Membership) bool) {
		for o, ms := range m {
			if !yield(o, ms) {
				return
			}
		}
	}
}

func TestScope(t *testing.T) {
	t.Parallel()
	viewer := authz.NewUserID()
	a, b, c, d := authz.NewOrgID(), authz.NewOrgID(), authz.NewOrgID(), authz.NewOrgID()
	manager := authz.Membership{Role: authz.Manager}
	auditor := authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.Audit, authz.Infra)}
	member := authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra)}
	stray := authz.Membership{Categories: authz.NewCategorySet(authz.Audit)} // a grant without a role
	mixed := map[authz.OrgID]authz.Membership{a: manager, b: auditor, c: member, d: stray}
	for _, tc := range []struct {
		name  string
		f     audit.Filter
		admin bool
		ms    map[authz.OrgID]authz.Membership
		all   bool
		orgs  []authz.OrgID
		err   error
	}{
		{"platform admin", audit.Filter{}, true, nil, true, nil, nil},
		{"platform admin with memberships", audit.Filter{}, true, map[authz.OrgID]authz.Membership{c: member}, true, nil, nil},
		{"platform admin, one org", audit.Filter{Org: c}, true, nil, false, []authz.OrgID{c}, nil},
		{"mixed", audit.Filter{}, false, mixed, false, slices.Sorted(slices.Values([]authz.OrgID{a, b})), nil},
		{"manager's org", audit.Filter{Org: a}, false, mixed, false, []authz.OrgID{a}, nil},
		{"auditor's org", audit.Filter{Org: b}, false, mixed, false, []authz.OrgID{b}, nil},
		{"member without audit", audit.Filter{Org: c}, false, mixed, false, nil, authz.ErrForbidden},
		{"org without a role", audit.Filter{Org: authz.NewOrgID()}, false, mixed, false, nil, authz.ErrNotFound},
		{"stray grant's org", audit.Filter{Org: d}, false, mixed, false, nil, authz.ErrInvalid},
		{"members only", audit.Filter{}, false, map[authz.OrgID]authz.Membership{c: member}, false, nil, authz.ErrForbidden},
		{"no memberships", audit.Filter{}, false, nil, false, nil, authz.ErrForbidden},
		{"only a stray grant", audit.Filter{}, false, map[authz.OrgID]authz.Membership{d: stray}, false, nil, authz.ErrForbidden},
		{"scope set already", audit.Filter{AllOrgs: true}, true, nil, false, nil, authz.ErrInvalid},
		{"empty scope set already", audit.Filter{Orgs: []authz.OrgID{}}, true, nil, false, nil, authz.ErrInvalid},
		{"bad org", audit.Filter{Org: "org_*"}, true, nil, false, nil, authz.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var it func(func(authz.OrgID, authz.Membership) bool)
			if tc.ms != nil {
				it = memberships(tc.ms)
			}
			in := tc.f
			in.Action, in.Limit = audit.MemberRoleChange, 5 // kept as they are
			got, err := audit.Scope(in, viewer, tc.admin, it)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Scope = %+v, %v; want %v", got, err, tc.err)
				}
				if got.AllOrgs || got.Orgs != nil {
					t.Errorf("Scope returned a scope with its error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Scope: %v", err)
			}
			if got.AllOrgs != tc.all || !slices.Equal(got.Orgs, tc.orgs) || got.Org != tc.f.Org || got.Action != in.Action || got.Limit != 5 {
				t.Errorf("Scope = %+v, want AllOrgs %v, Orgs %v", got, tc.all, tc.orgs)
			}
			if _, err := got.Normalize(); err != nil {
				t.Errorf("the scoped filter does not normalize: %v", err)
			}
		})
	}
	if _, err := audit.Scope(audit.Filter{}, "nobody", true, nil); !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("Scope for a malformed viewer = %v, want ErrInvalid", err)
	}

	// A Member without the audit category gets the product's
	// "Insufficient permissions", naming the category and the org asked
	// for (none when they asked for all their orgs); someone with no role
	// anywhere lacks an org, not a category.
	for _, tc := range []struct {
		f   audit.Filter
		ms  map[authz.OrgID]authz.Membership
		ipe bool
	}{
		{audit.Filter{Org: c}, mixed, true},
		{audit.Filter{}, map[authz.OrgID]authz.Membership{c: member, authz.NewOrgID(): member}, true},
		{audit.Filter{}, nil, false},
	} {
		_, err := audit.Scope(tc.f, viewer, false, memberships(tc.ms))
		var ipe *authz.InsufficientPermissionsError
		if errors.As(err, &ipe) != tc.ipe || !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("Scope(%+v) = %v, want an InsufficientPermissionsError: %v", tc.f, err, tc.ipe)
			continue
		}
		if tc.ipe && (ipe.Org != tc.f.Org || ipe.User != viewer || ipe.Missing != authz.NewCategorySet(authz.Audit) || ipe.Required != ipe.Missing) {
			t.Errorf("Scope(%+v) = %+v", tc.f, ipe)
		}
	}
}

// TestScopeAgreesWithCanViewAudit checks Scope against authz's rule for
// every combination of role and categories: an org is in the scope
// exactly when CanViewAudit allows it.
func TestScopeAgreesWithCanViewAudit(t *testing.T) {
	t.Parallel()
	viewer := authz.NewUserID()
	for _, admin := range []bool{false, true} {
		for _, role := range []authz.Role{authz.Member, authz.Manager} {
			for cats := authz.CategorySet(0); cats <= authz.AllCategories; cats++ {
				m := authz.Membership{Role: role, Categories: cats}
				org := authz.NewOrgID()
				want := authz.CanViewAudit(authz.Subject{User: viewer, PlatformAdmin: admin, Role: role, Categories: cats})
				got, err := audit.Scope(audit.Filter{Org: org}, viewer, admin, memberships(map[authz.OrgID]authz.Membership{org: m}))
				if (err == nil) != (want == nil) || (err == nil && !slices.Equal(got.Orgs, []authz.OrgID{org})) {
					t.Errorf("admin=%v %v %v: Scope = %+v, %v; CanViewAudit = %v", admin, role, cats, got, err, want)
				}
			}
		}
	}
}
