package iam

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/kiops/iam/authz"
)

// Guard returns the net/http middleware wired to this Service: requests
// name their user with the module's own bearer sessions
// ("Authorization: Bearer <token>", resolved by Authenticate), and checks
// answer from the Service's engine. A request carrying a consistency token
// in VersionHeader is identified and checked only once the Service has
// applied that policy version (see WaitVersion; a token it cannot reach in
// time, or a malformed one, answers 503). Change the returned Guard's
// fields to plug another identity (a host's own JWT) or org resolver; see
// authz.Guard.
func (s *Service) Guard() *authz.Guard {
	return &authz.Guard{Checker: s.engine, Identify: s.identifyBearer}
}

// identifyBearer resolves the request's bearer session token, after
// waiting for the policy version of its VersionHeader, if any.
func (s *Service) identifyBearer(r *http.Request) (authz.UserID, error) {
	token, ok := BearerToken(r)
	if !ok {
		return "", errNoSession
	}
	if h := r.Header.Get(VersionHeader); h != "" {
		v, err := strconv.ParseInt(h, 10, 64)
		if err != nil {
			return "", &authz.InvalidError{Field: VersionHeader, Value: h, Reason: "not a policy version"}
		}
		// Only a live session waits: an anonymous or forged request with
		// a version far ahead would otherwise hold a goroutine and poll
		// the database for as long as its client likes. The session is
		// checked again after the wait, which may have ended it.
		if _, err := s.Authenticate(r.Context(), token); err != nil {
			return "", err
		}
		if err := s.WaitVersion(r.Context(), v); err != nil {
			return "", err
		}
	}
	// No WithClientAddr: Authenticate records nothing, so the address
	// would cost two allocations per request and serve nobody.
	return s.Authenticate(r.Context(), token)
}

// BearerToken returns the token of the request's "Authorization: Bearer"
// header (the scheme is case-insensitive, RFC 9110). A request with more
// than one Authorization header has none: which one counts would be
// anybody's guess (a proxy may read the other one).
func BearerToken(r *http.Request) (string, bool) {
	if len(r.Header.Values("Authorization")) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// ClientIP returns the IP address of the request's direct peer, without
// its port. It does not trust forwarding headers: a host behind a proxy it
// trusts should resolve the client's address itself and pass it to
// WithClientAddr.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
