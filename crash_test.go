package iam_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mathrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// The environment of a crash child (TestCrashChild): the database it
// works on and the seed of its choices. IAM_CRASH_ROUNDS sets the rounds
// of TestCrashRecovery per database kind (crashDefaultRounds without it),
// for a long local run.
const (
	crashChildDSN  = "IAM_TEST_CRASH_CHILD_DSN"
	crashChildKind = "IAM_TEST_CRASH_CHILD_KIND"
	crashChildSeed = "IAM_TEST_CRASH_CHILD_SEED"
	crashRoundsEnv = "IAM_CRASH_ROUNDS"

	crashDefaultRounds = 20
	// crashWorkers is how many goroutines of a child run operations at
	// once, so that several transactions are in flight when it dies.
	crashWorkers = 3
	// crashChildLife bounds a child's life should the parent never kill
	// it (the parent died first).
	crashChildLife = 2 * time.Minute
)

// crashOpen opens the database of a crash test: kind is a dbtest.Kind's
// name, dsn what crashKind made.
func crashOpen(kind, dsn string) (*gorm.DB, error) {
	var d gorm.Dialector
	switch kind {
	case dbtest.Postgres.String():
		d = postgres.Open(dsn)
	case dbtest.SQLiteFile.String():
		d = sqlite.Open(dsn)
	default:
		return nil, fmt.Errorf("crash: unknown database kind %q", kind)
	}
	return gorm.Open(d, &gorm.Config{Logger: logger.Discard})
}

// TestCrashChild is not a test of its own: run by TestCrashRecovery as a
// child process, it opens a Service on the database it is given and runs
// an endless stream of management, sign-up, profile and session
// operations from crashWorkers goroutines, printing "ack ..." (see
// crashAck) once each has returned successfully, until it is killed. An
// unexpected error (anything but a refusal) is printed as "fail ...".
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashChildDSN)
	if dsn == "" {
		t.Skip("run by TestCrashRecovery")
	}
	seed, err := strconv.ParseUint(os.Getenv(crashChildSeed), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The parent holds standard input open: its end (the parent died) or
	// a long life ends the child, so no child outlives a broken run.
	go func() {
		bufio.NewReader(os.Stdin).ReadString(0)
		os.Exit(0)
	}()
	time.AfterFunc(crashChildLife, func() { os.Exit(0) })
	ctx := context.Background()
	db, err := crashOpen(os.Getenv(crashChildKind), dsn)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)),
		iam.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		t.Fatal(err)
	}
	state, err := crashRead(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	w := newCrashWorld(svc, seed, state)
	w.print("ready")
	var wg sync.WaitGroup
	for i := range crashWorkers {
		wg.Go(func() {
			r := mathrand.New(mathrand.NewPCG(seed, uint64(i)))
			for {
				w.step(ctx, r)
			}
		})
	}
	wg.Wait()
}

// crashAck is one acknowledged operation, as a child prints it: "ack N
// OP VERSION ACTION ACTOR TARGET ORG EMAIL AFTER", "-" for an empty
// field. VERSION is the policy version the operation committed (from its
// Receipt), 0 for an account-only operation; EMAIL names the account a
// sign-up of a new email created (its id is not returned); AFTER is the
// audit event's After the operation must have recorded, or "-" when the
// child cannot know it in advance.
type crashAck struct {
	n       int64
	op      string
	version int64
	action  audit.Action
	actor   authz.UserID
	target  authz.UserID
	org     authz.OrgID
	email   string
	after   string
}

func crashDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func crashUndash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func (a crashAck) String() string {
	return fmt.Sprintf("ack %d %s %d %s %s %s %s %s %s", a.n, a.op, a.version, a.action,
		crashDash(string(a.actor)), crashDash(string(a.target)), crashDash(string(a.org)), crashDash(a.email), crashDash(a.after))
}

func crashParseAck(line string) (crashAck, error) {
	f := strings.SplitN(line, " ", 10)
	if len(f) != 10 || f[0] != "ack" {
		return crashAck{}, fmt.Errorf("malformed ack %q", line)
	}
	n, err1 := strconv.ParseInt(f[1], 10, 64)
	v, err2 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return crashAck{}, fmt.Errorf("malformed ack %q: %w", line, err)
	}
	return crashAck{n: n, op: f[2], version: v, action: audit.Action(f[4]), actor: authz.UserID(crashUndash(f[5])),
		target: authz.UserID(crashUndash(f[6])), org: authz.OrgID(crashUndash(f[7])), email: crashUndash(f[8]), after: crashUndash(f[9])}, nil
}

// crashJSON is the JSON encoding of v, as audit.Event.SetChange makes it.
func crashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// crashWorld is what a child knows of the database, to choose operations
// that mostly succeed: read at start, updated after each success. Its
// goroutines race each other, so some choices are stale and refused, as
// in production.
type crashWorld struct {
	svc  *iam.Service
	seed uint64
	acks atomic.Int64
	seq  atomic.Int64
	out  sync.Mutex

	mu      sync.Mutex
	orgs    []authz.OrgID
	people  map[authz.UserID]*crashPerson
	ids     []authz.UserID
	pending []crashRequest
	tokens  []crashSession
}

type crashPerson struct {
	email  string
	active bool
	admin  bool
	orgs   map[authz.OrgID]authz.Membership
}

type crashSession struct {
	user  authz.UserID
	token string
}

func newCrashWorld(svc *iam.Service, seed uint64, db crashDB) *crashWorld {
	w := &crashWorld{svc: svc, seed: seed, people: map[authz.UserID]*crashPerson{}}
	w.orgs = slices.Sorted(maps.Keys(db.orgs))
	for id, u := range db.users {
		if !u.deleted {
			w.people[id] = &crashPerson{email: u.email, active: u.status == identity.Active.String(), orgs: map[authz.OrgID]authz.Membership{}}
		}
	}
	for _, r := range db.rules {
		p := w.people[r.User]
		switch {
		case p == nil || r.Deactivated:
		case r.Role == authz.PlatformAdmin:
			p.admin = true
		default:
			m := p.orgs[r.Org]
			if r.Category != 0 {
				m.Categories = m.Categories.With(r.Category)
			} else {
				m.Role = r.Role
			}
			p.orgs[r.Org] = m
		}
	}
	w.ids = slices.Sorted(maps.Keys(w.people))
	for _, id := range slices.Sorted(maps.Keys(db.requests)) {
		if r := db.requests[id]; r.status == approval.Pending.String() {
			w.pending = append(w.pending, r)
		}
	}
	return w
}

func (w *crashWorld) print(line string) {
	w.out.Lock()
	defer w.out.Unlock()
	// One write per line, unbuffered: what was printed before the kill
	// reaches the parent.
	os.Stdout.WriteString(line + "\n")
}

func (w *crashWorld) name(prefix string) string {
	return fmt.Sprintf("%s-s%d-%d", prefix, w.seed, w.seq.Add(1))
}

// pick returns a random element of s, and false for an empty s.
func crashPick[T any](r *mathrand.Rand, s []T) (T, bool) {
	var zero T
	if len(s) == 0 {
		return zero, false
	}
	return s[r.IntN(len(s))], true
}

// The following pick helpers run with w.mu held.

func (w *crashWorld) pickUser(r *mathrand.Rand, ok func(*crashPerson) bool) (authz.UserID, bool) {
	var c []authz.UserID
	for _, id := range w.ids {
		if ok(w.people[id]) {
			c = append(c, id)
		}
	}
	return crashPick(r, c)
}

func (w *crashWorld) admin(r *mathrand.Rand) (authz.UserID, bool) {
	return w.pickUser(r, func(p *crashPerson) bool { return p.admin && p.active })
}

