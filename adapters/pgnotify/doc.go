// Package pgnotify keeps one connection of the host's PostgreSQL pool
// LISTENing on a channel and hands every notification to a function, so that
// replicas sharing one database learn of each other's policy changes without
// an extra service (issue 7).
//
// # The connection
//
// [Start] takes the pool from the host's *gorm.DB (GORM's postgres driver,
// with pgx underneath) and holds one of its connections for as long as the
// [Listener] runs: a LISTEN is a property of a session, so the connection
// cannot go back to the pool between notifications. That connection counts
// against the pool's SetMaxOpenConns: a pool of n connections leaves n-1 to
// the rest of the program, including to the Listener's own callbacks. With
// SetMaxOpenConns(1), a callback that queries the same pool waits forever.
//
// # Losing the connection
//
// When the connection fails (a server restart, a network cut, an
// administrator's pg_terminate_backend), the Listener discards it (it is
// closed, never returned to the pool), logs "pgnotify: connection lost" with
// the error and the delay before the next attempt, and tries again with
// exponential backoff and jitter. Notifications sent while no connection
// LISTENs are lost: PostgreSQL queues them only for sessions that listen.
// That is why [Config.OnConnect] runs after every successful LISTEN and
// before any notification of that connection: it is where the host catches up
// on what it may have missed, for instance by re-reading a version number.
// Meanwhile the host keeps answering from its last state; [Listener.State]
// tells it, and its health checks, whether it is currently listening.
//
// # Payloads
//
// PostgreSQL delivers a notification only when the sending transaction
// commits, never for one rolled back, and folds identical (channel, payload)
// pairs sent in one transaction into one. A payload must be shorter than 8000 bytes;
// send a version or an id, not the change itself.
package pgnotify
