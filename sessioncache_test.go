package iam_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

const newPW = "another horse battery staple" // passes the policy

// login logs email in and authenticates the token once, so that the
// session is in the Service's cache.
func (e *env) login(email, password string) string {
	e.t.Helper()
	tok, err := e.svc.Login(e.ctx, email, password)
	e.must(err)
	e.authenticates(e.svc, tok.Reveal())
	return tok.Reveal()
}

// authenticates fails unless svc accepts token.
func (e *env) authenticates(svc *iam.Service, token string) authz.UserID {
	e.t.Helper()
	u, err := svc.Authenticate(e.ctx, token)
	if err != nil || !u.Valid() {
		e.t.Fatalf("Authenticate = %q, %v; want the session's user", u, err)
	}
	return u
}

// refused fails unless svc refuses token as an ended session.
func (e *env) refused(svc *iam.Service, token, after string) {
	e.t.Helper()
	if u, err := svc.Authenticate(e.ctx, token); !errors.Is(err, iam.ErrUnauthenticated) {
		e.t.Fatalf("after %s: Authenticate = %q, %v; want ErrUnauthenticated", after, u, err)
	}
}

// TestSessionCacheRevocation: every call that ends sessions refuses them
// at once on the same Service, although they were answered from memory
// just before.
func TestSessionCacheRevocation(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		for i, tc := range []struct {
			name string
			end  func(u authz.UserID, email, token string) // ends the session token of u
		}{
			{"logout", func(_ authz.UserID, _, token string) { e.must(e.svc.Logout(e.ctx, token)) }},
			{"password change", func(u authz.UserID, _, _ string) {
				_, err := e.svc.ChangePassword(e.ctx, u, pw, newPW)
				e.must(err)
			}},
			{"forgotten password reset", func(_ authz.UserID, email, _ string) {
				e.must(e.svc.ForgotPassword(e.ctx, email))
				_, err := e.svc.ResetPassword(e.ctx, e.mail.Next(t).Token.Reveal(), newPW)
				e.must(err)
			}},
			{"reset started by an admin", func(u authz.UserID, _, _ string) {
				e.must(e.svc.StartPasswordReset(e.ctx, e.admin, u, o))
				e.mail.Next(t)
			}},
			{"deactivation", func(u authz.UserID, _, _ string) { e.must(e.svc.DeactivateUser(e.ctx, e.admin, u)) }},
			// The engine knows the account is active again, so only the
			// eviction stands between the ended session and a request.
			{"deactivation and reactivation", func(u authz.UserID, _, _ string) {
				e.must(e.svc.DeactivateUser(e.ctx, e.admin, u))
				e.must(e.svc.ReactivateUser(e.ctx, e.admin, u))
			}},
			{"deletion", func(u authz.UserID, _, _ string) { e.must(e.svc.DeleteUser(e.ctx, e.admin, u)) }},
			{"account deletion", func(u authz.UserID, _, _ string) { e.must(e.svc.DeleteAccount(e.ctx, u, pw)) }},
		} {
			email := fmt.Sprintf("user%d@example.com", i)
			u := e.member(email, o, authz.Member, authz.NewCategorySet(authz.VPN))
			token := e.login(email, pw)
			other := e.login("ada@example.com", pw) // someone else's session, cached too
			tc.end(u, email, token)
			e.refused(e.svc, token, tc.name)
			if got := e.authenticates(e.svc, other); got != e.admin {
				t.Fatalf("after %s: the admin's session resolves to %s", tc.name, got)
			}
		}
	})
}

// TestSessionCacheAnswersFromMemory: once validated, a session needs no
// database statement at all, so it survives a database that fails every
// statement; an unknown token and a revocation still go to the database.
func TestSessionCacheAnswersFromMemory(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		faults := dbtest.InjectFaults(t, e.db)
		token := e.login("ada@example.com", pw)

		faults.Reset(0)
		e.authenticates(e.svc, token)
		if n := faults.Count(); n != 0 {
			t.Fatalf("a cached session ran %d statements", n)
		}
		faults.Reset(1) // the next statement fails
		e.authenticates(e.svc, token)
		if _, err := e.svc.Authenticate(e.ctx, "unknown token"); !errors.Is(err, dbtest.ErrInjected) {
			t.Fatalf("an unknown token with a failing database: %v", err)
		}

		faults.Reset(0)
		e.must(e.svc.Logout(e.ctx, token))
		e.refused(e.svc, token, "logout")
		if faults.Count() == 0 {
			t.Fatal("the refusal after logout read nothing: it came from a stale cache entry")
		}
	})
}

// TestSessionCacheAllocs: a cached session costs no allocation, the
// promise of Authenticate's doc for the per-request path. (Not parallel:
// AllocsPerRun counts the whole process's allocations.)
func TestSessionCacheAllocs(t *testing.T) {
	e := newEnv(t, dbtest.SQLiteMemory)
	token := e.login("ada@example.com", pw)
	if n := testing.AllocsPerRun(100, func() { e.authenticates(e.svc, token) }); n != 0 {
		t.Errorf("a cached session costs %v allocations", n)
	}
}

