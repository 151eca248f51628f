package identity_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// clock is a fake clock for a Throttle.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// allow asserts that an attempt is admitted.
func allow(t *testing.T, th *identity.Throttle, account, addr string) {
	t.Helper()
	if err := th.Attempt(account, addr); err != nil {
		t.Fatalf("Attempt(%q, %q) = %v, want admitted", account, addr, err)
	}
}

// refuse asserts that an attempt is refused with the given wait.
func refuse(t *testing.T, th *identity.Throttle, account, addr string, wait time.Duration) {
	t.Helper()
	err := th.Attempt(account, addr)
	var te *identity.ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("Attempt(%q, %q) = %v, want a *ThrottledError matching ErrUnauthenticated", account, addr, err)
	}
	if te.RetryAfter != wait {
		t.Fatalf("Attempt(%q, %q): RetryAfter = %v, want %v", account, addr, te.RetryAfter, wait)
	}
}

// TestThrottleAccountBackoff walks the default policy for one account:
// 5 free failures, then 30s, 1m, 2m, 4m, 8m, 15m, 15m; refused attempts
// are not counted.
func TestThrottleAccountBackoff(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: c.Now})
	const acct = "jane@example.com"
	for range 5 {
		allow(t, th, acct, "")
	}
	for _, d := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute, 15 * time.Minute} {
		refuse(t, th, acct, "", d)
		c.Advance(d - time.Second)
		refuse(t, th, acct, "", time.Second) // still waiting; not counted
		c.Advance(time.Second)
		allow(t, th, acct, "")
	}
	// Another account is not affected.
	allow(t, th, "other@example.com", "")
	if err := th.Attempt(acct, ""); err == nil {
		t.Fatal("throttled account admitted")
	} else if got := err.Error(); got != "identity: too many failed logins; try again in 15m0s" {
		t.Fatalf("message = %q", got)
	}
}

// TestThrottleSuccessResets checks that a correct password clears the
// account's failures.
func TestThrottleSuccessResets(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: c.Now})
	const acct = "jane@example.com"
	for range 4 {
		allow(t, th, acct, "10.0.0.1")
	}
	allow(t, th, acct, "10.0.0.1")
	th.Succeeded(acct, "10.0.0.1")
	for range 5 {
		allow(t, th, acct, "10.0.0.1")
	}
	refuse(t, th, acct, "10.0.0.1", 30*time.Second)
}

// TestThrottleForgets checks that failures are forgotten after the delay
// plus the 15-minute window, and not before.
func TestThrottleForgets(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: c.Now})
	const acct = "jane@example.com"
	for range 5 {
		allow(t, th, acct, "")
	}
	c.Advance(30*time.Second + 15*time.Minute - time.Second)
	allow(t, th, acct, "") // the sixth failure: remembered
	refuse(t, th, acct, "", time.Minute)
	c.Advance(time.Minute + 15*time.Minute)
	for range 5 { // forgotten: five free failures again
		allow(t, th, acct, "")
	}
	refuse(t, th, acct, "", 30*time.Second)
}

// TestThrottleAddress checks the per-address limit across accounts, the
// IPv6 /64 grouping, and that a success at one account does not wash out
// the address's failures at others.
func TestThrottleAddress(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: c.Now})
	for i := range 20 {
		allow(t, th, fmt.Sprintf("user%d@example.com", i), "192.0.2.7")
	}
	refuse(t, th, "fresh@example.com", "192.0.2.7", 30*time.Second)
	allow(t, th, "fresh@example.com", "192.0.2.8")        // another address
	allow(t, th, "fresh@example.com", "::ffff:192.0.2.9") // mapped IPv4 is IPv4
	refuse(t, th, "fresh@example.com", "::ffff:192.0.2.7", 30*time.Second)

	for i := range 20 {
		allow(t, th, fmt.Sprintf("v6user%d@example.com", i), fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	refuse(t, th, "v6@example.com", "2001:db8:1:2:ffff::1", 30*time.Second) // same /64
	allow(t, th, "v6@example.com", "2001:db8:1:3::1")                       // another /64

	// A success takes back only its own attempt from the address.
	c.Advance(30 * time.Second)
	allow(t, th, "mine@example.com", "192.0.2.7")
	th.Succeeded("mine@example.com", "192.0.2.7")
	allow(t, th, "guess@example.com", "192.0.2.7")
	refuse(t, th, "guess2@example.com", "192.0.2.7", time.Minute)
}

// TestThrottleUnknownAccount checks that an email with no account is
// throttled exactly like one with an account: the Throttle never knows.
func TestThrottleUnknownAccount(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: c.Now})
	var errs [2][]error
	for i, acct := range []string{"exists@example.com", "nobody@example.com"} {
		for range 7 {
			errs[i] = append(errs[i], th.Attempt(acct, ""))
		}
	}
	for i := range errs[0] {
		if fmt.Sprint(errs[0][i]) != fmt.Sprint(errs[1][i]) {
			t.Fatalf("attempt %d: %v vs %v", i, errs[0][i], errs[1][i])
		}
	}
}

// TestThrottleBoundedMemory floods the Throttle with new accounts and
// checks that the map stays bounded and that a delayed account keeps its
// delay.
func TestThrottleBoundedMemory(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: c.Now, MaxEntries: 100, AddressLimit: 1 << 30})
	const victim = "victim@example.com"
	for range 5 {
		allow(t, th, victim, "")
	}
	for i := range 1000 {
		allow(t, th, fmt.Sprintf("flood%d@example.com", i), "")
		if n, _ := identity.ThrottleLen(th); n > 100 {
			t.Fatalf("after %d new keys the throttle tracks %d accounts, want at most 100", i+1, n)
		}
	}
	refuse(t, th, victim, "", 30*time.Second)

	// Entries are swept once forgotten.
	c.Advance(time.Hour)
	allow(t, th, "late@example.com", "")
	if n, _ := identity.ThrottleLen(th); n != 1 {
		t.Fatalf("after an hour the throttle tracks %d accounts, want 1", n)
	}
}

// TestThrottleConcurrent races many attempts at one account: exactly the
// free five are admitted, whatever the interleaving (run with -race).
func TestThrottleConcurrent(t *testing.T) {
	t.Parallel()
	th := identity.NewThrottle(identity.ThrottleConfig{Now: newClock().Now})
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if th.Attempt("jane@example.com", fmt.Sprintf("198.51.100.%d", i)) == nil {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != 5 {
		t.Fatalf("%d concurrent attempts admitted, want 5", n)
	}
}

// TestThrottleConfig checks custom settings and that negative ones panic.
func TestThrottleConfig(t *testing.T) {
	t.Parallel()
	c := newClock()
	th := identity.NewThrottle(identity.ThrottleConfig{AccountLimit: 2, BaseDelay: time.Second, MaxDelay: 3 * time.Second, Now: c.Now})
	allow(t, th, "a@example.com", "")
	allow(t, th, "a@example.com", "")
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		refuse(t, th, "a@example.com", "", d)
		c.Advance(d)
		allow(t, th, "a@example.com", "")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewThrottle with a negative limit did not panic")
		}
	}()
	identity.NewThrottle(identity.ThrottleConfig{AccountLimit: -1})
}
