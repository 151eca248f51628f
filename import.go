package iam

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// ImportOrg is an organization to import.
type ImportOrg struct {
	ID   authz.OrgID // required, canonical (authz.NewOrgID for new ones)
	Name string      // cleaned like CreateOrg's names (identity.CleanOrgName)
}

// ImportUser is an account to import with its grants. It is imported
// active.
type ImportUser struct {
	ID    authz.UserID // required, canonical (authz.NewUserID)
	Email string       // canonicalized like SignUp's (identity.CanonicalEmail); unique among live accounts
	Name  string       // cleaned like SignUp's (identity.CleanName)
	// PasswordHash is an argon2id hash in the PHC format identity.Hasher
	// writes ("$argon2id$v=19$m=..,t=..,p=..$salt$key"), carried over
	// from another system (see identity.CheckPasswordHash); empty means
	// the account has no usable password until a reset (ForgotPassword).
	PasswordHash  string
	PlatformAdmin bool
	// Memberships are the account's orgs, each with role Member or
	// Manager and any categories. An org is one of the batch or one
	// stored already.
	Memberships map[authz.OrgID]authz.Membership
}

// ImportBatch is what one Import call writes in one transaction.
type ImportBatch struct {
	Orgs  []ImportOrg
	Users []ImportUser
}

// ImportResult counts what one Import call wrote.
type ImportResult struct {
	Orgs, Users, Rules int
	// Event is the ID of the batch's audit event (action users.import).
	Event int64
}

// ImportError says which record of a refused ImportBatch was at fault.
// Err matches the kind of the fault: ErrInvalid (an *authz.InvalidError
// naming the field), ErrConflict (an id or email repeated in the batch or
// stored already) or ErrNotFound (a membership's org is neither in the
// batch nor stored).
type ImportError struct {
	// InOrgs says that the record is ImportBatch.Orgs[Index]; otherwise
	// it is ImportBatch.Users[Index].
	InOrgs bool
	Index  int
	User   authz.UserID // the account's id as given; empty for an org
	Org    authz.OrgID  // the org's id as given, or the org of the account's faulty membership
	Err    error
}

func (e *ImportError) Error() string {
	rec := "users[" + strconv.Itoa(e.Index) + "] " + strconv.Quote(string(e.User))
	if e.InOrgs {
		rec = "orgs[" + strconv.Itoa(e.Index) + "] " + strconv.Quote(string(e.Org))
	} else if e.Org != "" {
		rec += " in org " + strconv.Quote(string(e.Org))
	}
	return "iam: import: " + rec + ": " + e.Err.Error()
}

// Unwrap returns the fault's error, which matches its kind.
func (e *ImportError) Unwrap() error { return e.Err }

// Import writes a batch of organizations and accounts with their roles
// and grants, in one database transaction with one audit event
// (audit.UsersImport, without an actor: an operator's call, like
// Bootstrap's), for migrations from another system and for building large
// test databases. It never hashes a password: accounts keep the argon2id
// hash they bring, or have none. Split a large migration into batches of
// a few thousand accounts, orgs before (or with) their members; each call
// commits on its own.
//
// The whole batch is checked before anything is written: canonical ids;
// clean names; valid emails (stored canonical); no id or email twice in
// the batch or already stored (deleted accounts' ids included, since ids
// are never issued twice; emails compare canonical, so case does not
// matter); memberships of role Member or Manager (PlatformAdmin is the
// PlatformAdmin field) in orgs of the batch or stored; password hashes
// empty or well formed (identity.CheckPasswordHash). A hash cheaper than
// the Service's hasher is accepted and replaced at the account's next
// login. A refused batch is an *ImportError naming the record and writes
// nothing, not even an audit event: nobody acted on the platform, and the
// operator's tool has the error. An empty batch writes nothing and is no
// error.
//
// After the commit the accounts' roles and grants are applied to the
// engine: Check answers for them when Import returns.
//
// A migration, one batch per thousand accounts:
//
//	var b iam.ImportBatch
//	for _, t := range legacy.Teams() {
//		b.Orgs = append(b.Orgs, iam.ImportOrg{ID: authz.NewOrgID(), Name: t.Title})
//	}
//	for _, p := range legacy.People() {
//		b.Users = append(b.Users, iam.ImportUser{
//			ID: authz.NewUserID(), Email: p.Email, Name: p.FullName,
//			PasswordHash: p.Argon2Hash, // or "" to make them reset it
//			Memberships:  map[authz.OrgID]authz.Membership{orgOf[p.Team]: {Role: authz.Member, Categories: cats(p)}},
//		})
//		if len(b.Users) == 1000 {
//			if _, err := svc.Import(ctx, b); err != nil {
//				return err
//			}
//			b = iam.ImportBatch{}
//		}
//	}
//	_, err := svc.Import(ctx, b) // the rest
//
// After a large import, run ANALYZE (PostgreSQL or SQLite): until the
// database has statistics of the new rows (PostgreSQL's autovacuum gathers
// them in time), its planner may scan a table where an index serves.
//
// Errors: an *ImportError (ErrInvalid, ErrConflict or ErrNotFound, see
// above); database failures, wrapped with "iam: import". Import waits for
// the Service's other management operations, as they wait for it.
func (s *Service) Import(ctx context.Context, b ImportBatch) (ImportResult, error) {
	if len(b.Orgs) == 0 && len(b.Users) == 0 {
		return ImportResult{}, nil
	}
	now := s.cfg.now()
	bulk, err := importBulk(b, now)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Orgs: len(bulk.Orgs), Users: len(bulk.Users), Rules: len(bulk.Rules)}
	summary := map[string]any{"orgs": res.Orgs, "users": res.Users, "rules": res.Rules}
	if n := len(b.Users); n > 0 {
		summary["first_user"], summary["last_user"] = b.Users[0].ID, b.Users[n-1].ID
	}
	var committed *change
	err = s.mutate(ctx, audit.NewEvent(now, "", audit.UsersImport), func(c *change) error {
		if err := c.tx.Import(bulk); err != nil {
			return importFault(b, err)
		}
		c.apply(func(e *authz.Engine) error {
			var errs []error
			for _, u := range b.Users {
				if u.PlatformAdmin {
					if err := e.SetPlatformAdmin(u.ID, true); err != nil {
						errs = append(errs, err)
					}
				}
				for o, m := range u.Memberships {
					if err := e.SetMembership(u.ID, o, m); err != nil {
						errs = append(errs, err)
					}
				}
			}
			return errors.Join(errs...)
		})
		if err := c.event.SetChange(nil, summary); err != nil {
			return err
		}
		committed = c // run appends the event last and keeps its ID
		return nil
	})
	if err != nil {
		var ie *ImportError
		if errors.As(err, &ie) {
			return ImportResult{}, err
		}
		return ImportResult{}, fmt.Errorf("iam: import: %w", err)
	}
	res.Event = committed.event.ID
	return res, nil
}

