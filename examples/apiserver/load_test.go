package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// The load test's settings. Each flag falls back to an environment
// variable (for `go test ./...`, where a package's own flags cannot be
// passed) and then to a default that CI's `go test -race ./...` on two
// shared cores sustains.
var (
	loadRateFlag     = flag.Float64("load.rate", 0, "TestLoad: requests per second (or IAM_LOAD_RATE; default 40)")
	loadDurationFlag = flag.Duration("load.duration", 0, "TestLoad: length of the schedule (or IAM_LOAD_DURATION; default 30s)")
	loadWorkersFlag  = flag.Int("load.workers", 0, "TestLoad: concurrent clients (or IAM_LOAD_WORKERS; default 32)")
	loadReportFlag   = flag.String("load.report", "", "TestLoad: also write the figures as Markdown to this file (or IAM_LOAD_REPORT)")
)

// loadConfig is what one run of TestLoad does.
type loadConfig struct {
	rate     float64       // requests per second, open loop
	duration time.Duration // rate × duration requests are scheduled
	workers  int
	report   string
}

func loadConfigOf(t *testing.T) loadConfig {
	t.Helper()
	c := loadConfig{rate: 40, duration: 30 * time.Second, workers: 32, report: os.Getenv("IAM_LOAD_REPORT")}
	parse := func(env string, set func(string) error) {
		if v := os.Getenv(env); v != "" {
			if err := set(v); err != nil {
				t.Fatalf("%s=%q: %v", env, v, err)
			}
		}
	}
	parse("IAM_LOAD_RATE", func(v string) (err error) { c.rate, err = strconv.ParseFloat(v, 64); return })
	parse("IAM_LOAD_DURATION", func(v string) (err error) { c.duration, err = time.ParseDuration(v); return })
	parse("IAM_LOAD_WORKERS", func(v string) (err error) { c.workers, err = strconv.Atoi(v); return })
	if *loadRateFlag > 0 {
		c.rate = *loadRateFlag
	}
	if *loadDurationFlag > 0 {
		c.duration = *loadDurationFlag
	}
	if *loadWorkersFlag > 0 {
		c.workers = *loadWorkersFlag
	}
	if *loadReportFlag != "" {
		c.report = *loadReportFlag
	}
	if c.rate <= 0 || c.duration <= 0 || c.workers <= 0 {
		t.Fatalf("load settings %+v: rate, duration and workers must be positive", c)
	}
	return c
}

// TestLoad is the bounded load test of issue 8: the real handler on a
// loopback listener over PostgreSQL, a fixed number of requests on an
// open-loop schedule (request k is due at start + k/rate, whatever the
// answers before it), sent by many clients at once, about 90% reads
// (feature-page checks, GET /v1/me, members pages) and 10% management
// writes by Managers and the PlatformAdmin, some of which the rules
// refuse. It stops by itself once every request has been answered, then
// checks that
//
//   - no answer was a 5xx or a transport error, and each kind of request
//     answered only the statuses it may (a refused write a 4xx);
//   - the audit log holds, between the checkpoints taken before and after
//     the run, exactly one success event per acknowledged (2xx) write and
//     one denied event per refused one (nothing lost, nothing invented);
//   - replaying those events in log order from the imported state gives
//     the database's memberships, grants and org names, and the engine's
//     answers, of the running Service and of a freshly opened one, and
//     along the way the platform always had an active PlatformAdmin and
//     no org lost its last Manager; each registration request was
//     approved exactly once;
//   - the audit chain verifies.
//
// It logs throughput and latency percentiles (from the scheduled time, so
// a slow server shows as latency, not as fewer requests; and service
// time, from the send) for reads and writes, and with -load.report writes
// them as Markdown. PostgreSQL only; skipped with -short. Figures:
//
//	IAM_TEST_POSTGRES_DSN=... go test -count=1 -run TestLoad ./examples/apiserver -v \
//	    -load.rate=150 -load.duration=30s -load.report=/tmp/load.md
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("the load test runs for at least 30s")
	}
	if os.Getenv(dbtest.EnvPostgresDSN) == "" {
		t.Skipf("the load test runs on PostgreSQL only: %s is not set", dbtest.EnvPostgresDSN)
	}
	t.Parallel()
	cfg := loadConfigOf(t)
	w := loadPopulate(t, newEnv(t, dbtest.Postgres), cfg)
	plan := w.plan(cfg)

	ctx := t.Context()
	before, err := w.svc.AuditCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := w.run(t, cfg, plan)
	after, err := w.svc.AuditCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	report := run.report(cfg, plan)
	t.Log("\n" + report.text)
	if cfg.report != "" {
		if err := os.WriteFile(cfg.report, []byte(report.markdown), 0o644); err != nil {
			t.Error(err)
		}
	}

	run.checkAnswers(t, plan)
	events := w.events(t, before.ID, after.ID)
	loadCheckAcknowledged(t, plan, run, events)
	model := w.replay(t, events)
	w.checkState(t, model, plan, run)
	if res, err := w.svc.VerifyAudit(ctx); err != nil || res.Break != nil {
		t.Errorf("VerifyAudit after the run: %+v, %v", res.Break, err)
	}
}

