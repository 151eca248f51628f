package authz

import (
	"fmt"
	"iter"
	"log/slog"
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
// allocate nothing: a check decodes the ids and reads one cache-line slot
// of a hash table that holds everything the decision needs (see table).
// Writes are serialized by one mutex and change one slot in place, under a
// sequence lock that readers retry on, so a reader sees a user's state
// either wholly before or wholly after a write; a write costs the same at
// any size, apart from the rare doubling of the table. All methods are safe
// for concurrent use.
type Engine struct {
	mu     sync.Mutex // serializes writes and Load; never taken by reads
	tab    atomic.Pointer[table]
	oracle *oracle // the Casbin cross-check, or nil
	log    *slog.Logger
}

// userRec is one user's state, as a reader snapshots it from the table. The
// first membership is kept inline because most users belong to one org;
// more spill to a slice that is never changed once published.
type userRec struct {
	admin       bool
	deactivated bool
	first       membership // unused when first.empty()
	more        []membership
}

type membership struct {
	org   rawKey
	roles roleMask // normally one role; several only if the stored policy has them
	cats  CategorySet
}

func (m *membership) empty() bool { return m.roles == 0 && m.cats == 0 }

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
	e := &Engine{log: c.log}
	e.tab.Store(newTable(0))
	if c.crossCheck {
		o, err := newOracle()
		if err != nil {
			return nil, err
		}
		e.oracle = o
	}
	return e, nil
}

// lookup stores the state of user u in rec, leaving it zero for an
// unknown or malformed id.
func (e *Engine) lookup(u UserID, rec *userRec) {
	if k, ok := rawKeyOf(string(u), userIDPrefix); ok {
		if s := e.tab.Load().find(k); s != nil {
			s.read(rec)
		}
	}
}

