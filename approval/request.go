package approval

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/textcheck"
)

// Bounds of the text a Request holds. Emails and names are snapshots of
// what package identity accepted, so these bounds only guard against
// snapshots no identity would produce.
const (
	// MaxEmailLen is the longest email snapshot, in bytes: 254, the
	// longest address SMTP can carry (RFC 5321).
	MaxEmailLen = 254
	// MaxNameLen is the longest name snapshot, in Unicode code points.
	MaxNameLen = 256
	// MaxReasonLen is the longest rejection reason, in Unicode code
	// points, after trimming.
	MaxReasonLen = 500
)

// The conflicts of this package. Each matches authz.ErrConflict with
// errors.Is as well as itself.
var (
	// ErrPending: the person already has a Pending request in this org;
	// a second one is refused until the first is decided.
	ErrPending error = &kindError{"approval: a registration request of this person is already pending in this organization", authz.ErrConflict}
	// ErrDecided: the request was already approved or rejected; a
	// request is decided once. (A rejected person applies again with a
	// new request.)
	ErrDecided error = &kindError{"approval: the registration request was already decided", authz.ErrConflict}
)

// kindError is a sentinel with its own message that also matches its kind.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Request is one registration request: a person asking to join an org.
// It is a value; the functions of this package return changed copies and
// never modify a Request in place, so one may be shared between
// goroutines.
type Request struct {
	ID   RequestID
	Org  authz.OrgID  // the org whose queue the request is in
	User authz.UserID // the person asking, whose account exists already
	// Email and Name are a snapshot taken when the request was made, as
	// the Pending Approvals tab shows them (the account may change later).
	Email, Name string
	Status      Status
	// CreatedAt is when the request was made, in UTC whole microseconds.
	CreatedAt time.Time
	// DecidedAt and DecidedBy say when and by whom the request was
	// approved or rejected; zero while Pending.
	DecidedAt time.Time
	DecidedBy authz.UserID
	// Reason is the optional rejection reason, as CleanReason returns it;
	// always empty unless Rejected.
	Reason string
}

