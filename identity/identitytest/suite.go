package identitytest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Run is the conformance suite of identity.Store: every implementation
// must pass it. newStore must return a new, empty, independent Store each
// time it is called (for a database: a fresh database or schema, cleaned
// up with t.Cleanup). The subtests run one after the other, since a store
// under test may not tolerate parallel setup; some of them start
// goroutines of their own to test concurrent calls.
//
// It checks every contract of the interface's documentation: not-found
// and conflict kinds, ordering, unique live emails (the caller
// canonicalizes with identity.CanonicalEmail), soft deletion freeing the
// email for a new account, UpdateUser writing only the fields it is given,
// session deletion per user, reset tokens that work once (also when two
// goroutines redeem one together), expire, and are voided by a newer one,
// housekeeping, and times read back equal to the microsecond.
func Run(t *testing.T, newStore func(t *testing.T) identity.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s identity.Store)
	}{
		{"Orgs", testOrgs},
		{"OrgOrderAndRename", testOrgOrderAndRename},
		{"Users", testUsers},
		{"UniqueEmail", testUniqueEmail},
		{"ConcurrentUniqueEmail", testConcurrentUniqueEmail},
		{"UpdateUser", testUpdateUser},
		{"SoftDelete", testSoftDelete},
		{"Sessions", testSessions},
		{"ResetTokens", testResetTokens},
		{"ResetTokenExpiry", testResetTokenExpiry},
		{"NewerResetTokenVoidsOlder", testNewerResetToken},
		{"ConcurrentResetTokenUse", testConcurrentResetTokenUse},
		{"DeleteExpired", testDeleteExpired},
		{"InvalidInput", testInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// t0 has microseconds, which every store must keep.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want one matching %v", err, kind)
	}
}

func org(name string) identity.Org {
	return identity.Org{ID: authz.NewOrgID(), Name: name, CreatedAt: t0}
}

func user(t *testing.T, email, name string) identity.User {
	t.Helper()
	e, err := identity.CanonicalEmail(email)
	ok(t, err)
	return identity.User{
		ID: authz.NewUserID(), Email: e, Name: name, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
		Status: identity.Active, CreatedAt: t0, UpdatedAt: t0,
	}
}

func sameOrg(t *testing.T, got, want identity.Org) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("got org %+v, want %+v", got, want)
	}
}

func sameUser(t *testing.T, got, want identity.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name || got.PasswordHash != want.PasswordHash ||
		got.Status != want.Status || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("got user %+v, want %+v", got, want)
	}
}

func sameGrant(t *testing.T, what string, gotHash, wantHash identity.TokenHash, gotUser, wantUser authz.UserID, gotC, wantC, gotE, wantE time.Time) {
	t.Helper()
	if gotHash != wantHash || gotUser != wantUser || !gotC.Equal(wantC) || !gotE.Equal(wantE) {
		t.Fatalf("got %s (%v, %v, %v, %v), want (%v, %v, %v, %v)", what, gotHash, gotUser, gotC, gotE, wantHash, wantUser, wantC, wantE)
	}
}

func session(user authz.UserID, created time.Time, life time.Duration) identity.Session {
	_, h := identity.NewToken()
	return identity.Session{Hash: h, User: user, CreatedAt: created, ExpiresAt: created.Add(life)}
}

func reset(user authz.UserID, created time.Time) identity.ResetToken {
	_, h := identity.NewToken()
	return identity.ResetToken{Hash: h, User: user, CreatedAt: created, ExpiresAt: created.Add(identity.DefaultResetTokenLifetime)}
}

func testOrgs(t *testing.T, s identity.Store) {
	ctx := context.Background()
	o := org("Acme")
	ok(t, s.CreateOrg(ctx, o))
	got, err := s.Org(ctx, o.ID)
	ok(t, err)
	sameOrg(t, got, o)

	dup := o
	dup.Name = "Other"
	wantKind(t, s.CreateOrg(ctx, dup), authz.ErrConflict)
	_, err = s.Org(ctx, authz.NewOrgID())
	wantKind(t, err, authz.ErrNotFound)

	ok(t, s.DeleteOrg(ctx, o.ID))
	_, err = s.Org(ctx, o.ID)
	wantKind(t, err, authz.ErrNotFound)
	wantKind(t, s.DeleteOrg(ctx, o.ID), authz.ErrNotFound)
	wantKind(t, s.RenameOrg(ctx, o.ID, "Renamed"), authz.ErrNotFound)
	orgs, err := s.Orgs(ctx)
	ok(t, err)
	if len(orgs) != 0 {
		t.Fatalf("Orgs after deleting the only org = %v, want none", orgs)
	}
}

