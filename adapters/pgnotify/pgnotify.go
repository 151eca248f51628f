package pgnotify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/kiops/iam/authz"
)

// Default backoff bounds, used when Config leaves them zero.
const (
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// unlistenTimeout bounds the UNLISTEN that Close sends before returning the
// connection to the pool; past it the connection is closed instead, which
// ends the LISTEN just as well.
const unlistenTimeout = 2 * time.Second

// channelPattern is what Config.Channel must match: a lower-case unquoted
// PostgreSQL identifier of at most 63 bytes (NAMEDATALEN-1), so that the
// same name works in LISTEN and in pg_notify('<name>', ...) without any
// case folding or truncation surprise.
var channelPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Config configures a Listener. Channel and OnNotify are required; every
// other field's zero value is a documented default.
type Config struct {
	// Channel is the notification channel to LISTEN on. It must match
	// [a-z_][a-z0-9_]{0,62}.
	Channel string

	// OnNotify receives the payload of every notification on Channel. It
	// is called from the Listener's goroutine, one call at a time, in
	// arrival order; while it runs, further notifications wait in the
	// connection. It must not call Close (Close waits for this goroutine).
	// A panic in it is not recovered.
	OnNotify func(payload string)

	// OnConnect, if not nil, is called from the Listener's goroutine each
	// time LISTEN succeeds (the first connection and every reconnection),
	// before any notification received on that connection is passed to
	// OnNotify. Notifications sent while the Listener was not listening
	// are lost, so this is where the host catches up. It must not call
	// Close.
	OnConnect func()

	// MinBackoff and MaxBackoff bound the wait before a new connection
	// attempt: the first wait is about MinBackoff, each further failure
	// doubles it up to MaxBackoff, and each wait is drawn at random from
	// the upper half of the current step so that replicas cut off together
	// do not reconnect together. A successful LISTEN starts again from
	// MinBackoff. If zero, MinBackoff is 50ms and MaxBackoff is 5s (or
	// MinBackoff, if larger).
	MinBackoff, MaxBackoff time.Duration

	// Logger receives "pgnotify: listening", "pgnotify: connection lost"
	// (with the error and the delay before the next attempt),
	// "pgnotify: connect failed" (an attempt that did not reach LISTEN)
	// and "pgnotify: reconnected". If nil, slog.Default() is used.
	Logger *slog.Logger
}

// Status is the condition of a Listener's connection.
type Status int

// The statuses of a Listener, in the order a Listener first goes through
// them.
const (
	// Connecting: the Listener is taking a connection or waiting for the
	// next attempt; notifications sent now are not received.
	Connecting Status = iota + 1
	// Listening: LISTEN succeeded on the current connection.
	Listening
	// Closed: Close was called; the Listener holds no connection.
	Closed
)

// String returns "connecting", "listening" or "closed".
func (s Status) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Listening:
		return "listening"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// State is a snapshot of a Listener's connection.
type State struct {
	Status Status
	// Since is when Status last changed.
	Since time.Time
	// Err is the last error that ended a connection or failed an attempt,
	// nil if there was none. A reconnection does not clear it, so that a
	// Listening state still tells why the connection last dropped.
	Err error
}

// Listener keeps one connection of the host's pool LISTENing on a channel
// and calls a function for every notification, reconnecting with backoff.
// Its methods are safe for concurrent use.
type Listener struct {
	sqlDB      *sql.DB
	channel    string
	listenSQL  string
	onNotify   func(string)
	onConnect  func()
	minBackoff time.Duration
	maxBackoff time.Duration
	log        *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error // set by run before it closes done

	// everListened is whether a LISTEN ever succeeded; only run's
	// goroutine touches it.
	everListened bool

	mu    sync.Mutex
	state State

	// pid is the server process id of the current connection, 0 when
	// there is none; tests use it to kill the connection.
	pid atomic.Uint32
}

// Start checks its arguments and starts the Listener's goroutine. It
// returns at once: the first connection is made in the background (watch
// State, or wait for OnConnect). The db must be GORM's postgres driver
// over pgx (the driver's default); a nil db, any other dialect or driver, an
// invalid Channel, a nil OnNotify or negative or inverted backoff bounds
// return an error matching authz.ErrInvalid (an *authz.InvalidError), and
// nothing is started. Call Close to stop it, before closing db.
func Start(db *gorm.DB, cfg Config) (*Listener, error) {
	if db == nil || db.Dialector == nil {
		return nil, &authz.InvalidError{Field: "db", Reason: "is nil"}
	}
	if name := db.Dialector.Name(); name != "postgres" {
		return nil, &authz.InvalidError{Field: "db", Value: name, Reason: "pgnotify needs PostgreSQL"}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, &authz.InvalidError{Field: "db", Value: err.Error(), Reason: "has no connection pool of its own (a transaction?)"}
	}
	// Checked here rather than on the first connection, so that a host
	// on another driver (lib/pq, a tracing wrapper) learns it at once
	// instead of from a loop of failed attempts in its log.
	if _, ok := sqlDB.Driver().(*stdlib.Driver); !ok {
		return nil, &authz.InvalidError{Field: "db", Value: fmt.Sprintf("%T", sqlDB.Driver()), Reason: "pgnotify needs the pgx driver (github.com/jackc/pgx/v5/stdlib)"}
	}
	if !channelPattern.MatchString(cfg.Channel) {
		return nil, &authz.InvalidError{Field: "channel", Value: cfg.Channel, Reason: "must match [a-z_][a-z0-9_]{0,62}"}
	}
	if cfg.OnNotify == nil {
		return nil, &authz.InvalidError{Field: "OnNotify", Reason: "is required"}
	}
	minB, maxB := cfg.MinBackoff, cfg.MaxBackoff
	if minB < 0 || maxB < 0 {
		return nil, &authz.InvalidError{Field: "backoff", Value: fmt.Sprintf("%v..%v", minB, maxB), Reason: "must not be negative"}
	}
	if minB == 0 {
		minB = DefaultMinBackoff
	}
	if maxB == 0 {
		maxB = max(DefaultMaxBackoff, minB)
	}
	if minB > maxB {
		return nil, &authz.InvalidError{Field: "backoff", Value: fmt.Sprintf("%v..%v", minB, maxB), Reason: "MinBackoff exceeds MaxBackoff"}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		sqlDB:   sqlDB,
		channel: cfg.Channel,
		// The pattern above already excludes anything that needs
		// quoting; Sanitize is the second lock on the same door.
		listenSQL:  "LISTEN " + pgx.Identifier{cfg.Channel}.Sanitize(),
		onNotify:   cfg.OnNotify,
		onConnect:  cfg.OnConnect,
		minBackoff: minB,
		maxBackoff: maxB,
		log:        logger.With("channel", cfg.Channel),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		state:      State{Status: Connecting, Since: time.Now()},
	}
	go l.run()
	return l, nil
}

// State returns the Listener's current state.
func (l *Listener) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *Listener) setState(s Status, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s != l.state.Status {
		l.state.Status = s
		l.state.Since = time.Now()
	}
	if err != nil {
		l.state.Err = err
	}
}

