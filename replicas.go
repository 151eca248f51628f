package iam

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kiops/iam/adapters/pgnotify"
	"github.com/kiops/iam/authz"
)

// Several Services may share one database: replicas of a host behind a
// load balancer, each with its own engine. Every management transaction
// bumps the policy version, records in the change log which users' rules
// it touched, and (on PostgreSQL) announces the version on the store's
// notification channel, all inside the transaction. A replica brings its
// engine up to the latest version with Sync: it reloads the rules of only
// the users changed since the version it had, and the whole policy only
// when the change log does not reach back that far.

// Version returns the policy version this Service's engine reflects: every
// management operation committed up to it, by this Service or another on
// the same database, is visible to Check. It never goes back.
func (s *Service) Version() int64 { return s.applied.Load() }

// Sync brings the engine up to the latest committed policy version: the
// changes other Services on the same database committed since Version.
// Each changed user's rules are read back from the database and replace
// that user's state in the engine (absolute, so a change seen twice is
// harmless), and that user's cached sessions are dropped, so that the next
// request revalidates against the database. Checks go on answering from
// the previous state meanwhile; management operations of this Service
// wait for Sync, and Sync for them.
//
// Errors: database failures, wrapped with "iam: sync"; the engine keeps
// the state it had, and Version does not move.
func (s *Service) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked(ctx)
}

// syncLocked is Sync for a caller holding s.mu.
func (s *Service) syncLocked(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	from := s.applied.Load()
	ch, err := s.store.ChangesSince(ctx, from)
	if err != nil {
		return fmt.Errorf("iam: sync: %w", err)
	}
	if ch.Version <= from {
		return nil
	}
	if !ch.Complete {
		// The change log starts after from: reload everything.
		if err := s.store.Load(ctx, s.engine); err != nil {
			return fmt.Errorf("iam: sync: %w", err)
		}
		s.sessions.forgetAll()
		s.applied.Store(ch.Version)
		return nil
	}
	rules, err := s.store.UsersRules(ctx, ch.Users)
	if err != nil {
		return fmt.Errorf("iam: sync: %w", err)
	}
	changed := make(map[authz.UserID]bool, len(ch.Users))
	for _, u := range ch.Users {
		// The rules may be newer than ch.Version (read later): applying
		// them early is harmless, since the next Sync applies that user's
		// later versions again.
		if err := s.engine.SetUserRules(u, rules[u]); err != nil {
			return fmt.Errorf("iam: sync: %w", err)
		}
		changed[u] = true
	}
	s.sessions.forgetUsers(changed)
	s.applied.Store(ch.Version)
	return nil
}

// committed advances Version past a management operation this Service
// committed at version v. If other Services committed versions in between
// that this one has not applied, it syncs, which takes in v too; a failure
// there is logged, and the next Sync catches up.
func (s *Service) committed(ctx context.Context, v int64) {
	if s.applied.CompareAndSwap(v-1, v) {
		return
	}
	if err := s.syncLocked(context.WithoutCancel(ctx)); err != nil {
		s.cfg.log.Error("iam: catching up with other replicas failed; the next Sync retries", "err", err)
	}
}

// WithReplicaSync keeps the Service in step with other Services on the
// same database in the background: on PostgreSQL it listens for the
// versions they commit (pgnotify, on one connection of db's pool) and
// syncs as each arrives, and after every (re)connection, to catch up on
// what it may have missed; on every database it also syncs every interval,
// the safety net for a lost notification (and the only means on SQLite,
// whose file several processes may share). An interval of zero means 5
// seconds. Without this option, call Sync yourself.
//
// While disconnected, the engine goes on answering from its last state;
// SyncState tells how the listener stands.
func WithReplicaSync(interval time.Duration) Option {
	return func(c *config) {
		c.replicaSync = true
		c.syncEvery = cmp.Or(interval, 5*time.Second)
	}
}

// SyncState reports the state of the replica listener (WithReplicaSync on
// PostgreSQL): connecting, listening or closed, since when, and the last
// error. Without a listener its Status is zero.
func (s *Service) SyncState() pgnotify.State {
	if s.listener == nil {
		return pgnotify.State{}
	}
	return s.listener.State()
}

