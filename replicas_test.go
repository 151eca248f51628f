package iam_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/adapters/pgnotify"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// Two Services on one database are two replicas: what one commits, the
// other applies with Sync, user by user from the change log, and then
// agrees with it and with a Service freshly loaded from the database, for
// every kind of management change.
func TestReplicasSync(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		replica := e.open()
		agree := func(step string) {
			t.Helper()
			e.must(replica.Sync(e.ctx))
			if replica.Version() != e.svc.Version() {
				t.Fatalf("%s: replica at version %d, writer at %d", step, replica.Version(), e.svc.Version())
			}
			fresh := e.open()
			want := fresh.EngineRules()
			if got := e.svc.EngineRules(); !slices.Equal(got, want) {
				t.Fatalf("%s: the writer disagrees with the database:\n%q\n%q", step, got, want)
			}
			if got := replica.EngineRules(); !slices.Equal(got, want) {
				t.Fatalf("%s: the replica disagrees with the database:\n%q\n%q", step, got, want)
			}
		}
		seoul, busan := e.org("Seoul DC"), e.org("Busan Lab")
		mina := e.member("mina@example.com", seoul, authz.Manager, 0)
		joon := e.member("joon@example.com", seoul, authz.Member, authz.NewCategorySet(authz.VPN))
		hana := e.member("hana@example.com", busan, authz.Member, authz.NewCategorySet(authz.Infra))
		agree("grants")
		if !replica.Check(e.ctx, joon, seoul, authz.VPN).Allowed {
			t.Fatal("the replica does not see Joon's grant")
		}

		e.must(e.svc.SetCategories(e.ctx, mina, joon, seoul, 0))
		agree("revocation")
		if replica.Check(e.ctx, joon, seoul, authz.VPN).Allowed {
			t.Fatal("the replica still allows a revoked grant")
		}
		e.must(e.svc.ChangeRole(e.ctx, e.admin, joon, seoul, authz.Manager))
		agree("role change")
		e.must(e.svc.RemoveMember(e.ctx, e.admin, joon, seoul))
		agree("removal")
		e.must(e.svc.DeactivateUser(e.ctx, e.admin, hana))
		agree("deactivation")
		if replica.Check(e.ctx, hana, busan, authz.Infra).Allowed {
			t.Fatal("the replica still allows a deactivated user")
		}
		e.must(e.svc.DeleteOrg(e.ctx, e.admin, seoul))
		agree("org deletion")
		if replica.Check(e.ctx, mina, seoul, authz.VPN).Allowed {
			t.Fatal("the replica still allows a member of a deleted org")
		}

		// A replica that writes while behind catches up first, so its
		// engine takes in the versions it had missed too.
		e.must(e.svc.ReactivateUser(e.ctx, e.admin, hana))
		e.must(replica.SetCategories(e.ctx, e.admin, hana, busan, authz.NewCategorySet(authz.Audit)))
		if replica.Version() != e.svc.Version()+1 {
			t.Fatalf("replica at version %d after writing, writer at %d", replica.Version(), e.svc.Version())
		}
		e.must(e.svc.Sync(e.ctx))
		agree("both writing")
		if !replica.Check(e.ctx, hana, busan, authz.Audit).Allowed || replica.Check(e.ctx, hana, busan, authz.Infra).Allowed {
			t.Fatal("the replica's own write or the reactivation is missing")
		}

		// A change log that does not reach back to the replica's version
		// (a database migrated by an earlier release) means a full reload.
		e.must(e.svc.SetCategories(e.ctx, e.admin, hana, busan, authz.NewCategorySet(authz.Backup)))
		e.must(e.db.Exec("UPDATE iam_policy_version SET log_from = version").Error)
		agree("log starting later")
	})
}