// Close stops the Listener and waits until its goroutine has ended, which
// includes waiting for a callback that is running to return: no callback
// runs after Close returns. It sends UNLISTEN and returns the
// connection to the pool, or closes the connection when that fails. Close
// is idempotent; it returns nil, or the error of closing a connection that
// could not be returned. It must not be called from OnNotify or OnConnect.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.done
		l.setState(Closed, nil)
	})
	return l.closeErr
}

// errCloseFailed marks an error of returning or closing the connection at
// Close, the only error Close reports: the others were the connection's
// own and were logged and retried.
var errCloseFailed = errors.New("pgnotify: close connection")

// run is the Listener's goroutine: connect, listen until the connection
// fails, wait, and again, until Close.
func (l *Listener) run() {
	defer close(l.done)
	backoff := l.minBackoff
	for {
		listened, err := l.listen()
		if l.ctx.Err() != nil {
			if errors.Is(err, errCloseFailed) {
				l.closeErr = err
			}
			return
		}
		if listened {
			backoff = l.minBackoff
		}
		delay := jitter(backoff)
		if listened {
			l.log.Warn("pgnotify: connection lost", "err", err, "retry_in", delay)
		} else {
			l.log.Warn("pgnotify: connect failed", "err", err, "retry_in", delay)
		}
		l.setState(Connecting, err)
		t := time.NewTimer(delay)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, l.maxBackoff)
	}
}

