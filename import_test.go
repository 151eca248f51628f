package iam_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// importHash hashes pw with the test's cheap hasher: a hash "from another
// system" in the PHC format identity writes.
func importHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := identity.NewHasher(identity.TestingHasherConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// checkAll checks every category of every org of orgs for user u on svc
// against want (nil: allowed nowhere), and that u's memberships are
// exactly those of want's orgs with a role.
func checkAll(t *testing.T, svc *iam.Service, u authz.UserID, orgs []authz.OrgID, want map[authz.OrgID]authz.CategorySet) {
	t.Helper()
	for _, o := range orgs {
		for _, c := range authz.Categories() {
			if got := svc.Check(t.Context(), u, o, c).Allowed; got != want[o].Has(c) {
				t.Errorf("Check(%s, %s, %v) = %v, want %v", u, o, c, got, !got)
			}
		}
	}
}

// TestImport imports a batch with new orgs and memberships in a stored
// org, and checks the accounts, checks, profiles, audit event, logins
// and a restarted Service against it.
func TestImport(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		stored := e.org("Stored")
		a, b := authz.NewOrgID(), authz.NewOrgID()
		ids := make([]authz.UserID, 5)
		for i := range ids {
			ids[i] = authz.NewUserID()
		}
		infraVPN := authz.NewCategorySet(authz.Infra, authz.VPN)
		batch := iam.ImportBatch{
			Orgs: []iam.ImportOrg{{ID: a, Name: "  Alpha Team "}, {ID: b, Name: "Beta"}},
			Users: []iam.ImportUser{
				{ID: ids[0], Email: "Mona@Example.COM", Name: " Mona Manager\t", PasswordHash: importHash(t, pw),
					Memberships: map[authz.OrgID]authz.Membership{a: {Role: authz.Manager}}},
				{ID: ids[1], Email: "max@example.com", Name: "Max Member",
					Memberships: map[authz.OrgID]authz.Membership{a: {Role: authz.Member, Categories: infraVPN}, stored: {Role: authz.Member}}},
				{ID: ids[2], Email: "pia@example.com", Name: "Pia Admin", PlatformAdmin: true, PasswordHash: importHash(t, "another horse battery staple")},
				{ID: ids[3], Email: "bo@example.com", Name: "Bo", Memberships: map[authz.OrgID]authz.Membership{b: {Role: authz.Member, Categories: authz.AllCategories}}},
				{ID: ids[4], Email: "nobody@example.com", Name: "No Body"},
			},
		}
		res, err := e.svc.Import(e.ctx, batch)
		e.must(err)
		if res.Orgs != 2 || res.Users != 5 || res.Rules != 1+3+1+1+8 || res.Event <= 0 {
			t.Fatalf("Import = %+v, want 2 orgs, 5 users, 14 rules and an event", res)
		}

		orgs := []authz.OrgID{a, b, stored}
		want := []map[authz.OrgID]authz.CategorySet{
			{a: authz.AllCategories},
			{a: infraVPN},
			{a: authz.AllCategories, b: authz.AllCategories, stored: authz.AllCategories},
			{b: authz.AllCategories},
			nil,
		}
		for i, u := range ids {
			checkAll(t, e.svc, u, orgs, want[i])
		}
		if e.svc.CheckOperations(e.ctx, ids[2]) != nil || e.svc.CheckOperations(e.ctx, ids[0]) == nil {
			t.Error("PlatformAdmin imported wrong")
		}

		p, err := e.svc.Profile(e.ctx, ids[1])
		e.must(err)
		now := e.clock.Now().UTC().Truncate(time.Microsecond)
		if p.Email != "max@example.com" || p.Name != "Max Member" || p.Status != identity.Active || p.PlatformAdmin ||
			!p.CreatedAt.Equal(now) || !p.UpdatedAt.Equal(now) {
			t.Errorf("Profile = %+v", p.Account)
		}
		if w := map[authz.OrgID]authz.Membership{a: {Role: authz.Member, Categories: infraVPN}, stored: {Role: authz.Member}}; !mapsEqual(p.Memberships, w) {
			t.Errorf("Profile memberships = %v, want %v", p.Memberships, w)
		}
		p, err = e.svc.Profile(e.ctx, ids[0])
		e.must(err)
		if p.Email != "mona@example.com" || p.Name != "Mona Manager" {
			t.Errorf("email and name stored as %q, %q, want them canonical and clean", p.Email, p.Name)
		}
		orgList, err := e.svc.Orgs(e.ctx, e.admin)
		e.must(err)
		var names []string
		for _, o := range orgList {
			names = append(names, o.Name)
		}
		if !slices.Equal(names, []string{"Alpha Team", "Beta", "Stored"}) {
			t.Errorf("orgs = %q", names)
		}

		var rules int64
		e.must(e.db.Table("casbin_rule").Where("v0 IN ?", ids).Count(&rules).Error)
		if rules != int64(res.Rules) {
			t.Errorf("%d rule rows stored, want %d", rules, res.Rules)
		}

		ev := e.lastEvent()
		if ev.ID != res.Event || ev.Action != audit.UsersImport || ev.Actor != "" || ev.Outcome != audit.Success || ev.Before != nil {
			t.Errorf("last event = %+v, want the import's", ev)
		}
		var after map[string]any
		e.must(json.Unmarshal(ev.After, &after))
		if after["users"] != 5.0 || after["orgs"] != 2.0 || after["rules"] != 14.0 || after["first_user"] != string(ids[0]) || after["last_user"] != string(ids[4]) {
			t.Errorf("event after = %s", ev.After)
		}
		v, err := e.svc.VerifyAudit(e.ctx)
		e.must(err)
		if !v.OK() || v.Head.ID != res.Event {
			t.Errorf("VerifyAudit = %+v", v)
		}

		// The imported hash logs in, as one the Service made would; the
		// empty one never does, whatever the password.
		if _, err := e.svc.Login(e.ctx, "MONA@example.com", pw); err != nil {
			t.Errorf("login with the imported hash: %v", err)
		}
		if _, err := e.svc.Login(e.ctx, "mona@example.com", pw+"x"); !errors.Is(err, iam.ErrUnauthenticated) {
			t.Errorf("login with a wrong password = %v", err)
		}
		for _, p := range []string{"", pw, "another horse battery staple"} {
			if _, err := e.svc.Login(e.ctx, "max@example.com", p); !errors.Is(err, iam.ErrUnauthenticated) {
				t.Errorf("login of an account without a password, with %q = %v", p, err)
			}
		}

		// A second Service on the database agrees on everything.
		fresh := e.open()
		for i, u := range ids {
			checkAll(t, fresh, u, orgs, want[i])
		}
		e.restartAgrees()
	})
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestImportRefused feeds batches with one bad record each, after good
// ones, and checks the error's kind and record, and that nothing changed:
// no row, no engine rule, no audit event.
func TestImportRefused(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		stored := e.org("Stored")
		deleted := e.member("gone@example.com", stored, authz.Member, 0)
		e.must(e.svc.DeleteUser(e.ctx, e.admin, deleted))
		newOrg := authz.NewOrgID()
		good := func() iam.ImportUser {
			id := authz.NewUserID()
			return iam.ImportUser{ID: id, Email: string(id) + "@example.com", Name: "Good Person",
				Memberships: map[authz.OrgID]authz.Membership{newOrg: {Role: authz.Member, Categories: authz.NewCategorySet(authz.Infra)}, stored: {Role: authz.Manager}}}
		}
		with := func(f func(u *iam.ImportUser)) iam.ImportUser {
			u := good()
			f(&u)
			return u
		}
		hash := importHash(t, pw)
		twin := good()
		for _, tc := range []struct {
			name  string
			orgs  []iam.ImportOrg
			bad   iam.ImportUser
			extra []iam.ImportUser // after bad
			kind  error
			org   bool // the fault is an org's (index into orgs)
			index int
		}{
			{name: "bad user id", bad: with(func(u *iam.ImportUser) { u.ID = "usr_bad" }), kind: iam.ErrInvalid},
			{name: "user id in upper case", bad: with(func(u *iam.ImportUser) { u.ID = authz.UserID(strings.ToUpper(string(u.ID))) }), kind: iam.ErrInvalid},
			{name: "missing user id", bad: with(func(u *iam.ImportUser) { u.ID = "" }), kind: iam.ErrInvalid},
			{name: "user id stored", bad: with(func(u *iam.ImportUser) { u.ID = e.admin }), kind: iam.ErrConflict},
			{name: "user id of a deleted account", bad: with(func(u *iam.ImportUser) { u.ID = deleted }), kind: iam.ErrConflict},
			{name: "user id twice", bad: twin, extra: []iam.ImportUser{with(func(u *iam.ImportUser) { u.ID = twin.ID })}, kind: iam.ErrConflict, index: 3},
			{name: "email twice, differing in case", bad: twin, extra: []iam.ImportUser{with(func(u *iam.ImportUser) { u.Email = strings.ToUpper(twin.Email) })}, kind: iam.ErrConflict, index: 3},
			{name: "email stored, differing in case", bad: with(func(u *iam.ImportUser) { u.Email = "ADA@Example.com" }), kind: iam.ErrConflict},
			{name: "bad email", bad: with(func(u *iam.ImportUser) { u.Email = "not an email" }), kind: iam.ErrInvalid},
			{name: "bad name", bad: with(func(u *iam.ImportUser) { u.Name = "Bad\u202eName" }), kind: iam.ErrInvalid},
			{name: "empty name", bad: with(func(u *iam.ImportUser) { u.Name = "  " }), kind: iam.ErrInvalid},
			{name: "unknown org", bad: with(func(u *iam.ImportUser) { u.Memberships[authz.NewOrgID()] = authz.Membership{Role: authz.Member} }), kind: iam.ErrNotFound},
			{name: "bad org id in a membership", bad: with(func(u *iam.ImportUser) { u.Memberships["org_*"] = authz.Membership{Role: authz.Member} }), kind: iam.ErrInvalid},
			{name: "PlatformAdmin as org role", bad: with(func(u *iam.ImportUser) { u.Memberships[stored] = authz.Membership{Role: authz.PlatformAdmin} }), kind: iam.ErrInvalid},
			{name: "membership without a role", bad: with(func(u *iam.ImportUser) {
				u.Memberships[stored] = authz.Membership{Categories: authz.NewCategorySet(authz.Infra)}
			}), kind: iam.ErrInvalid},
			{name: "unknown category bits", bad: with(func(u *iam.ImportUser) {
				u.Memberships[stored] = authz.Membership{Role: authz.Member, Categories: 0x80}
			}), kind: iam.ErrInvalid},
			{name: "malformed hash", bad: with(func(u *iam.ImportUser) { u.PasswordHash = hash[:len(hash)-5] + "!!!!!" }), kind: iam.ErrInvalid},
			{name: "bcrypt hash", bad: with(func(u *iam.ImportUser) {
				u.PasswordHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
			}), kind: iam.ErrInvalid},
			{name: "a password, not a hash", bad: with(func(u *iam.ImportUser) { u.PasswordHash = pw }), kind: iam.ErrInvalid},
			{name: "bad org id", orgs: []iam.ImportOrg{{ID: "org_", Name: "X"}}, bad: good(), kind: iam.ErrInvalid, org: true, index: 1},
			{name: "bad org name", orgs: []iam.ImportOrg{{ID: authz.NewOrgID(), Name: "\x00"}}, bad: good(), kind: iam.ErrInvalid, org: true, index: 1},
			{name: "org id stored", orgs: []iam.ImportOrg{{ID: stored, Name: "Again"}}, bad: good(), kind: iam.ErrConflict, org: true, index: 1},
			{name: "org id twice", orgs: []iam.ImportOrg{{ID: newOrg, Name: "Again"}}, bad: good(), kind: iam.ErrConflict, org: true, index: 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := iam.ImportBatch{
					Orgs:  append([]iam.ImportOrg{{ID: newOrg, Name: "New"}}, tc.orgs...),
					Users: append(append([]iam.ImportUser{good(), good(), tc.bad}, tc.extra...), good()),
				}
				if tc.index == 0 {
					tc.index = 2
				}
				before := e.snap()
				res, err := e.svc.Import(e.ctx, b)
				if !errors.Is(err, tc.kind) {
					t.Fatalf("Import = %+v, %v; want %v", res, err, tc.kind)
				}
				var ie *iam.ImportError
				if !errors.As(err, &ie) || ie.Index != tc.index || tc.org != ie.InOrgs {
					t.Fatalf("error %v (%#v) names the wrong record, want index %d", err, ie, tc.index)
				}
				if tc.org && ie.Org != b.Orgs[tc.index].ID || !tc.org && ie.User != b.Users[tc.index].ID {
					t.Errorf("error %v names %q/%q", err, ie.User, ie.Org)
				}
				if res != (iam.ImportResult{}) {
					t.Errorf("result of a refused import = %+v", res)
				}
				e.unchanged(before, 0)
			})
		}
		// Afterwards the good records import (nothing was left behind),
		// the email of the deleted account too.
		res, err := e.svc.Import(e.ctx, iam.ImportBatch{Orgs: []iam.ImportOrg{{ID: newOrg, Name: "New"}},
			Users: []iam.ImportUser{good(), with(func(u *iam.ImportUser) { u.Email = "Gone@example.com" })}})
		if err != nil || res.Users != 2 {
			t.Fatalf("Import after refusals = %+v, %v", res, err)
		}
		e.restartAgrees()
	})
}

