package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/adapters/pgnotify"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// Service is KIOPS IAM embedded in a host service: every management
// operation of the "Who may do what" table as a method, and the permission
// checks. Create one with New; Close it when done.
//
// Each management method takes the acting user explicitly, checks the
// management rules on facts read inside its database transaction, writes
// identity, approval and policy rows and its audit event in that one
// transaction, and only after the commit applies the change to the
// in-memory engine, so that a check made after the method returns sees the
// change and a failed commit leaves memory as it was. Management
// operations of one Service run one at a time; checks never wait for them.
//
// All methods are safe for concurrent use. Several Services may share one
// process (each with its own database).
type Service struct {
	db       *gorm.DB
	store    *gormstore.Store
	engine   *authz.Engine
	hasher   *identity.Hasher
	throttle *identity.Throttle
	sessions *sessionCache // nil when disabled
	applied  atomic.Int64  // the policy version the engine reflects: see Version

	// The background sync of WithReplicaSync; nil without it.
	listener                    *pgnotify.Listener
	syncNow, syncStop, syncDone chan struct{}
	cfg                         config

	// mu serializes management operations in this process, from their
	// transaction to their engine update, so that two commits are applied
	// to the engine in the order they committed. (In the database they are
	// serialized by the policy version row.)
	mu     sync.Mutex
	closed atomic.Bool
}

// An Option configures a Service.
type Option func(*config)

type config struct {
	now        func() time.Time
	log        *slog.Logger
	crossCheck bool
	hasher     identity.HasherConfig
	notifier   Notifier
	throttle   identity.ThrottleConfig
	sessionTTL time.Duration

	cacheSize   int
	cacheMaxAge time.Duration
	replicaSync bool
	syncEvery   time.Duration
}

// Notifier delivers password-reset tokens to users: the module sends no
// mail itself. The host implements it (mail, chat, the console in an
// example). Implementations must be safe for concurrent use and must not
// log the token.
type Notifier interface {
	// PasswordReset asks that the reset token reach the user. It is
	// called after the token was stored; an error is logged and the token
	// simply goes unused (it expires).
	PasswordReset(ctx context.Context, m ResetMessage) error
}

// ResetMessage is one password-reset token to deliver.
type ResetMessage struct {
	User    authz.UserID
	Email   string
	Name    string
	Token   identity.Token // redacted when printed; Reveal gives the secret
	Expires time.Time
	// ByAdmin is set when a Manager or PlatformAdmin started the reset.
	ByAdmin bool
}

// WithPasswordHasher sets the cost of password hashing (argon2id). The zero
// HasherConfig, the default, is the minimum the design requires (19 MiB,
// 2 passes, 1 lane); New refuses anything cheaper.
func WithPasswordHasher(c identity.HasherConfig) Option { return func(cfg *config) { cfg.hasher = c } }

// WithNotifier sets how password-reset tokens reach users. If nil or not
// given, reset tokens are issued but cannot be delivered (and a warning is
// logged once per request).
func WithNotifier(n Notifier) Option { return func(c *config) { c.notifier = n } }

// WithLoginThrottle sets how failed logins are throttled per account and
// per client address. The zero config is the default policy of
// identity.ThrottleConfig.
func WithLoginThrottle(c identity.ThrottleConfig) Option {
	return func(cfg *config) { cfg.throttle = c }
}

// WithSessionLifetime sets how long a login session lasts. Zero, the
// default, means identity.DefaultSessionLifetime.
func WithSessionLifetime(d time.Duration) Option { return func(c *config) { c.sessionTTL = d } }

// clientAddrKey is the context key of the client's address.
type clientAddrKey struct{}

// WithClientAddr returns a context that tells the Service the client's
// network address, for the audit log and login throttling. The HTTP layer
// sets it; nothing else reads identity from the context.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

func clientAddr(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddrKey{}).(string)
	return addr
}

// WithClock sets the clock the Service reads for timestamps, expiries and
// throttling. If nil or not given, time.Now is used.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets where the Service logs (engine disagreements, failures
// to deliver notifications, repairs). If nil or not given, slog.Default()
// is used. Secrets (passwords, tokens) are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithCasbinCrossCheck keeps a Casbin enforcer beside the engine and
// compares every decision (see authz.WithCasbinCrossCheck): a disagreement
// denies and is logged. It costs Casbin's time and memory on every check.
func WithCasbinCrossCheck() Option { return func(c *config) { c.crossCheck = true } }

