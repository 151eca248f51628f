package approval

import (
	"fmt"
	"time"

	"github.com/kiops/iam/authz"
)

// Period is the request period filter of the Pending Approvals tab: the
// last 7 days, the last 30 days, or all requests. The zero Period is
// AllTime, so a filter nobody set hides nothing.
type Period uint8

const (
	// AllTime: every request, however old. Spelled "all".
	AllTime Period = iota
	// Last7Days: requests made in the 7 days (168 hours) before now.
	// Spelled "7d".
	Last7Days
	// Last30Days: requests made in the 30 days (720 hours) before now.
	// Spelled "30d".
	Last30Days
)

var periodNames = [...]string{
	AllTime:    "all",
	Last7Days:  "7d",
	Last30Days: "30d",
}

// Periods returns the periods in the order the tab offers them: 7 days,
// 30 days, All.
func Periods() []Period { return []Period{Last7Days, Last30Days, AllTime} }

// Since returns the earliest creation time a request may have to fall in
// p, counted back from now in whole 24-hour days (so a daylight saving
// change does not move it): now minus 7×24 hours for Last7Days, now minus
// 30×24 hours for Last30Days, and the zero time (no bound) for AllTime. A
// request created exactly at Since is in the period (Store.Requests
// includes its since bound).
//
// Since panics on an invalid Period, which only a programming error can
// produce (parse untrusted input with ParsePeriod).
func (p Period) Since(now time.Time) time.Time {
	switch p {
	case AllTime:
		return time.Time{}
	case Last7Days:
		return now.Add(-7 * 24 * time.Hour)
	case Last30Days:
		return now.Add(-30 * 24 * time.Hour)
	}
	panic(fmt.Sprintf("approval: Since of invalid %v", p))
}

// String returns the period's spelling: "7d", "30d" or "all".
func (p Period) String() string {
	if int(p) < len(periodNames) {
		return periodNames[p]
	}
	return fmt.Sprintf("Period(%d)", uint8(p))
}

// Valid reports whether p is one of AllTime, Last7Days and Last30Days.
func (p Period) Valid() bool { return int(p) < len(periodNames) }

// ParsePeriod parses "7d", "30d" or "all", exactly (no upper case, no
// spaces, no empty string). Anything else is an *authz.InvalidError
// matching authz.ErrInvalid.
func ParsePeriod(s string) (Period, error) {
	for p, name := range periodNames {
		if name == s {
			return Period(p), nil
		}
	}
	return AllTime, &authz.InvalidError{Field: "request period", Value: s, Reason: "want 7d, 30d or all"}
}

// MarshalText implements encoding.TextMarshaler; invalid values are
// refused.
func (p Period) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, &authz.InvalidError{Field: "request period", Value: p.String(), Reason: "not a period"}
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParsePeriod.
func (p *Period) UnmarshalText(b []byte) error {
	v, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
