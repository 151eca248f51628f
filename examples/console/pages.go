package main

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// notices are the only messages a redirect can ask a page to show: the
// query names one, so no request text is ever echoed into a page.
var notices = map[string]string{
	"expired":    "Your session has ended. Please sign in again.",
	"loggedout":  "You are signed out.",
	"sent":       "If the email belongs to an account, a reset token is on its way (in this example: printed on the console's terminal).",
	"approved":   "The request was approved: the person is now a Member of the organization.",
	"rejected":   "The request was rejected. The person can apply again.",
	"role":       "The role was changed.",
	"removed":    "The user was removed from the organization; their permissions there are revoked.",
	"saved":      "Saved. The permissions apply at once and are recorded in the audit log.",
	"orgcreated": "The organization was created.",
	"orgrenamed": "The organization was renamed.",
	"orgdeleted": "The organization was deleted: its members lost their role and permission categories there, and its registration requests are gone.",
	"name":       "Your name was changed.",
	"password":   "Your password was changed. Your sessions elsewhere have ended; this browser stays signed in.",
	"deleted":    "Your account is deleted, with all its roles and permissions.",
	"signedup":   "Your request is in the organization's Pending Approvals queue. You can sign in once a Manager approves it.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

// The login, Forgot Password and reset forms.

type loginData struct {
	Email, Error string
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	// Someone signed in already has nothing to do here.
	if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if _, err := c.svc.Authenticate(ctx(r), ck.Value); err == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
	}
	v := view{Title: "Sign in", Notice: notice(r), Data: loginData{}}
	if r.URL.Query().Has("expired") {
		v.Notice = notices["expired"]
	}
	c.render(w, r, http.StatusOK, "login", v)
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	email := r.PostForm.Get("email")
	tok, err := c.svc.Login(ctx(r), email, r.PostForm.Get("password"))
	if err != nil {
		msg := "The email or password is wrong, or the account cannot sign in."
		var te *identity.ThrottledError
		if errors.As(err, &te) {
			msg = "Too many failed attempts. Wait a little and try again."
		} else if !errors.Is(err, iam.ErrUnauthenticated) {
			c.fail(w, r, nil, err)
			return
		}
		c.render(w, r, http.StatusUnauthorized, "login", view{Title: "Sign in", Data: loginData{Email: email, Error: msg}})
		return
	}
	c.startSession(w, r, tok)
}

// startSession hands the browser a new session and leaves the login
// pages.
func (c *console) startSession(w http.ResponseWriter, r *http.Request, tok identity.Token) {
	setCookie(w, r, sessionCookie, tok.Reveal())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.svc.Logout(ctx(r), s.token); err != nil && !errors.Is(err, iam.ErrUnauthenticated) {
		c.fail(w, r, s, err)
		return
	}
	clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/login?done=loggedout", http.StatusSeeOther)
}

func (c *console) forgotPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "forgot", view{Title: "Forgot Password", Data: loginData{}})
}

func (c *console) forgot(w http.ResponseWriter, r *http.Request) {
	email := r.PostForm.Get("email")
	if err := c.svc.ForgotPassword(ctx(r), email); err != nil {
		if errors.Is(err, iam.ErrInvalid) {
			c.render(w, r, http.StatusUnprocessableEntity, "forgot", view{Title: "Forgot Password", Data: loginData{Email: email, Error: "That is not an email address."}})
			return
		}
		c.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, "/reset-password?done=sent", http.StatusSeeOther)
}

func (c *console) resetPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "reset", view{Title: "Reset your password", Notice: notice(r), Data: loginData{}})
}