// With WithReplicaSync a replica follows another's writes by itself: on
// PostgreSQL through notifications (the periodic check is set to an hour,
// so only they can do it), also across a killed listener connection; on
// SQLite through the periodic check.
func TestReplicaSyncBackground(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		every := 20 * time.Millisecond
		if e.kind == dbtest.Postgres {
			every = time.Hour
		}
		replica, err := iam.New(e.ctx, e.db, iam.WithReplicaSync(every), iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
		e.must(err)
		t.Cleanup(func() { replica.Close() })
		eventually := func(what string, ok func() bool) {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the replica did not see %s (at version %d, writer at %d; listener %+v)", what, replica.Version(), e.svc.Version(), replica.SyncState())
				}
			}
		}
		seoul := e.org("Seoul DC")
		joon := e.member("joon@example.com", seoul, authz.Member, authz.NewCategorySet(authz.VPN))
		eventually("a grant", func() bool { return replica.Check(e.ctx, joon, seoul, authz.VPN).Allowed })
		e.must(e.svc.SetCategories(e.ctx, e.admin, joon, seoul, 0))
		eventually("a revocation", func() bool { return !replica.Check(e.ctx, joon, seoul, authz.VPN).Allowed })

		if e.kind != dbtest.Postgres {
			return
		}
		eventually("the listener up", func() bool { return replica.SyncState().Status == pgnotify.Listening })
		// Cut the listener's connection; a write made meanwhile arrives
		// through the catch-up after the reconnection.
		var killed int
		// Only this replica's connection: tests in parallel listen too.
		e.must(e.db.Raw("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND strpos(query, ?) > 0 AND pid <> pg_backend_pid()",
			replica.SyncChannel()).Scan(&killed).Error)
		if killed == 0 {
			t.Fatal("no listener connection to cut")
		}
		e.must(e.svc.SetCategories(e.ctx, e.admin, joon, seoul, authz.NewCategorySet(authz.Audit)))
		eventually("a grant made while its listener was cut", func() bool { return replica.Check(e.ctx, joon, seoul, authz.Audit).Allowed })
		if got, want := replica.EngineRules(), e.svc.EngineRules(); !slices.Equal(got, want) {
			t.Fatalf("after the reconnection the replica disagrees:\n%q\n%q", got, want)
		}
		e.must(replica.Close())
		e.must(replica.Close())
		if s := replica.SyncState().Status; s != pgnotify.Closed {
			t.Fatalf("listener %v after Close", s)
		}
	})
}

// A consistency token gives read-your-writes across replicas: the version
// a write committed, carried to another replica, makes that replica's
// first check after the write already right, through WaitVersion and
// through the Guard's VersionHeader.
func TestConsistencyToken(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		seoul := e.org("Seoul DC")
		joon := e.member("joon@example.com", seoul, authz.Member, authz.NewCategorySet(authz.VPN))
		replica := e.open()
		token, err := e.svc.Login(e.ctx, "joon@example.com", pw)
		e.must(err)

		var receipt iam.Receipt
		e.must(e.svc.SetCategories(iam.WithReceipt(e.ctx, &receipt), e.admin, joon, seoul, authz.NewCategorySet(authz.Audit)))
		if receipt.Version() != e.svc.Version() || receipt.Version() == 0 {
			t.Fatalf("receipt %d, writer at %d", receipt.Version(), e.svc.Version())
		}
		if !replica.Check(e.ctx, joon, seoul, authz.VPN).Allowed {
			t.Fatal("the replica applied the revocation without a sync: the test shows nothing")
		}

		// Through the Guard: without the token the replica may answer from
		// its last state; with it, the first answer is right.
		page := replica.Guard()
		h := page.Authenticate(page.RequireCategories(authz.VPN)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
		serve := func(version string) int {
			r := httptest.NewRequest("GET", "/v1/orgs/"+string(seoul)+"/vpn", nil)
			r.SetPathValue("org", string(seoul))
			r.Header.Set("Authorization", "Bearer "+token.Reveal())
			if version != "" {
				r.Header.Set(iam.VersionHeader, version)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}
		if code := serve(""); code != http.StatusOK {
			t.Fatalf("without the token: %d, want the stale 200", code)
		}
		if code := serve(strconv.FormatInt(receipt.Version(), 10)); code != http.StatusForbidden {
			t.Fatalf("with the token: %d, want 403", code)
		}
		if code := serve("x1"); code == http.StatusOK {
			t.Fatal("a malformed token passed")
		}

		// CheckAt and WaitVersion: a version already committed is applied
		// at once; one not committed yet waits until the context ends.
		if d, err := replica.CheckAt(e.ctx, receipt.Version(), joon, seoul, authz.Audit); err != nil || !d.Allowed {
			t.Fatalf("CheckAt with the token: %+v, %v", d, err)
		}
		e.must(replica.WaitVersion(e.ctx, receipt.Version()))
		if replica.Check(e.ctx, joon, seoul, authz.VPN).Allowed || !replica.Check(e.ctx, joon, seoul, authz.Audit).Allowed {
			t.Fatal("after WaitVersion the replica still answers from the old state")
		}
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Millisecond)
		defer cancel()
		if err := replica.WaitVersion(ctx, receipt.Version()+1000); !errors.Is(err, iam.ErrStale) {
			t.Fatalf("WaitVersion of a future version: %v, want ErrStale", err)
		}
		if d, err := replica.CheckAt(ctx, receipt.Version()+1000, joon, seoul, authz.Audit); !errors.Is(err, iam.ErrStale) || d.Allowed {
			t.Fatalf("CheckAt of a future version: %+v, %v", d, err)
		}
		if err := replica.WaitVersion(e.ctx, -1); !errors.Is(err, iam.ErrInvalid) {
			t.Fatalf("WaitVersion(-1): %v, want ErrInvalid", err)
		}
	})
}

