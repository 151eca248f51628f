package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// The handlers. Each parses its input, calls one Service operation as the
// identified actor (the Service applies the "Who may do what" rules and
// the invariants) and writes the result; an error goes back to
// server.fail. Routes that take no input ignore the request body.

func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Sign-up, login, logout and forgotten passwords.

func (s *server) signUp(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
		OrgID    string `json:"org_id"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	org, err := authz.ParseOrgID(in.OrgID)
	if err != nil {
		return &authz.InvalidError{Field: "org_id", Value: in.OrgID, Reason: "not an organization id"}
	}
	if err := s.svc.SignUp(r.Context(), in.Email, in.Name, in.Password, org); err != nil {
		return err
	}
	// The same answer whether or not the email had an account (SignUp
	// answers alike): nothing here tells them apart.
	return writeJSON(w, http.StatusCreated, map[string]string{"status": approval.Pending.String(), "org_id": string(org),
		"message": "Your registration request is waiting for a Manager's approval."})
}

func (s *server) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	tok, err := s.svc.Login(r.Context(), in.Email, in.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tokenOf(tok))
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) error {
	token, ok := iam.BearerToken(r)
	if !ok {
		return fmt.Errorf("%w: sign in first", iam.ErrUnauthenticated)
	}
	if err := s.svc.Logout(r.Context(), token); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string `json:"email"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if err := s.svc.ForgotPassword(r.Context(), in.Email); err != nil {
		return err // only a malformed email: known and unknown ones answer alike
	}
	return writeJSON(w, http.StatusAccepted, messageView{"If an account uses this email, a password-reset token is on its way to it."})
}

func (s *server) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	tok, err := s.svc.ResetPassword(r.Context(), in.Token, in.NewPassword)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tokenOf(tok))
}

// The Profile page.