// startReplicaSync starts the background sync of WithReplicaSync.
func (s *Service) startReplicaSync() error {
	s.syncNow = make(chan struct{}, 1)
	s.syncDone = make(chan struct{})
	s.syncStop = make(chan struct{})
	if ch := s.store.Channel(); ch != "" {
		l, err := pgnotify.Start(s.db, pgnotify.Config{
			Channel:   ch,
			OnNotify:  func(string) { s.syncSoon() },
			OnConnect: s.syncSoon,
			Logger:    s.cfg.log,
		})
		if err != nil {
			return err
		}
		s.listener = l
	}
	go func() {
		defer close(s.syncDone)
		tick := time.NewTicker(s.cfg.syncEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.syncStop:
				return
			case <-tick.C:
			case <-s.syncNow:
			}
			if err := s.Sync(context.Background()); err != nil && !errors.Is(err, errClosed) {
				s.cfg.log.Error("iam: background sync failed; retrying at the next notification or tick", "err", err)
			}
		}
	}()
	return nil
}

// syncSoon asks the background sync to run; asks made while one is
// pending are one.
func (s *Service) syncSoon() {
	select {
	case s.syncNow <- struct{}{}:
	default:
	}
}

// stopReplicaSync stops the listener and the background sync and waits
// for them.
func (s *Service) stopReplicaSync() {
	if s.syncStop == nil {
		return
	}
	if s.listener != nil {
		s.listener.Close()
	}
	close(s.syncStop)
	<-s.syncDone
}

// A consistency token gives read-your-writes across replicas, like
// Zanzibar's zookies: a management call reports the version it committed
// (WithReceipt), the caller carries it to wherever it reads next, and that
// replica waits until it has applied that version (WaitVersion, or the
// VersionHeader of a request through the Service's Guard) before it
// answers.

// ErrStale: the Service had not applied the policy version asked for when
// the context ended. Retry, or answer 503.
var ErrStale = errors.New("iam: the policy version asked for is not applied yet")

// VersionHeader is the request header that carries a consistency token
// (a policy version, in decimal) to the Service's Guard: the request is
// identified and checked only once the Service has applied that version.
const VersionHeader = "Iam-Min-Version"

// Receipt receives the policy version of the management calls made with a
// context from WithReceipt: the consistency token to hand to a reader. It
// is safe for concurrent use; with several calls it keeps the highest.
type Receipt struct{ v atomic.Int64 }

// Version returns the highest policy version committed through the
// receipt, 0 before any.
func (r *Receipt) Version() int64 { return r.v.Load() }

func (r *Receipt) record(v int64) {
	for old := r.v.Load(); v > old && !r.v.CompareAndSwap(old, v); old = r.v.Load() {
	}
}

type receiptKey struct{}

// WithReceipt returns a context whose management calls write the policy
// version they commit into r.
func WithReceipt(ctx context.Context, r *Receipt) context.Context {
	return context.WithValue(ctx, receiptKey{}, r)
}

func receiptFrom(ctx context.Context) *Receipt {
	r, _ := ctx.Value(receiptKey{}).(*Receipt)
	return r
}

// WaitVersion returns once this Service has applied policy version v (see
// Version), syncing with the database as needed: a version committed
// anywhere is applied after one Sync. It waits for a version not yet
// committed until ctx ends.
//
// Errors: ErrStale (wrapping ctx's error) when ctx ends first; ErrInvalid
// for a negative v; Sync's errors.
func (s *Service) WaitVersion(ctx context.Context, v int64) error {
	if v < 0 {
		return &authz.InvalidError{Field: "policy version", Value: strconv.FormatInt(v, 10), Reason: "versions start at 0"}
	}
	for wait := time.Millisecond; s.applied.Load() < v; wait = min(2*wait, 50*time.Millisecond) {
		if err := s.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrStale, ctx.Err())
			}
			return err
		}
		if s.applied.Load() >= v {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrStale, ctx.Err())
		case <-time.After(wait):
		}
	}
	return nil
}

// CheckAt is Check once this Service has applied policy version v, a
// consistency token from WithReceipt: read-your-writes across replicas for
// a caller that carries the token. v of 0 checks at once.
//
// Errors: those of WaitVersion (ErrStale when ctx ends first); the
// Decision is then a denial.
func (s *Service) CheckAt(ctx context.Context, v int64, user authz.UserID, org authz.OrgID, category authz.Category) (authz.Decision, error) {
	if err := s.WaitVersion(ctx, v); err != nil {
		return authz.Decision{User: user, Org: org, Reason: authz.ReasonError}, err
	}
	return s.Check(ctx, user, org, category), nil
}
