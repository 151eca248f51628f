package authz

import (
	"encoding/binary"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
)

// Membership is what a user holds in one org: a role (Member or Manager)
// and the categories granted on top of it.
type Membership struct {
	Role       Role
	Categories CategorySet
}

// Engine answers permission checks from an exact in-memory index of the
// policy, the same rules Casbin evaluates with Model (see the package
// documentation for how the two are kept equal).
//
// Reads (Check, CheckAll, IsPlatformAdmin, Membership) take no lock and
// allocate nothing: the index is a fixed array of shards, each an
// immutable map published through an atomic pointer, and each user's
// state is an immutable value behind its own atomic pointer. Writes are
// serialized by one mutex and replace what they change (copy on write), so
// a reader sees a user's state either wholly before or wholly after a
// write. All methods are safe for concurrent use.
type Engine struct {
	mu     sync.Mutex // serializes writes and Load; never taken by reads
	shards [numShards]shard
	orgs   map[OrgID]OrgID // interned org ids, so memberships share one string per org
	oracle *oracle         // the Casbin cross-check, or nil
	log    *slog.Logger
}

const (
	shardBits = 12
	numShards = 1 << shardBits
)

type shard struct {
	users atomic.Pointer[map[UserID]*slot]
}

// slot holds one user's current state. Updating a known user swaps only
// this pointer; only adding or dropping a user copies its shard's map.
type slot struct {
	st atomic.Pointer[userState]
}

// userState is immutable once published.
type userState struct {
	admin bool
	ms    []membership // few per user, scanned linearly
}

type membership struct {
	org   OrgID
	roles roleMask // normally one role; several only if the stored policy has them
	cats  CategorySet
}

// roleMask holds org roles as bits, so that a policy holding two role rows
// for one user and org is indexed exactly as Casbin reads it.
type roleMask uint8

func (m roleMask) has(r Role) bool { return m&(1<<r) != 0 }

// top returns the strongest org role in m.
func (m roleMask) top() Role {
	switch {
	case m.has(Manager):
		return Manager
	case m.has(Member):
		return Member
	}
	return RoleNone
}

// An Option configures an Engine.
type Option func(*config)

type config struct {
	crossCheck bool
	log        *slog.Logger
}

// WithCasbinCrossCheck keeps a Casbin enforcer loaded beside the index,
// applies every write and Load to both, and compares every decision: a
// disagreement (or a Casbin error) denies with ReasonError and is logged at
// level Error. It is for deployments that want Casbin's own verdict on
// every check and accept Casbin's cost in time, allocations and memory.
func WithCasbinCrossCheck() Option { return func(c *config) { c.crossCheck = true } }

// WithLogger sets where the Engine reports cross-check disagreements. If
// nil or not given, slog.Default() is used.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// NewEngine returns an empty Engine: it denies every check until rules are
// loaded or written.
func NewEngine(opts ...Option) (*Engine, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	e := &Engine{orgs: make(map[OrgID]OrgID), log: c.log}
	if c.crossCheck {
		o, err := newOracle()
		if err != nil {
			return nil, err
		}
		e.oracle = o
	}
	return e, nil
}

// shardIndex picks a shard from the last 8 bytes of the id. Ids end in
// random characters, so a multiplicative hash of them spreads users evenly
// at the cost of one multiplication, and the read path computes no real
// hash beyond the map's own.
func shardIndex(u UserID) int {
	s := string(u)
	var x uint64
	if len(s) >= 8 {
		x = binary.LittleEndian.Uint64([]byte(s[len(s)-8:]))
	} else {
		for i := 0; i < len(s); i++ {
			x = x<<8 | uint64(s[i])
		}
	}
	return int((x * 0x9E3779B97F4A7C15) >> (64 - shardBits))
}

func (e *Engine) state(u UserID) *userState {
	m := e.shards[shardIndex(u)].users.Load()
	if m == nil {
		return nil
	}
	sl := (*m)[u]
	if sl == nil {
		return nil
	}
	return sl.st.Load()
}

func (st *userState) find(o OrgID) *membership {
	if st == nil {
		return nil
	}
	for i := range st.ms {
		if st.ms[i].org == o {
			return &st.ms[i]
		}
	}
	return nil
}