// The shape of the populated platform: loadPairs orgs with two Managers,
// loadSolos with one (whose demotion and removal the rules must refuse),
// each with loadMembers Members of whom loadReaders sign in to read.
const (
	loadPairs   = 10
	loadSolos   = 2
	loadMembers = 20
	loadReaders = 4
)

// loadActor is a signed-in person of the load test.
type loadActor struct {
	id    authz.UserID
	token string
}

// loadOrg is one org of the load test. Its Managers are never demoted or
// removed by the plan (only refused attempts touch them), so they keep
// the right to manage the org throughout; its members are the targets of
// the writes.
type loadOrg struct {
	id       authz.OrgID
	managers []loadActor
	members  []authz.UserID
	readers  []loadActor // signed-in members
	requests []approval.RequestID
	solo     bool
}

// loadWorld is the populated platform: the env, its orgs, the
// PlatformAdmin signed in, and the state it was populated with.
type loadWorld struct {
	*env
	admin loadActor
	orgs  []*loadOrg
	start loadModel
}

// loadModel is what the writes of the plan change: each org's name and
// members with their role and categories, and the PlatformAdmins.
type loadModel struct {
	names  map[authz.OrgID]string
	orgs   map[authz.OrgID]map[authz.UserID]authz.Membership
	admins map[authz.UserID]bool
}

func (m loadModel) clone() loadModel {
	c := loadModel{names: maps.Clone(m.names), orgs: map[authz.OrgID]map[authz.UserID]authz.Membership{}, admins: maps.Clone(m.admins)}
	for o, ms := range m.orgs {
		c.orgs[o] = maps.Clone(ms)
	}
	return c
}

// allowed is the decision the model implies for user in org on c.
func (m loadModel) allowed(user authz.UserID, org authz.OrgID, c authz.Category) bool {
	ms, ok := m.orgs[org][user]
	return m.admins[user] || ok && (ms.Role == authz.Manager || ms.Role == authz.Member && ms.Categories.Has(c))
}

