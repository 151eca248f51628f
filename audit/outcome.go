package audit

import (
	"fmt"

	"github.com/kiops/iam/authz"
)

// Outcome says whether the recorded action happened. The order of the
// constants never changes; they are stored by name (String).
type Outcome uint8

const (
	// AnyOutcome is the zero Outcome. No event has it; in a Filter it
	// means "either".
	AnyOutcome Outcome = iota
	// Success: the action was carried out.
	Success
	// Denied: the action was refused (not allowed, invalid, a conflict, a
	// failed login); nothing but this event was written. The event's
	// Reason says why.
	Denied
)

var outcomeNames = [...]string{AnyOutcome: "any", Success: "success", Denied: "denied"}

// String returns "success" or "denied" (or "any" for AnyOutcome).
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Valid reports whether o is Success or Denied.
func (o Outcome) Valid() bool { return o == Success || o == Denied }

// ParseOutcome parses "success" or "denied", exactly. Anything else, "any"
// included, is an *authz.InvalidError matching authz.ErrInvalid.
func ParseOutcome(s string) (Outcome, error) {
	for _, o := range []Outcome{Success, Denied} {
		if outcomeNames[o] == s {
			return o, nil
		}
	}
	return AnyOutcome, invalid("audit outcome", s, "want success or denied")
}

// MarshalText implements encoding.TextMarshaler; AnyOutcome and unknown
// values are refused so they never reach JSON or a database.
func (o Outcome) MarshalText() ([]byte, error) {
	if !o.Valid() {
		return nil, invalid("audit outcome", o.String(), "not an outcome")
	}
	return []byte(o.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseOutcome.
func (o *Outcome) UnmarshalText(b []byte) error {
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

func invalid(field, value, reason string) error {
	return &authz.InvalidError{Field: field, Value: value, Reason: reason}
}
