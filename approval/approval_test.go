package approval_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// checkInvalid fails unless err is an *authz.InvalidError about field.
func checkInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ie *authz.InvalidError
	if !errors.Is(err, authz.ErrInvalid) || !errors.As(err, &ie) {
		t.Fatalf("error %v, want an *authz.InvalidError", err)
	}
	if field != "" && ie.Field != field {
		t.Errorf("error about %q, want about %q: %v", ie.Field, field, err)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	seen := map[approval.RequestID]bool{}
	for range 1000 {
		id := approval.NewRequestID()
		if len(id) != 28 || !strings.HasPrefix(string(id), "req_") || !id.Valid() {
			t.Fatalf("NewRequestID() = %q, want req_ and 24 base32 characters", id)
		}
		if seen[id] {
			t.Fatalf("NewRequestID repeated %q", id)
		}
		seen[id] = true
		got, err := approval.ParseRequestID(id.String())
		if err != nil || got != id {
			t.Fatalf("ParseRequestID(%q) = %q, %v", id, got, err)
		}
	}
	good := string(approval.NewRequestID())
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"prefix only", "req_"},
		{"upper case", strings.ToUpper(good)},
		{"upper case prefix", "REQ_" + good[4:]},
		{"user id", "usr_" + good[4:]},
		{"short", good[:27]},
		{"long", good + "a"},
		{"padding", good[:27] + "="},
		{"digit 1", good[:27] + "1"},
		{"digit 8", good[:27] + "8"},
		{"wildcard", good[:27] + "*"},
		{"space", good[:27] + " "},
		{"NUL", good[:27] + "\x00"},
		{"non-ASCII", good[:26] + "é"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := approval.ParseRequestID(tc.in)
			checkInvalid(t, err, "request id")
			if id != "" || approval.RequestID(tc.in).Valid() {
				t.Errorf("ParseRequestID(%q) = %q; Valid() = %v", tc.in, id, approval.RequestID(tc.in).Valid())
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, st := range []approval.Status{approval.Pending, approval.Approved, approval.Rejected} {
		got, err := approval.ParseStatus(st.String())
		if err != nil || got != st || !st.Valid() {
			t.Errorf("ParseStatus(%q) = %v, %v", st, got, err)
		}
		b, err := json.Marshal(st)
		var back approval.Status
		if err != nil || json.Unmarshal(b, &back) != nil || back != st {
			t.Errorf("JSON round trip of %v: %s, %v, %v", st, b, err, back)
		}
	}
	if approval.AnyStatus.String() != "any" || approval.AnyStatus.Valid() || approval.Status(0) != approval.AnyStatus {
		t.Error("the zero Status is not AnyStatus, \"any\", invalid")
	}
	for _, in := range []string{"", "any", "Pending", "PENDING", " pending", "pending ", "accepted", "0", "1"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			st, err := approval.ParseStatus(in)
			checkInvalid(t, err, "request status")
			if st != approval.AnyStatus {
				t.Errorf("ParseStatus(%q) = %v", in, st)
			}
		})
	}
	for _, st := range []approval.Status{approval.AnyStatus, 4, 255} {
		if _, err := st.MarshalText(); !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("%v.MarshalText() = %v, want ErrInvalid", st, err)
		}
	}
	if s := approval.Status(9).String(); s != "Status(9)" {
		t.Errorf("Status(9).String() = %q", s)
	}
}