// TestImportBatches imports a workload in several batches whose members
// join orgs of earlier batches, and checks a second Service agrees with
// the first on every check, and the audit log has one event per batch.
func TestImportBatches(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		users, orgs := importWorkload(300, 10)
		var events []int64
		for chunk := range slices.Chunk(users, 100) {
			b := iam.ImportBatch{Users: chunk}
			if len(events) == 0 {
				b.Orgs = orgs
			}
			res, err := e.svc.Import(e.ctx, b)
			e.must(err)
			events = append(events, res.Event)
		}
		evs, err := e.svc.UnrecordedAuditEvents(e.ctx, audit.Filter{Action: audit.UsersImport})
		e.must(err)
		var got []int64
		for _, ev := range evs {
			got = append(got, ev.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, events) {
			t.Errorf("import events %v, want one per batch %v", got, events)
		}
		fresh := e.open()
		var ids []authz.OrgID
		for _, o := range orgs {
			ids = append(ids, o.ID)
		}
		for _, u := range users {
			want := map[authz.OrgID]authz.CategorySet{}
			for o, m := range u.Memberships {
				want[o] = m.Categories
				if m.Role == authz.Manager {
					want[o] = authz.AllCategories
				}
			}
			checkAll(t, e.svc, u.ID, ids, want)
			checkAll(t, fresh, u.ID, ids, want)
		}
		e.restartAgrees()
	})
}

