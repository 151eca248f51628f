package authz

// Reason says why a Decision came out as it did.
type Reason uint8

const (
	// ReasonInvalid: the request named an invalid user, org or category.
	ReasonInvalid Reason = iota
	// ReasonPlatformAdmin: allowed, the user is a PlatformAdmin.
	ReasonPlatformAdmin
	// ReasonManager: allowed, the user is a Manager of the org.
	ReasonManager
	// ReasonGranted: allowed, the categories were granted to the user in
	// the org.
	ReasonGranted
	// ReasonNotMember: denied, the user holds nothing in the org.
	ReasonNotMember
	// ReasonMissingCategories: denied, the user is in the org but lacks
	// some of the required categories (Decision.Missing names them).
	ReasonMissingCategories
	// ReasonError: denied because the decision could not be made safely
	// (for example the Casbin cross-check disagreed or failed).
	ReasonError
	// ReasonDeactivated: denied, the user's account is deactivated.
	ReasonDeactivated
)

var reasonNames = [...]string{
	ReasonInvalid:           "invalid request",
	ReasonPlatformAdmin:     "PlatformAdmin",
	ReasonManager:           "Manager of the org",
	ReasonGranted:           "granted",
	ReasonNotMember:         "not a member of the org",
	ReasonMissingCategories: "missing categories",
	ReasonError:             "error",
	ReasonDeactivated:       "account deactivated",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown reason"
}

// Decision is the answer to a permission check. It is a small value,
// returned without allocation. A denial is a Decision, not an error; Err
// turns it into one for callers that propagate errors.
type Decision struct {
	Allowed  bool
	Reason   Reason
	User     UserID
	Org      OrgID
	Role     Role        // the role that decided: PlatformAdmin, or the user's role in Org
	Granted  CategorySet // the categories the user holds in Org by grant
	Required CategorySet // what was asked for
	Missing  CategorySet // the part of Required the user lacks (empty when allowed)
}

// Err returns nil when d allows, and otherwise an
// *InsufficientPermissionsError naming the required and missing
// categories (it matches ErrForbidden).
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &InsufficientPermissionsError{User: d.User, Org: d.Org, Required: d.Required, Missing: d.Missing}
}
