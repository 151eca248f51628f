package identity

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/kiops/iam/authz"
)

// ThrottleConfig is the policy of a Throttle. The zero value is the
// default policy: per account, 5 failed logins are free and every further
// one doubles a delay that starts at 30 seconds and stops growing at 15
// minutes; per client address the same from 20 failures on; failures are
// forgotten after 15 quiet minutes.
type ThrottleConfig struct {
	// AccountLimit is how many failed logins in a row an account may
	// have before delays start. 0 means 5.
	AccountLimit int
	// AddressLimit is how many failed logins in a row a client address
	// may have, across accounts, before delays start. It is higher than
	// AccountLimit because many people can share one address (an office
	// behind NAT). 0 means 20.
	AddressLimit int
	// BaseDelay is the delay after the first failure past a limit; each
	// further failure doubles it. 0 means 30 seconds.
	BaseDelay time.Duration
	// MaxDelay caps the delay. 0 means 15 minutes.
	MaxDelay time.Duration
	// Window is how long after the end of its last delay a key's failures
	// are forgotten. 0 means 15 minutes.
	Window time.Duration
	// MaxEntries bounds the number of accounts, and separately of
	// addresses, tracked at once. 0 means 100,000 (a few MB at most).
	MaxEntries int
	// Now returns the current time. nil means time.Now; tests set a fake
	// clock.
	Now func() time.Time
}

// Throttle limits failed logins per account and per client address, in
// memory (each replica keeps its own).
//
// Policy: each login attempt is counted as a failure when it starts
// (Attempt), so that concurrent attempts cannot slip past the limit
// together; a correct password then calls Succeeded, which clears the
// account's count and takes the attempt back from the address's. Once a
// key (account or address) has reached its limit, the next attempt must
// wait BaseDelay, then 2×, 4×, … up to MaxDelay after the latest failure;
// an attempt made while waiting is refused and not counted. A key with no
// failure for its delay plus Window starts afresh. With the defaults an
// attacker gets 5 guesses per account at once and then about 4 an hour.
//
// The account key is the email the person typed, canonicalized (the
// caller passes CanonicalEmail's result, or the trimmed input when it is
// not an email), whether or not an account has it, so a throttled unknown
// email answers exactly like a throttled existing one. Password-reset requests do not go through the
// Throttle: asking for a reset never locks an account out.
//
// Memory is bounded: entries are dropped once forgotten, and when
// MaxEntries keys are tracked the oldest are evicted, those not being
// delayed first, so that flooding with new keys cannot lift a delay.
//
// A Throttle is safe for concurrent use by multiple goroutines.
type Throttle struct {
	accountLimit, addressLimit int
	base, max, window          time.Duration
	maxEntries                 int
	now                        func() time.Time

	mu        sync.Mutex
	accounts  map[string]*failures
	addresses map[string]*failures
	lastSweep time.Time
}

// failures is the record of one key.
type failures struct {
	n    int       // failed attempts in a row
	last time.Time // the latest one
	prev time.Time // the one before, restored when Succeeded takes last back
}

// ThrottledError refuses a login attempt that came too soon after too many
// failures. It matches authz.ErrUnauthenticated; the HTTP layer can use
// RetryAfter for a Retry-After header.
type ThrottledError struct {
	RetryAfter time.Duration
}

// Error says to try again after RetryAfter, rounded to the second.
func (e *ThrottledError) Error() string {
	return "identity: too many failed logins; try again in " + e.RetryAfter.Round(time.Second).String()
}

// Is makes a *ThrottledError match authz.ErrUnauthenticated.
func (e *ThrottledError) Is(target error) bool { return target == authz.ErrUnauthenticated }

