package authz_test

import (
	"errors"
	"fmt"

	"github.com/kiops/iam/authz"
)

func ExampleEngine_Check() {
	e, err := authz.NewEngine()
	if err != nil {
		panic(err)
	}
	// A store normally streams the stored rules into Load; here the
	// policy starts with the base rules only.
	if err := e.Load(rows(authz.BaseRows())); err != nil {
		panic(err)
	}
	org := authz.NewOrgID()
	alice, bob := authz.NewUserID(), authz.NewUserID()
	_ = e.AssignRole(alice, org, authz.Manager)
	_ = e.SetMembership(bob, org, authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra, authz.VPN)})

	for _, q := range []struct {
		who  string
		user authz.UserID
		cat  authz.Category
	}{{"alice", alice, authz.Audit}, {"bob", bob, authz.VPN}, {"bob", bob, authz.Database}} {
		d := e.Check(q.user, org, q.cat)
		fmt.Printf("%s %s: allowed=%v (%v)\n", q.who, q.cat, d.Allowed, d.Reason)
	}
	// Output:
	// alice audit: allowed=true (Manager of the org)
	// bob vpn: allowed=true (granted)
	// bob database: allowed=false (missing categories)
}

func ExampleDecision_Err() {
	e, _ := authz.NewEngine()
	_ = e.Load(rows(authz.BaseRows()))
	org, bob := authz.NewOrgID(), authz.NewUserID()
	_ = e.SetMembership(bob, org, authz.Membership{Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra)})

	err := e.CheckAll(bob, org, authz.NewCategorySet(authz.Infra, authz.Backup, authz.Database)).Err()
	var ipe *authz.InsufficientPermissionsError
	if errors.As(err, &ipe) {
		fmt.Println("forbidden:", errors.Is(err, authz.ErrForbidden))
		fmt.Println("ask your Manager for:", ipe.Missing)
	}
	// Output:
	// forbidden: true
	// ask your Manager for: backup,database
}

func ExampleParseCategorySet() {
	s, err := authz.ParseCategorySet("infra,vpn")
	fmt.Println(s, s.Has(authz.VPN), err)
	_, err = authz.ParseCategorySet("infra,*")
	fmt.Println(errors.Is(err, authz.ErrInvalid))
	// Output:
	// infra,vpn true <nil>
	// true
}

func ExampleCanChangeRole() {
	// The rules decide on facts about one org that the caller read in its
	// transaction: here a Manager, a Member and a PlatformAdmin of it.
	manager := authz.Subject{User: authz.NewUserID(), Role: authz.Manager}
	member := authz.Target{Subject: authz.Subject{User: authz.NewUserID(), Role: authz.Member}}
	admin := authz.Target{Subject: authz.Subject{User: authz.NewUserID(), PlatformAdmin: true, Role: authz.Member}}

	fmt.Println(authz.CanChangeRole(manager, member, authz.Manager))
	fmt.Println(authz.CanChangeRole(manager, member, authz.PlatformAdmin))
	fmt.Println(authz.CanChangeRole(manager, admin, authz.Member))
	fmt.Println(authz.CanChangeRole(manager, authz.Target{Subject: manager}, authz.Member))
	// Output:
	// <nil>
	// authz: a Manager may assign only the Member and Manager roles
	// authz: a Manager cannot manage a PlatformAdmin
	// authz: nobody may change their own role
}

func rows(rs []authz.Row) func(func(authz.Row, error) bool) {
	return func(yield func(authz.Row, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}
