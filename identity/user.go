package identity

import (
	"fmt"
	"time"

	"github.com/kiops/iam/authz"
)

// Status is the state of an account. The zero Status is not a status: it
// is refused wherever one is stored or parsed, so a forgotten field never
// reads as an active account. The order of the constants never changes.
type Status uint8

const (
	// Active accounts may log in and are checked normally.
	Active Status = iota + 1
	// Deactivated accounts cannot log in, hold no session, and every
	// permission check for them denies; reactivation restores them.
	Deactivated
)

var statusNames = [...]string{Active: "active", Deactivated: "deactivated"}

// String returns "active" or "deactivated" ("Status(n)" for other values).
func (s Status) String() string {
	if s.Valid() {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Valid reports whether s is Active or Deactivated.
func (s Status) Valid() bool { return s == Active || s == Deactivated }

// ParseStatus parses "active" or "deactivated". Anything else is an
// *authz.InvalidError matching authz.ErrInvalid.
func ParseStatus(s string) (Status, error) {
	switch s {
	case "active":
		return Active, nil
	case "deactivated":
		return Deactivated, nil
	}
	return 0, &authz.InvalidError{Field: "status", Value: s, Reason: "want active or deactivated"}
}

// MarshalText implements encoding.TextMarshaler. An invalid Status is an
// error matching authz.ErrInvalid, so it never reaches JSON or a database.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, &authz.InvalidError{Field: "status", Value: s.String(), Reason: "not a status"}
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

// User is an account. Email is canonical (see CanonicalEmail) and unique
// among live accounts; Name is display text only and never reaches the
// authorization policy.
type User struct {
	ID    authz.UserID
	Email string // canonical: CanonicalEmail(Email) == Email
	Name  string // CleanName(Name) == Name
	// PasswordHash is the PHC string Hasher.Hash returned, or "" for an
	// account that has no password yet (it cannot log in until one is set
	// through a reset token).
	PasswordHash string
	Status       Status
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Validate reports whether u can be stored: a canonical ID and email, a
// clean name, a valid status and a creation time. Any fault is an error
// matching authz.ErrInvalid. Stores call it before they write.
func (u User) Validate() error {
	if !u.ID.Valid() {
		return &authz.InvalidError{Field: "user id", Value: string(u.ID), Reason: "not an id this module issued"}
	}
	if e, err := CanonicalEmail(u.Email); err != nil {
		return err
	} else if e != u.Email {
		return &authz.InvalidError{Field: "email", Value: u.Email, Reason: "not in canonical form (see identity.CanonicalEmail)"}
	}
	if err := checkName(u.Name); err != nil {
		return err
	}
	if err := checkStatus(u.Status); err != nil {
		return err
	}
	if u.CreatedAt.IsZero() {
		return &authz.InvalidError{Field: "created at", Value: "", Reason: "missing"}
	}
	return nil
}

// UserUpdate is a change to one live account. The fields it sets are
// written and its zero fields are left as the account has them, so that
// two changes to different fields of one account (a name change and a
// deactivation, say) never undo each other, whatever their order: no
// caller writes back a copy of the account it read earlier. At, the new
// UpdatedAt, is required. A password hash cannot be cleared this way.
type UserUpdate struct {
	Name         string // CleanName(Name) == Name, or "" to keep the name
	PasswordHash string // a PHC string Hasher.Hash returned, or "" to keep it
	Status       Status // or 0 to keep the status
	At           time.Time
}

// Validate reports whether up can be applied: something to change, a
// clean name and a valid status where set, and a time. Any fault is an
// error matching authz.ErrInvalid. Stores call it before they write.
func (up UserUpdate) Validate() error {
	if up.Name == "" && up.PasswordHash == "" && up.Status == 0 {
		return &authz.InvalidError{Field: "user update", Value: "", Reason: "changes nothing"}
	}
	if up.Name != "" {
		if err := checkName(up.Name); err != nil {
			return err
		}
	}
	if up.Status != 0 {
		if err := checkStatus(up.Status); err != nil {
			return err
		}
	}
	if up.At.IsZero() {
		return &authz.InvalidError{Field: "updated at", Value: "", Reason: "missing"}
	}
	return nil
}

// Apply returns u as up leaves it: the fields up sets, and up.At as
// UpdatedAt. It does not validate up.
func (up UserUpdate) Apply(u User) User {
	if up.Name != "" {
		u.Name = up.Name
	}
	if up.PasswordHash != "" {
		u.PasswordHash = up.PasswordHash
	}
	if up.Status != 0 {
		u.Status = up.Status
	}
	u.UpdatedAt = up.At
	return u
}

// checkName refuses a name that is not in clean form.
func checkName(name string) error {
	if n, err := CleanName(name); err != nil {
		return err
	} else if n != name {
		return &authz.InvalidError{Field: "name", Value: name, Reason: "not in clean form (see identity.CleanName)"}
	}
	return nil
}

func checkStatus(s Status) error {
	if !s.Valid() {
		return &authz.InvalidError{Field: "status", Value: s.String(), Reason: "not a status"}
	}
	return nil
}

// Org is an organization: a tenant. Name is its display title (see
// CleanOrgName); it need not be unique and never reaches the policy.
type Org struct {
	ID        authz.OrgID
	Name      string
	CreatedAt time.Time
}

// Validate reports whether o can be stored: a canonical ID, a clean name
// and a creation time. Any fault is an error matching authz.ErrInvalid.
func (o Org) Validate() error {
	if !o.ID.Valid() {
		return &authz.InvalidError{Field: "org id", Value: string(o.ID), Reason: "not an id this module issued"}
	}
	if n, err := CleanOrgName(o.Name); err != nil {
		return err
	} else if n != o.Name {
		return &authz.InvalidError{Field: "org name", Value: o.Name, Reason: "not in clean form (see identity.CleanOrgName)"}
	}
	if o.CreatedAt.IsZero() {
		return &authz.InvalidError{Field: "created at", Value: "", Reason: "missing"}
	}
	return nil
}

// Session is a login: the SHA-256 of the bearer token the user holds
// (never the token itself), whose it is, and when it ends. Sessions have an
// absolute lifetime (DefaultSessionLifetime unless configured); ending
// them early is a deletion.
type Session struct {
	Hash      TokenHash
	User      authz.UserID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Expired reports whether the session has ended at now: at ExpiresAt or
// later.
func (s Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// Validate reports whether s can be stored: a hash, a canonical user id,
// and ExpiresAt after CreatedAt. Any fault is an error matching
// authz.ErrInvalid.
func (s Session) Validate() error {
	return validateGrant("session", s.Hash, s.User, s.CreatedAt, s.ExpiresAt)
}

// ResetToken is an outstanding password reset: the SHA-256 of the token
// sent to the user, whose it is, and when it expires (at most
// MaxResetTokenLifetime after creation). A reset token works once; a newer
// one voids older ones.
type ResetToken struct {
	Hash      TokenHash
	User      authz.UserID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Expired reports whether the token has expired at now: at ExpiresAt or
// later.
func (t ResetToken) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Validate reports whether t can be stored: a hash, a canonical user id,
// and ExpiresAt after CreatedAt by at most MaxResetTokenLifetime. Any
// fault is an error matching authz.ErrInvalid.
func (t ResetToken) Validate() error {
	if err := validateGrant("reset token", t.Hash, t.User, t.CreatedAt, t.ExpiresAt); err != nil {
		return err
	}
	if t.ExpiresAt.Sub(t.CreatedAt) > MaxResetTokenLifetime {
		return &authz.InvalidError{Field: "reset token", Value: t.ExpiresAt.Sub(t.CreatedAt).String(), Reason: "expires more than 30 minutes after creation"}
	}
	return nil
}

func validateGrant(field string, h TokenHash, u authz.UserID, created, expires time.Time) error {
	switch {
	case h.IsZero():
		return &authz.InvalidError{Field: field, Value: "", Reason: "missing token hash"}
	case !u.Valid():
		return &authz.InvalidError{Field: "user id", Value: string(u), Reason: "not an id this module issued"}
	case created.IsZero():
		return &authz.InvalidError{Field: field, Value: "", Reason: "missing creation time"}
	case !expires.After(created):
		return &authz.InvalidError{Field: field, Value: expires.String(), Reason: "expires before it was created"}
	}
	return nil
}