// loadPopulate imports the orgs and accounts (Import: one transaction,
// passwords hashed once), queues enough sign-ups for the approvals the
// plan may make, and signs in the actors through the API.
func loadPopulate(t *testing.T, e *env, cfg loadConfig) *loadWorld {
	t.Helper()
	ctx := t.Context()
	hasher, err := identity.NewHasher(identity.TestingHasherConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := hasher.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	w := &loadWorld{env: e, admin: loadActor{id: e.admin}, start: loadModel{names: map[authz.OrgID]string{},
		orgs: map[authz.OrgID]map[authz.UserID]authz.Membership{}, admins: map[authz.UserID]bool{e.admin: true}}}
	rng := rand.New(rand.NewPCG(8, 5))
	var batch iam.ImportBatch
	emails := map[authz.UserID]string{}
	person := func(o, i int, kind string, m authz.Membership, org authz.OrgID) authz.UserID {
		id := authz.NewUserID()
		emails[id] = fmt.Sprintf("load-%d-%s%d@example.com", o, kind, i)
		batch.Users = append(batch.Users, iam.ImportUser{ID: id, Email: emails[id], Name: fmt.Sprintf("Load %s %d-%d", kind, o, i),
			PasswordHash: hash, Memberships: map[authz.OrgID]authz.Membership{org: m}})
		w.start.orgs[org][id] = m
		return id
	}
	for o := range loadPairs + loadSolos {
		org := &loadOrg{id: authz.NewOrgID(), solo: o >= loadPairs}
		w.orgs = append(w.orgs, org)
		w.start.names[org.id] = fmt.Sprintf("Load org %d", o)
		w.start.orgs[org.id] = map[authz.UserID]authz.Membership{}
		batch.Orgs = append(batch.Orgs, iam.ImportOrg{ID: org.id, Name: w.start.names[org.id]})
		managers := 2
		if org.solo {
			managers = 1
		}
		for i := range managers {
			org.managers = append(org.managers, loadActor{id: person(o, i, "manager", authz.Membership{Role: authz.Manager}, org.id)})
		}
		for i := range loadMembers {
			cats := authz.CategorySet(rng.IntN(int(authz.AllCategories) + 1))
			org.members = append(org.members, person(o, i, "member", authz.Membership{Role: authz.Member, Categories: cats}, org.id))
		}
	}
	if _, err := e.svc.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}

	// Each approval of the plan takes a pending request of its org; more
	// than it is expected to need, so that few turn into re-approvals.
	perOrg := int(math.Ceil(float64(cfg.requests())*loadWeight("approve")/float64(len(w.orgs))*1.5)) + 2
	for o, org := range w.orgs {
		for i := range perOrg {
			e.do(t, http.StatusCreated, "POST", "/v1/signup", "", map[string]string{"email": fmt.Sprintf("load-%d-signup%d@example.com", o, i),
				"name": fmt.Sprintf("Load signup %d-%d", o, i), "password": password, "org_id": string(org.id)})
		}
		reqs, err := e.svc.Registrations(ctx, e.admin, org.id, approval.AllTime, approval.Pending)
		if err != nil || len(reqs) != perOrg {
			t.Fatalf("org %d: %d pending requests, %v; want %d", o, len(reqs), err, perOrg)
		}
		for _, r := range reqs {
			org.requests = append(org.requests, r.ID)
		}
	}

	login := func(email string) string {
		return e.do(t, http.StatusOK, "POST", "/v1/login", "", map[string]string{"email": email, "password": password}).str(t, "token")
	}
	w.admin.token = login(adminEmail)
	for _, org := range w.orgs {
		for i := range org.managers {
			org.managers[i].token = login(emails[org.managers[i].id])
		}
		for _, id := range org.members[:loadReaders] {
			org.readers = append(org.readers, loadActor{id: id, token: login(emails[id])})
		}
	}
	return w
}

// requests is the number of requests of the run.
func (c loadConfig) requests() int { return max(1, int(c.rate*c.duration.Seconds())) }

// loadMix is the share of each kind of request, per thousand: 90% reads,
// 10% writes, of which "refused" are the attempts the rules turn down.
var loadMix = []struct {
	kind   string
	write  bool
	weight int
}{
	{"check", false, 500}, {"me", false, 200}, {"members", false, 200},
	{"categories", true, 30}, {"role", true, 20}, {"remove", true, 8}, {"re-add", true, 8},
	{"approve", true, 14}, {"rename", true, 5}, {"refused", true, 15},
}

func loadWeight(kind string) float64 {
	for _, m := range loadMix {
		if m.kind == kind {
			return float64(m.weight) / 1000
		}
	}
	panic("load: unknown kind " + kind)
}

// loadOp is one request of the plan with what it may answer and, for a
// write, the audit event it must leave.
type loadOp struct {
	kind  string
	write bool
	req   request
	want  []int // the statuses it may answer
	// For writes: the event's key, whose outcome the answer decides.
	event loadKey
	// approves is the registration request an approval decides.
	approves approval.RequestID
}

// loadKey identifies an audit event of a write for matching: who did what
// to whom where, the outcome, and what the write set (for a success: the
// categories, the role, the org name or the request approved).
type loadKey struct {
	actor   authz.UserID
	action  audit.Action
	target  authz.UserID
	org     authz.OrgID
	outcome audit.Outcome
	payload string
}