// Check decides whether user u may use category c in org o.
//
// It never returns an error: an invalid org or category, an unknown user
// and any failure to decide all deny. With the Casbin cross-check off it
// allocates nothing and takes no lock.
func (e *Engine) Check(u UserID, o OrgID, c Category) Decision {
	if !c.Valid() {
		return Decision{User: u, Org: o, Reason: ReasonInvalid}
	}
	return e.CheckAll(u, o, c.bit())
}

// CheckAll decides whether user u holds every category of required in org
// o, for pages that need several. An empty or invalid required set denies
// with ReasonInvalid. Like Check, it takes no lock and allocates nothing.
func (e *Engine) CheckAll(u UserID, o OrgID, required CategorySet) Decision {
	d := e.decide(u, o, required)
	if e.oracle != nil && d.Reason != ReasonInvalid {
		d = e.crossCheck(d)
	}
	return d
}

func (e *Engine) decide(u UserID, o OrgID, required CategorySet) Decision {
	d := Decision{User: u, Org: o, Required: required}
	if required.Empty() || !required.Valid() || !o.Valid() {
		d.Reason = ReasonInvalid
		return d
	}
	st := e.state(u)
	if st != nil && st.admin {
		d.Allowed, d.Reason, d.Role = true, ReasonPlatformAdmin, PlatformAdmin
		if m := st.find(o); m != nil {
			d.Granted = m.cats
		}
		return d
	}
	m := st.find(o)
	if m == nil {
		d.Reason, d.Missing = ReasonNotMember, required
		return d
	}
	d.Role, d.Granted = m.roles.top(), m.cats
	switch {
	case m.roles.has(Manager):
		d.Allowed, d.Reason = true, ReasonManager
	case m.cats.Contains(required):
		d.Allowed, d.Reason = true, ReasonGranted
	default:
		d.Reason, d.Missing = ReasonMissingCategories, required.Minus(m.cats)
	}
	return d
}

// IsPlatformAdmin reports whether u is a PlatformAdmin (the check for the
// operations screens). It takes no lock and allocates nothing.
func (e *Engine) IsPlatformAdmin(u UserID) bool {
	st := e.state(u)
	return st != nil && st.admin
}

// Membership returns u's role and categories in org o, and whether u holds
// anything there.
func (e *Engine) Membership(u UserID, o OrgID) (Membership, bool) {
	m := e.state(u).find(o)
	if m == nil {
		return Membership{}, false
	}
	return Membership{Role: m.roles.top(), Categories: m.cats}, true
}

// Memberships yields every org in which u holds a role or a grant.
func (e *Engine) Memberships(u UserID) iter.Seq2[OrgID, Membership] {
	st := e.state(u)
	return func(yield func(OrgID, Membership) bool) {
		if st == nil {
			return
		}
		for _, m := range st.ms {
			if !yield(m.org, Membership{Role: m.roles.top(), Categories: m.cats}) {
				return
			}
		}
	}
}

// Rules yields every rule the index holds, in no particular order. It
// reads a moving index: a write concurrent with the iteration may or may
// not be seen. Tests and tools compare it with the stored policy.
func (e *Engine) Rules() iter.Seq[Rule] {
	return func(yield func(Rule) bool) {
		for i := range e.shards {
			m := e.shards[i].users.Load()
			if m == nil {
				continue
			}
			for u, sl := range *m {
				for _, r := range sl.st.Load().rules(u) {
					if !yield(r) {
						return
					}
				}
			}
		}
	}
}

// rules lists the rules that encode st for user u.
func (st *userState) rules(u UserID) []Rule {
	if st == nil {
		return nil
	}
	var out []Rule
	if st.admin {
		out = append(out, PlatformAdminRule(u))
	}
	for _, m := range st.ms {
		for _, r := range []Role{Member, Manager} {
			if m.roles.has(r) {
				out = append(out, RoleRule(u, m.org, r))
			}
		}
		for c := range m.cats.All() {
			out = append(out, GrantRule(u, m.org, c))
		}
	}
	return out
}

// SetPlatformAdmin makes u a PlatformAdmin or ends that role. Memberships
// in orgs are kept. It returns an *InvalidError for an invalid id.
func (e *Engine) SetPlatformAdmin(u UserID, admin bool) error {
	if err := u.check(); err != nil {
		return err
	}
	return e.update(u, func(st *userState) { st.admin = admin })
}