// A replica whose notification connection is cut again and again during a
// stream of writes converges to exactly the database's state (issue 7):
// the catch-up after each reconnection and the notifications after it
// leave nothing behind. PostgreSQL only; the periodic check is set to an
// hour, so it cannot be what saves the replica.
func TestReplicaConvergesAcrossCuts(t *testing.T) {
	for _, kind := range dbtest.Kinds(t) {
		if kind != dbtest.Postgres {
			continue
		}
		e := newEnv(t, kind)
		replica, err := iam.New(e.ctx, e.db, iam.WithReplicaSync(time.Hour), iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
		e.must(err)
		t.Cleanup(func() { replica.Close() })
		seoul := e.org("Seoul DC")
		var members []authz.UserID
		for i := range 5 {
			members = append(members, e.member(fmt.Sprintf("m%d@example.com", i), seoul, authz.Member, 0))
		}
		done := make(chan error, 1)
		go func() {
			for i := range 200 {
				u := members[i%len(members)]
				if err := e.svc.SetCategories(e.ctx, e.admin, u, seoul, authz.CategorySet(i%128)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		cuts := 0
		for writing := true; writing; {
			select {
			case err := <-done:
				e.must(err)
				writing = false
			case <-time.After(30 * time.Millisecond):
				var killed int
				e.must(e.db.Raw("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND strpos(query, ?) > 0 AND pid <> pg_backend_pid()",
					replica.SyncChannel()).Scan(&killed).Error)
				cuts += killed
			}
		}
		if cuts == 0 {
			t.Fatal("the listener was never cut")
		}
		for deadline := time.Now().Add(15 * time.Second); replica.Version() != e.svc.Version(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the replica stopped at version %d, the writer is at %d (listener %+v)", replica.Version(), e.svc.Version(), replica.SyncState())
			}
		}
		want := e.open().EngineRules() // a fresh load: the database's state
		if got := replica.EngineRules(); !slices.Equal(got, want) {
			t.Fatalf("after %d cuts the replica differs from a fresh load:\n%q\n%q", cuts, got, want)
		}
		t.Logf("converged after %d cuts of the listener during 200 writes", cuts)
	}
}

// Ending sessions reaches every replica through the change log: a session
// another replica has cached is refused there after its next Sync, for a
// logout and for a password change.
func TestReplicaSessionsEnd(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		seoul := e.org("Seoul DC")
		e.member("joon@example.com", seoul, authz.Member, 0)
		replica := e.open()
		for _, end := range []struct {
			name string
			end  func(token identity.Token) error
		}{
			{"logout", func(tok identity.Token) error { return e.svc.Logout(e.ctx, tok.Reveal()) }},
			{"password change", func(tok identity.Token) error {
				u, err := replica.Authenticate(e.ctx, tok.Reveal())
				if err != nil {
					return err
				}
				_, err = e.svc.ChangePassword(e.ctx, u, pw, "another correct horse battery")
				if err == nil {
					_, err = e.svc.ChangePassword(e.ctx, u, "another correct horse battery", pw) // back, for the next round
				}
				return err
			}},
		} {
			tok, err := e.svc.Login(e.ctx, "joon@example.com", pw)
			e.must(err)
			if _, err := replica.Authenticate(e.ctx, tok.Reveal()); err != nil { // now cached there
				t.Fatalf("%s: %v", end.name, err)
			}
			e.must(end.end(tok))
			if _, err := replica.Authenticate(e.ctx, tok.Reveal()); err != nil {
				t.Fatalf("%s: the replica refused before its Sync (%v): the test shows nothing", end.name, err)
			}
			e.must(replica.Sync(e.ctx))
			if _, err := replica.Authenticate(e.ctx, tok.Reveal()); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Fatalf("%s: after Sync the replica answers %v, want ErrUnauthenticated", end.name, err)
			}
		}
	})
}