func (s *server) me(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	p, err := s.profile(r, me)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// profile returns me's profile, with the names of the orgs they belong to.
func (s *server) profile(r *http.Request, me authz.UserID) (profileView, error) {
	p, err := s.svc.Profile(r.Context(), me)
	if err != nil {
		return profileView{}, err
	}
	orgs, err := s.svc.Orgs(r.Context(), me)
	if err != nil {
		return profileView{}, err
	}
	names := map[authz.OrgID]string{}
	for _, o := range orgs {
		names[o.ID] = o.Name
	}
	v := profileView{accountView: accountOf(p.Account), Memberships: []membershipView{}}
	for org, m := range p.Memberships {
		v.Memberships = append(v.Memberships, membershipView{OrgID: string(org), OrgName: names[org], Role: roleName(m.Role), Categories: categoryNames(m.Categories)})
	}
	slices.SortFunc(v.Memberships, func(a, b membershipView) int {
		return cmp.Or(cmp.Compare(a.OrgName, b.OrgName), cmp.Compare(a.OrgID, b.OrgID))
	})
	return v, nil
}

func (s *server) changeName(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if err := s.svc.ChangeName(r.Context(), me, in.Name); err != nil {
		return err
	}
	p, err := s.profile(r, me)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *server) changePassword(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	var in struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	tok, err := s.svc.ChangePassword(r.Context(), me, in.CurrentPassword, in.NewPassword)
	if err != nil {
		return err
	}
	// Every other session ended; this token keeps the caller signed in.
	return writeJSON(w, http.StatusOK, tokenOf(tok))
}

func (s *server) deleteMe(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if err := s.svc.DeleteAccount(r.Context(), me, in.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Organization Management.

func (s *server) orgs(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	orgs, err := s.svc.Orgs(r.Context(), me)
	if err != nil {
		return err
	}
	out := []orgView{}
	for _, o := range orgs {
		out = append(out, orgOf(o))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"orgs": out})
}

func (s *server) createOrg(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	o, err := s.svc.CreateOrg(r.Context(), me, in.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/orgs/"+string(o.ID))
	return writeJSON(w, http.StatusCreated, orgOf(o))
}

// findOrg returns org as the actor sees it: the Service lists every org
// for a PlatformAdmin and the actor's own for anyone else, so an org of
// someone else is not found.
func (s *server) findOrg(r *http.Request, me authz.UserID, org authz.OrgID) (identity.Org, error) {
	orgs, err := s.svc.Orgs(r.Context(), me)
	if err != nil {
		return identity.Org{}, err
	}
	for _, o := range orgs {
		if o.ID == org {
			return o, nil
		}
	}
	return identity.Org{}, fmt.Errorf("%w: no such organization", iam.ErrNotFound)
}

func (s *server) org(w http.ResponseWriter, r *http.Request) error {
	me, org, err := orgParams(r)
	if err != nil {
		return err
	}
	o, err := s.findOrg(r, me, org)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, orgOf(o))
}

func (s *server) renameOrg(w http.ResponseWriter, r *http.Request) error {
	me, org, err := orgParams(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if err := s.svc.RenameOrg(r.Context(), me, org, in.Name); err != nil {
		return err
	}
	o, err := s.findOrg(r, me, org)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, orgOf(o))
}

func (s *server) deleteOrg(w http.ResponseWriter, r *http.Request) error {
	me, org, err := orgParams(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteOrg(r.Context(), me, org); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Pending Approvals.

// registrations answers the queue of an org: ?period=7d|30d|all (default
// all) and ?status=pending|approved|rejected|any (default pending), with
// the org's pending count.
func (s *server) registrations(w http.ResponseWriter, r *http.Request) error {
	me, org, err := orgParams(r)
	if err != nil {
		return err
	}
	q, err := query(r, "period", "status")
	if err != nil {
		return err
	}
	period := approval.AllTime
	if v, ok := q["period"]; ok {
		if period, err = approval.ParsePeriod(v); err != nil {
			return &authz.InvalidError{Field: "period", Value: v, Reason: "want 7d, 30d or all"}
		}
	}
	status := approval.Pending
	if v, ok := q["status"]; ok {
		if v == "any" {
			status = approval.AnyStatus
		} else if status, err = approval.ParseStatus(v); err != nil {
			return &authz.InvalidError{Field: "status", Value: v, Reason: "want pending, approved, rejected or any"}
		}
	}
	reqs, err := s.svc.Registrations(r.Context(), me, org, period, status)
	if err != nil {
		return err
	}
	n, err := s.svc.PendingCount(r.Context(), me, org)
	if err != nil {
		return err
	}
	out := []registrationView{}
	for _, req := range reqs {
		out = append(out, registrationOf(req))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"registrations": out, "pending_count": n, "period": period.String(), "status": status.String()})
}

func requestParam(r *http.Request) (approval.RequestID, error) {
	id, err := approval.ParseRequestID(r.PathValue("id"))
	if err != nil {
		return "", fmt.Errorf("%w: no such registration request", iam.ErrNotFound)
	}
	return id, nil
}

func (s *server) approve(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	id, err := requestParam(r)
	if err != nil {
		return err
	}
	if err := s.svc.Approve(r.Context(), me, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reject takes an optional body {"reason": "..."}.
func (s *server) reject(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	id, err := requestParam(r)
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if hasBody(r) {
		if err := s.decode(w, r, &in); err != nil {
			return err
		}
	}
	if err := s.svc.Reject(r.Context(), me, id, in.Reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hasBody reports whether r comes with a body (a body whose length is
// unknown counts).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// Users by Organization: members, Edit Role, Permission Management,
// Remove, and an administrator-started password reset.

// orgListing is the input of an org's listing route: the actor, the org,
// the page (?after&limit) and the category (?category, 0 when absent).
type orgListing struct {
	me       authz.UserID
	org      authz.OrgID
	page     iam.Page
	category authz.Category
}

func orgListingOf(r *http.Request) (l orgListing, err error) {
	if l.me, l.org, err = orgParams(r); err != nil {
		return l, err
	}
	q, p, err := listParams(r, "category")
	if err != nil {
		return l, err
	}
	l.page = p
	if name, ok := q["category"]; ok {
		l.category, err = authz.ParseCategory(name)
	}
	return l, err
}

// members lists a page of org's members (?after&limit); with ?category,
// only those granted it (Service.MembersWith).
func (s *server) members(w http.ResponseWriter, r *http.Request) error {
	l, err := orgListingOf(r)
	if err != nil {
		return err
	}
	var page iam.MemberPage
	if l.category != 0 {
		page, err = s.svc.MembersWith(r.Context(), l.me, l.org, l.category, l.page)
	} else {
		page, err = s.svc.Members(r.Context(), l.me, l.org, l.page)
	}
	if err != nil {
		return err
	}
	out := []memberView{}
	for _, m := range page.Members {
		out = append(out, memberOf(m))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"org_id": string(l.org), "members": out, "next": page.Next})
}

// access lists a page of the users allowed to use ?category (required) in
// org, and why (Service.Access).
func (s *server) access(w http.ResponseWriter, r *http.Request) error {
	l, err := orgListingOf(r)
	if err != nil {
		return err
	}
	page, err := s.svc.Access(r.Context(), l.me, l.org, l.category, l.page)
	if err != nil {
		return err
	}
	out := []accessorView{}
	for _, a := range page.Accessors {
		out = append(out, accessorView{memberView: memberOf(a.Member), Reason: a.Reason.String()})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"org_id": string(l.org), "category": l.category, "users": out, "next": page.Next})
}

// listParams reads the query of a listing route: after (the next of the
// previous page), limit (1 to iam.MaxPageLimit; absent for
// iam.DefaultPageLimit) and the route's extra parameters. The Service
// validates the page.
func listParams(r *http.Request, extra ...string) (map[string]string, iam.Page, error) {
	q, err := query(r, append([]string{"after", "limit"}, extra...)...)
	if err != nil {
		return nil, iam.Page{}, err
	}
	p, err := pageOf(q)
	return q, p, err
}

// pageOf reads a listing's page from its query.
func pageOf(q map[string]string) (iam.Page, error) {
	p := iam.Page{After: q["after"]}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return iam.Page{}, &authz.InvalidError{Field: "limit", Reason: fmt.Sprintf("want a number from 1 to %d", iam.MaxPageLimit)}
		}
		p.Limit = n
	}
	return p, nil
}

// orgParams returns the actor and the org of an org's route.
func orgParams(r *http.Request) (me authz.UserID, org authz.OrgID, err error) {
	if me, err = actor(r); err != nil {
		return "", "", err
	}
	org, err = orgParam(r)
	return me, org, err
}

// memberParams returns the actor, the org and the user of a member route.
func memberParams(r *http.Request) (me authz.UserID, org authz.OrgID, user authz.UserID, err error) {
	if me, org, err = orgParams(r); err != nil {
		return "", "", "", err
	}
	user, err = userParam(r)
	return me, org, user, err
}

func (s *server) changeRole(w http.ResponseWriter, r *http.Request) error {
	me, org, user, err := memberParams(r)
	if err != nil {
		return err
	}
	var in struct {
		Role string `json:"role"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	role, err := parseRole(in.Role)
	if err != nil {
		return err
	}
	if err := s.svc.ChangeRole(r.Context(), me, user, org, role); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setCategories replaces the member's categories with the whole set given:
// {"categories": ["infra", "vpn"]}; [] clears them; the field is required.
func (s *server) setCategories(w http.ResponseWriter, r *http.Request) error {
	me, org, user, err := memberParams(r)
	if err != nil {
		return err
	}
	var in struct {
		Categories *[]string `json:"categories"`
	}
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if in.Categories == nil {
		return &authz.InvalidError{Field: "categories", Reason: "required: the whole set, [] for none"}
	}
	set, err := authz.ParseCategoryNames(*in.Categories)
	if err != nil {
		return err
	}
	if err := s.svc.SetCategories(r.Context(), me, user, org, set); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// member reads one member of org (Service.Member): the user picked on
// Permission Management.
func (s *server) member(w http.ResponseWriter, r *http.Request) error {
	me, org, user, err := memberParams(r)
	if err != nil {
		return err
	}
	m, err := s.svc.Member(r.Context(), me, user, org)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, memberOf(m))
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request) error {
	me, org, user, err := memberParams(r)
	if err != nil {
		return err
	}
	if err := s.svc.RemoveMember(r.Context(), me, user, org); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) startPasswordReset(w http.ResponseWriter, r *http.Request) error {
	me, org, user, err := memberParams(r)
	if err != nil {
		return err
	}
	if err := s.svc.StartPasswordReset(r.Context(), me, user, org); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, messageView{"The user's sessions ended and a password-reset token is on its way to them."})
}

// All Users and offboarding (PlatformAdmins; the Service refuses others).

// users lists a page of All Users (?after&limit).
func (s *server) users(w http.ResponseWriter, r *http.Request) error {
	me, err := actor(r)
	if err != nil {
		return err
	}
	_, p, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := s.svc.Users(r.Context(), me, p)
	if err != nil {
		return err
	}
	out := []accountView{}
	for _, u := range page.Accounts {
		out = append(out, accountOf(u))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": out, "next": page.Next})
}

// accountOp runs one of the account-wide operations (DeleteUser,
// DeactivateUser, ReactivateUser) on the path's user.
func (s *server) accountOp(op func(ctx context.Context, actor, target authz.UserID) error) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		me, err := actor(r)
		if err != nil {
			return err
		}
		user, err := userParam(r)
		if err != nil {
			return err
		}
		if err := op(r.Context(), me, user); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// The sample feature pages and operations screens. The middleware has
// decided before these run; they show what it decided.

func (s *server) featurePage(page string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		d, ok := authz.DecisionFrom(r.Context())
		if !ok || !d.Allowed { // registered without RequireCategories: fail closed
			return fmt.Errorf("%w: no permission decision", iam.ErrForbidden)
		}
		return writeJSON(w, http.StatusOK, decisionOf(page, d))
	}
}

// deviceName is what a sample device name may look like.
var deviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// deleteDevice is the seed's "deleting a production server": it needs the
// device category in the org. The example holds no devices, so it only
// checks the name and answers as if it had deleted it.
func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	d, ok := authz.DecisionFrom(r.Context())
	if !ok || !d.Allowed {
		return fmt.Errorf("%w: no permission decision", iam.ErrForbidden)
	}
	if !deviceName.MatchString(r.PathValue("device")) {
		return fmt.Errorf("%w: no such device", iam.ErrNotFound)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) opsScreen(screen string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]string{"screen": screen,
			"message": "Operations screen: PlatformAdmins only. The example shows no database internals."})
	}
}
