package audit

import (
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/kiops/iam/authz"
)

// errNoScope: the viewer may read the audit log of no org.
var errNoScope = fmt.Errorf("%w: you may view the audit log of no organization", authz.ErrForbidden)

// Scope returns f with its scope set to what viewer may read, as
// authz.CanViewAudit decides it org by org (a PlatformAdmin every org, a
// Manager their org, a Member their org if granted the audit category):
// the facts are viewer's PlatformAdmin flag and their memberships (role
// and categories per org), for example from authz.Engine's
// IsPlatformAdmin and Memberships. Scope holds no rule of its own.
//
// With f.Org set, the viewer must be allowed in that org, and the scope is
// that org alone; otherwise Scope returns CanViewAudit's error for it (an
// *authz.InsufficientPermissionsError naming the audit category and f.Org
// for a Member without that category, authz.ErrNotFound for an org in
// which viewer holds no role, as if it did not exist). Without f.Org, the
// scope is AllOrgs for a PlatformAdmin and otherwise every org where
// viewer is allowed, in sorted order; if there is none, the error is an
// *authz.InsufficientPermissionsError with no Org when viewer is a Member
// somewhere (they lack the category in each of their orgs), and
// authz.ErrForbidden when they hold no role at all. An org whose facts
// CanViewAudit refuses as malformed (a grant without a role) is left out.
//
// f must come without a scope (Orgs nil, AllOrgs false), else Scope
// returns an *authz.InvalidError, as it does for a malformed viewer or
// f.Org. Scope reads memberships once and keeps nothing.
func Scope(f Filter, viewer authz.UserID, platformAdmin bool, memberships iter.Seq2[authz.OrgID, authz.Membership]) (Filter, error) {
	if f.AllOrgs || f.Orgs != nil {
		return Filter{}, invalid("audit filter scope", "", "already set: Scope sets it")
	}
	if f.Org != "" && !f.Org.Valid() {
		return Filter{}, invalid("audit filter org id", string(f.Org), "not an id this module issued")
	}
	subject := func(m authz.Membership) authz.Subject {
		return authz.Subject{User: viewer, PlatformAdmin: platformAdmin, Role: m.Role, Categories: m.Categories}
	}
	if f.Org != "" {
		var here authz.Membership
		if memberships != nil {
			for o, m := range memberships {
				if o == f.Org {
					here = m
					break
				}
			}
		}
		if err := authz.CanViewAudit(subject(here)); err != nil {
			var ipe *authz.InsufficientPermissionsError
			if errors.As(err, &ipe) {
				// A copy: the rule's error is not Scope's to change.
				named := *ipe
				named.Org = f.Org
				return Filter{}, &named
			}
			return Filter{}, err
		}
		f.Orgs = []authz.OrgID{f.Org}
		return f, nil
	}
	// Platform-wide: the viewer's authority in an org where they hold no
	// role.
	err := authz.CanViewAudit(subject(authz.Membership{}))
	switch {
	case err == nil:
		f.AllOrgs = true
		return f, nil
	case errors.Is(err, authz.ErrInvalid):
		return Filter{}, err
	}
	var orgs []authz.OrgID
	var denial error
	if memberships != nil {
		for o, m := range memberships {
			switch err := authz.CanViewAudit(subject(m)); {
			case err == nil:
				orgs = append(orgs, o)
			case denial == nil && errors.Is(err, authz.ErrForbidden):
				denial = err
			}
		}
	}
	if len(orgs) == 0 {
		if denial != nil {
			return Filter{}, denial
		}
		return Filter{}, errNoScope
	}
	slices.Sort(orgs)
	f.Orgs = slices.Compact(orgs)
	return f, nil
}
