package iam

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

const (
	// DefaultSessionCacheSize is how many validated sessions a Service
	// keeps in memory unless WithSessionCache says otherwise: about 10 MB.
	DefaultSessionCacheSize = 100_000
	// DefaultSessionCacheMaxAge is how long a cached session is trusted
	// before Authenticate reads it from the database again unless
	// WithSessionCache says otherwise. It bounds how long a session ended
	// through another Service on the same database (another replica) still
	// works on this one when this one does not Sync.
	DefaultSessionCacheMaxAge = time.Minute
)

// WithSessionCache sets how Authenticate keeps validated sessions in
// memory: at most size of them (one is dropped at random to make room),
// each trusted for at most maxAge, and never beyond its session's end,
// before the database is read again. Either zero turns the cache off, so
// that every Authenticate reads the database. Negative values make New
// fail with ErrInvalid. Without this option: DefaultSessionCacheSize and
// DefaultSessionCacheMaxAge.
func WithSessionCache(size int, maxAge time.Duration) Option {
	return func(c *config) { c.cacheSize, c.cacheMaxAge = size, maxAge }
}

// cacheShards is the number of independently locked parts of the session
// cache: enough that concurrent Authenticate calls rarely touch the same
// lock's cache line. A power of two, so a hash byte picks a shard.
const cacheShards = 32

// sessionCache holds the sessions Authenticate found valid in the
// database, by token hash, so that later requests with the same token
// need no database read. A nil *sessionCache is a disabled cache: it
// finds nothing and stores nothing.
//
// What it stores is only ever a shortcut: a missing entry means "ask the
// database", so dropping entries (the forget methods, eviction) is always
// safe. What must never happen is an entry for a session that was ended on
// this Service before the ending method returned; see put for how a
// lookup that raced an ending cannot bring its session back.
type sessionCache struct {
	// gen counts the forget, forgetUser and forgetAll calls. put stores
	// nothing when it changed since the caller read the database.
	gen      atomic.Uint64
	perShard int
	maxAge   time.Duration
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[identity.TokenHash]cachedSession
	_  [32]byte // pads a shard to 64 bytes, one cache line: shards' locks do not share one
}

// cachedSession is one validated session: whose it is, and until when the
// cache may answer for it without the database.
type cachedSession struct {
	user  authz.UserID
	until time.Time // the earlier of the session's end and validation + maxAge
}

// newSessionCache returns a cache of about size entries trusted for
// maxAge each, or nil (disabled) when either is zero.
func newSessionCache(size int, maxAge time.Duration) *sessionCache {
	if size <= 0 || maxAge <= 0 {
		return nil
	}
	c := &sessionCache{perShard: max(1, size/cacheShards), maxAge: maxAge}
	for i := range c.shards {
		c.shards[i].m = make(map[identity.TokenHash]cachedSession)
	}
	return c
}

func (c *sessionCache) shard(h identity.TokenHash) *cacheShard {
	return &c.shards[h[0]%cacheShards] // SHA-256 bytes are uniform
}

// get returns the user of the session with hash h if the cache may
// answer for it at now. It takes only a shard's read lock.
func (c *sessionCache) get(h identity.TokenHash, now time.Time) (authz.UserID, bool) {
	if c == nil {
		return "", false
	}
	sh := c.shard(h)
	sh.mu.RLock()
	e, ok := sh.m[h]
	sh.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return "", false
	}
	return e.user, true
}

// generation returns the value to pass to put: read it before reading the
// session from the database.
func (c *sessionCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// put stores session s, validated at now, unless a forget, forgetUser or
// forgetAll call started since gen was read: that call may have ended s
// after the database was read, and its eviction may already be done, so
// storing s now could bring back an ended session.
//
// The generation is compared under the shard's lock, and the forget
// methods bump it before taking any shard lock. So either put's locked
// section comes first and their eviction removes what it stored, or it
// comes after and sees the new generation.
func (c *sessionCache) put(s identity.Session, now time.Time, gen uint64) {
	if c == nil {
		return
	}
	e := cachedSession{user: s.User, until: now.Add(c.maxAge)}
	if s.ExpiresAt.Before(e.until) {
		e.until = s.ExpiresAt
	}
	sh := c.shard(s.Hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if _, ok := sh.m[s.Hash]; !ok && len(sh.m) >= c.perShard {
		for k := range sh.m { // Go starts map iteration at a random place: a random eviction
			delete(sh.m, k)
			break
		}
	}
	sh.m[s.Hash] = e
}

// forget drops the session with hash h (a logout).
//
// A method that may end sessions defers forget or forgetUser at its
// start: so it runs after the method's transaction, whatever its outcome
// (a commit whose answer was lost may still have ended them), and before
// the method returns, leaving no moment after the return when an ended
// session is still in the cache. Dropping too much costs a database read
// at most.
func (c *sessionCache) forget(h identity.TokenHash) {
	if c == nil {
		return
	}
	c.gen.Add(1)
	sh := c.shard(h)
	sh.mu.Lock()
	delete(sh.m, h)
	sh.mu.Unlock()
}

// forgetUser drops every session of user u (a password change or reset, a
// deactivation, a deletion), as forget does for one; an empty u (the user
// was never known) drops nothing. It scans the cache: these events are
// rare, and a scan needs no user index kept in step with every put and
// eviction.
func (c *sessionCache) forgetUser(u authz.UserID) {
	if u != "" {
		c.forgetWhere(func(e cachedSession) bool { return e.user == u })
	}
}

// forgetUsers drops every session of the users in us, in one scan (a
// replica's Sync applies thousands of users at a time after a bulk
// import; a scan each would be thousands of scans).
func (c *sessionCache) forgetUsers(us map[authz.UserID]bool) {
	if len(us) > 0 {
		c.forgetWhere(func(e cachedSession) bool { return us[e.user] })
	}
}

// forgetAll drops every cached session, as forget does for one: for when
// this Service may have missed revocations (a Sync that reloads the whole
// policy).
func (c *sessionCache) forgetAll() { c.forgetWhere(func(cachedSession) bool { return true }) }

// forgetWhere drops the entries drop selects, one shard at a time, after
// bumping the generation (see put).
func (c *sessionCache) forgetWhere(drop func(cachedSession) bool) {
	if c == nil {
		return
	}
	c.gen.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for h, e := range sh.m {
			if drop(e) {
				delete(sh.m, h)
			}
		}
		sh.mu.Unlock()
	}
}

// size returns the number of cached sessions, for tests.
func (c *sessionCache) size() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