// plan draws the run's requests from loadMix with a fixed seed.
func (w *loadWorld) plan(cfg loadConfig) []loadOp {
	rng := rand.New(rand.NewPCG(2026, 8))
	total := 0
	for _, m := range loadMix {
		total += m.weight
	}
	pages := []string{"runtime", "services", "backups", "devices", "databases", "vpn"}
	approved := map[authz.OrgID]int{}
	ops := make([]loadOp, cfg.requests())
	for k := range ops {
		n := rng.IntN(total)
		i := 0
		for n >= loadMix[i].weight {
			n -= loadMix[i].weight
			i++
		}
		org := w.orgs[rng.IntN(len(w.orgs))]
		// The org's Manager or the PlatformAdmin acts.
		actor := w.admin
		if rng.IntN(3) > 0 {
			actor = org.managers[rng.IntN(len(org.managers))]
		}
		target := org.members[rng.IntN(len(org.members))]
		member := func(suffix string) string {
			return "/v1/orgs/" + string(org.id) + "/members/" + string(target) + suffix
		}
		op := loadOp{kind: loadMix[i].kind, write: loadMix[i].write, want: []int{http.StatusNoContent}}
		op.event = loadKey{actor: actor.id, target: target, org: org.id}
		switch op.kind {
		case "check":
			reader := slices.Concat(org.readers, org.managers)[rng.IntN(len(org.readers)+len(org.managers))]
			op.req = request{method: "GET", path: "/v1/orgs/" + string(org.id) + "/" + pages[rng.IntN(len(pages))], token: reader.token}
			// 403 without the category; 404 for a reader removed
			// from the org meanwhile (an org of others does not exist).
			op.want = []int{http.StatusOK, http.StatusForbidden, http.StatusNotFound}
		case "me":
			op.req = request{method: "GET", path: "/v1/me", token: slices.Concat(org.readers, org.managers, []loadActor{w.admin})[rng.IntN(len(org.readers)+len(org.managers)+1)].token}
			op.want = []int{http.StatusOK}
		case "members":
			op.req = request{method: "GET", path: "/v1/orgs/" + string(org.id) + "/members?limit=50", token: actor.token}
			op.want = []int{http.StatusOK}
		case "categories":
			cats := authz.CategorySet(rng.IntN(int(authz.AllCategories) + 1))
			op.req = request{method: "PUT", path: member("/categories"), token: actor.token, body: map[string]any{"categories": categoryNames(cats)}}
			op.event.action, op.event.payload = audit.MemberCategoriesSet, cats.String()
			op.want = []int{http.StatusNoContent, http.StatusNotFound} // 404: removed meanwhile
		case "role":
			// A solo org keeps one Manager: its members are only ever
			// made Members.
			to := authz.Member
			if !org.solo && rng.IntN(2) == 0 {
				to = authz.Manager
			}
			op.req = request{method: "PUT", path: member("/role"), token: actor.token, body: map[string]string{"role": roleName(to)}}
			op.event.action, op.event.payload = audit.MemberRoleChange, to.String()
			op.want = []int{http.StatusNoContent, http.StatusNotFound} // a Manager cannot add a removed member back
		case "remove":
			op.req = request{method: "DELETE", path: member(""), token: actor.token}
			op.event.action = audit.MemberRemove
			op.want = []int{http.StatusNoContent, http.StatusNotFound} // removed already
		case "re-add":
			op.event.actor = w.admin.id
			op.req = request{method: "PUT", path: member("/role"), token: w.admin.token, body: map[string]string{"role": roleMember}}
			op.event.action, op.event.payload = audit.MemberRoleChange, authz.Member.String()
		case "approve":
			j := approved[org.id]
			if j == len(org.requests) { // the queue is spent: approve one again
				j = rng.IntN(j)
			}
			approved[org.id] = min(j+1, len(org.requests))
			op.approves = org.requests[j]
			op.req = request{method: "POST", path: "/v1/registrations/" + string(op.approves) + "/approve", token: actor.token}
			op.event.action, op.event.target, op.event.payload = audit.RegistrationApprove, "", string(op.approves)
			op.want = []int{http.StatusNoContent, http.StatusConflict} // 409: approved already
		case "rename":
			name := fmt.Sprintf("Load org renamed at %d", k)
			op.event.actor = w.admin.id
			op.req = request{method: "PATCH", path: "/v1/orgs/" + string(org.id), token: w.admin.token, body: map[string]string{"name": name}}
			op.event.action, op.event.target, op.event.payload = audit.OrgRename, "", name
			op.want = []int{http.StatusOK}
		case "refused":
			w.refused(rng, &op, org, org.requests[:approved[org.id]])
		}
		ops[k] = op
	}
	return ops
}

