package authz

import "fmt"

// Role is what a user is in an organization, or on the whole platform.
//
// The zero Role is RoleNone: "no role", never a valid assignment. The order
// of the constants is part of the API (they are persisted by name, but
// callers may switch on them) and never changes.
type Role uint8

const (
	// RoleNone is the zero value: the user holds no role.
	RoleNone Role = iota
	// Member holds only the categories granted to them in their org.
	Member
	// Manager has management authority in one org and every category there.
	Manager
	// PlatformAdmin holds every category in every org and the operations
	// screens. It is platform-wide, never scoped to an org.
	PlatformAdmin
)

var roleNames = [...]string{
	RoleNone:      "none",
	Member:        "member",
	Manager:       "manager",
	PlatformAdmin: "platformadmin",
}

// String returns the role's lower-case name: "member", "manager",
// "platformadmin" (or "none" for RoleNone).
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Valid reports whether r is one of Member, Manager and PlatformAdmin.
func (r Role) Valid() bool { return r >= Member && r <= PlatformAdmin }

// OrgScoped reports whether r is held in one org (Member, Manager) rather
// than platform-wide.
func (r Role) OrgScoped() bool { return r == Member || r == Manager }

// ParseRole parses a role's lower-case name. Anything else, "none"
// included, is an *InvalidError matching ErrInvalid: a name never turns
// silently into a zero value.
func ParseRole(s string) (Role, error) {
	for r := Member; r <= PlatformAdmin; r++ {
		if roleNames[r] == s {
			return r, nil
		}
	}
	return RoleNone, invalid("role", s, "want member, manager or platformadmin")
}

// MarshalText implements encoding.TextMarshaler; RoleNone and unknown
// values are refused so they never reach JSON or a database.
func (r Role) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, invalid("role", r.String(), "not a role")
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseRole.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