// New migrates db (idempotently), loads the stored policy into a fresh
// engine and returns a ready Service. db is the host's: New opens no other
// connection, and Close does not close db.
//
// For SQLite, open db with a busy timeout and _txlock=immediate, for
// example "file:iam.db?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate",
// so that concurrent writers wait for each other instead of failing.
//
// Errors: a nil db is ErrInvalid; migration and load failures are wrapped
// with "iam: new".
func New(ctx context.Context, db *gorm.DB, opts ...Option) (*Service, error) {
	if db == nil {
		return nil, fmt.Errorf("iam: new: %w", &authz.InvalidError{Field: "db", Value: "nil", Reason: "a *gorm.DB is required"})
	}
	cfg := config{now: time.Now, log: slog.Default(), cacheSize: DefaultSessionCacheSize, cacheMaxAge: DefaultSessionCacheMaxAge}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.cacheSize < 0 || cfg.cacheMaxAge < 0 {
		return nil, fmt.Errorf("iam: new: %w", &authz.InvalidError{Field: "session cache", Value: fmt.Sprintf("size %d, max age %v", cfg.cacheSize, cfg.cacheMaxAge), Reason: "want 0 (off) or more for both"})
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	// Every time the Service stores is UTC in whole microseconds, what
	// every supported database keeps exactly, so values read back equal.
	clock := cfg.now
	cfg.now = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	if cfg.throttle.Now == nil {
		cfg.throttle.Now = cfg.now
	}
	hasher, err := identity.NewHasher(cfg.hasher)
	if err != nil {
		return nil, fmt.Errorf("iam: new: %w", err)
	}
	store, err := gormstore.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("iam: new: %w", err)
	}
	engineOpts := []authz.Option{authz.WithLogger(cfg.log)}
	if cfg.crossCheck {
		engineOpts = append(engineOpts, authz.WithCasbinCrossCheck())
	}
	engine, err := authz.NewEngine(engineOpts...)
	if err != nil {
		return nil, fmt.Errorf("iam: new: %w", err)
	}
	// The version is read before the policy: the engine then reflects at
	// least that version, and a Sync applies anything later again.
	version, err := store.Version(ctx)
	if err != nil {
		return nil, fmt.Errorf("iam: new: %w", err)
	}
	if err := store.Load(ctx, engine); err != nil {
		return nil, fmt.Errorf("iam: new: %w", err)
	}
	s := &Service{db: db, store: store, engine: engine, hasher: hasher, throttle: identity.NewThrottle(cfg.throttle),
		sessions: newSessionCache(cfg.cacheSize, cfg.cacheMaxAge), cfg: cfg}
	s.applied.Store(version)
	if cfg.replicaSync {
		if err := s.startReplicaSync(); err != nil {
			return nil, fmt.Errorf("iam: new: %w", err)
		}
	}
	return s, nil
}

// Close releases what the Service holds. It does not close the *gorm.DB,
// which belongs to the caller. After Close, management methods fail.
func (s *Service) Close() error {
	s.mu.Lock() // wait for a management operation under way
	already := s.closed.Swap(true)
	s.mu.Unlock()
	if !already {
		s.stopReplicaSync() // after the flag, which ends a Sync it may be waiting for
	}
	return nil
}

// errClosed is returned by management methods after Close.
var errClosed = errors.New("iam: service is closed")

// Check decides whether user may use category in org: the check behind
// every feature page. It reads only the in-memory engine: no lock, no
// allocation, no I/O. A denial is a Decision, not an error; invalid input
// denies.
func (s *Service) Check(ctx context.Context, user authz.UserID, org authz.OrgID, category authz.Category) authz.Decision {
	return s.engine.Check(user, org, category)
}

// Authorize is Check for several categories at once, as an error: nil when
// user holds every one of required in org, otherwise an
// *authz.InsufficientPermissionsError naming the required and missing
// categories (it matches ErrForbidden), the "Insufficient permissions"
// answer.
func (s *Service) Authorize(ctx context.Context, user authz.UserID, org authz.OrgID, required ...authz.Category) error {
	var set authz.CategorySet
	for _, c := range required {
		if !c.Valid() {
			return &authz.InvalidError{Field: "category", Value: c.String(), Reason: "not a category"}
		}
		set = set.With(c)
	}
	return s.engine.CheckAll(user, org, set).Err()
}

// CheckOperations returns nil when user may use the operations screens (DB
// Explorer, DB Monitoring): PlatformAdmins only. Otherwise it returns an
// error matching ErrForbidden.
func (s *Service) CheckOperations(ctx context.Context, user authz.UserID) error {
	if s.engine.IsPlatformAdmin(user) {
		return nil
	}
	return fmt.Errorf("%w: the operations screens are for PlatformAdmins", ErrForbidden)
}
