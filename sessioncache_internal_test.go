package iam

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

var cacheT0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// cachedFor returns a session of user u, numbered i, ending in an hour.
func cachedFor(u authz.UserID, i int) identity.Session {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return identity.Session{Hash: sha256.Sum256(append([]byte(u), b[:]...)), User: u, CreatedAt: cacheT0, ExpiresAt: cacheT0.Add(time.Hour)}
}

// TestSessionCacheGeneration: a put whose database read started before a
// forget, forgetUser or forgetAll stores nothing, although the eviction
// ran before the put; one whose read started after stores.
func TestSessionCacheGeneration(t *testing.T) {
	u := authz.NewUserID()
	s := cachedFor(u, 1)
	for name, forget := range map[string]func(c *sessionCache){
		"forget":     func(c *sessionCache) { c.forget(s.Hash) },
		"forgetUser": func(c *sessionCache) { c.forgetUser(u) },
		"forgetAll":  func(c *sessionCache) { c.forgetAll() },
	} {
		c := newSessionCache(100, time.Minute)
		gen := c.generation() // the read starts
		forget(c)             // a logout commits and evicts
		c.put(s, cacheT0, gen)
		if _, ok := c.get(s.Hash, cacheT0); ok {
			t.Errorf("%s: a read from before the eviction was stored after it", name)
		}
		c.put(s, cacheT0, c.generation()) // a read after the eviction
		if got, ok := c.get(s.Hash, cacheT0); !ok || got != u {
			t.Errorf("%s: a fresh read was not stored: %q %v", name, got, ok)
		}
		forget(c)
		if _, ok := c.get(s.Hash, cacheT0); ok {
			t.Errorf("%s: the entry survived", name)
		}
	}
}

// TestSessionCacheEntries: an entry answers until the earlier of the
// session's end and its maximum age; forgetUser drops only that user's
// sessions; the size stays bounded; a nil cache is off.
func TestSessionCacheEntries(t *testing.T) {
	c := newSessionCache(cacheShards*4, 10*time.Minute)
	a, b := authz.NewUserID(), authz.NewUserID()
	sa, sb := cachedFor(a, 1), cachedFor(b, 1)
	c.put(sa, cacheT0, c.generation())
	if _, ok := c.get(sa.Hash, cacheT0.Add(10*time.Minute-time.Nanosecond)); !ok {
		t.Error("an entry expired before its maximum age")
	}
	if _, ok := c.get(sa.Hash, cacheT0.Add(10*time.Minute)); ok {
		t.Error("an entry answered at its maximum age")
	}
	c.put(sb, sb.ExpiresAt.Add(-time.Minute), c.generation())
	if _, ok := c.get(sb.Hash, sb.ExpiresAt); ok {
		t.Error("an entry answered at its session's end")
	}
	c.forgetUser(a)
	if _, ok := c.get(sa.Hash, cacheT0); ok {
		t.Error("forgetUser left the user's session")
	}
	if _, ok := c.get(sb.Hash, sb.ExpiresAt.Add(-time.Second)); !ok {
		t.Error("forgetUser dropped another user's session")
	}

	for i := range 10_000 {
		c.put(cachedFor(b, i), cacheT0, c.generation())
	}
	if n := c.size(); n != cacheShards*4 {
		t.Errorf("a full cache of %d holds %d", cacheShards*4, n)
	}
	c.forgetAll()
	if n := c.size(); n != 0 {
		t.Errorf("forgetAll left %d", n)
	}

	off := newSessionCache(0, time.Minute)
	if off != nil || newSessionCache(10, 0) != nil {
		t.Fatal("a zero size or age did not turn the cache off")
	}
	off.put(sa, cacheT0, off.generation())
	off.forget(sa.Hash)
	off.forgetUser(a)
	off.forgetAll()
	if _, ok := off.get(sa.Hash, cacheT0); ok || off.size() != 0 {
		t.Error("a disabled cache answered")
	}
}

// BenchmarkSessionCache measures the hit path (serial and from every
// core) and forgetUser's scan of a full default-sized cache.
func BenchmarkSessionCache(b *testing.B) {
	c := newSessionCache(DefaultSessionCacheSize, time.Hour)
	users := make([]authz.UserID, 1000)
	for i := range users {
		users[i] = authz.NewUserID()
	}
	var hashes []identity.TokenHash
	for i := range DefaultSessionCacheSize {
		s := cachedFor(users[i%len(users)], i)
		c.put(s, cacheT0, c.generation())
		hashes = append(hashes, s.Hash)
	}
	b.Logf("%d sessions cached", c.size())
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.get(hashes[i%len(hashes)], cacheT0)
			i++
		}
	})
	b.Run("get-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.get(hashes[i%len(hashes)], cacheT0)
				i++
			}
		})
	})
	b.Run("forgetUser", func(b *testing.B) {
		for b.Loop() {
			c.forgetUser(authz.NewUserID()) // nobody's: the scan is what costs
		}
	})
}
