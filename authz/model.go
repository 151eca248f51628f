package authz

import (
	"fmt"
	"strings"
)

// Model is the Casbin model (RBAC with domains) whose meaning is the
// specification of every decision the Engine makes. It is embedded as a
// constant, never read from a file.
//
// Request: r.sub is a user id, r.dom an org id, r.obj a category name.
//
// Policy: a "p" rule (p.sub, p.obj) says that holding role or grant p.sub
// confers category p.obj. These rules are fixed (BaseRows): PlatformAdmin
// and Manager confer all seven categories, Member confers none, and each
// grant "cat:NAME" confers category NAME.
//
// Roles: a "g" rule (user, role-or-grant, domain) says that the user holds
// that role or grant in that domain. The domain is an org id, or "global"
// for PlatformAdmin, the one role held platform-wide.
//
// Deactivation: a "g" rule (user, "status:deactivated", "global") marks a
// deactivated account. It keeps every other rule of the user (so
// reactivation restores exactly what they had) while denying them
// everything.
//
// Matcher: the request is allowed when some p rule confers the asked
// category (r.obj == p.obj, tested first so Casbin skips the role lookups
// of the other categories' rules), the user holds its subject either in
// the asked org or platform-wide, and the user is not deactivated.
const Model = `[request_definition]
r = sub, dom, obj

[policy_definition]
p = sub, obj

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && (g(r.sub, p.sub, r.dom) || g(r.sub, p.sub, "global")) && !g(r.sub, "status:deactivated", "global")
`

// The fixed words of the encoding. None of them can be a UserID or an
// OrgID (those always carry the "usr_" or "org_" prefix).
const (
	globalDomain = "global"
	rolePrefix   = "role:"
	grantPrefix  = "cat:"
	deactivated  = "status:deactivated"
)

// Row is one line of Casbin's rule table, as gorm-adapter stores it:
// PType "p" or "g" and up to six values. Storage adapters read and write
// Rows; everything else works with Rules.
type Row struct {
	PType                  string
	V0, V1, V2, V3, V4, V5 string
}

func (r Row) String() string {
	v := []string{r.PType, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}
	for len(v) > 1 && v[len(v)-1] == "" {
		v = v[:len(v)-1]
	}
	return strings.Join(v, ", ")
}

// Rule is one assignment in the policy, in typed form: a role held by a
// user (Role set, Category zero), a category granted to a user in an org
// (Category set, Role zero), or the deactivation of a user's account
// (Deactivated set, nothing else). PlatformAdmin and deactivation rules
// have no Org.
type Rule struct {
	User        UserID
	Org         OrgID
	Role        Role
	Category    Category
	Deactivated bool
}

// DeactivationRule marks u's account deactivated: every check for u
// denies, whatever else u holds.
func DeactivationRule(u UserID) Rule { return Rule{User: u, Deactivated: true} }

// PlatformAdminRule makes u a PlatformAdmin.
func PlatformAdminRule(u UserID) Rule { return Rule{User: u, Role: PlatformAdmin} }

// RoleRule gives u role r (Member or Manager) in org o.
func RoleRule(u UserID, o OrgID, r Role) Rule { return Rule{User: u, Org: o, Role: r} }

// GrantRule grants u category c in org o.
func GrantRule(u UserID, o OrgID, c Category) Rule { return Rule{User: u, Org: o, Category: c} }

// MembershipRules returns the rules that give u exactly membership m in org
// o: one role rule (if m has a role) and one grant rule per category. An
// invalid id or membership (see Membership.Validate) is an *InvalidError.
func MembershipRules(u UserID, o OrgID, m Membership) ([]Rule, error) {
	if err := u.check(); err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	rules := make([]Rule, 0, 1+m.Categories.Len())
	if m.Role != RoleNone {
		rules = append(rules, RoleRule(u, o, m.Role))
	}
	for c := range m.Categories.All() {
		rules = append(rules, GrantRule(u, o, c))
	}
	return rules, nil
}

// Validate checks that m can be held in an org: its Role is RoleNone,
// Member or Manager (PlatformAdmin is platform-wide), and its Categories
// hold only the seven known bits. Anything else is an *InvalidError.
func (m Membership) Validate() error {
	if m.Role != RoleNone && !m.Role.OrgScoped() {
		return invalid("role", m.Role.String(), "want member or manager (PlatformAdmin is platform-wide)")
	}
	if !m.Categories.Valid() {
		return invalid("category set", fmt.Sprintf("%#x", uint8(m.Categories)), "unknown bits")
	}
	return nil
}