// find returns rec's membership in org o, or nil.
func (rec *userRec) find(o rawKey) *membership {
	if rec.first.org == o && !rec.first.empty() {
		return &rec.first
	}
	for i := range rec.more {
		if rec.more[i].org == o {
			return &rec.more[i]
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
	var d Decision
	e.decide(&d, u, o, c.bit())
	return e.verified(d)
}

// CheckAll decides whether user u holds every category of required in org
// o, for pages that need several. An empty or invalid required set denies
// with ReasonInvalid. Like Check, it takes no lock and allocates nothing.
func (e *Engine) CheckAll(u UserID, o OrgID, required CategorySet) Decision {
	var d Decision
	e.decide(&d, u, o, required)
	return e.verified(d)
}

// verified returns d, or the cross-check's verdict on it when the Casbin
// cross-check is on.
func (e *Engine) verified(d Decision) Decision {
	if e.oracle != nil && d.Reason != ReasonInvalid {
		return e.crossCheck(d)
	}
	return d
}

// decide fills d, which must be zero, with the decision: in place, since
// a Decision is too big to return in registers and the check path would
// copy it through every frame.
func (e *Engine) decide(d *Decision, u UserID, o OrgID, required CategorySet) {
	d.User, d.Org, d.Required = u, o, required
	// The user's slot is looked up first: at scale it is a cache miss,
	// and the processor goes on with the org's key and the tests below
	// while it waits for the slot's line.
	var s *slot
	if uk, valid := rawKeyOf(string(u), userIDPrefix); valid {
		s = e.tab.Load().find(uk)
	}
	if required.Empty() || !required.Valid() {
		d.Reason = ReasonInvalid
		return
	}
	var rec userRec
	if s != nil {
		s.read(&rec)
	}
	var m *membership
	if ok, shaped := rawKeyOf(string(o), orgIDPrefix); shaped {
		m = rec.find(ok)
	}
	// A membership found means o is a stored, hence canonical, org id.
	// Otherwise o is validated here, off the common path: a malformed org
	// denies as invalid, whoever asks.
	if m == nil && !o.Valid() {
		d.Reason = ReasonInvalid
		return
	}
	if m != nil {
		d.Role, d.Granted = m.roles.top(), m.cats
	}
	switch {
	case rec.deactivated:
		d.Reason, d.Missing = ReasonDeactivated, required
	case rec.admin:
		d.Allowed, d.Reason, d.Role = true, ReasonPlatformAdmin, PlatformAdmin
	case m == nil:
		d.Reason, d.Missing = ReasonNotMember, required
	case m.roles.has(Manager):
		d.Allowed, d.Reason = true, ReasonManager
	case m.cats.Contains(required):
		d.Allowed, d.Reason = true, ReasonGranted
	default:
		d.Reason, d.Missing = ReasonMissingCategories, required.Minus(m.cats)
	}
}

// orgKey returns the key of o if o is a canonical org id.
func orgKey(o OrgID) (rawKey, bool) {
	if !o.Valid() {
		return rawKey{}, false
	}
	return rawKeyOf(string(o), orgIDPrefix)
}

// IsPlatformAdmin reports whether u is an active PlatformAdmin (the check
// for the operations screens). It takes no lock and allocates nothing.
func (e *Engine) IsPlatformAdmin(u UserID) bool {
	var rec userRec
	e.lookup(u, &rec)
	return rec.admin && !rec.deactivated
}

// IsDeactivated reports whether u's account is deactivated.
func (e *Engine) IsDeactivated(u UserID) bool {
	var rec userRec
	e.lookup(u, &rec)
	return rec.deactivated
}

// Membership returns u's role and categories in org o, and whether u holds
// anything there.
func (e *Engine) Membership(u UserID, o OrgID) (Membership, bool) {
	k, ok := orgKey(o)
	if !ok {
		return Membership{}, false
	}
	var rec userRec
	e.lookup(u, &rec)
	m := rec.find(k)
	if m == nil {
		return Membership{}, false
	}
	return Membership{Role: m.roles.top(), Categories: m.cats}, true
}

// Memberships yields every org in which u holds a role or a grant.
func (e *Engine) Memberships(u UserID) iter.Seq2[OrgID, Membership] {
	var rec userRec
	e.lookup(u, &rec)
	return func(yield func(OrgID, Membership) bool) {
		for _, m := range rec.memberships() {
			if !yield(OrgID(m.org.id(orgIDPrefix)), Membership{Role: m.roles.top(), Categories: m.cats}) {
				return
			}
		}
	}
}

// memberships lists rec's memberships (a fresh slice).
func (rec *userRec) memberships() []membership {
	var out []membership
	if !rec.first.empty() {
		out = append(out, rec.first)
	}
	return append(out, rec.more...)
}

// Rules yields every rule the index holds, in no particular order. It
// reads a moving index: a write concurrent with the iteration may or may
// not be seen. Tests and tools compare it with the stored policy.
func (e *Engine) Rules() iter.Seq[Rule] {
	return func(yield func(Rule) bool) {
		for k, rec := range e.tab.Load().all {
			for _, r := range rec.rules(UserID(k.id(userIDPrefix))) {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// rules lists the rules that encode rec for user u.
func (rec *userRec) rules(u UserID) []Rule {
	var out []Rule
	if rec.deactivated {
		out = append(out, DeactivationRule(u))
	}
	if rec.admin {
		out = append(out, PlatformAdminRule(u))
	}
	for _, m := range rec.memberships() {
		o := OrgID(m.org.id(orgIDPrefix))
		for _, r := range []Role{Member, Manager} {
			if m.roles.has(r) {
				out = append(out, RoleRule(u, o, r))
			}
		}
		for c := range m.cats.All() {
			out = append(out, GrantRule(u, o, c))
		}
	}
	return out
}

// SetPlatformAdmin makes u a PlatformAdmin or ends that role. Memberships
// in orgs are kept. It returns an *InvalidError for an invalid id.
func (e *Engine) SetPlatformAdmin(u UserID, admin bool) error {
	return e.update(u, func(st *userState) { st.admin = admin })
}

// SetDeactivated deactivates u's account (every check for u denies at
// once, whatever u holds) or reactivates it (what u held applies again).
// It returns an *InvalidError for an invalid id.
func (e *Engine) SetDeactivated(u UserID, off bool) error {
	return e.update(u, func(st *userState) { st.deactivated = off })
}

// AssignRole gives u the org role r (Member or Manager) in org o, in place
// of any role u held there; granted categories are kept. PlatformAdmin is
// not an org role: use SetPlatformAdmin. Invalid input is an
// *InvalidError and changes nothing.
func (e *Engine) AssignRole(u UserID, o OrgID, r Role) error {
	if !r.OrgScoped() {
		return invalid("role", r.String(), "want member or manager (PlatformAdmin is platform-wide)")
	}
	return e.updateMember(u, o, func(m *membership) { m.roles = 1 << r })
}

// RevokeRole takes u's role in org o away; granted categories are kept
// (use RemoveMembership to take everything). Invalid input is an
// *InvalidError and changes nothing.
func (e *Engine) RevokeRole(u UserID, o OrgID) error {
	return e.updateMember(u, o, func(m *membership) { m.roles = 0 })
}

// SetCategories replaces the categories granted to u in org o with cats:
// the whole new set at once, as the Permission Management page saves it.
// Invalid input is an *InvalidError and changes nothing.
func (e *Engine) SetCategories(u UserID, o OrgID, cats CategorySet) error {
	if !cats.Valid() {
		return invalid("category set", fmt.Sprintf("%#x", uint8(cats)), "unknown bits")
	}
	return e.updateMember(u, o, func(m *membership) { m.cats = cats })
}

// SetMembership sets u's role and categories in org o to exactly m; the
// zero Membership removes u from o. Invalid input is an *InvalidError and
// changes nothing.
func (e *Engine) SetMembership(u UserID, o OrgID, m Membership) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return e.updateMember(u, o, func(ms *membership) {
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
	return e.update(u, func(st *userState) { *st = userState{} })
}

// updateMember validates o and applies f to u's membership in o (added
// if missing), through update.
func (e *Engine) updateMember(u UserID, o OrgID, f func(*membership)) error {
	ok, valid := orgKey(o)
	if !valid {
		return o.check()
	}
	return e.update(u, func(st *userState) { f(st.member(ok)) })
}

// update validates u, applies f to a private working copy of u's state and
// publishes the result.
func (e *Engine) update(u UserID, f func(*userState)) error {
	if !u.Valid() {
		return u.check() // only canonical ids are stored: see rawKey
	}
	uk, _ := rawKeyOf(string(u), userIDPrefix)
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tab.Load()
	prev := t.get(uk)
	st := prev.state()
	f(&st)
	next := st.pack()
	if e.oracle != nil {
		if err := e.oracle.replace(prev.rules(u), next.rules(u)); err != nil {
			return fmt.Errorf("authz: cross-check enforcer: %w", err)
		}
	}
	if nt := t.put(uk, next); nt != t {
		e.tab.Store(nt)
	}
	return nil
}

// add adds rule r, which must be valid, to st.
func (st *userState) add(r Rule) {
	switch {
	case r.Deactivated:
		st.deactivated = true
	case r.Role == PlatformAdmin:
		st.admin = true
	default:
		ok, _ := orgKey(r.Org)
		m := st.member(ok)
		if r.Role != RoleNone {
			m.roles |= 1 << r.Role
		} else {
			m.cats |= r.Category.bit()
		}
	}
}

// SetUserRules makes rules the whole policy of user u: every rule must be
// one of u's (valid, and naming u), and u's state becomes exactly what they
// say, nothing when rules is empty. It is how a replica applies a change
// that another replica committed: the user's rules as the store holds them
// now, absolute, so applying them twice or late is harmless.
//
// Errors: an *InvalidError for an invalid id or rule, or a rule of another
// user; nothing changes then.
func (e *Engine) SetUserRules(u UserID, rules []Rule) error {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
		if r.User != u {
			return invalid("rule", r.String(), "not a rule of user "+string(u))
		}
	}
	return e.update(u, func(st *userState) {
		*st = userState{}
		for _, r := range rules {
			st.add(r)
		}
	})
}

// state returns a private, mutable copy of rec.
func (rec *userRec) state() userState {
	return userState{admin: rec.admin, deactivated: rec.deactivated, ms: rec.memberships()}
}

// userState is the mutable working form of a userRec, used by writers and
// Load before publishing.
type userState struct {
	admin       bool
	deactivated bool
	ms          []membership
}

// member returns st's membership in org k, adding an empty one if needed.
func (st *userState) member(k rawKey) *membership {
	for i := range st.ms {
		if st.ms[i].org == k {
			return &st.ms[i]
		}
	}
	st.ms = append(st.ms, membership{org: k})
	return &st.ms[len(st.ms)-1]
}

// pack turns st into the stored form, dropping memberships that hold
// nothing.
func (st *userState) pack() userRec {
	rec := userRec{admin: st.admin, deactivated: st.deactivated}
	for _, m := range st.ms {
		switch {
		case m.empty():
		case rec.first.empty():
			rec.first = m
		default:
			rec.more = append(rec.more, m)
		}
	}
	return rec
}

func (rec *userRec) empty() bool {
	return !rec.admin && !rec.deactivated && rec.first.empty() && len(rec.more) == 0
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
		t     = newTable(0) // private until published below
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
		uk, _ := rawKeyOf(string(r.User), userIDPrefix) // ParseRow validated it
		prev := t.get(uk)
		st := prev.state()
		st.add(r)
		t = t.put(uk, st.pack())
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
	e.tab.Store(t)
	return nil
}