// refused makes op one of the writes the rules turn down, whatever the
// state: each answers one status and leaves one denied event. approved
// are org's requests that approvals earlier in the plan decide.
func (w *loadWorld) refused(rng *rand.Rand, op *loadOp, org *loadOrg, approved []approval.RequestID) {
	mgr := org.managers[rng.IntN(len(org.managers))]
	orgPath := "/v1/orgs/" + string(org.id)
	kinds := 5
	if len(approved) > 0 {
		kinds++
	}
	switch rng.IntN(kinds) {
	case 0: // nobody changes their own role
		op.req = request{method: "PUT", path: orgPath + "/members/" + string(mgr.id) + "/role", token: mgr.token, body: map[string]string{"role": roleMember}}
		op.event = loadKey{actor: mgr.id, action: audit.MemberRoleChange, target: mgr.id, org: org.id}
		op.want = []int{http.StatusForbidden}
	case 1: // only PlatformAdmins rename orgs
		op.req = request{method: "PATCH", path: orgPath, token: mgr.token, body: map[string]string{"name": "Taken over"}}
		op.event = loadKey{actor: mgr.id, action: audit.OrgRename, org: org.id}
		op.want = []int{http.StatusForbidden}
	case 2: // a solo org's last Manager is neither demoted nor removed
		solo := w.orgs[loadPairs+rng.IntN(loadSolos)]
		last := solo.managers[0].id
		path := "/v1/orgs/" + string(solo.id) + "/members/" + string(last)
		op.req = request{method: "DELETE", path: path, token: w.admin.token}
		op.event = loadKey{actor: w.admin.id, action: audit.MemberRemove, target: last, org: solo.id}
		if rng.IntN(2) == 0 {
			op.req = request{method: "PUT", path: path + "/role", token: w.admin.token, body: map[string]string{"role": roleMember}}
			op.event.action = audit.MemberRoleChange
		}
		op.want = []int{http.StatusConflict}
	case 3: // the last PlatformAdmin cannot deactivate herself
		op.req = request{method: "POST", path: "/v1/users/" + string(w.admin.id) + "/deactivate", token: w.admin.token}
		op.event = loadKey{actor: w.admin.id, action: audit.UserDeactivate, target: w.admin.id}
		op.want = []int{http.StatusConflict}
	case 4: // a Manager reaches into another org: answered as not found
		other := w.orgs[(slices.Index(w.orgs, org)+1)%len(w.orgs)]
		target := other.members[rng.IntN(len(other.members))]
		op.req = request{method: "PUT", path: orgPath + "/members/" + string(target) + "/categories", token: mgr.token,
			body: map[string]any{"categories": []string{"infra"}}}
		op.event = loadKey{actor: mgr.id, action: audit.MemberCategoriesSet, target: target, org: org.id}
		op.want = []int{http.StatusNotFound}
	case 5: // a request decided already: 409, unless this one comes first
		op.approves = approved[rng.IntN(len(approved))]
		op.req = request{method: "POST", path: "/v1/registrations/" + string(op.approves) + "/approve", token: mgr.token}
		op.event = loadKey{actor: mgr.id, action: audit.RegistrationApprove, org: org.id, payload: string(op.approves)}
		op.want = []int{http.StatusConflict, http.StatusNoContent}
	}
}

// loadResult is the answer to one request of the plan.
type loadResult struct {
	status  int
	err     error
	latency time.Duration // from the time the request was due
	service time.Duration // from the time it was sent
}

// loadRun is the outcome of a run: one result per op of the plan.
type loadRun struct {
	results []loadResult
	elapsed time.Duration // from the first request's due time to the last answer
}

