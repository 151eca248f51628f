package main

import (
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// The JSON forms of the API: snake_case fields, ids as strings, times in
// RFC 3339 (UTC), categories as arrays of names. No view has a field for
// a password hash or a token: the only tokens that leave the server are
// the ones tokenView carries, to the person they belong to.

// The role names of the API, as issue 4 spells them. (authz's own text
// form of PlatformAdmin is "platformadmin"; the API accepts exactly these
// three spellings and no other.)
const (
	rolePlatformAdmin = "platform_admin"
	roleManager       = "manager"
	roleMember        = "member"
)

// roleName returns the API's name of r, "" for RoleNone.
func roleName(r authz.Role) string {
	switch r {
	case authz.PlatformAdmin:
		return rolePlatformAdmin
	case authz.Manager:
		return roleManager
	case authz.Member:
		return roleMember
	}
	return ""
}

// parseRole parses a role name of the API.
func parseRole(s string) (authz.Role, error) {
	switch s {
	case rolePlatformAdmin:
		return authz.PlatformAdmin, nil
	case roleManager:
		return authz.Manager, nil
	case roleMember:
		return authz.Member, nil
	}
	return authz.RoleNone, &authz.InvalidError{Field: "role", Value: s, Reason: "want platform_admin, manager or member"}
}

// categoryNames returns the names of s, never nil (an empty set is []).
func categoryNames(s authz.CategorySet) []string {
	out := []string{}
	for c := range s.All() {
		out = append(out, c.String())
	}
	return out
}

type accountView struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	Status        string    `json:"status"`
	PlatformAdmin bool      `json:"platform_admin"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func accountOf(a iam.Account) accountView {
	return accountView{ID: string(a.ID), Email: a.Email, Name: a.Name, Status: a.Status.String(), PlatformAdmin: a.PlatformAdmin,
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC()}
}

// memberView is a row of Users by Organization.
type memberView struct {
	accountView
	Role       string   `json:"role"`
	Categories []string `json:"categories"`
}

func memberOf(m iam.Member) memberView {
	return memberView{accountView: accountOf(m.Account), Role: roleName(m.Role), Categories: categoryNames(m.Categories)}
}

// accessorView is a user allowed to use a category in an org, and why.
type accessorView struct {
	memberView
	Reason string `json:"reason"`
}

// membershipView is what the actor holds in one org, on the profile.
type membershipView struct {
	OrgID      string   `json:"org_id"`
	OrgName    string   `json:"org_name,omitempty"`
	Role       string   `json:"role"`
	Categories []string `json:"categories"`
}

type profileView struct {
	accountView
	Memberships []membershipView `json:"memberships"`
}

type orgView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func orgOf(o identity.Org) orgView {
	return orgView{ID: string(o.ID), Name: o.Name, CreatedAt: o.CreatedAt.UTC()}
}

type registrationView struct {
	ID        string     `json:"id"`
	OrgID     string     `json:"org_id"`
	UserID    string     `json:"user_id"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

func registrationOf(r approval.Request) registrationView {
	v := registrationView{ID: string(r.ID), OrgID: string(r.Org), UserID: string(r.User), Email: r.Email, Name: r.Name,
		Status: r.Status.String(), CreatedAt: r.CreatedAt.UTC(), DecidedBy: string(r.DecidedBy), Reason: r.Reason}
	if !r.DecidedAt.IsZero() {
		t := r.DecidedAt.UTC()
		v.DecidedAt = &t
	}
	return v
}

// tokenView carries a session token to its owner: the answer of login,
// password change and password reset.
type tokenView struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
}

func tokenOf(t identity.Token) tokenView { return tokenView{Token: t.Reveal(), TokenType: "Bearer"} }

// messageView is the answer of requests that are accepted without a
// result to show.
type messageView struct {
	Message string `json:"message"`
}

// decisionView is what a sample feature endpoint shows of the decision
// that let the request in.
type decisionView struct {
	OrgID      string   `json:"org_id"`
	Page       string   `json:"page"`
	Categories []string `json:"required_categories"`
	AllowedBy  string   `json:"allowed_by"`
}

func decisionOf(page string, d authz.Decision) decisionView {
	return decisionView{OrgID: string(d.Org), Page: page, Categories: categoryNames(d.Required), AllowedBy: d.Reason.String()}
}
