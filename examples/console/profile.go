package main

// The Profile page: the account and its memberships, and three forms
// (name, password, account deletion). A refused form shows the page again
// with the reason beside that form, and changes nothing.

import (
	"cmp"
	"errors"
	"net/http"
	"slices"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

type profileData struct {
	Name        string // the name field: the typed-in one after a refusal
	Memberships []membershipRow
	Form, Error string // the form that was refused ("name", "password", "delete") and why
}

type membershipRow struct {
	Org identity.Org
	authz.Membership
	Every bool // a Manager holds every category of the org, granted or not
}

func (c *console) profilePage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderProfile(w, r, s, http.StatusOK, profileData{Name: s.Me.Name})
}

// renderProfile shows the Profile page with d, completed from the
// session: authed read the Profile already, so nothing more is asked of
// the Service.
func (c *console) renderProfile(w http.ResponseWriter, r *http.Request, s *session, status int, d profileData) {
	for id, m := range s.Me.Memberships {
		d.Memberships = append(d.Memberships, membershipRow{s.org(id), m, m.Role == authz.Manager})
	}
	slices.SortFunc(d.Memberships, func(a, b membershipRow) int {
		return cmp.Or(cmp.Compare(a.Org.Name, b.Org.Name), cmp.Compare(a.Org.ID, b.Org.ID))
	})
	c.render(w, r, status, "profile", view{Title: "Profile", Nav: "profile", S: s, Notice: notice(r), Data: d})
}

// refuse shows the Profile page again with the reason form was refused,
// beside that form; an error that is not the form's fault (a session that
// ended, a failure) goes to c.fail.
func (c *console) refuse(w http.ResponseWriter, r *http.Request, s *session, form string, err error) {
	d := profileData{Name: s.Me.Name, Form: form}
	if form == "name" {
		d.Name = r.PostForm.Get("name")
	}
	var status int
	var te *identity.ThrottledError
	switch p, ok := formProblem(err); {
	case errors.As(err, &te):
		// Before c.fail could see it: it matches ErrUnauthenticated, yet
		// the session is fine; only the password checks are paused.
		status, d.Error = http.StatusTooManyRequests, "Too many wrong passwords. Wait a little and try again."
	case errors.Is(err, iam.ErrForbidden):
		// The Profile forms act on one's own account: the only refusal is
		// a wrong confirmation password (the session itself is fine).
		status, d.Error = http.StatusUnprocessableEntity, "The password you entered is wrong. Nothing was changed."
	case ok:
		status, d.Error = p.Status, p.Detail
	default:
		c.fail(w, r, s, err)
		return
	}
	c.renderProfile(w, r, s, status, d)
}

// formProblem is the module's answer to err when it is about what a form
// holds (ErrInvalid: a field's value; ErrConflict: a rule such as "the
// last PlatformAdmin stays"), worded for the person who filled it in.
func formProblem(err error) (authz.Problem, bool) {
	if errors.Is(err, iam.ErrInvalid) || errors.Is(err, iam.ErrConflict) {
		return authz.ProblemFor(err), true
	}
	return authz.Problem{}, false
}

func (c *console) changeName(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.svc.ChangeName(ctx(r), s.Me.ID, r.PostForm.Get("name")); err != nil {
		c.refuse(w, r, s, "name", err)
		return
	}
	http.Redirect(w, r, "/profile?done=name", http.StatusSeeOther)
}

// changePassword ends every session of the person, this one included, and
// hands this browser the fresh one the Service returns.
func (c *console) changePassword(w http.ResponseWriter, r *http.Request, s *session) {
	tok, err := c.svc.ChangePassword(ctx(r), s.Me.ID, r.PostForm.Get("current"), r.PostForm.Get("password"))
	if err != nil {
		c.refuse(w, r, s, "password", err)
		return
	}
	setCookie(w, r, sessionCookie, tok.Reveal())
	http.Redirect(w, r, "/profile?done=password", http.StatusSeeOther)
}

func (c *console) deleteAccount(w http.ResponseWriter, r *http.Request, s *session) {
	// The box is required in the form; a post without it is answered
	// before the Service is asked, so nothing is recorded either.
	if r.PostForm.Get("confirm") == "" {
		c.renderProfile(w, r, s, http.StatusUnprocessableEntity, profileData{Name: s.Me.Name, Form: "delete",
			Error: "Tick the box to confirm that you understand what is deleted. Nothing was changed."})
		return
	}
	if err := c.svc.DeleteAccount(ctx(r), s.Me.ID, r.PostForm.Get("password")); err != nil {
		c.refuse(w, r, s, "delete", err)
		return
	}
	clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/login?done=deleted", http.StatusSeeOther)
}
