package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Checker answers the checks the middleware needs. *Engine implements it.
// Implementations must be safe for concurrent use.
type Checker interface {
	CheckAll(user UserID, org OrgID, required CategorySet) Decision
	IsPlatformAdmin(user UserID) bool
	Membership(user UserID, org OrgID) (Membership, bool)
}

var _ Checker = (*Engine)(nil)

// Guard is the net/http middleware of the module: each method returns a
// func(http.Handler) http.Handler (or is one), so it works with the
// standard ServeMux, chi, gorilla and anything of that shape. It denies by
// default and fails closed: an error or a panic while deciding answers 503
// or 500, never lets the request through.
//
// Authenticate must run before the Require methods; they read the user it
// puts in the request's context. Errors are RFC 9457 problem bodies (see
// WriteError). A Guard is safe for concurrent use once its fields are set;
// do not change them while it serves.
type Guard struct {
	// Checker answers the permission checks. Required.
	Checker Checker
	// Identify returns the user a request speaks for (for example from a
	// bearer session token, or from the host's own JWT). An error matching
	// ErrUnauthenticated answers 401; any other error 503. Required.
	Identify func(r *http.Request) (UserID, error)
	// Org returns the org a request concerns. If nil, the path value
	// "org" (a ServeMux pattern like /v1/orgs/{org}/...), parsed with
	// ParseOrgID. An error answers 404: an org one cannot name does not
	// exist.
	Org func(r *http.Request) (OrgID, error)
	// OnDenied, if set, is called for every refused request, with the
	// decision that refused it (for logging or metrics).
	OnDenied func(r *http.Request, d Decision)
	// OnError, if set, is called with every error or recovered panic that
	// made the middleware answer 5xx.
	OnError func(r *http.Request, err error)
}

// stateKey is the context key of a request's reqState.
type stateKey struct{}

// reqState is what the middleware learned about one request. Authenticate
// puts a fresh one in the request's context; RequireCategories records
// its decision in it rather than cloning the request a second time.
type reqState struct {
	user        UserID
	decision    Decision
	hasDecision bool
}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// UserFrom returns the user Authenticate identified for the request whose
// context is ctx.
func UserFrom(ctx context.Context) (UserID, bool) {
	if st := stateFrom(ctx); st != nil {
		return st.user, true
	}
	return "", false
}

// DecisionFrom returns the Decision that RequireCategories made for the
// request whose context is ctx.
func DecisionFrom(ctx context.Context) (Decision, bool) {
	if st := stateFrom(ctx); st != nil && st.hasDecision {
		return st.decision, true
	}
	return Decision{}, false
}

// WithUser returns ctx carrying user as the identified user, for hosts
// that identify requests themselves and for tests.
func WithUser(ctx context.Context, user UserID) context.Context {
	return context.WithValue(ctx, stateKey{}, &reqState{user: user})
}

var (
	errNoIdentity = fmt.Errorf("%w: sign in first (Authorization: Bearer <token>)", ErrUnauthenticated)
	errNoOrg      = fmt.Errorf("%w: no such organization", ErrNotFound)
)

// Authenticate identifies the request's user with Identify and passes the
// request on with the user in its context (see UserFrom). Without a valid
// identity it answers 401.
func (g *Guard) Authenticate(next http.Handler) http.Handler {
	g.mustBeSet()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := g.identify(r)
		switch {
		case errors.Is(err, ErrUnauthenticated):
			WriteError(w, r, err)
			return
		case err != nil:
			g.unavailable(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}

func (g *Guard) identify(r *http.Request) (u UserID, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("authz: identify panicked: %v", p)
		}
	}()
	u, err = g.Identify(r)
	if err == nil && !u.Valid() {
		err = fmt.Errorf("authz: Identify returned %w", invalid("user id", string(u), "not an id this module issued"))
	}
	return u, err
}