func testOrgOrderAndRename(t *testing.T, s identity.Store) {
	ctx := context.Background()
	gamma, acme, beta := org("Gamma"), org("Acme"), org("Beta")
	twin := org("Beta") // names need not be unique
	for _, o := range []identity.Org{gamma, acme, beta, twin} {
		ok(t, s.CreateOrg(ctx, o))
	}
	betas := []identity.Org{beta, twin}
	if twin.ID < beta.ID {
		betas = []identity.Org{twin, beta}
	}
	want := []identity.Org{acme, betas[0], betas[1], gamma}
	got, err := s.Orgs(ctx)
	ok(t, err)
	if len(got) != len(want) {
		t.Fatalf("Orgs = %v, want %v", got, want)
	}
	for i := range want {
		sameOrg(t, got[i], want[i])
	}

	ok(t, s.RenameOrg(ctx, gamma.ID, "Aardvark Ltd"))
	gamma.Name = "Aardvark Ltd"
	o, err := s.Org(ctx, gamma.ID)
	ok(t, err)
	sameOrg(t, o, gamma)
	got, err = s.Orgs(ctx)
	ok(t, err)
	if got[0].ID != gamma.ID {
		t.Fatalf("after rename, Orgs()[0] = %v, want %v", got[0], gamma)
	}
}

func testUsers(t *testing.T, s identity.Store) {
	ctx := context.Background()
	carol, alice, bob := user(t, "carol@example.com", "Carol"), user(t, "alice@example.com", "Alice"), user(t, "bob@example.com", "Bob")
	bob.Status = identity.Deactivated
	bob.PasswordHash = "" // an account without a password yet
	for _, u := range []identity.User{carol, alice, bob} {
		ok(t, s.CreateUser(ctx, u))
	}
	got, err := s.User(ctx, bob.ID)
	ok(t, err)
	sameUser(t, got, bob)
	got, err = s.UserByEmail(ctx, "alice@example.com")
	ok(t, err)
	sameUser(t, got, alice)

	all, err := s.Users(ctx)
	ok(t, err)
	want := []identity.User{alice, bob, carol}
	if len(all) != len(want) {
		t.Fatalf("Users = %v, want %v", all, want)
	}
	for i := range want {
		sameUser(t, all[i], want[i])
	}

	_, err = s.User(ctx, authz.NewUserID())
	wantKind(t, err, authz.ErrNotFound)
	_, err = s.UserByEmail(ctx, "nobody@example.com")
	wantKind(t, err, authz.ErrNotFound)
	// The store compares canonical emails byte for byte; canonicalizing
	// is the caller's job.
	_, err = s.UserByEmail(ctx, "Alice@example.com")
	wantKind(t, err, authz.ErrNotFound)

	again := user(t, "dave@example.com", "Dave")
	again.ID = alice.ID
	wantKind(t, s.CreateUser(ctx, again), authz.ErrConflict)
}

func testUniqueEmail(t *testing.T, s identity.Store) {
	ctx := context.Background()
	a := user(t, "Ann.Lee@Example.com", "Ann")
	ok(t, s.CreateUser(ctx, a))
	for _, spelling := range []string{"ann.lee@example.com", "  ANN.LEE@EXAMPLE.COM ", "Ann.Lee@example.COM"} {
		b := user(t, spelling, "Another Ann")
		wantKind(t, s.CreateUser(ctx, b), authz.ErrConflict)
	}
	all, err := s.Users(ctx)
	ok(t, err)
	if len(all) != 1 {
		t.Fatalf("Users = %v, want only the first", all)
	}
}

