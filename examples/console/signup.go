package main

// Sign-up: a person puts themselves into an org's Pending Approvals queue.
// The org is named by its code, which a Manager shares as a link
// (/signup?org=...); there is no list to pick from, since listing the
// orgs to anyone who opens the page would reveal the platform's tenants.

import (
	"errors"
	"net/http"
	"strings"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

type signupData struct {
	Email, Name, Org string // the typed-in values, never the password
	Error            string
}

func (c *console) signupPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signup", view{Title: "Sign up", Data: signupData{Org: r.URL.Query().Get("org")}})
}

// signup answers a known email exactly like a new one (the Service does
// the same work and returns the same nil), so the page tells nobody
// whether an account exists.
func (c *console) signup(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	d := signupData{Email: f.Get("email"), Name: f.Get("name"), Org: strings.TrimSpace(f.Get("org"))}
	// A code this module could not have issued names no org either (it
	// was mistyped): it gets the unknown org's answer.
	err := iam.ErrNotFound
	if org := authz.OrgID(d.Org); org.Valid() {
		err = c.svc.SignUp(ctx(r), d.Email, d.Name, f.Get("password"), org)
	}
	if err == nil {
		http.Redirect(w, r, "/login?done=signedup", http.StatusSeeOther)
		return
	}
	status := http.StatusNotFound
	d.Error = "No organization has this code. Ask your Manager for the sign-up link."
	if !errors.Is(err, iam.ErrNotFound) {
		p, ok := formProblem(err)
		if !ok {
			c.fail(w, r, nil, err)
			return
		}
		status, d.Error = p.Status, p.Detail
	}
	c.render(w, r, status, "signup", view{Title: "Sign up", Data: d})
}