// RequireCategories lets a request through only if its user holds every
// one of cats in the request's org; the Decision goes into the context
// (see DecisionFrom). A refusal is 403 "Insufficient permissions" naming
// the required and missing categories; a user who holds nothing in the
// org gets 404, as for an org that does not exist. It panics when cats is
// empty or holds an invalid Category (a programming error).
func (g *Guard) RequireCategories(cats ...Category) func(http.Handler) http.Handler {
	g.mustBeSet()
	if len(cats) == 0 {
		panic("authz: RequireCategories needs at least one category")
	}
	required := NewCategorySet(cats...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, o, ok := g.subject(w, r)
			if !ok {
				return
			}
			d, err := g.decide(u, o, required)
			if err != nil {
				g.unavailable(w, r, err)
				return
			}
			st := stateFrom(r.Context())
			st.decision, st.hasDecision = d, true
			if d.Allowed {
				next.ServeHTTP(w, r)
				return
			}
			if g.OnDenied != nil {
				g.OnDenied(r, d)
			}
			switch d.Reason {
			case ReasonMissingCategories:
				WriteProblem(w, r, insufficient(d.Required, d.Missing))
			case ReasonNotMember, ReasonInvalid:
				WriteError(w, r, errNoOrg)
			case ReasonError:
				g.unavailable(w, r, errors.New("authz: the decision could not be made"))
			default:
				WriteError(w, r, fmt.Errorf("%w: %v", ErrForbidden, d.Reason))
			}
		})
	}
}

func (g *Guard) decide(u UserID, o OrgID, required CategorySet) (d Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("authz: check panicked: %v", p)
		}
	}()
	return g.Checker.CheckAll(u, o, required), nil
}

// RequirePlatformAdmin lets a request through only if its user is a
// PlatformAdmin: the operations screens (DB Explorer, DB Monitoring).
// Anyone else gets 403.
func (g *Guard) RequirePlatformAdmin(next http.Handler) http.Handler {
	g.mustBeSet()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := UserFrom(r.Context())
		if !ok {
			WriteError(w, r, errNoIdentity)
			return
		}
		admin, err := g.safely(func() bool { return g.Checker.IsPlatformAdmin(u) })
		switch {
		case err != nil:
			g.unavailable(w, r, err)
		case !admin:
			if g.OnDenied != nil {
				g.OnDenied(r, Decision{User: u, Reason: ReasonMissingCategories})
			}
			WriteError(w, r, errNeedPlatformAdmin)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// RequireOrgManager lets a request through only if its user holds
// management authority in the request's org: a Manager of it or a
// PlatformAdmin. A Member gets 403; someone with no role there 404. The
// Service checks each operation's own rules as well; this is the coarse
// gate for a host's own management pages.
func (g *Guard) RequireOrgManager(next http.Handler) http.Handler {
	g.mustBeSet()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, o, ok := g.subject(w, r)
		if !ok {
			return
		}
		var err error
		var admin, member bool
		var m Membership
		admin, err = g.safely(func() bool {
			m, member = g.Checker.Membership(u, o)
			return g.Checker.IsPlatformAdmin(u)
		})
		switch {
		case err != nil:
			g.unavailable(w, r, err)
		case admin || member && m.Role == Manager:
			next.ServeHTTP(w, r)
		case !member:
			WriteError(w, r, errNoOrg)
		default:
			if g.OnDenied != nil {
				g.OnDenied(r, Decision{User: u, Org: o, Role: m.Role, Reason: ReasonMissingCategories})
			}
			WriteError(w, r, errNeedManager)
		}
	})
}

// subject returns the request's user and org, or answers the request.
func (g *Guard) subject(w http.ResponseWriter, r *http.Request) (UserID, OrgID, bool) {
	u, ok := UserFrom(r.Context())
	if !ok {
		WriteError(w, r, errNoIdentity)
		return "", "", false
	}
	var o OrgID
	var err error
	if g.Org != nil {
		o, err = g.Org(r)
	} else {
		o, err = ParseOrgID(r.PathValue("org"))
	}
	if err != nil || !o.Valid() {
		WriteError(w, r, errNoOrg)
		return "", "", false
	}
	return u, o, true
}

func (g *Guard) safely(f func() bool) (v bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("authz: check panicked: %v", p)
		}
	}()
	return f(), nil
}

// unavailable answers 503 for a failure to decide, telling OnError.
func (g *Guard) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if g.OnError != nil {
		g.OnError(r, err)
	}
	w.Header().Set("Retry-After", "5")
	WriteProblem(w, r, Problem{Type: "about:blank", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
		Detail: "Permissions could not be checked right now. Try again shortly."})
}

// mustBeSet panics when a required field is missing: a programming error,
// found when the routes are built rather than on the first request.
func (g *Guard) mustBeSet() {
	if g == nil || g.Checker == nil || g.Identify == nil {
		panic("authz: Guard needs Checker and Identify")
	}
}