// AssignRole gives u the org role r (Member or Manager) in org o, in place
// of any role u held there; granted categories are kept. PlatformAdmin is
// not an org role: use SetPlatformAdmin. Invalid input is an
// *InvalidError and changes nothing.
func (e *Engine) AssignRole(u UserID, o OrgID, r Role) error {
	if err := validMember(u, o); err != nil {
		return err
	}
	if !r.OrgScoped() {
		return invalid("role", r.String(), "want member or manager (PlatformAdmin is platform-wide)")
	}
	return e.update(u, func(st *userState) {
		m := st.member(o)
		m.roles = 1 << r
	})
}

// RevokeRole takes u's role in org o away; granted categories are kept
// (use RemoveMembership to take everything). Invalid input is an
// *InvalidError and changes nothing.
func (e *Engine) RevokeRole(u UserID, o OrgID) error {
	if err := validMember(u, o); err != nil {
		return err
	}
	return e.update(u, func(st *userState) { st.member(o).roles = 0 })
}

// SetCategories replaces the categories granted to u in org o with cats:
// the whole new set at once, as the Permission Management page saves it.
// Invalid input is an *InvalidError and changes nothing.
func (e *Engine) SetCategories(u UserID, o OrgID, cats CategorySet) error {
	if err := validMember(u, o); err != nil {
		return err
	}
	if !cats.Valid() {
		return invalid("category set", fmt.Sprintf("%#x", uint8(cats)), "unknown bits")
	}
	return e.update(u, func(st *userState) { st.member(o).cats = cats })
}

// SetMembership sets u's role and categories in org o to exactly m; the
// zero Membership removes u from o. Invalid input is an *InvalidError and
// changes nothing.
func (e *Engine) SetMembership(u UserID, o OrgID, m Membership) error {
	if err := validMember(u, o); err != nil {
		return err
	}
	if m.Role != RoleNone && !m.Role.OrgScoped() {
		return invalid("role", m.Role.String(), "want member or manager (PlatformAdmin is platform-wide)")
	}
	if !m.Categories.Valid() {
		return invalid("category set", fmt.Sprintf("%#x", uint8(m.Categories)), "unknown bits")
	}
	return e.update(u, func(st *userState) {
		ms := st.member(o)
		ms.roles, ms.cats = 0, m.Categories
		if m.Role != RoleNone {
			ms.roles = 1 << m.Role
		}
	})
}

// RemoveMembership takes away everything u holds in org o: role and
// categories. Invalid input is an *InvalidError and changes nothing.
func (e *Engine) RemoveMembership(u UserID, o OrgID) error {
	return e.SetMembership(u, o, Membership{})
}

// RemoveUser takes away everything u holds anywhere, PlatformAdmin
// included. Invalid input is an *InvalidError and changes nothing.
func (e *Engine) RemoveUser(u UserID) error {
	if err := u.check(); err != nil {
		return err
	}
	return e.update(u, func(st *userState) { *st = userState{} })
}

func validMember(u UserID, o OrgID) error {
	if err := u.check(); err != nil {
		return err
	}
	return o.check()
}

// member returns st's membership in o, adding an empty one if needed. It
// is only called on a private copy being prepared by update.
func (st *userState) member(o OrgID) *membership {
	if m := st.find(o); m != nil {
		return m
	}
	st.ms = append(st.ms, membership{org: o})
	return &st.ms[len(st.ms)-1]
}

// update applies f to a private copy of u's state and publishes it.
func (e *Engine) update(u UserID, f func(*userState)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	sh := &e.shards[shardIndex(u)]
	var sl *slot
	if m := sh.users.Load(); m != nil {
		sl = (*m)[u]
	}
	var old *userState
	if sl != nil {
		old = sl.st.Load()
	}
	next := &userState{}
	if old != nil {
		next.admin = old.admin
		next.ms = slices.Clone(old.ms)
	}
	f(next)
	next.compact(e.orgs)
	if e.oracle != nil {
		if err := e.oracle.replace(old.rules(u), next.rules(u)); err != nil {
			return fmt.Errorf("authz: cross-check enforcer: %w", err)
		}
	}
	switch {
	case next.empty() && sl != nil:
		e.setShard(sh, u, nil)
	case next.empty():
	case sl != nil:
		sl.st.Store(next)
	default:
		sl = &slot{}
		sl.st.Store(next)
		e.setShard(sh, u, sl)
	}
	return nil
}