// TestSessionCacheExpiry: the cache answers for a session until its
// maximum age, then asks the database again, and never past the session's
// end.
func TestSessionCacheExpiry(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		faults := dbtest.InjectFaults(t, e.db)
		token := e.login("ada@example.com", pw)

		e.clock.Advance(iam.DefaultSessionCacheMaxAge - time.Microsecond)
		faults.Reset(1)
		e.authenticates(e.svc, token) // still from memory: the next statement would fail
		e.clock.Advance(time.Microsecond)
		if _, err := e.svc.Authenticate(e.ctx, token); !errors.Is(err, dbtest.ErrInjected) {
			t.Fatalf("at the maximum age, Authenticate = %v; want a database read (failing)", err)
		}
		faults.Reset(0)
		e.authenticates(e.svc, token) // validated again, cached again

		// Just before the session's end, it is cached with what is left;
		// at the end, memory does not answer for it.
		e.clock.Advance(identity.DefaultSessionLifetime - iam.DefaultSessionCacheMaxAge - time.Second)
		e.authenticates(e.svc, token)
		e.clock.Advance(time.Second)
		faults.Reset(1)
		if _, err := e.svc.Authenticate(e.ctx, token); err == nil {
			t.Fatal("an expired session was accepted")
		}
		faults.Reset(0)
		e.refused(e.svc, token, "the session's end")
	})
}

// TestSessionCachePerService: each Service has a cache of its own. A
// second Service on the same database (another replica) does not answer
// from the first one's memory, and does not hear of the first one's
// logout: it refuses the ended session once its own entry reaches the
// maximum age (issue 7 will tell it at once).
func TestSessionCachePerService(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		faults := dbtest.InjectFaults(t, e.db)
		token := e.login("ada@example.com", pw)
		replica := e.open()
		faults.Reset(1)
		if _, err := replica.Authenticate(e.ctx, token); !errors.Is(err, dbtest.ErrInjected) {
			t.Fatalf("the second Service answered without its database: %v", err)
		}
		faults.Reset(0)
		e.authenticates(replica, token)

		e.must(e.svc.Logout(e.ctx, token))
		e.refused(e.svc, token, "logout")
		e.authenticates(replica, token) // documented: stale on the other replica until the maximum age
		e.clock.Advance(iam.DefaultSessionCacheMaxAge)
		e.refused(replica, token, "logout on another replica and the maximum age")
	})
}

// TestSessionCacheRace: Authenticate calls racing a logout, or a
// deactivation followed by a reactivation, never bring the ended session
// back: no call that starts after the ending call returned accepts it.
// Run with -race.
func TestSessionCacheRace(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		o := e.org("Seoul DC")
		u := e.member("joon@example.com", o, authz.Member, 0)
		ends := map[string]func(token string){
			"logout": func(token string) { e.must(e.svc.Logout(e.ctx, token)) },
			"deactivation and reactivation": func(string) {
				e.must(e.svc.DeactivateUser(e.ctx, e.admin, u))
				e.must(e.svc.ReactivateUser(e.ctx, e.admin, u))
			},
		}
		for name, end := range ends {
			for round := range 20 {
				tok, err := e.svc.Login(e.ctx, "joon@example.com", pw)
				e.must(err)
				token := tok.Reveal()
				var ended atomic.Bool // set once end has returned
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for {
							late := ended.Load()
							_, err := e.svc.Authenticate(e.ctx, token)
							if late && err == nil {
								t.Errorf("%s, round %d: a call started after the end accepted the session", name, round)
							}
							if late {
								return
							}
						}
					})
				}
				end(token)
				ended.Store(true)
				wg.Wait()
				e.refused(e.svc, token, name)
			}
		}
	})
}

// TestSessionCacheOption: WithSessionCache(0, …) turns the cache off, and
// negative values are refused.
func TestSessionCacheOption(t *testing.T) {
	e := newEnv(t, dbtest.SQLiteMemory)
	svc, err := iam.New(e.ctx, e.db, iam.WithSessionCache(0, time.Minute), iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	e.must(err)
	defer svc.Close()
	tok, err := svc.Login(e.ctx, "ada@example.com", pw)
	e.must(err)
	e.authenticates(svc, tok.Reveal())
	faults := dbtest.InjectFaults(t, e.db)
	faults.Reset(1)
	if _, err := svc.Authenticate(e.ctx, tok.Reveal()); !errors.Is(err, dbtest.ErrInjected) {
		t.Fatalf("with the cache off, Authenticate = %v; want a database read (failing)", err)
	}
	for _, opt := range []iam.Option{iam.WithSessionCache(-1, time.Minute), iam.WithSessionCache(10, -time.Second)} {
		if _, err := iam.New(e.ctx, e.db, opt); !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("a negative session cache setting: %v", err)
		}
	}
}