// run sends the plan: request k is due at start + k/rate; cfg.workers
// clients take the requests in order and each sends its next one when it
// is due, or at once when it is late (every client was busy), so the
// latency from the due time counts the wait a slower server causes. A
// server that stops answering fails the run's remaining requests once
// three times the schedule's length (and a minute) has passed, so the run
// ends even then.
func (w *loadWorld) run(t *testing.T, cfg loadConfig, plan []loadOp) loadRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*cfg.duration+time.Minute)
	defer cancel()
	tr := &http.Transport{MaxIdleConns: cfg.workers, MaxIdleConnsPerHost: cfg.workers, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	out := loadRun{results: make([]loadResult, len(plan))}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	for range cfg.workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(plan) {
					return
				}
				due := start.Add(time.Duration(float64(k) / cfg.rate * float64(time.Second)))
				time.Sleep(time.Until(due))
				out.results[k] = w.send(ctx, t, client, plan[k].req, due)
			}
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// send sends one request of the run. Unlike env.send it fails nothing
// (it runs on the clients' goroutines): a transport error is a result.
func (w *loadWorld) send(ctx context.Context, t *testing.T, client *http.Client, q request, due time.Time) loadResult {
	var body io.Reader
	if q.body != nil {
		b, err := json.Marshal(q.body)
		if err != nil {
			return loadResult{err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, q.method, w.srv.URL+q.path, body)
	if err != nil {
		return loadResult{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+q.token)
	sent := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return loadResult{err: err}
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	end := time.Now()
	if err != nil {
		return loadResult{err: err}
	}
	checkAnswer(t, q, resp{status: res.StatusCode, header: res.Header, body: b})
	return loadResult{status: res.StatusCode, latency: end.Sub(due), service: end.Sub(sent)}
}

// checkAnswers requires every answer to be one its request may give: no
// transport error, no 5xx.
func (r loadRun) checkAnswers(t *testing.T, plan []loadOp) {
	t.Helper()
	var bad, fiveXX, transport int
	for k, res := range r.results {
		op := plan[k]
		switch {
		case res.err != nil:
			transport++
		case res.status >= 500:
			fiveXX++
		}
		if res.err != nil || !slices.Contains(op.want, res.status) {
			if bad++; bad <= 10 {
				t.Errorf("request %d (%s) %s %s: status %d, %v; want one of %v", k, op.kind, op.req.method, op.req.path, res.status, res.err, op.want)
			}
		}
	}
	if bad > 0 || fiveXX > 0 || transport > 0 {
		t.Errorf("%d of %d answers unexpected: %d 5xx, %d transport errors", bad, len(plan), fiveXX, transport)
	}
}

// events returns the audit events appended after the checkpoint ID from
// and up to to, oldest first.
func (w *loadWorld) events(t *testing.T, from, to int64) []audit.Event {
	t.Helper()
	var out []audit.Event
	f := audit.Filter{Limit: audit.MaxLimit, Before: to + 1}
	for {
		page, err := w.svc.AuditEvents(t.Context(), w.admin.id, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page {
			if ev.ID <= from {
				slices.Reverse(out)
				return out
			}
			out = append(out, ev)
		}
		if len(page) == 0 {
			t.Fatalf("the audit log ends before event %d", from)
		}
		f.Before = page[len(page)-1].ID
	}
}

// loadChange is what the writes of the plan record in an event's After.
type loadChange struct {
	Role          *authz.Role        `json:"role"`
	PlatformAdmin bool               `json:"platformadmin"`
	Categories    []authz.Category   `json:"categories"`
	Name          string             `json:"name"`
	Request       approval.RequestID `json:"request"`
}

// loadActions are the actions the plan's writes record.
var loadActions = []audit.Action{audit.MemberCategoriesSet, audit.MemberRoleChange, audit.MemberRemove,
	audit.RegistrationApprove, audit.OrgRename, audit.UserDeactivate}

// loadKeyOf returns the key of a write's event, with the change it describes.
func loadKeyOf(t *testing.T, ev audit.Event) (loadKey, loadChange) {
	t.Helper()
	k := loadKey{actor: ev.Actor, action: ev.Action, target: ev.Target, org: ev.Org, outcome: ev.Outcome}
	var c loadChange
	if len(ev.After) > 0 {
		if err := json.Unmarshal(ev.After, &c); err != nil {
			t.Fatalf("event %d: after %s: %v", ev.ID, ev.After, err)
		}
	}
	if ev.Outcome != audit.Success {
		return k, c
	}
	switch ev.Action {
	case audit.MemberCategoriesSet:
		var s authz.CategorySet
		for _, cat := range c.Categories {
			s = s.With(cat)
		}
		k.payload = s.String()
	case audit.MemberRoleChange:
		if c.Role != nil {
			k.payload = c.Role.String()
		}
	case audit.OrgRename:
		k.payload = c.Name
	case audit.RegistrationApprove:
		k.target, k.payload = "", string(c.Request)
	}
	return k, c
}

// loadCheckAcknowledged matches the writes' answers with the events of
// the run: each 2xx write has its success event, each refused (4xx) one
// its denied event, and no event of these actions is left over.
func loadCheckAcknowledged(t *testing.T, plan []loadOp, run loadRun, events []audit.Event) {
	t.Helper()
	count := map[loadKey]int{}
	for k, op := range plan {
		res := run.results[k]
		if !op.write || res.err != nil {
			continue
		}
		key := op.event
		switch {
		case res.status < 300:
			key.outcome = audit.Success
		case res.status < 500:
			key.outcome, key.payload = audit.Denied, ""
			if key.action == audit.RegistrationApprove {
				key.target = ""
			}
		default:
			continue
		}
		count[key]++
	}
	for _, ev := range events {
		if !slices.Contains(loadActions, ev.Action) {
			continue
		}
		k, _ := loadKeyOf(t, ev)
		if k.action == audit.RegistrationApprove {
			k.target = "" // the requester: the plan knows the request
		}
		count[k]--
	}
	shown := 0
	for k, n := range count {
		if n != 0 {
			if shown++; shown <= 10 {
				what := "acknowledged writes without their event (lost)"
				if n < 0 {
					what = "events no acknowledged write explains"
				}
				t.Errorf("%d %s: %+v", loadAbs(n), what, k)
			}
		}
	}
}

func loadAbs(n int) int { return max(n, -n) }

// replay applies the successful writes' events in log order to the
// populated state and returns the state they lead to, checking the
// invariants after each.
func (w *loadWorld) replay(t *testing.T, events []audit.Event) loadModel {
	t.Helper()
	m := w.start.clone()
	for _, ev := range events {
		if ev.Outcome != audit.Success || !slices.Contains(loadActions, ev.Action) {
			continue
		}
		_, c := loadKeyOf(t, ev)
		members := m.orgs[ev.Org]
		switch ev.Action {
		case audit.MemberCategoriesSet:
			ms := members[ev.Target]
			ms.Categories = 0
			for _, cat := range c.Categories {
				ms.Categories = ms.Categories.With(cat)
			}
			members[ev.Target] = ms
		case audit.MemberRoleChange:
			if c.PlatformAdmin {
				m.admins[ev.Target] = true
				break
			}
			delete(m.admins, ev.Target)
			ms := members[ev.Target]
			ms.Role = *c.Role
			members[ev.Target] = ms
		case audit.MemberRemove:
			delete(members, ev.Target)
		case audit.RegistrationApprove:
			if c.Role != nil { // not a member yet: now one, with nothing granted
				members[ev.Target] = authz.Membership{Role: *c.Role}
			}
		case audit.OrgRename:
			m.names[ev.Org] = c.Name
		case audit.UserDeactivate:
			delete(m.admins, ev.Target)
		}
		if len(m.admins) == 0 {
			t.Errorf("after event %d (%s) the platform has no PlatformAdmin", ev.ID, ev.Action)
		}
		for _, org := range w.orgs {
			if !slices.ContainsFunc(slices.Collect(maps.Values(m.orgs[org.id])), func(ms authz.Membership) bool { return ms.Role == authz.Manager }) {
				t.Errorf("after event %d (%s) org %s has no Manager", ev.ID, ev.Action, org.id)
			}
		}
	}
	return m
}

// checkState compares the database and the engines with the replayed
// model, and the approvals with the requests' statuses.
func (w *loadWorld) checkState(t *testing.T, m loadModel, plan []loadOp, run loadRun) {
	t.Helper()
	ctx := t.Context()
	snap := w.snapshot(t)
	for _, o := range snap.Orgs {
		if o.Name != m.names[o.ID] {
			t.Errorf("org %s is named %q in the database, %q by the audit log", o.ID, o.Name, m.names[o.ID])
		}
		got := map[authz.UserID]authz.Membership{}
		for _, mb := range snap.Members[o.ID] {
			got[mb.ID] = authz.Membership{Role: mb.Role, Categories: mb.Categories}
		}
		want := m.orgs[o.ID]
		if len(want) == 0 {
			want = map[authz.UserID]authz.Membership{}
		}
		for id := range got {
			if got[id] != want[id] {
				t.Errorf("org %s, user %s: the database holds %+v, the audit log says %+v", o.ID, id, got[id], want[id])
			}
		}
		for id := range want {
			if _, ok := got[id]; !ok {
				t.Errorf("org %s, user %s: the audit log says %+v, the database holds nothing", o.ID, id, want[id])
			}
		}
		if !slices.ContainsFunc(snap.Members[o.ID], func(mb iam.Member) bool { return mb.Role == authz.Manager }) {
			t.Errorf("org %s has no Manager in the database", o.ID)
		}
	}
	if !slices.ContainsFunc(snap.Users, func(a iam.Account) bool { return a.PlatformAdmin && a.Status == identity.Active }) {
		t.Error("the database has no active PlatformAdmin")
	}

	// Each registration request approved by one 2xx answer exactly, and
	// approved in the database then; the others still pending.
	approvals := map[approval.RequestID]int{}
	for k, op := range plan {
		if op.approves != "" && run.results[k].status == http.StatusNoContent {
			approvals[op.approves]++
		}
	}
	for _, o := range snap.Orgs {
		for _, r := range snap.Requests[o.ID] {
			want := approval.Pending
			if approvals[r.ID] > 0 {
				want = approval.Approved
			}
			if n := approvals[r.ID]; n > 1 || r.Status != want {
				t.Errorf("request %s: %d acknowledged approvals, status %v", r.ID, n, r.Status)
			}
		}
	}

	// The engine of the running Service and of one freshly loaded from
	// the database answer as the model does, for every user, org and
	// category.
	fresh, err := iam.New(ctx, w.db, iam.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	wrong := 0
	for _, o := range snap.Orgs {
		for _, u := range snap.Users {
			for c := authz.Infra; c <= authz.Audit; c++ {
				want := m.allowed(u.ID, o.ID, c)
				running, restarted := w.svc.Check(ctx, u.ID, o.ID, c).Allowed, fresh.Check(ctx, u.ID, o.ID, c).Allowed
				if running != want || restarted != want {
					if wrong++; wrong <= 10 {
						t.Errorf("Check(%s, %s, %v): running %v, restarted %v, the audit log says %v", u.ID, o.ID, c, running, restarted, want)
					}
				}
			}
		}
	}
}

// loadFigures are the report's figures of one group of requests.
type loadFigures struct {
	name             string
	n                int
	latency, service []time.Duration
	statuses         map[int]int
}

func (f *loadFigures) add(r loadResult) {
	f.n++
	f.latency = append(f.latency, r.latency)
	f.service = append(f.service, r.service)
	f.statuses[r.status]++
}

// loadPercentile returns the nearest-rank p-th percentile of sorted d.
func loadPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[max(0, int(math.Ceil(p/100*float64(len(d))))-1)]
}

// loadReport is the run's figures as text for the log and as Markdown.
type loadReport struct{ text, markdown string }

func (r loadRun) report(cfg loadConfig, plan []loadOp) loadReport {
	groups := map[string]*loadFigures{}
	group := func(name string) *loadFigures {
		if groups[name] == nil {
			groups[name] = &loadFigures{name: name, statuses: map[int]int{}}
		}
		return groups[name]
	}
	for k, res := range r.results {
		if res.err != nil {
			continue
		}
		class := "reads"
		if plan[k].write {
			class = "writes"
		}
		for _, g := range []string{"all", class, plan[k].kind} {
			group(g).add(res)
		}
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
	var text, md strings.Builder
	all := group("all")
	fmt.Fprintf(&text, "load: %d requests in %v: %.1f req/s (offered %.0f/s), %d clients, PostgreSQL\n",
		all.n, r.elapsed.Round(time.Millisecond), float64(all.n)/r.elapsed.Seconds(), cfg.rate, cfg.workers)
	fmt.Fprintf(&md, "%d requests in %v: %.1f req/s (offered %.0f/s), %d clients, PostgreSQL; latency in ms from the scheduled time (service time from the send in brackets).\n\n",
		all.n, r.elapsed.Round(time.Millisecond), float64(all.n)/r.elapsed.Seconds(), cfg.rate, cfg.workers)
	fmt.Fprintf(&text, "%-11s %6s  %-32s  %-32s  %s\n", "", "n", "latency p50/p90/p99/max ms", "service p50/p90/p99/max ms", "statuses")
	md.WriteString("| requests | n | p50 | p90 | p99 | max | statuses |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	names := []string{"all", "reads", "writes"}
	for _, m := range loadMix {
		names = append(names, m.kind)
	}
	for _, name := range names {
		g := groups[name]
		if g == nil {
			continue
		}
		slices.Sort(g.latency)
		slices.Sort(g.service)
		var st []string
		for _, c := range slices.Sorted(maps.Keys(g.statuses)) {
			st = append(st, fmt.Sprintf("%d: %d", c, g.statuses[c]))
		}
		row := func(d []time.Duration) []string {
			return []string{ms(loadPercentile(d, 50)), ms(loadPercentile(d, 90)), ms(loadPercentile(d, 99)), ms(d[len(d)-1])}
		}
		l, s := row(g.latency), row(g.service)
		fmt.Fprintf(&text, "%-11s %6d  %-32s  %-32s  %s\n", name, g.n, strings.Join(l, " / "), strings.Join(s, " / "), strings.Join(st, ", "))
		cells := make([]string, 4)
		for i := range cells {
			cells[i] = l[i] + " (" + s[i] + ")"
		}
		fmt.Fprintf(&md, "| %s | %d | %s | %s |\n", name, g.n, strings.Join(cells, " | "), strings.Join(st, ", "))
	}
	return loadReport{text: text.String(), markdown: md.String()}
}