// NewThrottle returns a Throttle with the policy c (zero fields take their
// defaults). Negative values are programmer errors: NewThrottle panics.
func NewThrottle(c ThrottleConfig) *Throttle {
	if c.AccountLimit < 0 || c.AddressLimit < 0 || c.BaseDelay < 0 || c.MaxDelay < 0 || c.Window < 0 || c.MaxEntries < 0 {
		panic("identity: NewThrottle: negative ThrottleConfig field")
	}
	t := &Throttle{
		accountLimit: orDefault(c.AccountLimit, 5),
		addressLimit: orDefault(c.AddressLimit, 20),
		base:         orDefault(c.BaseDelay, 30*time.Second),
		max:          orDefault(c.MaxDelay, 15*time.Minute),
		window:       orDefault(c.Window, 15*time.Minute),
		maxEntries:   orDefault(c.MaxEntries, 100_000),
		now:          c.Now,
		accounts:     make(map[string]*failures),
		addresses:    make(map[string]*failures),
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t
}

func orDefault[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// Attempt asks whether a login for account (the canonical email) from
// addr (the client's IP address; "" when unknown) may proceed now. If so
// it counts the attempt as a failure of both keys and returns nil; call
// Succeeded once the password is verified. If not it returns a
// *ThrottledError (matching authz.ErrUnauthenticated) and counts nothing:
// the caller must then not verify the password at all. An IPv6 address is
// counted by its /64 prefix, which one client usually controls whole.
// An empty account or addr skips that key.
func (t *Throttle) Attempt(account, addr string) error {
	addr = addressKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.maybeSweep(now)
	wait := max(t.wait(t.accounts, account, t.accountLimit, now), t.wait(t.addresses, addr, t.addressLimit, now))
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	t.count(t.accounts, account, t.accountLimit, now)
	t.count(t.addresses, addr, t.addressLimit, now)
	return nil
}

// Succeeded records that the attempt Attempt admitted for account from
// addr had the right password: the account's failures are cleared, and
// the attempt is taken back from the address's count (its earlier
// failures stand, so that logging in to one's own account does not wash
// out guesses at others).
func (t *Throttle) Succeeded(account, addr string) {
	addr = addressKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if account != "" {
		delete(t.accounts, account)
	}
	if f := t.addresses[addr]; addr != "" && f != nil {
		if f.n--; f.n <= 0 {
			delete(t.addresses, addr)
		} else {
			f.last = f.prev
		}
	}
}

// delay is the wait imposed after n failures against limit.
func (t *Throttle) delay(n, limit int) time.Duration {
	if n < limit {
		return 0
	}
	d := t.base
	for i := limit; i < n && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// wait returns how long key must still wait at now.
func (t *Throttle) wait(m map[string]*failures, key string, limit int, now time.Time) time.Duration {
	f := m[key]
	if key == "" || f == nil {
		return 0
	}
	return max(0, f.last.Add(t.delay(f.n, limit)).Sub(now))
}

// forgotten reports whether f has been quiet for its delay plus window.
func (t *Throttle) forgotten(f *failures, limit int, now time.Time) bool {
	return !now.Before(f.last.Add(t.delay(f.n, limit) + t.window))
}

func (t *Throttle) count(m map[string]*failures, key string, limit int, now time.Time) {
	if key == "" {
		return
	}
	f := m[key]
	if f != nil && t.forgotten(f, limit, now) {
		f.n = 0
	}
	if f == nil {
		if len(m) >= t.maxEntries {
			t.evict(m, limit, now)
		}
		f = &failures{}
		m[key] = f
	}
	f.n++
	f.prev, f.last = f.last, now
}

// maybeSweep drops forgotten entries, at most once per window.
func (t *Throttle) maybeSweep(now time.Time) {
	if now.Sub(t.lastSweep) < t.window {
		return
	}
	t.lastSweep = now
	t.sweep(t.accounts, t.accountLimit, now)
	t.sweep(t.addresses, t.addressLimit, now)
}

func (t *Throttle) sweep(m map[string]*failures, limit int, now time.Time) {
	for k, f := range m {
		if t.forgotten(f, limit, now) {
			delete(m, k)
		}
	}
}

// evict makes room in a full map: forgotten entries go, then entries not
// being delayed, then those whose delay ends first, until a tenth of the
// map is free. It runs once per tenth of MaxEntries new keys at most.
func (t *Throttle) evict(m map[string]*failures, limit int, now time.Time) {
	t.sweep(m, limit, now)
	target := t.maxEntries - max(1, t.maxEntries/10)
	type delayed struct {
		key string
		end time.Time
	}
	var waiting []delayed
	for k, f := range m {
		if len(m) <= target {
			return
		}
		if end := f.last.Add(t.delay(f.n, limit)); end.After(now) {
			waiting = append(waiting, delayed{k, end})
		} else {
			delete(m, k)
		}
	}
	slices.SortFunc(waiting, func(a, b delayed) int { return a.end.Compare(b.end) })
	for _, w := range waiting {
		if len(m) <= target {
			return
		}
		delete(m, w.key)
	}
}

// addressKey turns a client address into its throttling key: an IPv4
// address as is, an IPv6 address as its /64 prefix, anything else (a host
// name, a malformed string) as given.
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