// compact drops memberships that hold nothing and interns org ids.
func (st *userState) compact(orgs map[OrgID]OrgID) {
	st.ms = slices.DeleteFunc(st.ms, func(m membership) bool { return m.roles == 0 && m.cats == 0 })
	for i := range st.ms {
		st.ms[i].org = intern(orgs, st.ms[i].org)
	}
	if len(st.ms) == 0 {
		st.ms = nil
	}
}

func (st *userState) empty() bool { return !st.admin && len(st.ms) == 0 }

func intern(orgs map[OrgID]OrgID, o OrgID) OrgID {
	if s, ok := orgs[o]; ok {
		return s
	}
	orgs[o] = o
	return o
}

// setShard publishes a copy of sh's map with u set to sl (or removed when
// sl is nil). Its cost grows with the shard, not with the whole index.
func (e *Engine) setShard(sh *shard, u UserID, sl *slot) {
	var next map[UserID]*slot
	if m := sh.users.Load(); m != nil {
		next = make(map[UserID]*slot, len(*m)+1)
		for k, v := range *m {
			next[k] = v
		}
	} else {
		next = make(map[UserID]*slot, 1)
	}
	if sl == nil {
		delete(next, u)
	} else {
		next[u] = sl
	}
	sh.users.Store(&next)
}

// Load replaces the whole index with the policy in rows, as a store
// streams it from Casbin's rule table. The rows must hold exactly the base
// rules (BaseRows) and grouping rules that ParseRow accepts; anything else
// means the stored policy no longer says what the index would answer, so
// Load refuses it with an error and keeps the current index. Checks go on
// answering from the previous index until Load publishes the new one.
func (e *Engine) Load(rows iter.Seq2[Row, error]) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var (
		maps  [numShards]map[UserID]*userState
		orgs  = make(map[OrgID]OrgID)
		base  = make([]bool, len(baseRowIndex))
		rules [][]string // for the cross-check enforcer
	)
	for row, err := range rows {
		if err != nil {
			return fmt.Errorf("authz: load: %w", err)
		}
		if row.PType == "p" {
			i, ok := baseRowIndex[row]
			if !ok {
				return fmt.Errorf("authz: load: %w", invalid("policy row", row.String(), "not a base rule of this model"))
			}
			base[i] = true
			continue
		}
		r, err := ParseRow(row)
		if err != nil {
			return fmt.Errorf("authz: load: %w", err)
		}
		i := shardIndex(r.User)
		if maps[i] == nil {
			maps[i] = make(map[UserID]*userState)
		}
		st := maps[i][r.User]
		if st == nil {
			st = &userState{}
			maps[i][r.User] = st
		}
		st.add(r, orgs)
		if e.oracle != nil {
			rules = append(rules, []string{row.V0, row.V1, row.V2})
		}
	}
	for i, ok := range base {
		if !ok {
			return fmt.Errorf("authz: load: base rule %q is missing from the stored policy", BaseRows()[i].String())
		}
	}
	if e.oracle != nil {
		if err := e.oracle.load(rules); err != nil {
			return fmt.Errorf("authz: load cross-check enforcer: %w", err)
		}
	}
	for i := range maps {
		var m map[UserID]*slot
		if len(maps[i]) > 0 {
			m = make(map[UserID]*slot, len(maps[i]))
			for u, st := range maps[i] {
				sl := &slot{}
				sl.st.Store(st)
				m[u] = sl
			}
		}
		if m == nil {
			e.shards[i].users.Store(nil)
		} else {
			e.shards[i].users.Store(&m)
		}
	}
	e.orgs = orgs
	return nil
}

// add records rule r in st, during Load (st is not yet published).
func (st *userState) add(r Rule, orgs map[OrgID]OrgID) {
	if r.Role == PlatformAdmin {
		st.admin = true
		return
	}
	m := st.find(r.Org)
	if m == nil {
		st.ms = append(st.ms, membership{org: intern(orgs, r.Org)})
		m = &st.ms[len(st.ms)-1]
	}
	if r.Role != RoleNone {
		m.roles |= 1 << r.Role
	} else {
		m.cats |= r.Category.bit()
	}
}