func TestPeriod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		p     approval.Period
		since time.Time
	}{
		{"7d", approval.Last7Days, t0.Add(-168 * time.Hour)},
		{"30d", approval.Last30Days, t0.Add(-720 * time.Hour)},
		{"all", approval.AllTime, time.Time{}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			p, err := approval.ParsePeriod(tc.in)
			if err != nil || p != tc.p || p.String() != tc.in || !p.Valid() {
				t.Fatalf("ParsePeriod(%q) = %v, %v", tc.in, p, err)
			}
			if got := p.Since(t0); !got.Equal(tc.since) {
				t.Errorf("%v.Since(%v) = %v, want %v", p, t0, got, tc.since)
			}
			var back approval.Period
			if b, err := json.Marshal(p); err != nil || json.Unmarshal(b, &back) != nil || back != p || string(b) != `"`+tc.in+`"` {
				t.Errorf("JSON round trip of %v: %s, %v, %v", p, b, err, back)
			}
		})
	}
	if approval.Period(0) != approval.AllTime {
		t.Error("the zero Period is not AllTime")
	}
	if got := approval.Periods(); len(got) != 3 || got[0] != approval.Last7Days || got[1] != approval.Last30Days || got[2] != approval.AllTime {
		t.Errorf("Periods() = %v, want 7d, 30d, all", got)
	}
	for _, in := range []string{"", "7", "7D", "7days", "7 d", " 7d", "30d ", "ALL", "All", "week", "-7d", "1d", "90d"} {
		t.Run("refuse "+in, func(t *testing.T) {
			t.Parallel()
			p, err := approval.ParsePeriod(in)
			checkInvalid(t, err, "request period")
			if p != approval.AllTime {
				t.Errorf("ParsePeriod(%q) = %v", in, p)
			}
		})
	}
	if _, err := approval.Period(3).MarshalText(); !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("Period(3).MarshalText() = %v, want ErrInvalid", err)
	}
}

func TestPeriodSinceAcrossDST(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	// 2025-03-30 is the change to summer time in Berlin: 7 calendar days
	// back would be 167 hours; the period is 168 hours.
	now := time.Date(2025, 4, 2, 12, 0, 0, 0, berlin)
	if d := now.Sub(approval.Last7Days.Since(now)); d != 168*time.Hour {
		t.Errorf("Last7Days spans %v across a DST change, want 168h", d)
	}
}

func TestPeriodSinceInvalidPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Period(7).Since did not panic")
		}
	}()
	approval.Period(7).Since(t0)
}

