package approval

import (
	"fmt"

	"github.com/kiops/iam/authz"
)

// Status is where a registration request stands. The order of the
// constants never changes; they are persisted by name (String).
type Status uint8

const (
	// AnyStatus is the zero Status. No request has it; as the status
	// argument of Store.Requests it means "every status".
	AnyStatus Status = iota
	// Pending: waiting in the org's queue for a Manager or PlatformAdmin.
	Pending
	// Approved: the person was made a Member of the org. Final.
	Approved
	// Rejected: refused, with an optional reason. Final; the person may
	// apply again with a new request.
	Rejected
)

var statusNames = [...]string{
	AnyStatus: "any",
	Pending:   "pending",
	Approved:  "approved",
	Rejected:  "rejected",
}

// String returns the status's lower-case name: "pending", "approved",
// "rejected" (or "any" for AnyStatus).
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Valid reports whether s is Pending, Approved or Rejected.
func (s Status) Valid() bool { return s >= Pending && s <= Rejected }

// ParseStatus parses a status's lower-case name. Anything else, "any"
// included, is an *authz.InvalidError matching authz.ErrInvalid.
func ParseStatus(s string) (Status, error) {
	for st := Pending; st <= Rejected; st++ {
		if statusNames[st] == s {
			return st, nil
		}
	}
	return AnyStatus, &authz.InvalidError{Field: "request status", Value: s, Reason: "want pending, approved or rejected"}
}

// MarshalText implements encoding.TextMarshaler; AnyStatus and unknown
// values are refused so they never reach JSON or a database.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, &authz.InvalidError{Field: "request status", Value: s.String(), Reason: "not a status"}
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseStatus.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