// importWorkload returns n accounts in orgs of n/nOrgs members each: two
// Managers, the others Members with a few categories, as the benchmark's
// workload has them.
func importWorkload(n, nOrgs int) ([]iam.ImportUser, []iam.ImportOrg) {
	orgs := make([]iam.ImportOrg, nOrgs)
	for i := range orgs {
		orgs[i] = iam.ImportOrg{ID: authz.NewOrgID(), Name: fmt.Sprintf("Org %d", i)}
	}
	users := make([]iam.ImportUser, n)
	per := max(1, n/nOrgs)
	for i := range users {
		m := authz.Membership{Role: authz.Member, Categories: authz.CategorySet(i*37) & authz.AllCategories}
		if i%per < 2 {
			m = authz.Membership{Role: authz.Manager}
		}
		id := authz.NewUserID()
		users[i] = iam.ImportUser{ID: id, Email: string(id) + "@example.com", Name: fmt.Sprintf("User %d", i),
			Memberships: map[authz.OrgID]authz.Membership{orgs[min(i/per, nOrgs-1)].ID: m}}
	}
	return users, orgs
}

// BenchmarkImport imports batches of 10,000 accounts in 100 orgs (about
// 49,000 rows each: orgs, accounts and rules) into a database that grows
// with every iteration, and reports rows per second.
func BenchmarkImport(b *testing.B) {
	for _, kind := range dbtest.Kinds(b) {
		b.Run(kind.String(), func(b *testing.B) {
			db := dbtest.Open(b, kind)
			svc, err := iam.New(b.Context(), db, iam.WithPasswordHasher(identity.TestingHasherConfig(b)))
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close()
			rows := 0
			for b.Loop() {
				b.StopTimer()
				users, orgs := importWorkload(10000, 100)
				b.StartTimer()
				res, err := svc.Import(b.Context(), iam.ImportBatch{Orgs: orgs, Users: users})
				if err != nil {
					b.Fatal(err)
				}
				rows += res.Orgs + res.Users + res.Rules
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