func TestNewRequest(t *testing.T) {
	t.Parallel()
	org, user := authz.NewOrgID(), authz.NewUserID()
	at := time.Date(2025, 6, 1, 14, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	r, err := approval.NewRequest(org, user, "ada@example.com", "Ada Lovelace", at)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	want := approval.Request{ID: r.ID, Org: org, User: user, Email: "ada@example.com", Name: "Ada Lovelace",
		Status: approval.Pending, CreatedAt: time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)}
	if r != want || r.CreatedAt.Location() != time.UTC || !r.ID.Valid() {
		t.Errorf("NewRequest = %+v, want %+v", r, want)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("Validate of a new request: %v", err)
	}
	if r2, _ := approval.NewRequest(org, user, "ada@example.com", "Ada Lovelace", at); r2.ID == r.ID {
		t.Error("two requests share an ID")
	}

	for _, tc := range []struct {
		name, field string
		org         authz.OrgID
		user        authz.UserID
		email, nm   string
		at          time.Time
	}{
		{"bad org", "request org id", "org_x", user, "a@example.com", "A", t0},
		{"no org", "request org id", "", user, "a@example.com", "A", t0},
		{"bad user", "request user id", org, "a@example.com", "a@example.com", "A", t0},
		{"blank email", "request email", org, user, " \t", "A", t0},
		{"overlong email", "request email", org, user, strings.Repeat("a", 243) + "@example.com", "A", t0},
		{"email with CR", "request email", org, user, "a@example.com\r\nBcc: b@example.com", "A", t0},
		{"empty name", "request name", org, user, "a@example.com", "", t0},
		{"overlong name", "request name", org, user, "a@example.com", strings.Repeat("é", approval.MaxNameLen+1), t0},
		{"name with NUL", "request name", org, user, "a@example.com", "A\x00", t0},
		{"name with bidi override", "request name", org, user, "a@example.com", "Ada \u202eecalevoL", t0},
		{"name not UTF-8", "request name", org, user, "a@example.com", "Ada \xff", t0},
		{"no time", "request creation time", org, user, "a@example.com", "A", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := approval.NewRequest(tc.org, tc.user, tc.email, tc.nm, tc.at)
			checkInvalid(t, err, tc.field)
			if r != (approval.Request{}) {
				t.Errorf("NewRequest returned %+v with its error", r)
			}
		})
	}
	// The bounds are inclusive.
	if _, err := approval.NewRequest(org, user, strings.Repeat("a", 242)+"@example.com", strings.Repeat("é", approval.MaxNameLen), t0); err != nil {
		t.Errorf("NewRequest at the length bounds: %v", err)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	org, requester, manager := authz.NewOrgID(), authz.NewUserID(), authz.NewUserID()
	pending, err := approval.NewRequest(org, requester, "ada@example.com", "Ada", t0)
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Hour + 999*time.Nanosecond) // truncated to the microsecond
	approved, err := pending.Approve(manager, later)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if approved.Status != approval.Approved || approved.DecidedBy != manager || !approved.DecidedAt.Equal(t0.Add(time.Hour)) || approved.Reason != "" {
		t.Errorf("Approve = %+v", approved)
	}
	rejected, err := pending.Reject(manager, "  not a colleague \t", later)
	if err != nil {
		t.Fatalf("Reject: %v", err)
	}
	if rejected.Status != approval.Rejected || rejected.Reason != "not a colleague" || rejected.DecidedBy != manager {
		t.Errorf("Reject = %+v", rejected)
	}
	if pending.Status != approval.Pending || pending.DecidedBy != "" {
		t.Errorf("deciding changed the original: %+v", pending)
	}
	for _, r := range []approval.Request{approved, rejected} {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%v request): %v", r.Status, err)
		}
	}

	type decideFunc func(approval.Request) (approval.Request, error)
	approve := func(by authz.UserID) decideFunc {
		return func(r approval.Request) (approval.Request, error) { return r.Approve(by, later) }
	}
	reject := func(by authz.UserID, reason string) decideFunc {
		return func(r approval.Request) (approval.Request, error) { return r.Reject(by, reason, later) }
	}
	for _, tc := range []struct {
		name   string
		from   approval.Request
		decide decideFunc
		want   []error
		msg    string
	}{
		{"approve approved", approved, approve(manager), []error{approval.ErrDecided, authz.ErrConflict}, "(approved)"},
		{"reject approved", approved, reject(manager, ""), []error{approval.ErrDecided, authz.ErrConflict}, "(approved)"},
		{"approve rejected", rejected, approve(manager), []error{approval.ErrDecided, authz.ErrConflict}, "(rejected)"},
		{"reject rejected", rejected, reject(manager, "again"), []error{approval.ErrDecided, authz.ErrConflict}, "(rejected)"},
		{"approve own", pending, approve(requester), []error{authz.ErrSelfApproval, authz.ErrForbidden}, "own"},
		{"reject own", pending, reject(requester, ""), []error{authz.ErrSelfApproval, authz.ErrForbidden}, "own"},
		{"bad approver", pending, approve("usr_*"), []error{authz.ErrInvalid}, "decider"},
		{"reason with a line break", pending, reject(manager, "no\nway"), []error{authz.ErrInvalid}, "control"},
		{"overlong reason", pending, reject(manager, strings.Repeat("x", approval.MaxReasonLen+1)), []error{authz.ErrInvalid}, "at most 500"},
		{"malformed request", approval.Request{}, approve(manager), []error{authz.ErrInvalid}, "request id"},
		{"no time", pending, func(r approval.Request) (approval.Request, error) { return r.Approve(manager, time.Time{}) }, []error{authz.ErrInvalid}, "decision time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.decide(tc.from)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v, want one matching %v", err, w)
				}
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if got != (approval.Request{}) {
				t.Errorf("returned %+v with its error", got)
			}
		})
	}
}

func TestCleanReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{" duplicate account\t", "duplicate account"},
		{"\u00a0nbsp trimmed\u3000", "nbsp trimmed"},
		{"émoji 👍 and 中文", "émoji 👍 and 中文"},
		{strings.Repeat("é", approval.MaxReasonLen), strings.Repeat("é", approval.MaxReasonLen)},
		{" " + strings.Repeat("x", approval.MaxReasonLen) + " ", strings.Repeat("x", approval.MaxReasonLen)},
	} {
		if got, err := approval.CleanReason(tc.in); err != nil || got != tc.want {
			t.Errorf("CleanReason(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, in string }{
		{"too long", strings.Repeat("é", approval.MaxReasonLen+1)},
		{"newline", "a\nb"},
		{"carriage return", "a\rb"},
		{"tab inside", "a\tb"},
		{"NUL", "a\x00"},
		{"DEL", "a\x7f"},
		{"C1 control", "a\u0085b"},
		{"bidi override", "a\u202eb"},
		{"bidi isolate", "a\u2066b"},
		{"invalid UTF-8", "a\xc3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := approval.CleanReason(tc.in)
			checkInvalid(t, err, "rejection reason")
			if got != "" {
				t.Errorf("CleanReason(%q) = %q with its error", tc.in, got)
			}
		})
	}
}

func TestRequestValidate(t *testing.T) {
	t.Parallel()
	pending, err := approval.NewRequest(authz.NewOrgID(), authz.NewUserID(), "ada@example.com", "Ada", t0)
	if err != nil {
		t.Fatal(err)
	}
	decided, err := pending.Reject(authz.NewUserID(), "no", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    approval.Request
		edit func(*approval.Request)
	}{
		{"zero", approval.Request{}, func(*approval.Request) {}},
		{"any status", pending, func(r *approval.Request) { r.Status = approval.AnyStatus }},
		{"unknown status", pending, func(r *approval.Request) { r.Status = 7 }},
		{"pending with a decider", pending, func(r *approval.Request) { r.DecidedBy = authz.NewUserID() }},
		{"pending with a decision time", pending, func(r *approval.Request) { r.DecidedAt = t0 }},
		{"approved without decider", pending, func(r *approval.Request) { r.Status, r.DecidedAt = approval.Approved, t0 }},
		{"approved without time", pending, func(r *approval.Request) { r.Status, r.DecidedBy = approval.Approved, authz.NewUserID() }},
		{"approved with a reason", decided, func(r *approval.Request) { r.Status = approval.Approved }},
		{"rejected with an untrimmed reason", decided, func(r *approval.Request) { r.Reason = "no " }},
		{"created in nanoseconds", pending, func(r *approval.Request) { r.CreatedAt = r.CreatedAt.Add(1) }},
		{"decided in nanoseconds", decided, func(r *approval.Request) { r.DecidedAt = r.DecidedAt.Add(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.r
			tc.edit(&r)
			checkInvalid(t, r.Validate(), "")
		})
	}
}

func TestValidateDecision(t *testing.T) {
	t.Parallel()
	by := authz.NewUserID()
	for _, tc := range []struct {
		name   string
		to     approval.Status
		by     authz.UserID
		reason string
		at     time.Time
		ok     bool
	}{
		{"approve", approval.Approved, by, "", t0, true},
		{"reject", approval.Rejected, by, "", t0, true},
		{"reject with reason", approval.Rejected, by, "spam", t0, true},
		{"to pending", approval.Pending, by, "", t0, false},
		{"to any", approval.AnyStatus, by, "", t0, false},
		{"no decider", approval.Approved, "", "", t0, false},
		{"approve with reason", approval.Approved, by, "ok", t0, false},
		{"untrimmed reason", approval.Rejected, by, "spam ", t0, false},
		{"no time", approval.Rejected, by, "", time.Time{}, false},
		{"nanoseconds", approval.Rejected, by, "", t0.Add(time.Nanosecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := approval.ValidateDecision(tc.to, tc.by, tc.reason, tc.at)
			if tc.ok {
				if err != nil {
					t.Errorf("ValidateDecision = %v, want nil", err)
				}
				return
			}
			checkInvalid(t, err, "")
		})
	}
}

func TestConflictErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{approval.ErrPending, approval.ErrDecided} {
		if !errors.Is(err, authz.ErrConflict) || errors.Is(err, authz.ErrInvalid) || !strings.HasPrefix(err.Error(), "approval: ") {
			t.Errorf("%v: want an approval error matching authz.ErrConflict only", err)
		}
	}
	if errors.Is(approval.ErrPending, approval.ErrDecided) {
		t.Error("ErrPending matches ErrDecided")
	}
}
