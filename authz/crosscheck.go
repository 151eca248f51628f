package authz

import (
	"fmt"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// oracle is Casbin's own enforcer over the same rules as the index, kept
// for WithCasbinCrossCheck. Its writes happen under Engine.mu; its reads
// rely on SyncedEnforcer's own lock.
type oracle struct {
	enf *casbin.SyncedEnforcer
}

// newCasbinEnforcer returns a plain Casbin enforcer over Model holding
// BaseRows and nothing else: the reference the Engine is tested against.
func newCasbinEnforcer() (*casbin.Enforcer, error) {
	m, err := model.NewModelFromString(Model)
	if err != nil {
		return nil, fmt.Errorf("authz: model: %w", err)
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("authz: enforcer: %w", err)
	}
	if _, err := e.AddPolicies(baseStrings()); err != nil {
		return nil, fmt.Errorf("authz: base policy: %w", err)
	}
	return e, nil
}

func baseStrings() [][]string {
	var p [][]string
	for _, r := range BaseRows() {
		p = append(p, []string{r.V0, r.V1})
	}
	return p
}

func newOracle() (*oracle, error) {
	m, err := model.NewModelFromString(Model)
	if err != nil {
		return nil, fmt.Errorf("authz: model: %w", err)
	}
	e, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("authz: enforcer: %w", err)
	}
	o := &oracle{enf: e}
	if err := o.load(nil); err != nil {
		return nil, err
	}
	return o, nil
}

// load replaces the enforcer's policy with the base rules and the given
// grouping rules.
func (o *oracle) load(grouping [][]string) error {
	o.enf.ClearPolicy()
	if _, err := o.enf.AddPolicies(baseStrings()); err != nil {
		return err
	}
	if len(grouping) > 0 {
		if _, err := o.enf.AddGroupingPoliciesEx(grouping); err != nil {
			return err
		}
	}
	return nil
}

// replace swaps one user's old rules for the new ones.
func (o *oracle) replace(old, new []Rule) error {
	if rm := groupingStrings(old); len(rm) > 0 {
		if _, err := o.enf.RemoveGroupingPolicies(rm); err != nil {
			return err
		}
	}
	if add := groupingStrings(new); len(add) > 0 {
		if _, err := o.enf.AddGroupingPoliciesEx(add); err != nil {
			return err
		}
	}
	return nil
}

func groupingStrings(rules []Rule) [][]string {
	out := make([][]string, 0, len(rules))
	for _, r := range rules {
		row := r.row()
		out = append(out, []string{row.V0, row.V1, row.V2})
	}
	return out
}

// crossCheck asks Casbin about d's request and denies, logging, when
// Casbin disagrees or fails.
func (e *Engine) crossCheck(d Decision) Decision {
	allowed := true
	for c := range d.Required.All() {
		ok, err := e.oracle.enf.Enforce(string(d.User), string(d.Org), c.String())
		if err != nil {
			e.log.Error("authz: casbin cross-check failed; denying", "user", d.User, "org", d.Org, "category", c, "err", err)
			return Decision{User: d.User, Org: d.Org, Required: d.Required, Missing: d.Required, Reason: ReasonError}
		}
		allowed = allowed && ok
	}
	if allowed != d.Allowed {
		e.log.Error("authz: index and casbin disagree; denying",
			"user", d.User, "org", d.Org, "required", d.Required, "index", d.Allowed, "casbin", allowed)
		return Decision{User: d.User, Org: d.Org, Required: d.Required, Missing: d.Required, Reason: ReasonError}
	}
	return d
}