// jitter returns a random duration in [d/2, d]: replicas that lost the
// server together spread their attempts, and the wait still grows.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}

// listen runs one connection: it takes a connection from the pool, LISTENs,
// calls OnConnect, delivers notifications until the connection fails or
// Close cancels l.ctx, and gives the connection back (after UNLISTEN) or
// discards it. listened reports whether LISTEN succeeded. The error is nil
// only after a clean Close.
func (l *Listener) listen() (listened bool, err error) {
	conn, err := l.sqlDB.Conn(l.ctx)
	if err != nil {
		return false, err
	}
	var cause error // the real error behind a driver.ErrBadConn
	rawErr := conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			cause = fmt.Errorf("pgnotify: driver connection is %T, not pgx", dc)
			return cause
		}
		c := sc.Conn()
		// A connection reused from the pool may carry notifications
		// buffered for a previous user; they predate this LISTEN.
		drain(c)
		if _, err := c.Exec(l.ctx, l.listenSQL); err != nil {
			cause = fmt.Errorf("pgnotify: listen: %w", err)
			return driver.ErrBadConn
		}
		listened = true
		l.pid.Store(c.PgConn().PID())
		defer l.pid.Store(0)
		l.connected()
		for {
			n, err := c.WaitForNotification(l.ctx)
			if l.ctx.Err() != nil {
				return l.unlisten(c)
			}
			if err != nil {
				cause = fmt.Errorf("pgnotify: wait for notification: %w", err)
				return driver.ErrBadConn
			}
			// The connection listens on one channel only; the check
			// keeps a stray LISTEN by someone else from reaching
			// OnNotify.
			if n != nil && n.Channel == l.channel {
				l.onNotify(n.Payload)
			}
		}
	})
	if cause != nil {
		err = cause
	} else {
		err = rawErr
	}
	// After driver.ErrBadConn, database/sql has closed the connection
	// already, and Close answers sql.ErrConnDone.
	if cerr := conn.Close(); cerr != nil && !errors.Is(cerr, sql.ErrConnDone) && err == nil {
		err = fmt.Errorf("%w: %w", errCloseFailed, cerr)
	}
	return listened, err
}

// connected records a successful LISTEN, logs it and runs OnConnect.
func (l *Listener) connected() {
	first := !l.everListened
	l.everListened = true
	l.setState(Listening, nil)
	if first {
		l.log.Info("pgnotify: listening", "pid", l.pid.Load())
	} else {
		l.log.Info("pgnotify: reconnected", "pid", l.pid.Load())
	}
	if l.onConnect != nil {
		l.onConnect()
	}
}

// unlisten ends the LISTEN so that the connection can go back to the pool
// clean; if it cannot, the connection is marked bad and database/sql closes
// it, which ends the LISTEN too.
func (l *Listener) unlisten(c *pgx.Conn) error {
	if c.IsClosed() {
		return driver.ErrBadConn
	}
	ctx, cancel := context.WithTimeout(context.Background(), unlistenTimeout)
	defer cancel()
	if _, err := c.Exec(ctx, "UNLISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return driver.ErrBadConn
	}
	// Notifications that arrived before the UNLISTEN took effect are
	// buffered in the connection; the next user of it must not see them.
	drain(c)
	return nil
}

// drain discards the notifications pgx has buffered in c, without I/O: with
// a context already done, WaitForNotification returns buffered ones and
// then an error, before touching the network.
func drain(c *pgx.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if n, err := c.WaitForNotification(ctx); n == nil || err != nil {
			return
		}
	}
}