// actorFor returns a PlatformAdmin or, often, a Manager of org.
func (w *crashWorld) actorFor(r *mathrand.Rand, org authz.OrgID) (authz.UserID, bool) {
	if r.IntN(3) == 0 {
		if id, ok := w.pickUser(r, func(p *crashPerson) bool { return p.active && p.orgs[org].Role == authz.Manager }); ok {
			return id, true
		}
	}
	return w.admin(r)
}

func (w *crashWorld) member(r *mathrand.Rand, org authz.OrgID) (authz.UserID, bool) {
	return w.pickUser(r, func(p *crashPerson) bool { _, ok := p.orgs[org]; return ok })
}

// step runs one operation chosen at random and reports it.
func (w *crashWorld) step(ctx context.Context, r *mathrand.Rand) {
	op := crashOps[r.IntN(len(crashOps))]
	var receipt iam.Receipt
	ack, err := op.run(w, iam.WithReceipt(ctx, &receipt), r)
	switch {
	case errors.Is(err, errCrashSkip):
		time.Sleep(time.Millisecond) // no spinning while another worker works
	case errors.Is(err, errCrashQuiet):
	case errors.Is(err, iam.ErrForbidden), errors.Is(err, iam.ErrNotFound), errors.Is(err, iam.ErrConflict), errors.Is(err, iam.ErrUnauthenticated):
		// A refusal: the choice was stale (another goroutine got there
		// first) or broke a rule the world does not model.
	case err != nil:
		w.print(strings.ReplaceAll(fmt.Sprintf("fail %s: %v", op.name, err), "\n", " "))
	default:
		ack.n, ack.op, ack.version = w.acks.Add(1), op.name, receipt.Version()
		w.print(ack.String())
	}
}

var (
	errCrashSkip  = errors.New("nothing to do")
	errCrashQuiet = errors.New("done, but nothing to acknowledge")
)

// crashOp is one kind of operation of the stream. run chooses its inputs
// (under w.mu), calls the Service, updates w after a success and returns
// the ack; errCrashSkip when there was nothing to choose from.
type crashOp struct {
	name string
	run  func(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error)
}

// crashOps are the operations, repeated for their weight.
var crashOps = crashWeighted([]struct {
	weight int
	op     crashOp
}{
	{3, crashOp{"create-org", crashCreateOrg}},
	{2, crashOp{"rename-org", crashRenameOrg}},
	{1, crashOp{"delete-org", crashDeleteOrg}},
	{6, crashOp{"sign-up", crashSignUp}},
	{2, crashOp{"sign-up-again", crashSignUpAgain}},
	{5, crashOp{"approve", func(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
		return crashDecide(w, ctx, r, true)
	}}},
	{2, crashOp{"reject", func(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
		return crashDecide(w, ctx, r, false)
	}}},
	{6, crashOp{"change-role", crashChangeRole}},
	{5, crashOp{"set-categories", crashSetCategories}},
	{2, crashOp{"remove-member", crashRemoveMember}},
	{2, crashOp{"deactivate", func(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
		return crashSetStatus(w, ctx, r, false)
	}}},
	{2, crashOp{"reactivate", func(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
		return crashSetStatus(w, ctx, r, true)
	}}},
	{1, crashOp{"delete-user", crashDeleteUser}},
	{2, crashOp{"reset-password", crashResetPassword}},
	{3, crashOp{"change-name", crashChangeName}},
	{3, crashOp{"login", crashLogin}},
	{2, crashOp{"logout", crashLogout}},
})

func crashWeighted(ops []struct {
	weight int
	op     crashOp
}) []crashOp {
	var out []crashOp
	for _, o := range ops {
		for range o.weight {
			out = append(out, o.op)
		}
	}
	return out
}

func crashCreateOrg(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	actor, ok := w.admin(r)
	few := len(w.orgs) < 12
	w.mu.Unlock()
	if !ok || !few && r.IntN(4) != 0 {
		return crashAck{}, errCrashSkip
	}
	name := w.name("Org")
	o, err := w.svc.CreateOrg(ctx, actor, name)
	if err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	w.orgs = append(w.orgs, o.ID)
	w.mu.Unlock()
	return crashAck{action: audit.OrgCreate, actor: actor, org: o.ID, after: crashJSON(map[string]string{"name": name})}, nil
}

func crashRenameOrg(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	actor, ok1 := w.admin(r)
	org, ok2 := crashPick(r, w.orgs)
	w.mu.Unlock()
	if !ok1 || !ok2 {
		return crashAck{}, errCrashSkip
	}
	name := w.name("Renamed")
	if err := w.svc.RenameOrg(ctx, actor, org, name); err != nil {
		return crashAck{}, err
	}
	return crashAck{action: audit.OrgRename, actor: actor, org: org, after: crashJSON(map[string]string{"name": name})}, nil
}

func crashDeleteOrg(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	actor, ok1 := w.admin(r)
	org, ok2 := crashPick(r, w.orgs)
	many := len(w.orgs) > 6
	w.mu.Unlock()
	if !ok1 || !ok2 || !many {
		return crashAck{}, errCrashSkip
	}
	if err := w.svc.DeleteOrg(ctx, actor, org); err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	w.orgs = slices.DeleteFunc(w.orgs, func(o authz.OrgID) bool { return o == org })
	for _, p := range w.people {
		delete(p.orgs, org)
	}
	w.pending = slices.DeleteFunc(w.pending, func(q crashRequest) bool { return q.org == org })
	w.mu.Unlock()
	return crashAck{action: audit.OrgDelete, actor: actor, org: org}, nil
}

