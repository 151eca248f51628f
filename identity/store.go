package identity

import (
	"context"
	"time"

	"github.com/kiops/iam/authz"
)

// Store keeps organizations, users, sessions and password-reset tokens.
// The GORM adapter implements it over the database; identitytest.Store is
// an in-memory fake; every implementation must pass identitytest.Run.
//
// The Service calls a Store inside the one transaction of each operation,
// so a Store bound to a transaction sees and writes that transaction's
// state. Implementations must be safe for concurrent use by the
// transactions of several goroutines and several replicas: the guarantees
// below hold for concurrent calls, not just sequential ones.
//
// The Store does no normalization: callers pass emails already canonical
// (CanonicalEmail) and names already clean, and a Store compares emails
// byte for byte. Writes check their input with User.Validate,
// Org.Validate, Session.Validate and ResetToken.Validate and refuse it
// with an error matching authz.ErrInvalid, writing nothing.
//
// Times are stored to the microsecond and read back equal (time.Time.Equal;
// the Location may differ). Every error matches one of the module's kinds:
// authz.ErrInvalid for malformed input, authz.ErrNotFound, authz.ErrConflict,
// and otherwise a storage failure, which the Service treats as a failure
// to act and rolls back. Deleting what is already gone is ErrNotFound for
// one object (DeleteOrg, DeleteUser, DeleteSession) and no error for "all
// of a user's" (DeleteSessions, DeleteResetTokens).
type Store interface {
	// CreateOrg stores a new org. An ID already stored is ErrConflict.
	// Org names need not be unique.
	CreateOrg(ctx context.Context, o Org) error
	// Org returns the org with the given id, or ErrNotFound.
	Org(ctx context.Context, id authz.OrgID) (Org, error)
	// Orgs returns every org, by name, then by ID among equal names.
	Orgs(ctx context.Context) ([]Org, error)
	// RenameOrg sets the org's name (CleanOrgName must return it
	// unchanged, else ErrInvalid). A missing org is ErrNotFound.
	RenameOrg(ctx context.Context, id authz.OrgID, name string) error
	// DeleteOrg deletes the org (the Service removes its memberships,
	// grants and requests in the same transaction). A missing org is
	// ErrNotFound.
	DeleteOrg(ctx context.Context, id authz.OrgID) error

	// CreateUser stores a new account. ErrConflict when a live (not
	// deleted) user has the same email, of two concurrent creations with
	// one email exactly one succeeds; ErrConflict too when the ID was
	// ever stored, deleted or not.
	CreateUser(ctx context.Context, u User) error
	// User returns the live user with the given id; a deleted or missing
	// one is ErrNotFound.
	User(ctx context.Context, id authz.UserID) (User, error)
	// UserByEmail returns the live user with the given canonical email, or
	// ErrNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// Users returns every live user, by email.
	Users(ctx context.Context) ([]User, error)
	// UpdateUser writes the fields up sets, and up.At as UpdatedAt, to
	// the live user id, in one statement; the others stay as they are
	// (see UserUpdate). An up that does not validate is ErrInvalid; a
	// deleted or missing user is ErrNotFound.
	UpdateUser(ctx context.Context, id authz.UserID, up UserUpdate) error
	// DeleteUser soft-deletes the live user id at the given time: it is no
	// longer found by User, UserByEmail or Users, and its email is free
	// for a new account with a new ID, which inherits nothing. The row
	// stays so that history can still name it. A deleted or missing user
	// is ErrNotFound.
	DeleteUser(ctx context.Context, id authz.UserID, at time.Time) error

	// CreateSession stores a session. A hash already stored is
	// ErrConflict. The Store does not check that the user exists: the
	// Service resolves a session's user on every use.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session with the given hash, expired or not
	// (the caller checks Session.Expired), or ErrNotFound.
	Session(ctx context.Context, h TokenHash) (Session, error)
	// DeleteSession deletes one session (logout). A missing one is
	// ErrNotFound.
	DeleteSession(ctx context.Context, h TokenHash) error
	// DeleteSessions deletes every session of user: after a password
	// change or reset, a deactivation or a deletion.
	DeleteSessions(ctx context.Context, user authz.UserID) error

	// CreateResetToken stores a reset token and voids every other reset
	// token of the same user, used or not, expired or not: only the
	// newest one works. A hash already stored is ErrConflict.
	CreateResetToken(ctx context.Context, t ResetToken) error
	// UseResetToken redeems the token with the given hash at now: if it
	// is stored, unused and not expired at now (now before ExpiresAt), it
	// is marked used and returned. Otherwise (unknown, voided, used or
	// expired) it is ErrNotFound. Single use holds under concurrency: of
	// two concurrent calls for one hash, exactly one succeeds, with one
	// conditional write ("UPDATE … WHERE hash = ? AND used_at IS NULL AND
	// expires_at > ?"), never a read then a write.
	UseResetToken(ctx context.Context, h TokenHash, now time.Time) (ResetToken, error)
	// DeleteResetTokens voids every reset token of user.
	DeleteResetTokens(ctx context.Context, user authz.UserID) error

	// DeleteExpired removes the sessions and reset tokens that have
	// expired at now (ExpiresAt at or before now) and used reset tokens:
	// housekeeping, so that the tables do not grow without bound. It
	// never removes anything still usable.
	DeleteExpired(ctx context.Context, now time.Time) error
}
