package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Problem is an RFC 9457 problem details object, the body of every error
// response of the middleware and of hosts that use WriteError.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// RequiredCategories and MissingCategories are set on the
	// "Insufficient permissions" answer: what the page needs, and the part
	// the person must ask their Manager for.
	RequiredCategories []Category `json:"required_categories,omitempty"`
	MissingCategories  []Category `json:"missing_categories,omitempty"`
}

// The statuses and titles of the error kinds: the one table that maps
// errors to HTTP answers.
var kindStatus = []struct {
	kind   error
	status int
	title  string
}{
	{ErrUnauthenticated, http.StatusUnauthorized, "Unauthenticated"},
	{ErrForbidden, http.StatusForbidden, "Forbidden"},
	{ErrNotFound, http.StatusNotFound, "Not found"},
	{ErrConflict, http.StatusConflict, "Conflict"},
	{ErrInvalid, http.StatusUnprocessableEntity, "Invalid request"},
}

// ProblemFor returns the problem that answers err: its status and title
// by kind (ErrUnauthenticated 401, ErrForbidden 403, ErrNotFound 404,
// ErrConflict 409, ErrInvalid 422), "Insufficient permissions" with the
// categories for an *InsufficientPermissionsError, and 500 for anything
// else. The detail is the module's own wording for people (the rule that
// refused, the invalid field and why); a 500 says nothing of its cause.
func ProblemFor(err error) Problem {
	var ipe *InsufficientPermissionsError
	if errors.As(err, &ipe) {
		return insufficient(ipe.Required, ipe.Missing)
	}
	for _, k := range kindStatus {
		if errors.Is(err, k.kind) {
			return Problem{Type: "about:blank", Title: k.title, Status: k.status, Detail: publicDetail(err)}
		}
	}
	return Problem{Type: "about:blank", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "The request could not be completed. Try again later."}
}

// insufficient is the FAQ's "Insufficient permissions" answer.
func insufficient(required, missing CategorySet) Problem {
	return Problem{
		Type:   "about:blank",
		Title:  "Insufficient permissions",
		Status: http.StatusForbidden,
		Detail: "Your permission categories do not include this feature. Ask your Manager for the " +
			missing.String() + " " + plural(missing, "category", "categories") +
			", telling them the page or feature you need and the work-related reason.",
		RequiredCategories: required.Slice(),
		MissingCategories:  missing.Slice(),
	}
}

func plural(s CategorySet, one, many string) string {
	if s.Len() == 1 {
		return one
	}
	return many
}

// publicPrefixes are the packages whose error texts are written for
// people; wrapping layers (storage, operation names) are not shown.
var publicPrefixes = []string{"authz: ", "identity: ", "approval: ", "audit: "}

// publicDetail finds, along err's chain, the first error worded by a
// domain package and returns its text without the package prefix.
func publicDetail(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return "invalid " + ie.Field + ": " + ie.Reason
	}
	for e := range chain(err) {
		msg := e.Error()
		for _, p := range publicPrefixes {
			if strings.HasPrefix(msg, p) {
				return withoutKind(strings.TrimPrefix(msg, p))
			}
		}
	}
	return ""
}

// withoutKind drops a leading error kind ("conflict: this request was
// already approved"): the problem's title says the kind already.
func withoutKind(msg string) string {
	for _, k := range kindStatus {
		word := strings.TrimPrefix(k.kind.Error(), "authz: ")
		if rest, ok := strings.CutPrefix(msg, word+": "); ok {
			return rest
		}
	}
	return msg
}

// chain yields err and the errors it wraps, depth first.
func chain(err error) func(func(error) bool) {
	return func(yield func(error) bool) {
		var walk func(error) bool
		walk = func(e error) bool {
			if e == nil {
				return true
			}
			if !yield(e) {
				return false
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				return walk(u.Unwrap())
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					if !walk(x) {
						return false
					}
				}
			}
			return true
		}
		walk(err)
	}
}

// WriteError answers r with the problem for err (see ProblemFor). It is
// the one place where errors become HTTP statuses.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	WriteProblem(w, r, ProblemFor(err))
}

// WriteProblem writes p as application/problem+json with p.Status, and
// WWW-Authenticate for a 401.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" && r != nil && r.URL != nil {
		p.Instance = r.URL.Path
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="kiops-iam"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