// crashSignUp signs up a new email; the request joins the child's
// pending list when the next load reads it (its id is not returned).
func crashSignUp(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	org, ok := crashPick(r, w.orgs)
	w.mu.Unlock()
	if !ok {
		return crashAck{}, errCrashSkip
	}
	email := w.name("u") + "@example.com"
	if err := w.svc.SignUp(ctx, email, "Person", pw, org); err != nil {
		return crashAck{}, err
	}
	ack := crashAck{action: audit.RegistrationSubmit, org: org, email: email}
	// The request's and the account's ids are not returned: the queue
	// tells them, for the approvals and logins to come.
	w.mu.Lock()
	admin, ok := w.admin(r)
	w.mu.Unlock()
	if !ok {
		return ack, nil
	}
	reqs, err := w.svc.Registrations(ctx, admin, org, 0, approval.Pending)
	if err != nil {
		return ack, nil // a stale choice of admin; the request waits for the next child
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range reqs {
		if q.Email == email {
			ack.target = q.User
			w.pending = append(w.pending, crashRequest{id: q.ID, org: q.Org, user: q.User, status: q.Status.String()})
			w.people[q.User] = &crashPerson{email: email, active: true, orgs: map[authz.OrgID]authz.Membership{}}
			w.ids = append(w.ids, q.User)
		}
	}
	return ack, nil
}

// crashSignUpAgain applies an existing account to another org.
func crashSignUpAgain(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	org, ok1 := crashPick(r, w.orgs)
	user, ok2 := w.pickUser(r, func(p *crashPerson) bool { _, in := p.orgs[org]; return p.active && !in })
	var email string
	if ok2 {
		email = w.people[user].email
	}
	w.mu.Unlock()
	if !ok1 || !ok2 {
		return crashAck{}, errCrashSkip
	}
	if err := w.svc.SignUp(ctx, email, "Person", pw, org); err != nil {
		return crashAck{}, err
	}
	// No ack: by design the answer is the same when nothing was done
	// (the account was deactivated meanwhile, say), so nothing can be
	// required of it. The replay checks whatever it did.
	return crashAck{}, errCrashQuiet
}

func crashDecide(w *crashWorld, ctx context.Context, r *mathrand.Rand, approve bool) (crashAck, error) {
	w.mu.Lock()
	req, ok1 := crashPick(r, w.pending)
	actor, ok2 := w.actorFor(r, req.org)
	w.pending = slices.DeleteFunc(w.pending, func(q crashRequest) bool { return q.id == req.id })
	w.mu.Unlock()
	if !ok1 || !ok2 {
		return crashAck{}, errCrashSkip
	}
	ack := crashAck{action: audit.RegistrationReject, actor: actor, target: req.user, org: req.org}
	if approve {
		ack.action = audit.RegistrationApprove
		if err := w.svc.Approve(ctx, actor, req.id); err != nil {
			return crashAck{}, err
		}
		w.mu.Lock()
		if p := w.people[req.user]; p != nil {
			if _, in := p.orgs[req.org]; !in {
				p.orgs[req.org] = authz.Membership{Role: authz.Member}
			}
		}
		w.mu.Unlock()
		return ack, nil
	}
	return ack, w.svc.Reject(ctx, actor, req.id, "")
}

// crashMemberOp picks an org, an actor for it and one of its members
// other than the actor (a PlatformAdmin sometimes picks anyone).
func (w *crashWorld) memberOp(r *mathrand.Rand) (actor, target authz.UserID, org authz.OrgID, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if org, ok = crashPick(r, w.orgs); !ok {
		return
	}
	if actor, ok = w.actorFor(r, org); !ok {
		return
	}
	if r.IntN(5) == 0 && w.people[actor].admin {
		target, ok = w.pickUser(r, func(*crashPerson) bool { return true })
	} else {
		target, ok = w.member(r, org)
	}
	return
}

func crashChangeRole(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	actor, target, org, ok := w.memberOp(r)
	if !ok {
		return crashAck{}, errCrashSkip
	}
	to := []authz.Role{authz.Member, authz.Manager, authz.Manager, authz.PlatformAdmin}[r.IntN(4)]
	if err := w.svc.ChangeRole(ctx, actor, target, org, to); err != nil {
		return crashAck{}, err
	}
	ack := crashAck{action: audit.MemberRoleChange, actor: actor, target: target, org: org}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.people[target]
	if p == nil { // deleted since, by another goroutine
		p = &crashPerson{orgs: map[authz.OrgID]authz.Membership{}}
	}
	if to == authz.PlatformAdmin {
		p.admin = true
		return ack, nil // the org role kept is not known for sure here
	}
	m := p.orgs[org]
	m.Role = to
	p.orgs[org], p.admin = m, false
	ack.after = crashJSON(map[string]any{"role": to, "platformadmin": false})
	return ack, nil
}

func crashSetCategories(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	actor, target, org, ok := w.memberOp(r)
	if !ok {
		return crashAck{}, errCrashSkip
	}
	cats := authz.CategorySet(r.IntN(int(authz.AllCategories) + 1))
	if err := w.svc.SetCategories(ctx, actor, target, org, cats); err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	if p := w.people[target]; p != nil {
		m := p.orgs[org]
		m.Categories = cats
		p.orgs[org] = m
	}
	w.mu.Unlock()
	return crashAck{action: audit.MemberCategoriesSet, actor: actor, target: target, org: org,
		after: crashJSON(map[string]any{"categories": cats.Slice()})}, nil
}

func crashRemoveMember(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	actor, target, org, ok := w.memberOp(r)
	if !ok {
		return crashAck{}, errCrashSkip
	}
	if err := w.svc.RemoveMember(ctx, actor, target, org); err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	if p := w.people[target]; p != nil {
		delete(p.orgs, org)
	}
	w.mu.Unlock()
	return crashAck{action: audit.MemberRemove, actor: actor, target: target, org: org}, nil
}

// crashAccountOp picks a PlatformAdmin and a target: anyone, the actor
// included now and then (the last PlatformAdmin rule must hold).
func (w *crashWorld) accountOp(r *mathrand.Rand, ok func(*crashPerson) bool) (actor, target authz.UserID, found bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if actor, found = w.admin(r); !found {
		return
	}
	if r.IntN(10) == 0 {
		return actor, actor, true
	}
	target, found = w.pickUser(r, ok)
	return
}

func crashSetStatus(w *crashWorld, ctx context.Context, r *mathrand.Rand, active bool) (crashAck, error) {
	actor, target, ok := w.accountOp(r, func(p *crashPerson) bool { return p.active != active })
	if !ok {
		return crashAck{}, errCrashSkip
	}
	ack := crashAck{action: audit.UserDeactivate, actor: actor, target: target,
		after: crashJSON(map[string]any{"status": identity.Deactivated})}
	var err error
	if active {
		ack.action, ack.after = audit.UserReactivate, crashJSON(map[string]any{"status": identity.Active})
		err = w.svc.ReactivateUser(ctx, actor, target)
	} else {
		err = w.svc.DeactivateUser(ctx, actor, target)
	}
	if err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	if p := w.people[target]; p != nil {
		p.active = active
	}
	w.mu.Unlock()
	return ack, nil
}

func crashDeleteUser(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	actor, target, ok := w.accountOp(r, func(*crashPerson) bool { return true })
	if !ok {
		return crashAck{}, errCrashSkip
	}
	if err := w.svc.DeleteUser(ctx, actor, target); err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	delete(w.people, target)
	w.ids = slices.DeleteFunc(w.ids, func(id authz.UserID) bool { return id == target })
	w.pending = slices.DeleteFunc(w.pending, func(q crashRequest) bool { return q.user == target })
	w.mu.Unlock()
	return crashAck{action: audit.UserDelete, actor: actor, target: target}, nil
}

func crashResetPassword(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	actor, target, org, ok := w.memberOp(r)
	if !ok || actor == target {
		return crashAck{}, errCrashSkip
	}
	w.mu.Lock()
	if p := w.people[actor]; p != nil && p.admin && r.IntN(2) == 0 {
		org = "" // a PlatformAdmin needs no org
	}
	w.mu.Unlock()
	if err := w.svc.StartPasswordReset(ctx, actor, target, org); err != nil {
		return crashAck{}, err
	}
	return crashAck{action: audit.PasswordResetIssue, actor: actor, target: target, org: org}, nil
}

func crashChangeName(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	user, ok := w.pickUser(r, func(p *crashPerson) bool { return p.active })
	w.mu.Unlock()
	if !ok {
		return crashAck{}, errCrashSkip
	}
	name := w.name("Name")
	if err := w.svc.ChangeName(ctx, user, name); err != nil {
		return crashAck{}, err
	}
	return crashAck{action: audit.ProfileNameChange, actor: user, target: user, after: crashJSON(map[string]string{"name": name})}, nil
}

func crashLogin(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	user, ok := w.pickUser(r, func(p *crashPerson) bool { return p.active })
	var email string
	if ok {
		email = w.people[user].email
	}
	w.mu.Unlock()
	if !ok {
		return crashAck{}, errCrashSkip
	}
	tok, err := w.svc.Login(ctx, email, pw)
	if err != nil {
		return crashAck{}, err
	}
	w.mu.Lock()
	w.tokens = append(w.tokens, crashSession{user, tok.Reveal()})
	w.mu.Unlock()
	return crashAck{action: audit.SessionLogin, actor: user, target: user}, nil
}

func crashLogout(w *crashWorld, ctx context.Context, r *mathrand.Rand) (crashAck, error) {
	w.mu.Lock()
	s, ok := crashPick(r, w.tokens)
	w.tokens = slices.DeleteFunc(w.tokens, func(t crashSession) bool { return t == s })
	w.mu.Unlock()
	if !ok {
		return crashAck{}, errCrashSkip
	}
	if err := w.svc.Logout(ctx, s.token); err != nil {
		return crashAck{}, err
	}
	return crashAck{action: audit.SessionLogout, actor: s.user, target: s.user}, nil
}

// crashDB is the content of the tables, as the parent compares it with
// the audit log and a child starts from.
type crashDB struct {
	orgs     map[authz.OrgID]string
	users    map[authz.UserID]crashUserRow
	rules    []authz.Rule // the "g" rows
	pRows    []string     // the "p" rows, as authz.Row strings, sorted
	requests map[approval.RequestID]crashRequest
	sessions map[authz.UserID]int
	resets   map[authz.UserID]int
	version  int64
	logFrom  int64
}

type crashUserRow struct {
	email, name, status string
	deleted             bool
}

type crashRequest struct {
	id     approval.RequestID
	org    authz.OrgID
	user   authz.UserID
	status string
}

// crashRead reads every table a crash may leave half-written. The SQL is
// constant.
func crashRead(ctx context.Context, db *gorm.DB) (crashDB, error) {
	db = db.WithContext(ctx)
	out := crashDB{orgs: map[authz.OrgID]string{}, users: map[authz.UserID]crashUserRow{},
		requests: map[approval.RequestID]crashRequest{}, sessions: map[authz.UserID]int{}, resets: map[authz.UserID]int{}}
	var orgs []struct{ ID, Name string }
	var users []struct {
		ID, Email, Name, Status string
		DeletedAt               *time.Time
	}
	var rules []struct{ Ptype, V0, V1, V2, V3, V4, V5 *string }
	var reqs []struct{ ID, OrgID, UserID, Status string }
	var sessions, resets []struct {
		UserID string
		N      int
	}
	var version []struct{ Version, LogFrom int64 }
	err := errors.Join(
		db.Table("iam_orgs").Select("id, name").Find(&orgs).Error,
		db.Table("iam_users").Select("id, email, name, status, deleted_at").Find(&users).Error,
		db.Table("casbin_rule").Select("ptype, v0, v1, v2, v3, v4, v5").Find(&rules).Error,
		db.Table("iam_registration_requests").Select("id, org_id, user_id, status").Find(&reqs).Error,
		db.Table("iam_sessions").Select("user_id, COUNT(*) AS n").Group("user_id").Find(&sessions).Error,
		db.Table("iam_reset_tokens").Select("user_id, COUNT(*) AS n").Group("user_id").Find(&resets).Error,
		db.Table("iam_policy_version").Select("version, log_from").Find(&version).Error,
	)
	if err != nil {
		return crashDB{}, err
	}
	for _, o := range orgs {
		out.orgs[authz.OrgID(o.ID)] = o.Name
	}
	for _, u := range users {
		out.users[authz.UserID(u.ID)] = crashUserRow{email: u.Email, name: u.Name, status: u.Status, deleted: u.DeletedAt != nil}
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for _, r := range rules {
		row := authz.Row{PType: str(r.Ptype), V0: str(r.V0), V1: str(r.V1), V2: str(r.V2), V3: str(r.V3), V4: str(r.V4), V5: str(r.V5)}
		if row.PType != "g" {
			out.pRows = append(out.pRows, row.String())
			continue
		}
		rule, err := authz.ParseRow(row)
		if err != nil {
			return crashDB{}, err
		}
		out.rules = append(out.rules, rule)
	}
	slices.Sort(out.pRows)
	for _, r := range reqs {
		out.requests[approval.RequestID(r.ID)] = crashRequest{id: approval.RequestID(r.ID), org: authz.OrgID(r.OrgID), user: authz.UserID(r.UserID), status: r.Status}
	}
	for _, s := range sessions {
		out.sessions[authz.UserID(s.UserID)] = s.N
	}
	for _, s := range resets {
		out.resets[authz.UserID(s.UserID)] = s.N
	}
	if len(version) != 1 {
		return crashDB{}, fmt.Errorf("%d policy version rows", len(version))
	}
	out.version, out.logFrom = version[0].Version, version[0].LogFrom
	return out, nil
}

// crashModel is the state the audit log describes: the parent replays
// every success event, oldest first, and requires the tables to hold
// exactly that state. An operation whose rows committed without its
// event (or the other way round) shows up as a difference, since every
// change an operation makes is described by its event's action, target,
// org, Before and After. The model is built incrementally across rounds:
// the hash chain, verified each round, keeps replayed events unchanged.
type crashModel struct {
	lastID  int64
	events  int64
	denied  map[string]int // denied events by reason, for the figures
	late    int            // account-only operations after their user's deletion: see lateUser
	version int64          // success events of operations that bump the policy version
	// byVersion[v-1] is the event of policy version v.
	byVersion []crashKey
	// others counts the success events of account-only operations, by
	// key with After and by key without it, for the acks to consume.
	others map[crashKey]int

	orgs     map[authz.OrgID]*crashOrg
	users    map[authz.UserID]*crashUser
	members  map[authz.OrgID]map[authz.UserID]authz.Membership
	requests map[approval.RequestID]crashRequest

	// changes are the expected change-log rows of the versions after
	// checked; changeRows counts every expected row.
	changes    map[int64][]authz.UserID
	changeRows int64
	checked    int64
}

type crashKey struct {
	action audit.Action
	actor  authz.UserID
	target authz.UserID
	org    authz.OrgID
	after  string
}

type crashOrg struct {
	name string
	// hadManager: the org has had an active Manager, so it must keep
	// one (DESIGN.md's invariant).
	hadManager bool
}

type crashUser struct {
	name                        string // "" when no event said
	deleted, deactivated, admin bool
	sessions, resets            int
}

func newCrashModel() *crashModel {
	return &crashModel{others: map[crashKey]int{}, denied: map[string]int{}, orgs: map[authz.OrgID]*crashOrg{}, users: map[authz.UserID]*crashUser{},
		members: map[authz.OrgID]map[authz.UserID]authz.Membership{}, requests: map[approval.RequestID]crashRequest{},
		changes: map[int64][]authz.UserID{}}
}

// crashPolicyActions are the actions of operations that run through
// mutate: each bumps the policy version and logs its changes.
var crashPolicyActions = map[audit.Action]bool{
	audit.PlatformBootstrap: true, audit.OrgCreate: true, audit.OrgRename: true, audit.OrgDelete: true,
	audit.RegistrationApprove: true, audit.RegistrationReject: true,
	audit.MemberRoleChange: true, audit.MemberCategoriesSet: true, audit.MemberRemove: true,
	audit.UserDelete: true, audit.UserDeactivate: true, audit.UserReactivate: true,
	audit.ProfilePasswordChange: true, audit.ProfileDelete: true,
	audit.PasswordResetIssue: true, audit.PasswordResetComplete: true, audit.SessionLogout: true,
	audit.UsersImport: true,
}

// crashChange is what Before and After hold, for every action the
// stream records.
type crashChange struct {
	Name          *string          `json:"name"`
	Role          *string          `json:"role"`
	PlatformAdmin *bool            `json:"platformadmin"`
	Categories    []authz.Category `json:"categories"`
	Orgs          *int             `json:"orgs"`
	Request       string           `json:"request"`
	Status        string           `json:"status"`
}

func crashDecode(raw json.RawMessage) (crashChange, error) {
	var c crashChange
	if len(raw) == 0 {
		return c, nil
	}
	return c, json.Unmarshal(raw, &c)
}

func crashRoleName(r authz.Role) string {
	if r == authz.RoleNone {
		return ""
	}
	return r.String()
}

func crashStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// apply replays one event; an error says how the log contradicts
// itself or an invariant.
func (m *crashModel) apply(ev audit.Event) error {
	if ev.ID <= m.lastID {
		return fmt.Errorf("event %d after event %d", ev.ID, m.lastID)
	}
	m.lastID = ev.ID
	m.events++
	if ev.Outcome != audit.Success {
		m.denied[ev.Reason]++
		if ev.Before != nil || ev.After != nil {
			return fmt.Errorf("denied event %d (%s) describes a change", ev.ID, ev.Action)
		}
		return nil
	}
	before, err1 := crashDecode(ev.Before)
	after, err2 := crashDecode(ev.After)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("event %d (%s): %w", ev.ID, ev.Action, err)
	}
	key := crashKey{ev.Action, ev.Actor, ev.Target, ev.Org, string(ev.After)}
	policy := crashPolicyActions[ev.Action]
	if policy {
		m.version++
		m.byVersion = append(m.byVersion, key)
	} else {
		m.others[key]++
		key.after = ""
		m.others[key]++
	}
	touched, err := m.replay(ev, before, after)
	if err != nil {
		return fmt.Errorf("event %d (%s, version %d): %w", ev.ID, ev.Action, m.version, err)
	}
	if policy {
		slices.Sort(touched)
		touched = slices.Compact(touched)
		m.changes[m.version] = touched
		m.changeRows += int64(len(touched))
	}
	if err := m.invariants(ev); err != nil {
		return fmt.Errorf("after event %d (%s): %w", ev.ID, ev.Action, err)
	}
	return nil
}

// user returns the live user id, or an error.
func (m *crashModel) user(id authz.UserID) (*crashUser, error) {
	u := m.users[id]
	if u == nil || u.deleted {
		return nil, fmt.Errorf("user %s is unknown or deleted", id)
	}
	return u, nil
}

// lateUser is user for the account-only operations (sign-up, login,
// name change), which do not wait for management operations: on
// PostgreSQL one may read its user just before a DeleteUser commits and
// commit just after it, leaving a row of a deleted user (a session, a
// request, a name). Not half-applied, and harmless (a deleted user cannot
// authenticate, and their requests are never listed), so the model
// follows it and counts it for the figures.
func (m *crashModel) lateUser(id authz.UserID) (*crashUser, error) {
	u := m.users[id]
	if u == nil {
		return nil, fmt.Errorf("user %s is unknown", id)
	}
	if u.deleted {
		m.late++
	}
	return u, nil
}

func (m *crashModel) org(id authz.OrgID) (*crashOrg, error) {
	o := m.orgs[id]
	if o == nil {
		return nil, fmt.Errorf("org %s is unknown", id)
	}
	return o, nil
}

// replay applies ev's change to the model and returns the users whose
// rules or sessions it touched (what the change log must name).
func (m *crashModel) replay(ev audit.Event, before, after crashChange) ([]authz.UserID, error) {
	t := ev.Target
	switch ev.Action {
	case audit.PlatformBootstrap:
		if m.users[t] != nil {
			return nil, fmt.Errorf("user %s exists", t)
		}
		m.users[t] = &crashUser{admin: true}
		return []authz.UserID{t}, nil
	case audit.OrgCreate:
		if m.orgs[ev.Org] != nil || after.Name == nil {
			return nil, fmt.Errorf("org %s exists, or no name", ev.Org)
		}
		m.orgs[ev.Org] = &crashOrg{name: *after.Name}
		return nil, nil
	case audit.OrgRename:
		o, err := m.org(ev.Org)
		if err != nil {
			return nil, err
		}
		if crashStr(before.Name) != o.name || after.Name == nil {
			return nil, fmt.Errorf("renamed from %q, but the org was %q", crashStr(before.Name), o.name)
		}
		o.name = *after.Name
		return nil, nil
	case audit.OrgDelete:
		if _, err := m.org(ev.Org); err != nil {
			return nil, err
		}
		touched := slices.Collect(maps.Keys(m.members[ev.Org]))
		delete(m.members, ev.Org)
		delete(m.orgs, ev.Org)
		maps.DeleteFunc(m.requests, func(_ approval.RequestID, r crashRequest) bool { return r.org == ev.Org })
		return touched, nil
	case audit.RegistrationSubmit:
		if _, err := m.org(ev.Org); err != nil {
			return nil, err
		}
		if m.users[t] == nil {
			m.users[t] = &crashUser{} // a new account
		} else if _, err := m.lateUser(t); err != nil {
			return nil, err
		}
		id := approval.RequestID(after.Request)
		if _, dup := m.requests[id]; dup || after.Status != approval.Pending.String() {
			return nil, fmt.Errorf("request %s exists, or is %q", id, after.Status)
		}
		m.requests[id] = crashRequest{id: id, org: ev.Org, user: t, status: after.Status}
		return nil, nil
	case audit.RegistrationApprove, audit.RegistrationReject:
		id := approval.RequestID(before.Request)
		r, ok := m.requests[id]
		if !ok || r.status != approval.Pending.String() || r.org != ev.Org || r.user != t || after.Request != before.Request {
			return nil, fmt.Errorf("request %s is %+v", id, r)
		}
		r.status = after.Status
		m.requests[id] = r
		if after.Role == nil {
			return nil, nil
		}
		if _, in := m.members[ev.Org][t]; in || *after.Role != authz.Member.String() {
			return nil, fmt.Errorf("approval made %s a %s, but they were a member already", t, *after.Role)
		}
		m.setMembership(ev.Org, t, authz.Membership{Role: authz.Member})
		return []authz.UserID{t}, nil
	case audit.MemberRoleChange:
		u, err := m.user(t)
		if err != nil {
			return nil, err
		}
		cur := m.members[ev.Org][t]
		if crashStr(before.Role) != crashRoleName(cur.Role) || before.PlatformAdmin == nil || *before.PlatformAdmin != u.admin {
			return nil, fmt.Errorf("before says role %q admin %v; the model has %v admin %v", crashStr(before.Role), before.PlatformAdmin, cur.Role, u.admin)
		}
		switch {
		case after.PlatformAdmin == nil:
			return nil, fmt.Errorf("after %s says too little", ev.After)
		case *after.PlatformAdmin:
			// The org role is kept: after repeats it (null for none).
			if crashStr(after.Role) != crashRoleName(cur.Role) {
				return nil, fmt.Errorf("a promotion to PlatformAdmin changed the org role from %v to %q", cur.Role, crashStr(after.Role))
			}
			u.admin = true
			return []authz.UserID{t}, nil
		}
		to, err := authz.ParseRole(crashStr(after.Role))
		if err != nil {
			return nil, err
		}
		cur.Role, u.admin = to, false
		m.setMembership(ev.Org, t, cur)
		return []authz.UserID{t}, nil
	case audit.MemberCategoriesSet:
		if _, err := m.user(t); err != nil {
			return nil, err
		}
		cur := m.members[ev.Org][t]
		was, err1 := authz.ParseCategoryNames(crashNames(before.Categories))
		now, err2 := authz.ParseCategoryNames(crashNames(after.Categories))
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if was != cur.Categories {
			return nil, fmt.Errorf("before says %v; the model has %v", was, cur.Categories)
		}
		cur.Categories = now
		m.setMembership(ev.Org, t, cur)
		return []authz.UserID{t}, nil
	case audit.MemberRemove:
		if _, err := m.user(t); err != nil {
			return nil, err
		}
		cur, in := m.members[ev.Org][t]
		if !in || crashStr(before.Role) != crashRoleName(cur.Role) {
			return nil, fmt.Errorf("removed a %q, but the model has %+v (member %v)", crashStr(before.Role), cur, in)
		}
		m.setMembership(ev.Org, t, authz.Membership{})
		return []authz.UserID{t}, nil
	case audit.UserDeactivate, audit.UserReactivate:
		u, err := m.user(t)
		if err != nil {
			return nil, err
		}
		u.deactivated = ev.Action == audit.UserDeactivate
		if u.deactivated {
			u.sessions, u.resets = 0, 0
		}
		return []authz.UserID{t}, nil
	case audit.UserDelete, audit.ProfileDelete:
		u, err := m.user(t)
		if err != nil {
			return nil, err
		}
		n := 0
		for o, ms := range m.members {
			if _, in := ms[t]; in {
				n++
				m.setMembership(o, t, authz.Membership{})
			}
		}
		if before.PlatformAdmin == nil || *before.PlatformAdmin != u.admin || before.Orgs == nil || *before.Orgs != n {
			return nil, fmt.Errorf("before %s; the model has admin %v in %d orgs", ev.Before, u.admin, n)
		}
		u.deleted, u.admin, u.sessions, u.resets = true, false, 0, 0
		maps.DeleteFunc(m.requests, func(_ approval.RequestID, r crashRequest) bool { return r.user == t })
		return []authz.UserID{t}, nil
	case audit.PasswordResetIssue:
		u, err := m.user(t)
		if err != nil {
			return nil, err
		}
		u.sessions, u.resets = 0, 1
		return []authz.UserID{t}, nil
	case audit.SessionLogin:
		u, err := m.lateUser(t)
		if err != nil {
			return nil, err
		}
		u.sessions++
		return nil, nil
	case audit.SessionLogout:
		u, err := m.user(t)
		if err != nil {
			return nil, err
		}
		if u.sessions--; u.sessions < 0 {
			return nil, fmt.Errorf("a logout of %s without a session", t)
		}
		return []authz.UserID{t}, nil
	case audit.ProfileNameChange:
		u, err := m.lateUser(t)
		if err != nil || after.Name == nil {
			return nil, fmt.Errorf("no name, or %w", err)
		}
		u.name = *after.Name
		return nil, nil
	}
	return nil, fmt.Errorf("the stream never records %s", ev.Action)
}

func crashNames(cs []authz.Category) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func (m *crashModel) setMembership(o authz.OrgID, u authz.UserID, ms authz.Membership) {
	if ms == (authz.Membership{}) {
		delete(m.members[o], u)
		return
	}
	if m.members[o] == nil {
		m.members[o] = map[authz.UserID]authz.Membership{}
	}
	m.members[o][u] = ms
}

func (m *crashModel) active(u authz.UserID) bool {
	p := m.users[u]
	return p != nil && !p.deleted && !p.deactivated
}

// invariants checks DESIGN.md's invariants after ev, in the orgs and
// for the people it concerned: at least one active PlatformAdmin, and
// no org that had an active Manager left without one.
func (m *crashModel) invariants(ev audit.Event) error {
	orgs := []authz.OrgID{ev.Org}
	if ev.Org == "" && ev.Target != "" {
		for o, ms := range m.members {
			if _, in := ms[ev.Target]; in {
				orgs = append(orgs, o)
			}
		}
	}
	// A deleted user's orgs are gone from the index: check them all.
	if ev.Action == audit.UserDelete || ev.Action == audit.ProfileDelete {
		orgs = slices.Collect(maps.Keys(m.orgs))
	}
	for _, o := range orgs {
		org := m.orgs[o]
		if org == nil {
			continue
		}
		managers := 0
		for u, ms := range m.members[o] {
			if ms.Role == authz.Manager && m.active(u) {
				managers++
			}
		}
		switch {
		case managers > 0:
			org.hadManager = true
		case org.hadManager:
			return fmt.Errorf("org %s has no active Manager left", o)
		}
	}
	switch ev.Action {
	case audit.MemberRoleChange, audit.UserDeactivate, audit.UserDelete, audit.ProfileDelete:
		for id, u := range m.users {
			if u.admin && m.active(id) {
				return nil
			}
		}
		return errors.New("no active PlatformAdmin left")
	}
	return nil
}

// rules returns the rules the model's state makes, as strings, sorted.
func (m *crashModel) rules() []string {
	var out []string
	for id, u := range m.users {
		if u.deleted {
			continue
		}
		if u.admin {
			out = append(out, authz.PlatformAdminRule(id).String())
		}
		if u.deactivated {
			out = append(out, authz.DeactivationRule(id).String())
		}
	}
	for o, ms := range m.members {
		for u, mm := range ms {
			rules, err := authz.MembershipRules(u, o, mm)
			if err != nil {
				panic(err)
			}
			for _, r := range rules {
				out = append(out, r.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// allowed is the decision the model's state implies.
func (m *crashModel) allowed(u authz.UserID, o authz.OrgID, c authz.Category) bool {
	if !m.active(u) {
		return false
	}
	if m.users[u].admin {
		return true
	}
	ms, in := m.members[o][u]
	return in && (ms.Role == authz.Manager || ms.Categories.Has(c))
}

// compare lists the differences between the tables and the model.
func (m *crashModel) compare(db crashDB) []string {
	var diffs []string
	diff := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	for id, name := range db.orgs {
		if o := m.orgs[id]; o == nil || o.name != name {
			diff("org %s %q in the table, the log says %+v", id, name, o)
		}
	}
	for id := range m.orgs {
		if _, ok := db.orgs[id]; !ok {
			diff("org %s of the log is not in the table", id)
		}
	}
	for id, row := range db.users {
		u := m.users[id]
		switch {
		case u == nil:
			diff("user %s (%s) has no event that created it", id, row.email)
		case u.deleted != row.deleted:
			diff("user %s deleted %v in the table, %v in the log", id, row.deleted, u.deleted)
		case !u.deleted && (row.status == identity.Deactivated.String()) != u.deactivated:
			diff("user %s is %s in the table, deactivated %v in the log", id, row.status, u.deactivated)
		case u.name != "" && u.name != row.name:
			diff("user %s is named %q in the table, %q in the log", id, row.name, u.name)
		}
		if u != nil && (db.sessions[id] != u.sessions || db.resets[id] != u.resets) {
			diff("user %s has %d sessions and %d reset tokens in the tables, %d and %d in the log",
				id, db.sessions[id], db.resets[id], u.sessions, u.resets)
		}
	}
	for id := range m.users {
		if _, ok := db.users[id]; !ok {
			diff("user %s of the log is not in the table", id)
		}
	}
	for id := range db.sessions {
		if m.users[id] == nil {
			diff("sessions of unknown user %s", id)
		}
	}
	for id := range db.resets {
		if m.users[id] == nil {
			diff("reset tokens of unknown user %s", id)
		}
	}
	var stored []string
	for _, r := range db.rules {
		stored = append(stored, r.String())
	}
	slices.Sort(stored)
	if want := m.rules(); !slices.Equal(stored, want) {
		diff("rules differ from the log:\n  table %q\n  log   %q", crashSetDiff(stored, want), crashSetDiff(want, stored))
	}
	var base []string
	for _, r := range authz.BaseRows() {
		base = append(base, r.String())
	}
	slices.Sort(base)
	if !slices.Equal(db.pRows, base) {
		diff("p rows %q, want %q", db.pRows, base)
	}
	if !maps.Equal(db.requests, m.requests) {
		for id, r := range db.requests {
			if m.requests[id] != r {
				diff("request %s is %+v in the table, %+v in the log", id, r, m.requests[id])
			}
		}
		for id, r := range m.requests {
			if _, ok := db.requests[id]; !ok {
				diff("request %+v of the log is not in the table", r)
			}
		}
	}
	if db.version != m.version || db.logFrom != 0 {
		diff("policy version %d (log from %d), but the log has %d policy events", db.version, db.logFrom, m.version)
	}
	return diffs
}

// crashSetDiff returns the elements of sorted a not in sorted b.
func crashSetDiff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			out = append(out, s)
		}
	}
	return out
}

// checkChanges compares the change log's rows of the versions replayed
// since the last call with what their events touched.
func (m *crashModel) checkChanges(ctx context.Context, db *gorm.DB) []string {
	var rows []struct {
		Version int64
		UserID  string
	}
	var total int64
	err := errors.Join(
		db.WithContext(ctx).Table("iam_policy_changes").Select("version, user_id").Where("version > ?", m.checked).Find(&rows).Error,
		db.WithContext(ctx).Table("iam_policy_changes").Count(&total).Error,
	)
	if err != nil {
		return []string{err.Error()}
	}
	got := map[int64][]authz.UserID{}
	for _, r := range rows {
		got[r.Version] = append(got[r.Version], authz.UserID(r.UserID))
	}
	var diffs []string
	for v := range got {
		if v > m.version {
			diffs = append(diffs, fmt.Sprintf("change log rows of version %d, past the log's %d", v, m.version))
		}
	}
	for v := m.checked + 1; v <= m.version; v++ {
		g := got[v]
		slices.Sort(g)
		if want := m.changes[v]; !slices.Equal(g, want) {
			diffs = append(diffs, fmt.Sprintf("change log of version %d (%s) names %v, its event touched %v", v, m.byVersion[v-1].action, g, want))
		}
		delete(m.changes, v)
	}
	if total != m.changeRows {
		diffs = append(diffs, fmt.Sprintf("change log holds %d rows, the events touched %d", total, m.changeRows))
	}
	m.checked = m.version
	return diffs
}

// checkAcks requires every acknowledged operation's event: at its
// version for policy operations, among the unclaimed account-only events
// otherwise (each event answers one ack).
func (m *crashModel) checkAcks(acks []crashAck, db crashDB) []string {
	byEmail := map[string]authz.UserID{}
	for id, u := range db.users {
		byEmail[u.email] = id
	}
	var diffs []string
	for _, a := range acks {
		key := crashKey{a.action, a.actor, a.target, a.org, a.after}
		if a.email != "" {
			id, ok := byEmail[a.email]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("ack %d (%s): no account with email %s", a.n, a.op, a.email))
				continue
			}
			if a.target != "" && a.target != id {
				diffs = append(diffs, fmt.Sprintf("ack %d (%s): the queue said %s signed up, the table has %s", a.n, a.op, a.target, id))
			}
			key.actor, key.target = id, id
		}
		if a.version > 0 {
			if a.version > m.version {
				diffs = append(diffs, fmt.Sprintf("ack %d (%s) at version %d, but the log has %d policy events", a.n, a.op, a.version, m.version))
				continue
			}
			got := m.byVersion[a.version-1]
			if a.after == "" {
				got.after = ""
			}
			if got != key {
				diffs = append(diffs, fmt.Sprintf("ack %d (%s) at version %d is %+v, the event %+v", a.n, a.op, a.version, key, got))
			}
			continue
		}
		if m.others[key] == 0 {
			diffs = append(diffs, fmt.Sprintf("ack %d (%s): no unclaimed event %+v", a.n, a.op, key))
			continue
		}
		m.others[key]--
	}
	return diffs
}

// crashStats are the figures of a run.
type crashStats struct {
	rounds, acks, kills, startupKills, ackKills, terminated int
	readies                                                 int
	verifying                                               time.Duration
	toReady                                                 time.Duration
	events                                                  int64
	ops                                                     map[string]int
}

// Crash recovery: a child process runs a stream of operations on one
// database and is killed (SIGKILL) at a random moment, many rounds on the
// same database. After each kill the parent reopens the store and
// requires: every acknowledged operation durable (its event at its
// version, or among the account-only events); the tables equal to the
// replay of the audit log (no operation half-applied: rows, rules,
// requests, sessions, the version row and the change log agree with the
// events, both ways); the audit chain intact; two fresh loads equal to
// each other and to the log; decisions those of the log, with Casbin's
// cross-check silent; DESIGN.md's invariants at every event.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashChildDSN) != "" {
		t.Skip("a child does not start children")
	}
	rounds := crashDefaultRounds
	if s := os.Getenv(crashRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashRoundsEnv, s)
		}
		rounds = n
	}
	kinds := []dbtest.Kind{dbtest.SQLiteFile}
	if os.Getenv(dbtest.EnvPostgresDSN) != "" {
		kinds = append(kinds, dbtest.Postgres)
	} else {
		t.Logf("%s is not set; skipping PostgreSQL", dbtest.EnvPostgresDSN)
	}
	for _, kind := range kinds {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			crashKind(t, kind, rounds)
		})
	}
}