// importBulk checks b in memory and returns the rows to store.
func importBulk(b ImportBatch, now time.Time) (gormstore.Bulk, error) {
	bulk := gormstore.Bulk{Orgs: make([]identity.Org, len(b.Orgs)), Users: make([]identity.User, len(b.Users))}
	orgs := make(map[authz.OrgID]bool, len(b.Orgs))
	for i, o := range b.Orgs {
		fault := func(err error) (gormstore.Bulk, error) {
			return gormstore.Bulk{}, &ImportError{InOrgs: true, Index: i, Org: o.ID, Err: err}
		}
		if _, err := authz.ParseOrgID(string(o.ID)); err != nil {
			return fault(err)
		}
		if orgs[o.ID] {
			return fault(fmt.Errorf("the org id is repeated in the batch: %w", ErrConflict))
		}
		orgs[o.ID] = true
		name, err := identity.CleanOrgName(o.Name)
		if err != nil {
			return fault(err)
		}
		bulk.Orgs[i] = identity.Org{ID: o.ID, Name: name, CreatedAt: now}
	}
	users := make(map[authz.UserID]bool, len(b.Users))
	emails := make(map[string]bool, len(b.Users))
	for i, u := range b.Users {
		fault := func(o authz.OrgID, err error) (gormstore.Bulk, error) {
			return gormstore.Bulk{}, &ImportError{Index: i, User: u.ID, Org: o, Err: err}
		}
		if _, err := authz.ParseUserID(string(u.ID)); err != nil {
			return fault("", err)
		}
		if users[u.ID] {
			return fault("", fmt.Errorf("the user id is repeated in the batch: %w", ErrConflict))
		}
		users[u.ID] = true
		email, err := identity.CanonicalEmail(u.Email)
		if err != nil {
			return fault("", err)
		}
		if emails[email] {
			return fault("", fmt.Errorf("the email is repeated in the batch: %w", ErrConflict))
		}
		emails[email] = true
		name, err := identity.CleanName(u.Name)
		if err != nil {
			return fault("", err)
		}
		if u.PasswordHash != "" {
			if err := identity.CheckPasswordHash(u.PasswordHash); err != nil {
				return fault("", err)
			}
		}
		if u.PlatformAdmin {
			bulk.Rules = append(bulk.Rules, authz.PlatformAdminRule(u.ID))
		}
		for o, m := range u.Memberships {
			if !m.Role.OrgScoped() {
				return fault(o, &authz.InvalidError{Field: "role", Value: m.Role.String(), Reason: "want member or manager (PlatformAdmin is the PlatformAdmin field)"})
			}
			rules, err := authz.MembershipRules(u.ID, o, m) // checks o and the categories
			if err != nil {
				return fault(o, err)
			}
			bulk.Rules = append(bulk.Rules, rules...)
		}
		bulk.Users[i] = identity.User{ID: u.ID, Email: email, Name: name, PasswordHash: u.PasswordHash, Status: identity.Active, CreatedAt: now, UpdatedAt: now}
	}
	return bulk, nil
}

// importFault turns the store's refusal of b into an *ImportError naming
// the record; other errors stay as they are.
func importFault(b ImportBatch, err error) error {
	var be *gormstore.BulkError
	if !errors.As(err, &be) {
		return err
	}
	ie := &ImportError{Index: -1, User: be.User, Org: be.Org, Err: be.Err}
	if be.User != "" {
		ie.Index = slices.IndexFunc(b.Users, func(u ImportUser) bool { return u.ID == be.User })
	} else {
		ie.InOrgs = true
		ie.Index = slices.IndexFunc(b.Orgs, func(o ImportOrg) bool { return o.ID == be.Org })
	}
	return ie
}
