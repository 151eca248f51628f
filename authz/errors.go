package authz

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The error kinds of this module, shared by every package of it. Every
// error the module returns matches one of them with errors.Is; the HTTP
// layer maps each kind to one status.
var (
	// ErrInvalid: the input is malformed (an unknown name, an id this
	// module did not issue, an empty value). Nothing was changed.
	ErrInvalid = errors.New("authz: invalid input")
	// ErrForbidden: the actor may not do this. Nothing was changed.
	ErrForbidden = errors.New("authz: forbidden")
	// ErrNotFound: no such object, or one the actor may not know about (an
	// object of another org answers exactly like a missing one).
	ErrNotFound = errors.New("authz: not found")
	// ErrConflict: the operation would break an invariant or clash with
	// the current state. Nothing was changed.
	ErrConflict = errors.New("authz: conflict")
	// ErrUnauthenticated: no valid identity (a wrong password, an unknown,
	// expired or ended session or token). Nothing was changed.
	ErrUnauthenticated = errors.New("authz: unauthenticated")
)

// InvalidError says which input was malformed and why. It matches
// ErrInvalid.
type InvalidError struct {
	Field  string // what was being parsed: "role", "category", "user id", …
	Value  string // the offending input, as given
	Reason string
}

func invalid(field, value, reason string) error {
	return &InvalidError{Field: field, Value: value, Reason: reason}
}

func (e *InvalidError) Error() string {
	v := e.Value
	if len(v) > 64 { // keep hostile input from flooding logs
		cut := 64
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
	}
	return fmt.Sprintf("authz: invalid %s %q: %s", e.Field, v, e.Reason)
}

// Is makes an *InvalidError match ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// InsufficientPermissionsError is the error form of a Decision that denied
// a category check: the "Insufficient permissions" answer of the product,
// naming the categories the person must ask their Manager for. It matches
// ErrForbidden.
type InsufficientPermissionsError struct {
	User     UserID
	Org      OrgID
	Required CategorySet // what the page or action needs
	Missing  CategorySet // the part of Required the user lacks
}

func (e *InsufficientPermissionsError) Error() string {
	var b strings.Builder
	b.WriteString("insufficient permissions: missing ")
	if e.Missing.Len() == 1 {
		b.WriteString("category ")
	} else {
		b.WriteString("categories ")
	}
	b.WriteString(e.Missing.String())
	if e.Org != "" {
		b.WriteString(" in org ")
		b.WriteString(string(e.Org))
	}
	return b.String()
}

// Is makes an *InsufficientPermissionsError match ErrForbidden.
func (e *InsufficientPermissionsError) Is(target error) bool { return target == ErrForbidden }