// crashRandomName returns a fresh lower-case hex name.
func crashRandomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// crashWithParam adds a run-time parameter to a PostgreSQL DSN (URL or
// key=value form).
func crashWithParam(dsn, key, value string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " " + key + "=" + value, nil
}

// crashKind runs the rounds on one database of kind.
func crashKind(t *testing.T, kind dbtest.Kind, rounds int) {
	ctx := context.Background()
	start := time.Now()
	var dsn, childDSN string
	var admin *gorm.DB // PostgreSQL: to find and end the child's leftover backends
	app := "iamcrash_" + crashRandomName()
	switch kind {
	case dbtest.SQLiteFile:
		dsn = dbtest.SQLiteFileDSN(filepath.Join(t.TempDir(), "crash.db"))
		childDSN = dsn
	case dbtest.Postgres:
		base := os.Getenv(dbtest.EnvPostgresDSN)
		var drop func() error
		var err error
		if dsn, drop, err = dbtest.NewSchema(base); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := drop(); err != nil {
				t.Error(err)
			}
		})
		if childDSN, err = crashWithParam(dsn, "application_name", app); err != nil {
			t.Fatal(err)
		}
		if admin, err = crashOpen(kind.String(), base); err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := admin.DB()
		t.Cleanup(func() { sqlDB.Close() })
	}
	db, err := crashOpen(kind.String(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, "ada@example.com", "Ada", pw); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	sqlDB, _ := db.DB()
	sqlDB.Close()

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IAM_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (IAM_CRASH_SEED repeats the parent's choices; the children's interleavings differ)", seed)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	model := newCrashModel()
	stats := crashStats{ops: map[string]int{}}
	for round := range rounds {
		acks := crashRound(t, kind, childDSN, seed+uint64(round)+1, rng, &stats)
		if admin != nil {
			stats.terminated += crashLeftovers(t, admin, app)
		}
		began := time.Now()
		crashVerify(t, kind, dsn, model, acks, round)
		stats.verifying += time.Since(began)
		stats.rounds++
	}
	stats.events = model.events
	t.Logf("%s: %d rounds, %d kills (%d during start-up, %d right after an ack), %d operations acknowledged, %d audit events, %d leftover backends terminated, %v",
		kind, stats.rounds, stats.kills, stats.startupKills, stats.ackKills, stats.acks, stats.events, stats.terminated, time.Since(start).Round(time.Millisecond))
	t.Logf("refusals recorded, by reason: %v; account-only operations committed after their user's deletion: %d", model.denied, model.late)
	t.Logf("acknowledged by kind: %v; a child took %v on average from its start to ready, a verification %v",
		stats.ops, (stats.toReady / time.Duration(max(stats.readies, 1))).Round(time.Millisecond), (stats.verifying / time.Duration(max(stats.rounds, 1))).Round(time.Millisecond))
}