func testConcurrentUniqueEmail(t *testing.T, s identity.Store) {
	ctx := context.Background()
	for round := range 10 {
		email := fmt.Sprintf("race%d@example.com", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			u := user(t, email, "Racer")
			wg.Go(func() { errs[i] = s.CreateUser(ctx, u) })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, authz.ErrConflict) {
				t.Fatalf("round %d: losing CreateUser returned %v, want ErrConflict", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d of 2 concurrent CreateUser calls with one email succeeded, want exactly 1", round, wins)
		}
	}
}

func testUpdateUser(t *testing.T, s identity.Store) {
	ctx := context.Background()
	u := user(t, "erin@example.com", "Erin")
	ok(t, s.CreateUser(ctx, u))
	const hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHRuZXc$bmV3a2V5bmV3a2V5bmV3a2V5bmV3a2V5bmV3a2U"

	// Each update writes the fields it sets and keeps every other one, so
	// that changes to different fields, made from copies read at the same
	// time, all stick. Email and CreatedAt are never UpdateUser's to change.
	want := u
	for i, step := range []struct {
		up         identity.UserUpdate
		name, hash string // wanted after it
		status     identity.Status
	}{
		{identity.UserUpdate{Name: "Erin Ó Briain"}, "Erin Ó Briain", u.PasswordHash, identity.Active},
		{identity.UserUpdate{Status: identity.Deactivated}, "Erin Ó Briain", u.PasswordHash, identity.Deactivated},
		{identity.UserUpdate{PasswordHash: hash}, "Erin Ó Briain", hash, identity.Deactivated},
		{identity.UserUpdate{Name: "Erin", PasswordHash: u.PasswordHash, Status: identity.Active}, "Erin", u.PasswordHash, identity.Active},
	} {
		step.up.At = t0.Add(time.Duration(i+1)*time.Hour + time.Microsecond)
		ok(t, s.UpdateUser(ctx, u.ID, step.up))
		want.Name, want.PasswordHash, want.Status, want.UpdatedAt = step.name, step.hash, step.status, step.up.At
		got, err := s.User(ctx, u.ID)
		ok(t, err)
		sameUser(t, got, want)
	}

	at := t0.Add(time.Hour)
	wantKind(t, s.UpdateUser(ctx, authz.NewUserID(), identity.UserUpdate{Name: "Ghost", At: at}), authz.ErrNotFound)
	for _, bad := range []identity.UserUpdate{
		{At: at},                             // changes nothing
		{Name: "Erin"},                       // no time
		{Name: "Erin\x00", At: at},           // not a clean name
		{Name: " Erin", At: at},              // not in clean form
		{Status: identity.Status(9), At: at}, // not a status
	} {
		wantKind(t, s.UpdateUser(ctx, u.ID, bad), authz.ErrInvalid)
	}
	got, err := s.User(ctx, u.ID)
	ok(t, err)
	sameUser(t, got, want) // nothing written
}

func testSoftDelete(t *testing.T, s identity.Store) {
	ctx := context.Background()
	old := user(t, "frank@example.com", "Frank")
	other := user(t, "grace@example.com", "Grace")
	ok(t, s.CreateUser(ctx, old))
	ok(t, s.CreateUser(ctx, other))
	ok(t, s.DeleteUser(ctx, old.ID, t0.Add(time.Minute)))

	_, err := s.User(ctx, old.ID)
	wantKind(t, err, authz.ErrNotFound)
	_, err = s.UserByEmail(ctx, old.Email)
	wantKind(t, err, authz.ErrNotFound)
	all, err := s.Users(ctx)
	ok(t, err)
	if len(all) != 1 || all[0].ID != other.ID {
		t.Fatalf("Users after deletion = %v, want only %v", all, other.ID)
	}
	wantKind(t, s.DeleteUser(ctx, old.ID, t0.Add(2*time.Minute)), authz.ErrNotFound)
	wantKind(t, s.UpdateUser(ctx, old.ID, identity.UserUpdate{Name: "Frank", At: t0.Add(time.Hour)}), authz.ErrNotFound)
	wantKind(t, s.DeleteUser(ctx, authz.NewUserID(), t0), authz.ErrNotFound)

	// The email is free for a new account, which is a new user.
	fresh := user(t, "Frank@Example.com", "Frank Again")
	fresh.CreatedAt, fresh.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
	ok(t, s.CreateUser(ctx, fresh))
	got, err := s.UserByEmail(ctx, "frank@example.com")
	ok(t, err)
	sameUser(t, got, fresh)
	_, err = s.User(ctx, old.ID)
	wantKind(t, err, authz.ErrNotFound)

	// The deleted account's ID is never reused.
	reuse := user(t, "someone@example.com", "Someone")
	reuse.ID = old.ID
	wantKind(t, s.CreateUser(ctx, reuse), authz.ErrConflict)

	// Deleting the new account too leaves two deleted rows with one email.
	ok(t, s.DeleteUser(ctx, fresh.ID, t0.Add(2*time.Hour)))
	third := user(t, "frank@example.com", "Frank III")
	ok(t, s.CreateUser(ctx, third))
}

func testSessions(t *testing.T, s identity.Store) {
	ctx := context.Background()
	alice, bob := authz.NewUserID(), authz.NewUserID()
	a1 := session(alice, t0, identity.DefaultSessionLifetime)
	a2 := session(alice, t0.Add(time.Minute), time.Hour)
	b1 := session(bob, t0, identity.DefaultSessionLifetime)
	expired := session(bob, t0.Add(-2*time.Hour), time.Hour)
	for _, se := range []identity.Session{a1, a2, b1, expired} {
		ok(t, s.CreateSession(ctx, se))
	}
	got, err := s.Session(ctx, a2.Hash)
	ok(t, err)
	sameGrant(t, "session", got.Hash, a2.Hash, got.User, a2.User, got.CreatedAt, a2.CreatedAt, got.ExpiresAt, a2.ExpiresAt)

	// An expired session is still returned; the caller checks Expired.
	got, err = s.Session(ctx, expired.Hash)
	ok(t, err)
	if !got.Expired(t0) {
		t.Fatalf("session %+v not expired at %v", got, t0)
	}

	wantKind(t, s.CreateSession(ctx, a1), authz.ErrConflict)
	_, h := identity.NewToken()
	_, err = s.Session(ctx, h)
	wantKind(t, err, authz.ErrNotFound)
	wantKind(t, s.DeleteSession(ctx, h), authz.ErrNotFound)

	ok(t, s.DeleteSession(ctx, a1.Hash))
	_, err = s.Session(ctx, a1.Hash)
	wantKind(t, err, authz.ErrNotFound)

	ok(t, s.DeleteSessions(ctx, bob))
	for _, se := range []identity.Session{b1, expired} {
		_, err = s.Session(ctx, se.Hash)
		wantKind(t, err, authz.ErrNotFound)
	}
	_, err = s.Session(ctx, a2.Hash) // another user's session stays
	ok(t, err)
	ok(t, s.DeleteSessions(ctx, bob)) // none left: no error
}

func testResetTokens(t *testing.T, s identity.Store) {
	ctx := context.Background()
	alice, bob := authz.NewUserID(), authz.NewUserID()
	a, b := reset(alice, t0), reset(bob, t0)
	ok(t, s.CreateResetToken(ctx, a))
	ok(t, s.CreateResetToken(ctx, b))
	wantKind(t, s.CreateResetToken(ctx, a), authz.ErrConflict)

	got, err := s.UseResetToken(ctx, a.Hash, t0.Add(time.Minute))
	ok(t, err)
	sameGrant(t, "reset token", got.Hash, a.Hash, got.User, a.User, got.CreatedAt, a.CreatedAt, got.ExpiresAt, a.ExpiresAt)
	_, err = s.UseResetToken(ctx, a.Hash, t0.Add(2*time.Minute))
	wantKind(t, err, authz.ErrNotFound)

	_, h := identity.NewToken()
	_, err = s.UseResetToken(ctx, h, t0)
	wantKind(t, err, authz.ErrNotFound)

	ok(t, s.DeleteResetTokens(ctx, bob))
	_, err = s.UseResetToken(ctx, b.Hash, t0.Add(time.Minute))
	wantKind(t, err, authz.ErrNotFound)
	ok(t, s.DeleteResetTokens(ctx, bob)) // none left: no error
}

func testResetTokenExpiry(t *testing.T, s identity.Store) {
	ctx := context.Background()
	a, b := reset(authz.NewUserID(), t0), reset(authz.NewUserID(), t0)
	ok(t, s.CreateResetToken(ctx, a))
	ok(t, s.CreateResetToken(ctx, b))
	// At ExpiresAt the token has expired; a microsecond before, it works.
	_, err := s.UseResetToken(ctx, a.Hash, a.ExpiresAt)
	wantKind(t, err, authz.ErrNotFound)
	_, err = s.UseResetToken(ctx, a.Hash, a.ExpiresAt.Add(time.Hour))
	wantKind(t, err, authz.ErrNotFound)
	_, err = s.UseResetToken(ctx, b.Hash, b.ExpiresAt.Add(-time.Microsecond))
	ok(t, err)
}

func testNewerResetToken(t *testing.T, s identity.Store) {
	ctx := context.Background()
	alice, bob := authz.NewUserID(), authz.NewUserID()
	older := reset(alice, t0)
	used := reset(alice, t0.Add(-time.Minute))
	bobs := reset(bob, t0)
	ok(t, s.CreateResetToken(ctx, used))
	_, err := s.UseResetToken(ctx, used.Hash, t0)
	ok(t, err)
	ok(t, s.CreateResetToken(ctx, older))
	ok(t, s.CreateResetToken(ctx, bobs))
	newer := reset(alice, t0.Add(time.Minute))
	ok(t, s.CreateResetToken(ctx, newer))

	_, err = s.UseResetToken(ctx, older.Hash, t0.Add(2*time.Minute))
	wantKind(t, err, authz.ErrNotFound)
	_, err = s.UseResetToken(ctx, bobs.Hash, t0.Add(2*time.Minute)) // another user's stays
	ok(t, err)
	got, err := s.UseResetToken(ctx, newer.Hash, t0.Add(2*time.Minute))
	ok(t, err)
	if got.Hash != newer.Hash {
		t.Fatalf("UseResetToken returned %v, want the newer token", got.Hash)
	}
}

func testConcurrentResetTokenUse(t *testing.T, s identity.Store) {
	ctx := context.Background()
	for round := range 20 {
		tok := reset(authz.NewUserID(), t0)
		ok(t, s.CreateResetToken(ctx, tok))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range errs {
			wg.Go(func() {
				<-start
				_, errs[i] = s.UseResetToken(ctx, tok.Hash, t0.Add(time.Minute))
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, authz.ErrNotFound) {
				t.Fatalf("round %d: losing UseResetToken returned %v, want ErrNotFound", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d of 2 concurrent redemptions of one reset token succeeded, want exactly 1", round, wins)
		}
	}
}

func testDeleteExpired(t *testing.T, s identity.Store) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	u1, u2, u3 := authz.NewUserID(), authz.NewUserID(), authz.NewUserID()
	liveSession := session(u1, t0, 2*time.Hour)
	deadSession := session(u1, t0, time.Hour) // expires exactly at now
	liveReset := reset(u1, now.Add(-time.Minute))
	deadReset := reset(u2, t0)
	usedReset := reset(u3, now.Add(-time.Minute))
	for _, se := range []identity.Session{liveSession, deadSession} {
		ok(t, s.CreateSession(ctx, se))
	}
	for _, r := range []identity.ResetToken{liveReset, deadReset, usedReset} {
		ok(t, s.CreateResetToken(ctx, r))
	}
	_, err := s.UseResetToken(ctx, usedReset.Hash, now.Add(-time.Second))
	ok(t, err)

	ok(t, s.DeleteExpired(ctx, now))
	_, err = s.Session(ctx, deadSession.Hash)
	wantKind(t, err, authz.ErrNotFound)
	_, err = s.Session(ctx, liveSession.Hash)
	ok(t, err)
	_, err = s.UseResetToken(ctx, liveReset.Hash, now)
	ok(t, err)
}

func testInvalidInput(t *testing.T, s identity.Store) {
	ctx := context.Background()
	badOrg := org("Acme")
	badOrg.ID = "org_ACME"
	wantKind(t, s.CreateOrg(ctx, badOrg), authz.ErrInvalid)
	good := org("Acme")
	ok(t, s.CreateOrg(ctx, good))
	wantKind(t, s.RenameOrg(ctx, good.ID, " padded "), authz.ErrInvalid)
	wantKind(t, s.RenameOrg(ctx, good.ID, ""), authz.ErrInvalid)

	u := user(t, "ivy@example.com", "Ivy")
	notCanonical := u
	notCanonical.Email = "Ivy@Example.com"
	wantKind(t, s.CreateUser(ctx, notCanonical), authz.ErrInvalid)
	noStatus := u
	noStatus.Status = 0
	wantKind(t, s.CreateUser(ctx, noStatus), authz.ErrInvalid)
	ok(t, s.CreateUser(ctx, u))
	wantKind(t, s.UpdateUser(ctx, u.ID, identity.UserUpdate{Name: "Ivy\x00", At: t0.Add(time.Hour)}), authz.ErrInvalid)
	got, err := s.User(ctx, u.ID)
	ok(t, err)
	sameUser(t, got, u) // nothing written

	se := session(u.ID, t0, time.Hour)
	se.ExpiresAt = se.CreatedAt
	wantKind(t, s.CreateSession(ctx, se), authz.ErrInvalid)
	long := reset(u.ID, t0)
	long.ExpiresAt = t0.Add(identity.MaxResetTokenLifetime + time.Second)
	wantKind(t, s.CreateResetToken(ctx, long), authz.ErrInvalid)
}