func (c *console) reset(w http.ResponseWriter, r *http.Request) {
	tok, err := c.svc.ResetPassword(ctx(r), strings.TrimSpace(r.PostForm.Get("token")), r.PostForm.Get("password"))
	if err != nil {
		msg := "The reset token is unknown, used, replaced by a newer one or expired. Ask for a new one."
		status := http.StatusUnauthorized
		if errors.Is(err, iam.ErrInvalid) {
			// The module's own wording says why the password was refused.
			msg, status = authz.ProblemFor(err).Detail, http.StatusUnprocessableEntity
		} else if !errors.Is(err, iam.ErrUnauthenticated) {
			c.fail(w, r, nil, err)
			return
		}
		c.render(w, r, status, "reset", view{Title: "Reset your password", Data: loginData{Error: msg}})
		return
	}
	c.startSession(w, r, tok)
}

// home sends those who manage an org to User Management and shows the
// others the feature pages.
func (c *console) home(w http.ResponseWriter, r *http.Request, s *session) {
	if len(s.Manages) > 0 {
		http.Redirect(w, r, "/users/pending", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "home", view{Title: "Welcome", S: s})
}

// User Management.

type usersData struct {
	Tab          string // pending, org or all
	Org          identity.Org
	PendingCount int
	CountKnown   bool
	Period       string
	Periods      []string
	Requests     []approval.Request
	Members      []iam.Member
	Accounts     []iam.Account
	Next         string
}

// pickOrg is the org a page is about: the "org" query value, else the
// first org the person manages. An org they may not manage is passed on
// all the same: the Service refuses it (as not found) and records the
// attempt.
func pickOrg(r *http.Request, s *session) (identity.Org, bool) {
	if id := r.URL.Query().Get("org"); id != "" {
		return s.org(authz.OrgID(id)), true
	}
	if len(s.Manages) == 0 {
		return identity.Org{}, false
	}
	return s.Manages[0], true
}

// org names id as the person's org listing does; an org outside it is
// shown by its id (the Service will refuse it).
func (s *session) org(id authz.OrgID) identity.Org {
	for _, o := range s.Orgs {
		if o.ID == id {
			return o
		}
	}
	return identity.Org{ID: id, Name: string(id)}
}

// usersView starts the User Management page on tab: the org, and the
// pending count next to the Pending Approvals tab.
func (c *console) usersView(w http.ResponseWriter, r *http.Request, s *session, tab string) (view, *usersData, bool) {
	d := &usersData{Tab: tab}
	v := view{Title: "User Management", Nav: "users", S: s, Notice: notice(r), Data: d}
	org, ok := pickOrg(r, s)
	if !ok {
		if s.Me.PlatformAdmin {
			// A fresh platform: no org to show yet, but All Users works.
			if tab == "all" {
				return v, d, true
			}
			v.Notice = "There is no organization yet."
			c.render(w, r, http.StatusOK, "users", v)
			return v, d, false
		}
		c.errorPage(w, r, s, http.StatusForbidden, "Insufficient permissions", "User Management is for Managers and PlatformAdmins. Ask your Manager if you need it.")
		return v, d, false
	}
	d.Org = org
	n, err := c.svc.PendingCount(ctx(r), s.Me.ID, org.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return v, d, false
	}
	d.PendingCount, d.CountKnown = n, true
	return v, d, true
}

func (c *console) pendingTab(w http.ResponseWriter, r *http.Request, s *session) {
	v, d, ok := c.usersView(w, r, s, "pending")
	if !ok {
		return
	}
	d.Periods = []string{"7d", "30d", "all"}
	d.Period = r.URL.Query().Get("period")
	if d.Period == "" {
		d.Period = "all"
	}
	period, err := approval.ParsePeriod(d.Period)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Requests, err = c.svc.Registrations(ctx(r), s.Me.ID, d.Org.ID, period, approval.Pending); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "users", v)
}

func (c *console) orgTab(w http.ResponseWriter, r *http.Request, s *session) {
	v, d, ok := c.usersView(w, r, s, "org")
	if !ok {
		return
	}
	page, err := c.svc.Members(ctx(r), s.Me.ID, d.Org.ID, iam.Page{After: r.URL.Query().Get("after")})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Members, d.Next = page.Members, page.Next
	c.render(w, r, http.StatusOK, "users", v)
}