// crashRound starts a child on dsn, kills it at a random moment and
// returns what it acknowledged. The moment is one of: during start-up (a
// random delay from the start, migration and load included), a random
// 20-400 ms after it is ready, or right after its k-th ack.
func crashRound(t *testing.T, kind dbtest.Kind, dsn string, seed uint64, rng *mathrand.Rand, stats *crashStats) []crashAck {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildDSN+"="+dsn, crashChildKind+"="+kind.String(), crashChildSeed+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var acks []crashAck
	var fails []string
	take := func(line string) {
		switch {
		case strings.HasPrefix(line, "ack "):
			a, err := crashParseAck(line)
			if err != nil {
				fails = append(fails, err.Error())
				return
			}
			acks = append(acks, a)
		case strings.HasPrefix(line, "fail "):
			fails = append(fails, line)
		}
	}
	mode := rng.IntN(5)
	var kill <-chan time.Time
	switch mode {
	case 0: // start-up
		kill = time.After(time.Duration(rng.IntN(300)) * time.Millisecond)
		stats.startupKills++
	case 1: // after k acks: counted below
		stats.ackKills++
	}
	k := 1 + rng.IntN(40)
	delay := time.Duration(20+rng.IntN(381)) * time.Millisecond
	timeout := time.After(time.Minute)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the child ended by itself: %s", stderr.String())
			}
			take(line)
			switch {
			case line == "ready":
				stats.readies++
				stats.toReady += time.Since(started)
				if mode > 1 {
					kill = time.After(delay)
				}
			case mode == 1 && len(acks) >= k:
				break wait
			}
		case <-kill:
			break wait
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("the child did not get going: %s", stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	stats.kills++
	for line := range lines { // what it printed before it died
		take(line)
	}
	cmd.Wait()
	if len(fails) > 0 || stderr.Len() > 0 {
		t.Fatalf("round with seed %d: the child failed:\n%s\n%s", seed, strings.Join(fails, "\n"), stderr.String())
	}
	stats.acks += len(acks)
	for _, a := range acks {
		stats.ops[a.op]++
	}
	return acks
}

