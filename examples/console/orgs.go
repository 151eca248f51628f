package main

import (
	"errors"
	"net/http"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Organization Management: PlatformAdmins create, rename and delete orgs.

type orgsData struct {
	Orgs    []identity.Org
	MaxName int
	// Failed is a refused name, shown again on the form it came from.
	Failed *nameError
}

// nameError is a name the Service refused, with its wording.
type nameError struct {
	Org   authz.OrgID // the org being renamed; empty for the Create form
	Name  string      // as typed, shown back as a form value only
	Error string
}

func (c *console) orgsPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.showOrgs(w, r, s, http.StatusOK, nil)
}

// showOrgs renders the page with every org; failed, when set, is shown
// on its form instead of the redirect's notice.
func (c *console) showOrgs(w http.ResponseWriter, r *http.Request, s *session, status int, failed *nameError) {
	if !s.Me.PlatformAdmin {
		// As the All Users tab: the page is not in the menu of the others,
		// and its URL answers as if it did not exist. The Service refuses
		// their changes all the same (and records the attempts).
		c.errorPage(w, r, s, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	// The session's listing is every org for a PlatformAdmin.
	v := view{Title: "Organization Management", Nav: "orgs", S: s, Data: orgsData{s.Orgs, identity.MaxNameLength, failed}}
	if failed == nil {
		v.Notice = notice(r)
	}
	c.render(w, r, status, "orgs", v)
}

func (c *console) createOrg(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PostForm.Get("name")
	_, err := c.svc.CreateOrg(ctx(r), s.Me.ID, name)
	c.orgChanged(w, r, s, err, &nameError{Name: name}, "orgcreated")
}

func (c *console) renameOrg(w http.ResponseWriter, r *http.Request, s *session) {
	// Parsed here so that the Service's ErrInvalid can only be about the
	// name.
	org, err := authz.ParseOrgID(r.PathValue("org"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	name := r.PostForm.Get("name")
	c.orgChanged(w, r, s, c.svc.RenameOrg(ctx(r), s.Me.ID, org, name), &nameError{Org: org, Name: name}, "orgrenamed")
}

func (c *console) deleteOrg(w http.ResponseWriter, r *http.Request, s *session) {
	org, err := authz.ParseOrgID(r.PathValue("org"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.orgChanged(w, r, s, c.svc.DeleteOrg(ctx(r), s.Me.ID, org), nil, "orgdeleted")
}

// orgChanged answers a form of the page: success goes back to the list
// with the notice done; a refused name (ErrInvalid) is shown again on
// form with the module's wording; anything else, a refusal included, is
// an error page.
func (c *console) orgChanged(w http.ResponseWriter, r *http.Request, s *session, err error, form *nameError, done string) {
	switch {
	case err == nil:
		http.Redirect(w, r, "/orgs?done="+done, http.StatusSeeOther)
	case form != nil && errors.Is(err, iam.ErrInvalid):
		form.Error = authz.ProblemFor(err).Detail
		c.showOrgs(w, r, s, http.StatusUnprocessableEntity, form)
	default:
		c.fail(w, r, s, err)
	}
}
