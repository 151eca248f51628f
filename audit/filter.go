package audit

import (
	"fmt"
	"slices"
	"time"

	"github.com/kiops/iam/authz"
)

// Limits of one page of events.
const (
	// DefaultLimit is the page size of a Filter whose Limit is 0.
	DefaultLimit = 100
	// MaxLimit is the largest Limit a Filter may ask for.
	MaxLimit = 1000
)

// Filter selects events for Store.Events: its scope (which orgs' events
// the reader may see at all), then narrowing fields, each of which
// applies only when set (non-zero), and a page: at most Limit events,
// newest first, starting below the cursor Before.
//
// The scope is explicit and fails closed: a Filter with neither Orgs nor
// AllOrgs is refused, so a forgotten scope never reads as "everything".
// Build the scope with Scope, which asks authz.CanViewAudit, rather than by
// hand.
//
// A Filter is a value; Normalize and Match do not modify it.
type Filter struct {
	// Orgs is the scope: only events of these orgs. Events without an org
	// are outside every Orgs scope.
	Orgs []authz.OrgID
	// AllOrgs is the scope of a PlatformAdmin: events of every org and
	// events without one. It excludes Orgs.
	AllOrgs bool

	// Org narrows to one org's events (within the scope: an Org outside
	// Orgs selects nothing).
	Org authz.OrgID
	// Actor and Target narrow to events by, or on, one person.
	Actor, Target authz.UserID
	// Action narrows to one kind of event.
	Action Action
	// Outcome narrows to successes or denials; AnyOutcome is both.
	Outcome Outcome
	// Since and Until narrow to events with Since <= Time < Until.
	Since, Until time.Time

	// Limit is the most events to return: 0 means DefaultLimit, at most
	// MaxLimit.
	Limit int
	// Before is the cursor: only events with ID < Before. Zero is no
	// cursor (start from the newest). To read the next page, pass the ID
	// of the last event of this one; pages stay stable while new events
	// arrive, since those have greater IDs.
	Before int64
}

// Normalize checks f and returns it ready for a store: Limit set
// (DefaultLimit for 0) and Orgs copied, so the store may keep it.
//
// It refuses, with an *authz.InvalidError matching authz.ErrInvalid: no
// scope (neither Orgs nor AllOrgs) or both; an id in Orgs, Org, Actor or
// Target that is not canonical; an undeclared Action; an invalid Outcome;
// an Until that is not after Since when both are set; a negative Limit or
// one above MaxLimit; a negative Before.
func (f Filter) Normalize() (Filter, error) {
	switch {
	case f.AllOrgs && len(f.Orgs) > 0:
		return Filter{}, invalid("audit filter scope", "", "both AllOrgs and Orgs set")
	case !f.AllOrgs && len(f.Orgs) == 0:
		return Filter{}, invalid("audit filter scope", "", "no scope: set Orgs, or AllOrgs for a PlatformAdmin (use audit.Scope)")
	}
	for _, o := range f.Orgs {
		if !o.Valid() {
			return Filter{}, invalid("audit filter org id", string(o), "not an id this module issued")
		}
	}
	switch {
	case f.Org != "" && !f.Org.Valid():
		return Filter{}, invalid("audit filter org id", string(f.Org), "not an id this module issued")
	case f.Actor != "" && !f.Actor.Valid():
		return Filter{}, invalid("audit filter actor user id", string(f.Actor), "not an id this module issued")
	case f.Target != "" && !f.Target.Valid():
		return Filter{}, invalid("audit filter target user id", string(f.Target), "not an id this module issued")
	case f.Action != "" && !f.Action.Valid():
		return Filter{}, invalid("audit action", string(f.Action), "not an action this module records")
	case f.Outcome != AnyOutcome && !f.Outcome.Valid():
		return Filter{}, invalid("audit outcome", f.Outcome.String(), "want any, success or denied")
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		return Filter{}, invalid("audit filter time range", f.Since.Format(time.RFC3339)+" to "+f.Until.Format(time.RFC3339), "until must be after since")
	case f.Limit < 0 || f.Limit > MaxLimit:
		return Filter{}, invalid("audit filter limit", fmt.Sprint(f.Limit), fmt.Sprintf("want 1 to %d, or 0 for %d", MaxLimit, DefaultLimit))
	case f.Before < 0:
		return Filter{}, invalid("audit filter cursor", fmt.Sprint(f.Before), "negative")
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	f.Orgs = slices.Clone(f.Orgs)
	return f, nil
}

// Match reports whether e is selected by f's scope, narrowing fields and
// cursor (Limit aside). It is what every Store's query must compute; the
// in-memory fake uses it as is. It does not validate f: an invalid or
// unscoped Filter matches nothing.
func (f Filter) Match(e Event) bool {
	switch {
	case f.AllOrgs == (len(f.Orgs) > 0): // no scope, or both
		return false
	case !f.AllOrgs && (e.Org == "" || !slices.Contains(f.Orgs, e.Org)):
		return false
	case f.Org != "" && e.Org != f.Org,
		f.Actor != "" && e.Actor != f.Actor,
		f.Target != "" && e.Target != f.Target,
		f.Action != "" && e.Action != f.Action,
		f.Outcome != AnyOutcome && e.Outcome != f.Outcome,
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		f.Before > 0 && e.ID >= f.Before:
		return false
	}
	return true
}