// Validate checks that r is well formed: a canonical user id, and either a
// PlatformAdmin rule without org, an org role with a canonical org id, or
// a grant of one valid category with a canonical org id.
func (r Rule) Validate() error {
	if err := r.User.check(); err != nil {
		return err
	}
	switch {
	case r.Deactivated:
		if r.Org != "" || r.Role != RoleNone || r.Category != 0 {
			return invalid("rule", r.String(), "a deactivation holds nothing else")
		}
		return nil
	case r.Role == PlatformAdmin && r.Category == 0:
		if r.Org != "" {
			return invalid("rule", r.String(), "PlatformAdmin is platform-wide and takes no org")
		}
		return nil
	case r.Role.OrgScoped() && r.Category == 0, r.Role == RoleNone && r.Category.Valid():
		return r.Org.check()
	}
	return invalid("rule", r.String(), "want a role or one category")
}

func (r Rule) String() string {
	switch {
	case r.Deactivated:
		return fmt.Sprintf("deactivated %s", r.User)
	case r.Category != 0:
		return fmt.Sprintf("grant %v to %s in %s", r.Category, r.User, r.Org)
	case r.Role == PlatformAdmin:
		return fmt.Sprintf("%v %s", r.Role, r.User)
	default:
		return fmt.Sprintf("%v %s in %s", r.Role, r.User, r.Org)
	}
}

// Row encodes r as a Casbin grouping rule. A Rule that fails Validate is
// an *InvalidError.
func (r Rule) Row() (Row, error) {
	if err := r.Validate(); err != nil {
		return Row{}, err
	}
	return r.row(), nil
}

// row encodes a valid r.
func (r Rule) row() Row {
	switch {
	case r.Deactivated:
		return Row{PType: "g", V0: string(r.User), V1: deactivated, V2: globalDomain}
	case r.Category != 0:
		return Row{PType: "g", V0: string(r.User), V1: grantPrefix + r.Category.String(), V2: string(r.Org)}
	case r.Role == PlatformAdmin:
		return Row{PType: "g", V0: string(r.User), V1: rolePrefix + r.Role.String(), V2: globalDomain}
	default:
		return Row{PType: "g", V0: string(r.User), V1: rolePrefix + r.Role.String(), V2: string(r.Org)}
	}
}

// BaseRows returns the fixed "p" rules of the model: what each role and
// each grant confers. A store seeds them once; the Engine refuses to load
// a policy whose p rules differ, because its index would then no longer
// mean what Casbin means.
func BaseRows() []Row {
	var rows []Row
	for _, r := range []Role{PlatformAdmin, Manager} {
		for _, c := range Categories() {
			rows = append(rows, Row{PType: "p", V0: rolePrefix + r.String(), V1: c.String()})
		}
	}
	for _, c := range Categories() {
		rows = append(rows, Row{PType: "p", V0: grantPrefix + c.String(), V1: c.String()})
	}
	return rows
}

// baseRowIndex maps each base row to its position in BaseRows.
var baseRowIndex = func() map[Row]int {
	m := make(map[Row]int)
	for i, r := range BaseRows() {
		m[r] = i
	}
	return m
}()

// ParseRow decodes a "g" row into its Rule. It is strict: every value must
// be exactly what Row produces, so that the Engine's index and Casbin read
// the same rows the same way; anything else (a "p" row included: see
// IsBaseRow) is an *InvalidError.
func ParseRow(row Row) (Rule, error) {
	bad := func(why string) (Rule, error) { return Rule{}, invalid("policy row", row.String(), why) }
	if row.PType != "g" {
		return bad("not a grouping rule")
	}
	if row.V3 != "" || row.V4 != "" || row.V5 != "" {
		return bad("too many values")
	}
	u, err := ParseUserID(row.V0)
	if err != nil {
		return bad("subject is not a user id")
	}
	var rule Rule
	switch {
	case row.V1 == deactivated:
		if row.V2 != globalDomain {
			return bad("deactivation outside the global domain")
		}
		return DeactivationRule(u), nil
	case strings.HasPrefix(row.V1, rolePrefix):
		r, err := ParseRole(row.V1[len(rolePrefix):])
		if err != nil {
			return bad("unknown role")
		}
		rule = Rule{User: u, Role: r}
	case strings.HasPrefix(row.V1, grantPrefix):
		c, err := ParseCategory(row.V1[len(grantPrefix):])
		if err != nil {
			return bad("unknown category")
		}
		rule = Rule{User: u, Category: c}
	default:
		return bad("neither a role nor a grant")
	}
	if rule.Role == PlatformAdmin {
		if row.V2 != globalDomain {
			return bad("PlatformAdmin outside the global domain")
		}
		return rule, nil
	}
	o, err := ParseOrgID(row.V2)
	if err != nil {
		return bad("domain is not an org id")
	}
	rule.Org = o
	return rule, nil
}

// IsBaseRow reports whether row is one of BaseRows.
func IsBaseRow(row Row) bool {
	_, ok := baseRowIndex[row]
	return ok
}
