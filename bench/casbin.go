package bench

import (
	"fmt"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/kiops/iam/authz"
)

// The Casbin baseline is plain Casbin v2 with the module's own model
// (authz.Model): categories as roles in the org's domain, one grouping
// rule per grant. That is the faster of Casbin's two natural
// RBAC-with-domains encodings; the other (one policy rule per grant,
// "p, user, org, category") makes Enforce scan every rule, about 100 ms a
// check at 100,000 users.

// NewCasbin returns a Casbin cached enforcer holding w's policy, built in
// memory. Its embedded *casbin.Enforcer is plain Casbin (no cache); the
// CachedEnforcer itself answers repeated requests from its cache.
func NewCasbin(w *Workload) (*casbin.CachedEnforcer, error) {
	e, err := newCachedEnforcer()
	if err != nil {
		return nil, err
	}
	var p, g [][]string
	for r, err := range w.Rows() {
		if err != nil {
			return nil, err
		}
		switch r.PType {
		case "p":
			p = append(p, []string{r.V0, r.V1})
		case "g":
			g = append(g, []string{r.V0, r.V1, r.V2})
		}
	}
	if _, err := e.AddPolicies(p); err != nil {
		return nil, fmt.Errorf("bench: casbin: %w", err)
	}
	if _, err := e.AddGroupingPolicies(g); err != nil {
		return nil, fmt.Errorf("bench: casbin: %w", err)
	}
	return e, nil
}

// LoadCasbin returns a Casbin cached enforcer loaded by gorm-adapter's
// LoadPolicy from the rule table in db (as the module stores it), which is
// how a plain Casbin service starts.
func LoadCasbin(db *gorm.DB) (*casbin.CachedEnforcer, error) {
	a, err := CasbinAdapter(db)
	if err != nil {
		return nil, err
	}
	e, err := newCachedEnforcer()
	if err != nil {
		return nil, err
	}
	e.SetAdapter(a)
	if err := e.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("bench: casbin load policy: %w", err)
	}
	return e, nil
}

// CasbinAdapter returns gorm-adapter over the module's rule table in db.
// The table exists already (the module migrated it), so the adapter's
// own migration finds nothing to do.
func CasbinAdapter(db *gorm.DB) (*gormadapter.Adapter, error) {
	a, err := gormadapter.NewAdapterByDBUseTableName(db, "", "casbin_rule")
	if err != nil {
		return nil, fmt.Errorf("bench: gorm-adapter: %w", err)
	}
	return a, nil
}

func newCachedEnforcer() (*casbin.CachedEnforcer, error) {
	m, err := model.NewModelFromString(authz.Model)
	if err != nil {
		return nil, fmt.Errorf("bench: casbin model: %w", err)
	}
	e, err := casbin.NewCachedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("bench: casbin: %w", err)
	}
	return e, nil
}
