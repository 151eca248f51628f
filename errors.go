package iam

import "github.com/kiops/iam/authz"

// The error kinds of the Service. Every error a Service method returns
// matches one of them with errors.Is (they are the module's shared kinds
// from package authz, repeated here so that callers of the Service need not
// import authz to match them). Their messages are for people; internal
// details never reach them.
var (
	// ErrInvalid: the input is malformed; nothing was changed.
	ErrInvalid = authz.ErrInvalid
	// ErrForbidden: the actor may not do this; nothing but the denied
	// audit event was written.
	ErrForbidden = authz.ErrForbidden
	// ErrNotFound: no such object, or one of another org (which answers
	// exactly like a missing one).
	ErrNotFound = authz.ErrNotFound
	// ErrConflict: the operation clashes with the current state or would
	// break an invariant (for example ErrLastPlatformAdmin).
	ErrConflict = authz.ErrConflict
	// ErrUnauthenticated: no valid identity (wrong password, unknown or
	// ended session, spent or expired reset token).
	ErrUnauthenticated = authz.ErrUnauthenticated

	// ErrLastPlatformAdmin: the platform must keep at least one active
	// PlatformAdmin. It matches ErrConflict.
	ErrLastPlatformAdmin = authz.ErrLastPlatformAdmin
	// ErrLastManager: an org that has a Manager must keep one. It matches
	// ErrConflict.
	ErrLastManager = authz.ErrLastManager
	// ErrSelfRoleChange: nobody changes their own role. It matches
	// ErrForbidden.
	ErrSelfRoleChange = authz.ErrSelfRoleChange
)
