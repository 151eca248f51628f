package authz

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// table is the index: an open-addressing hash table of users with linear
// probing, keyed by the characters of the user id (rawKey; ids being
// server-generated and random, nobody can choose colliding keys).
//
// Each slot is one 64-byte cache line holding everything a check needs
// about one user, so a check costs one memory access beyond its inputs. A
// slot's key never changes once claimed; its state is written under a
// per-slot sequence lock whose counter is the top half of meta: the
// writer stores meta with the counter made odd (the old flags kept),
// stores the rest, then stores meta with the counter even and the new
// flags; a reader retries when meta's counter was odd or meta changed
// while it read. Every field is an atomic, so readers never see a torn
// word and the race detector agrees. Only one writer runs at a time
// (Engine.mu).
type table struct {
	mask  uint64
	slots []slot
	used  int // claimed slots, live or not; writer only
	live  int // claimed slots holding something; writer only
}

type slot struct {
	meta       atomic.Uint64 // sequence counter << 32 | metaUsed | metaAdmin | metaDeactivated | first membership's roles and categories
	ka, kb, kc atomic.Uint64 // user key; valid once meta has metaUsed
	oa, ob, oc atomic.Uint64 // first membership's org key
	more       atomic.Pointer[[]membership]
} // 64 bytes, one cache line

const (
	metaUsed        = 1 << 16
	metaAdmin       = 1 << 17
	metaDeactivated = 1 << 18
	// bits 0-7: roles of the first membership; bits 8-15: its categories;
	// bits 32-63: the sequence counter
	metaFlags = 1<<32 - 1
	metaSeq   = 1 << 32 // one step of the counter
)

// hugeTableSlots is the size from which a table asks for huge pages
// (adviseHugePages): 2^16 slots, 4 MiB. A check reads one slot of a
// random user; in a table of hundreds of megabytes with 4 KiB pages
// nearly every such read also misses the TLB, and on a virtual machine a
// page walk is itself several memory reads. With 2 MiB pages the whole
// table at 1,000,000 users needs under a hundred TLB entries.
const hugeTableSlots = 1 << 16

func newTable(capacity int) *table {
	n := 1024
	for n < capacity*4/3+1 {
		n *= 2
	}
	slots := make([]slot, n)
	if n >= hugeTableSlots {
		adviseHugePages(unsafe.Slice((*byte)(unsafe.Pointer(&slots[0])), n*int(unsafe.Sizeof(slot{}))))
	}
	return &table{mask: uint64(n - 1), slots: slots}
}

// find returns the slot claimed by key k, or nil. Readers and the writer
// both use it.
func (t *table) find(k rawKey) *slot {
	for i := k.slot(t.mask); ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.meta.Load()&metaUsed == 0 {
			return nil // an empty slot ends the probe: k was never inserted
		}
		if s.ka.Load() == k.a && s.kb.Load() == k.b && s.kc.Load() == k.c {
			return s
		}
	}
}

// key returns the user key of a claimed slot.
func (s *slot) key() rawKey { return rawKey{s.ka.Load(), s.kb.Load(), s.kc.Load()} }

// get returns k's state in t, the zero userRec if k has none.
func (t *table) get(k rawKey) userRec {
	var rec userRec
	if s := t.find(k); s != nil {
		s.read(&rec)
	}
	return rec
}

// read stores a consistent snapshot of s's state in rec. It fills the
// caller's variable rather than returning the state, which keeps the check
// path from copying it through each frame.
func (s *slot) read(rec *userRec) {
	for spins := 0; ; spins++ {
		meta := s.meta.Load()
		if meta&metaSeq == 0 { // the counter is even: no write under way
			rec.admin = meta&metaAdmin != 0
			rec.deactivated = meta&metaDeactivated != 0
			rec.first = membership{
				org:   rawKey{s.oa.Load(), s.ob.Load(), s.oc.Load()},
				roles: roleMask(meta),
				cats:  CategorySet(meta >> 8),
			}
			rec.more = nil
			if p := s.more.Load(); p != nil {
				rec.more = *p
			}
			if s.meta.Load() == meta {
				return
			}
		}
		if spins > 100 {
			runtime.Gosched() // the writer was descheduled mid-write
		}
	}
}

// write publishes rec as s's state. Writer only.
func (s *slot) write(rec userRec) {
	meta := uint64(metaUsed) | uint64(rec.first.roles) | uint64(rec.first.cats)<<8
	if rec.admin {
		meta |= metaAdmin
	}
	if rec.deactivated {
		meta |= metaDeactivated
	}
	var more *[]membership
	if len(rec.more) > 0 {
		more = &rec.more
	}
	old := s.meta.Load()
	s.meta.Store(old + metaSeq) // odd: readers retry from here
	s.oa.Store(rec.first.org.a)
	s.ob.Store(rec.first.org.b)
	s.oc.Store(rec.first.org.c)
	s.more.Store(more)
	s.meta.Store(old&^metaFlags + 2*metaSeq | meta) // even, with the new flags
}

// put sets k's state to rec, claiming a slot if k has none. It returns the
// table to use from now on: t itself, or a larger or compacted copy when t
// was full. Writer only.
func (t *table) put(k rawKey, rec userRec) *table {
	if s := t.find(k); s != nil {
		var old userRec
		s.read(&old)
		if was := !old.empty(); was != !rec.empty() {
			if was {
				t.live--
			} else {
				t.live++
			}
		}
		s.write(rec)
		return t
	}
	if rec.empty() {
		return t
	}
	if (t.used+1)*4 > len(t.slots)*3 {
		t = t.rebuilt(t.live + 1)
	}
	for i := k.slot(t.mask); ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.meta.Load()&metaUsed == 0 {
			// Key first, then the state whose metaUsed bit makes the
			// slot visible to find.
			s.ka.Store(k.a)
			s.kb.Store(k.b)
			s.kc.Store(k.c)
			s.write(rec)
			t.used++
			t.live++
			return t
		}
	}
}

// rebuilt returns a fresh table holding t's live entries, sized so that
// half as many again as max(n, live) users fit under the 3/4 load limit:
// growth stays amortized while the table stays near half full (at
// 1,000,000 users, 2^21 slots of 64 bytes). Slots of users who hold
// nothing any more are dropped.
func (t *table) rebuilt(n int) *table {
	nt := newTable(max(n, t.live) * 3 / 2) // room to grow by half before the next rebuild
	for i := range t.slots {
		s := &t.slots[i]
		if s.meta.Load()&metaUsed == 0 {
			continue
		}
		var rec userRec
		if s.read(&rec); !rec.empty() {
			nt = nt.put(s.key(), rec)
		}
	}
	return nt
}

// all yields every user with state in t.
func (t *table) all(yield func(rawKey, userRec) bool) {
	for i := range t.slots {
		s := &t.slots[i]
		if s.meta.Load()&metaUsed == 0 {
			continue
		}
		var rec userRec
		if s.read(&rec); !rec.empty() && !yield(s.key(), rec) {
			return
		}
	}
}