// crashLeftovers waits for the backends of the killed child to end (the
// server notices the closed connections, aborting their transactions) and
// terminates those still there after a while; it returns how many it
// terminated.
func crashLeftovers(t *testing.T, admin *gorm.DB, app string) int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var pids []int64
		if err := admin.Raw("SELECT pid FROM pg_stat_activity WHERE application_name = ?", app).Scan(&pids).Error; err != nil {
			t.Fatal(err)
		}
		if len(pids) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				if err := admin.Exec("SELECT pg_terminate_backend(?)", pid).Error; err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("terminated %d leftover backends of a killed child", len(pids))
			return len(pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crashVerify reopens the database after a kill and checks it (see
// TestCrashRecovery), replaying the new events into model.
func crashVerify(t *testing.T, kind dbtest.Kind, dsn string, model *crashModel, acks []crashAck, round int) {
	t.Helper()
	ctx := context.Background()
	fail := func(what string, diffs []string) {
		t.Helper()
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("round %d: %s:\n%s", round, what, strings.Join(diffs, "\n"))
	}
	db, err := crashOpen(kind.String(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	// What the checking Service logs at level Error: the cross-check's
	// disagreements. Written only by the Checks below, in this goroutine.
	var log bytes.Buffer
	checked, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)), iam.WithCasbinCrossCheck(),
		iam.WithLogger(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		t.Fatalf("round %d: reopening after the kill: %v", round, err)
	}
	defer checked.Close()

	res, err := checked.VerifyAudit(ctx)
	if err != nil || !res.OK() {
		t.Fatalf("round %d: audit chain: %+v %v", round, res.Break, err)
	}
	// The new events, newest first a page at a time, then replayed.
	var fresh []audit.Event
	for before := int64(0); ; {
		page, err := checked.UnrecordedAuditEvents(ctx, audit.Filter{Limit: audit.MaxLimit, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		done := len(page) < audit.MaxLimit
		for _, ev := range page {
			if ev.ID <= model.lastID {
				done = true
				break
			}
			fresh = append(fresh, ev)
			before = ev.ID
		}
		if done {
			break
		}
	}
	slices.Reverse(fresh)
	for _, ev := range fresh {
		if err := model.apply(ev); err != nil {
			fail("the audit log contradicts itself", []string{err.Error()})
		}
	}
	if res.Events != model.events {
		t.Fatalf("round %d: the chain verified %d events, the log holds %d", round, res.Events, model.events)
	}
	state, err := crashRead(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if diffs := model.compare(state); len(diffs) > 0 {
		fail("the tables are not what the audit log says (a half-applied operation)", diffs)
	}
	if diffs := model.checkChanges(ctx, db); len(diffs) > 0 {
		fail("the change log is not what the audit log says", diffs)
	}
	if diffs := model.checkAcks(acks, state); len(diffs) > 0 {
		fail("acknowledged operations lost", diffs)
	}

	// A second load agrees with the first, and both with the log.
	second, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	want := model.rules()
	if a, b := checked.EngineRules(), second.EngineRules(); !slices.Equal(a, b) || !slices.Equal(a, want) {
		fail("the loaded engines differ", []string{fmt.Sprintf("first %q", crashSetDiff(a, want)), fmt.Sprintf("second %q", crashSetDiff(b, want)),
			fmt.Sprintf("log %q", crashSetDiff(want, a))})
	}
	// Every decision of the second engine is the log's; a sample of the
	// first one's too, where Casbin's cross-check compares each.
	users := slices.Sorted(maps.Keys(model.users))
	users = append(users, authz.NewUserID())
	orgs := slices.Sorted(maps.Keys(model.orgs))
	orgs = append(orgs, authz.NewOrgID())
	var wrong []string
	for _, u := range users {
		for _, o := range orgs {
			for _, c := range authz.Categories() {
				if got := second.Check(ctx, u, o, c).Allowed; got != model.allowed(u, o, c) {
					wrong = append(wrong, fmt.Sprintf("Check(%s, %s, %v) = %v", u, o, c, got))
				}
			}
		}
	}
	r := mathrand.New(mathrand.NewPCG(uint64(round), 1))
	for range 300 {
		u, o, c := users[r.IntN(len(users))], orgs[r.IntN(len(orgs))], authz.Categories()[r.IntN(len(authz.Categories()))]
		if got := checked.Check(ctx, u, o, c).Allowed; got != model.allowed(u, o, c) {
			wrong = append(wrong, fmt.Sprintf("cross-checked Check(%s, %s, %v) = %v", u, o, c, got))
		}
	}
	if len(wrong) > 0 || log.String() != "" {
		fail("decisions differ from the log's", append(wrong, log.String()))
	}
}

// Found by TestCrashRecovery: a PlatformAdmin promoting to PlatformAdmin
// someone who holds no role in the org at hand failed with ErrInvalid and
// changed nothing, because the audit event's After named the org role
// kept, and "no role" has no name. After now says null, as Before does.
func TestCrashFoundPromotionOutsideOrg(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *env) {
		seoul, busan := e.org("Seoul"), e.org("Busan")
		joon := e.member("joon@example.com", busan, authz.Member, 0)
		e.must(e.svc.ChangeRole(e.ctx, e.admin, joon, seoul, authz.PlatformAdmin))
		ev := e.lastEvent()
		if ev.Action != audit.MemberRoleChange || string(ev.After) != `{"platformadmin":true,"role":null}` {
			t.Fatalf("event %s %s", ev.Action, ev.After)
		}
		if !e.svc.Check(e.ctx, joon, seoul, authz.Infra).Allowed {
			t.Fatal("the new PlatformAdmin is denied")
		}
		e.restartAgrees()
	})
}

// Found by TestCrashRecovery on PostgreSQL: a sign-up that checked its
// org before a concurrent DeleteOrg committed inserted its request after
// DeleteOrg had deleted the org's requests, leaving a pending request
// (and an audit event) of an org that no longer exists. The sign-up now
// holds the org (as membership writes do) before checking it. The two
// race here with a real password hasher, whose dummy verification keeps
// the sign-up's transaction open between its check and its insert (the
// second half of a sign-up's time), and deletions started at moments
// spread over that half.
func TestCrashFoundSignUpRacingOrgDeletion(t *testing.T) {
	if os.Getenv(dbtest.EnvPostgresDSN) == "" {
		t.Skip("SQLite serializes the two transactions")
	}
	e := newEnv(t, dbtest.Postgres)
	slow, err := iam.New(e.ctx, e.db) // the default hasher: about as slow as production
	e.must(err)
	t.Cleanup(func() { slow.Close() })
	began := time.Now()
	e.must(slow.SignUp(e.ctx, "first@example.com", "First", pw, e.org("Kept")))
	took := time.Since(began)
	for i := range 6 {
		org := e.org(fmt.Sprintf("Doomed %d", i))
		var wg sync.WaitGroup
		wg.Go(func() { slow.SignUp(e.ctx, fmt.Sprintf("late%d@example.com", i), "Late", pw, org) })
		time.Sleep(took * time.Duration(5+i) / 11)
		e.must(e.svc.DeleteOrg(e.ctx, e.admin, org))
		wg.Wait()
		var n int64
		e.must(e.db.Table("iam_registration_requests").Where("org_id = ?", string(org)).Count(&n).Error)
		if n != 0 {
			t.Fatalf("round %d: %d requests of the deleted org", i, n)
		}
	}
}