// NewRequest returns a new Pending request of user to join org, with a
// fresh ID, the email and name snapshot as the tab will show them, and
// CreatedAt set to at in UTC, truncated to whole microseconds (what every
// database stores exactly, so a stored request reads back equal).
//
// It validates its input (canonical ids, a non-blank email and name
// within MaxEmailLen and MaxNameLen, valid UTF-8 without control or
// bidirectional-formatting characters, a non-zero time) and returns an
// *authz.InvalidError otherwise. It does not check that the person has no
// other Pending request in org: Store.CreateRequest does, atomically. A
// person whose earlier request was rejected applies again by calling
// NewRequest again.
func NewRequest(org authz.OrgID, user authz.UserID, email, name string, at time.Time) (Request, error) {
	r := Request{
		ID:        NewRequestID(),
		Org:       org,
		User:      user,
		Email:     email,
		Name:      name,
		Status:    Pending,
		CreatedAt: stamp(at),
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Validate checks that r is a well-formed request in a consistent state:
// canonical ids; email and name snapshots as NewRequest requires them;
// CreatedAt non-zero and in whole microseconds; and, by Status,
//   - Pending: no DecidedAt, DecidedBy or Reason;
//   - Approved: DecidedAt (whole microseconds) and a canonical DecidedBy,
//     no Reason;
//   - Rejected: DecidedAt and DecidedBy, and a Reason that CleanReason
//     leaves as it is (possibly empty).
//
// Anything else is an *authz.InvalidError matching authz.ErrInvalid.
// Stores call it before they write a request.
func (r Request) Validate() error {
	switch {
	case !r.ID.Valid():
		return invalid("request id", string(r.ID), "not an id this module issued")
	case !r.Org.Valid():
		return invalid("request org id", string(r.Org), "not an id this module issued")
	case !r.User.Valid():
		return invalid("request user id", string(r.User), "not an id this module issued")
	}
	if err := checkSnapshot("request email", r.Email, MaxEmailLen, len(r.Email)); err != nil {
		return err
	}
	if err := checkSnapshot("request name", r.Name, MaxNameLen, utf8.RuneCountInString(r.Name)); err != nil {
		return err
	}
	if err := checkStamp("request creation time", r.CreatedAt); err != nil {
		return err
	}
	switch r.Status {
	case Pending:
		if !r.DecidedAt.IsZero() || r.DecidedBy != "" || r.Reason != "" {
			return invalid("request", string(r.ID), "a pending request has no decision")
		}
		return nil
	case Approved, Rejected:
		return ValidateDecision(r.Status, r.DecidedBy, r.Reason, r.DecidedAt)
	default:
		return invalid("request status", r.Status.String(), "want pending, approved or rejected")
	}
}

// Approve returns r approved by by at the time at (in UTC, truncated to
// whole microseconds).
//
// Errors, in this order: a malformed r, by or at is an
// *authz.InvalidError (authz.ErrInvalid); by being the requester is
// authz.ErrSelfApproval (authz.ErrForbidden), a last line of defence
// behind authz.CanDecideRegistration, which the Service asks first; an r
// that is not Pending is ErrDecided (authz.ErrConflict), naming what it
// was.
//
// Approve only computes the new state. The Service persists it with
// Store.DecideRequest, which refuses it if the stored request was decided
// meanwhile.
func (r Request) Approve(by authz.UserID, at time.Time) (Request, error) {
	return r.decide(Approved, by, "", at)
}

// Reject returns r rejected by by at the time at (in UTC, truncated to
// whole microseconds), with the optional reason cleaned by CleanReason.
// The person may apply again: a new Request, made with NewRequest.
//
// Errors are those of Approve, and an *authz.InvalidError for a reason
// CleanReason refuses.
func (r Request) Reject(by authz.UserID, reason string, at time.Time) (Request, error) {
	return r.decide(Rejected, by, reason, at)
}

func (r Request) decide(to Status, by authz.UserID, reason string, at time.Time) (Request, error) {
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	reason, err := CleanReason(reason)
	if err != nil {
		return Request{}, err
	}
	at = stamp(at)
	if err := ValidateDecision(to, by, reason, at); err != nil {
		return Request{}, err
	}
	if by == r.User {
		return Request{}, authz.ErrSelfApproval
	}
	if r.Status != Pending {
		return Request{}, fmt.Errorf("%w (%s)", ErrDecided, r.Status)
	}
	r.Status, r.DecidedBy, r.Reason, r.DecidedAt = to, by, reason, at
	return r, nil
}

// ValidateDecision checks the arguments of a decision as Store.DecideRequest
// receives them: to is Approved or Rejected; by is a canonical UserID; at is
// non-zero and in whole microseconds; reason is empty for Approved and, for
// Rejected, left unchanged by CleanReason. Anything else is an
// *authz.InvalidError. Stores call it before they write; it does not look
// at the request being decided.
func ValidateDecision(to Status, by authz.UserID, reason string, at time.Time) error {
	switch to {
	case Approved:
		if reason != "" {
			return invalid("approval reason", reason, "only a rejection has a reason")
		}
	case Rejected:
		clean, err := CleanReason(reason)
		if err != nil {
			return err
		}
		if clean != reason {
			return invalid("rejection reason", reason, "not cleaned (leading or trailing space)")
		}
	default:
		return invalid("decision", to.String(), "want approved or rejected")
	}
	if !by.Valid() {
		return invalid("decider user id", string(by), "not an id this module issued")
	}
	return checkStamp("decision time", at)
}

// CleanReason returns the rejection reason s trimmed of surrounding white
// space. It refuses (with an *authz.InvalidError) a reason longer than
// MaxReasonLen code points after trimming, invalid UTF-8, and control and
// bidirectional-formatting characters (line breaks included): the reason is
// shown to people and written to logs and exports as one line. The empty
// reason is allowed.
func CleanReason(s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n > MaxReasonLen {
		return "", invalid("rejection reason", s, fmt.Sprintf("%d characters, at most %d allowed", n, MaxReasonLen))
	}
	if why := textcheck.Problem(s); why != "" {
		return "", invalid("rejection reason", s, why)
	}
	return s, nil
}

// checkSnapshot checks an email or name snapshot; n is its length in the
// unit max counts.
func checkSnapshot(field, s string, max, n int) error {
	if strings.TrimSpace(s) == "" {
		return invalid(field, s, "empty")
	}
	if n > max {
		return invalid(field, s, fmt.Sprintf("longer than %d", max))
	}
	if why := textcheck.Problem(s); why != "" {
		return invalid(field, s, why)
	}
	return nil
}

// stamp is t as requests store times: UTC, whole microseconds, no
// monotonic reading.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func checkStamp(field string, t time.Time) error {
	if t.IsZero() {
		return invalid(field, "", "missing")
	}
	if t.Nanosecond()%1000 != 0 {
		return invalid(field, t.Format(time.RFC3339Nano), "not in whole microseconds")
	}
	return nil
}

func invalid(field, value, reason string) error {
	return &authz.InvalidError{Field: field, Value: value, Reason: reason}
}