func (c *console) allTab(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Me.PlatformAdmin {
		// The tab is not shown to Managers; its URL answers as if it did
		// not exist. The Service would refuse Users all the same.
		c.errorPage(w, r, s, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	v, d, ok := c.usersView(w, r, s, "all")
	if !ok {
		return
	}
	page, err := c.svc.Users(ctx(r), s.Me.ID, iam.Page{After: r.URL.Query().Get("after")})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Accounts, d.Next = page.Accounts, page.Next
	c.render(w, r, http.StatusOK, "users", v)
}

// back is the tab a form returns to, with a notice.
func back(path string, org authz.OrgID, extra url.Values, done string) string {
	q := url.Values{"org": {string(org)}, "done": {done}}
	for k, vs := range extra {
		q[k] = vs
	}
	return path + "?" + q.Encode()
}

func (c *console) decide(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := approval.ParseRequestID(r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var done string
	switch r.PathValue("decision") {
	case "approve":
		err, done = c.svc.Approve(ctx(r), s.Me.ID, id), "approved"
	case "reject":
		err, done = c.svc.Reject(ctx(r), s.Me.ID, id, r.PostForm.Get("reason")), "rejected"
	default:
		c.errorPage(w, r, s, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	extra := url.Values{}
	if p := r.PostForm.Get("period"); p != "" {
		extra.Set("period", p)
	}
	http.Redirect(w, r, back("/users/pending", authz.OrgID(r.PostForm.Get("org")), extra, done), http.StatusSeeOther)
}

// target reads the {org} and {user} of a member URL.
func target(r *http.Request) (authz.OrgID, authz.UserID, error) {
	org, err := authz.ParseOrgID(r.PathValue("org"))
	if err != nil {
		return "", "", err
	}
	user, err := authz.ParseUserID(r.PathValue("user"))
	return org, user, err
}

func (c *console) changeRole(w http.ResponseWriter, r *http.Request, s *session) {
	org, user, err := target(r)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	role, err := authz.ParseRole(r.PostForm.Get("role"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.svc.ChangeRole(ctx(r), s.Me.ID, user, org, role); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, back("/users/org", org, nil, "role"), http.StatusSeeOther)
}

func (c *console) remove(w http.ResponseWriter, r *http.Request, s *session) {
	org, user, err := target(r)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.svc.RemoveMember(ctx(r), s.Me.ID, user, org); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, back("/users/org", org, nil, "removed"), http.StatusSeeOther)
}

// Permission Management.

type permissionsData struct {
	Org        identity.Org
	Members    []iam.Member
	Next       string
	Selected   *iam.Member
	Categories []authz.Category
}

func (c *console) permissionsPage(w http.ResponseWriter, r *http.Request, s *session) {
	org, ok := pickOrg(r, s)
	if !ok {
		c.errorPage(w, r, s, http.StatusForbidden, "Insufficient permissions", "Permission Management is for Managers and PlatformAdmins. Ask your Manager if you need it.")
		return
	}
	d := &permissionsData{Org: org, Categories: authz.Categories()}
	q := r.URL.Query()
	page, err := c.svc.Members(ctx(r), s.Me.ID, org.ID, iam.Page{After: q.Get("after")})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Members, d.Next = page.Members, page.Next
	if u := q.Get("user"); u != "" {
		id, err := authz.ParseUserID(u)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		// Usually on the page just read; only otherwise read by id.
		if i := slices.IndexFunc(d.Members, func(m iam.Member) bool { return m.ID == id }); i >= 0 {
			d.Selected = &d.Members[i]
		} else {
			m, err := c.svc.Member(ctx(r), s.Me.ID, id, org.ID)
			if err != nil {
				c.fail(w, r, s, err)
				return
			}
			d.Selected = &m
		}
	}
	c.render(w, r, http.StatusOK, "permissions", view{Title: "Permission Management", Nav: "permissions", S: s, Notice: notice(r), Data: d})
}

func (c *console) savePermissions(w http.ResponseWriter, r *http.Request, s *session) {
	org, user, err := target(r)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	cats, err := authz.ParseCategoryNames(r.PostForm["category"])
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.svc.SetCategories(ctx(r), s.Me.ID, user, org, cats); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, back("/permissions", org, url.Values{"user": {string(user)}}, "saved"), http.StatusSeeOther)
}

// Sample feature pages.

// featureNames are the product's page names of the seven categories.
var featureNames = map[authz.Category]string{
	authz.Infra: "Runtime Environments", authz.Service: "Service Management", authz.Backup: "Backup Management",
	authz.Device: "Device Management", authz.Database: "Database Management", authz.VPN: "VPN Management", authz.Audit: "Audit Log",
}

type featureData struct {
	Name     string
	Category authz.Category
	Org      identity.Org
	Orgs     []identity.Org
}

func (c *console) featurePage(w http.ResponseWriter, r *http.Request, s *session) {
	cat, err := authz.ParseCategory(r.PathValue("category"))
	if err != nil {
		c.errorPage(w, r, s, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	if cat == authz.Audit {
		// The audit category's page is the real Audit Log (auditlog.go);
		// the menu, built from the category list, leads here.
		to := "/audit"
		if org := r.URL.Query().Get("org"); org != "" {
			to += "?" + url.Values{"org": {org}}.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	d := featureData{Name: featureNames[cat], Category: cat, Orgs: s.Orgs}
	if id := r.URL.Query().Get("org"); id != "" {
		d.Org = s.org(authz.OrgID(id))
	} else if len(d.Orgs) > 0 {
		d.Org = d.Orgs[0]
	}
	if d.Org.ID == "" {
		c.errorPage(w, r, s, http.StatusForbidden, "Insufficient permissions", "You belong to no organization yet: feature pages open once a Manager has approved your registration.")
		return
	}
	if err := c.svc.Authorize(ctx(r), s.Me.ID, d.Org.ID, cat); err != nil {
		var ipe *authz.InsufficientPermissionsError
		if errors.As(err, &ipe) {
			c.insufficient(w, r, s, d.Name, d.Org.Name, ipe)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "feature", view{Title: d.Name, Nav: "feature-" + cat.String(), S: s, Data: d})
}

type deniedData struct {
	Page, Org         string
	Required, Missing []authz.Category
}

// insufficient is the "Insufficient permissions" page of the FAQ: it
// names the missing categories and what to send to the Manager.
func (c *console) insufficient(w http.ResponseWriter, r *http.Request, s *session, page, org string, e *authz.InsufficientPermissionsError) {
	if page == "" {
		page = r.URL.Path
	}
	c.render(w, r, http.StatusForbidden, "denied", view{Title: "Insufficient permissions", S: s,
		Data: deniedData{Page: page, Org: org, Required: e.Required.Slice(), Missing: e.Missing.Slice()}})
}

// Template helpers.

var roleLabels = map[authz.Role]string{authz.PlatformAdmin: "PlatformAdmin", authz.Manager: "Manager", authz.Member: "Member"}

var funcs = map[string]any{
	// roleOf is the role a row shows: PlatformAdmin is platform-wide and
	// outranks the role held in the org.
	"roleOf": func(a iam.Account, r authz.Role) authz.Role {
		if a.PlatformAdmin {
			return authz.PlatformAdmin
		}
		return r
	},
	"roleLabel": func(r authz.Role) string { return roleLabels[r] },
	// roles are the choices of Edit Role: only a PlatformAdmin may make
	// someone a PlatformAdmin (the Service refuses it from a Manager
	// anyway; the menu does not offer what would be refused).
	"roles": func(platformAdmin bool) []authz.Role {
		if platformAdmin {
			return []authz.Role{authz.PlatformAdmin, authz.Manager, authz.Member}
		}
		return []authz.Role{authz.Manager, authz.Member}
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"periodLabel": func(p string) string {
		return map[string]string{"7d": "7 days", "30d": "30 days", "all": "All"}[p]
	},
	"features":    func() []authz.Category { return authz.Categories() },
	"featureName": func(c authz.Category) string { return featureNames[c] },
}
