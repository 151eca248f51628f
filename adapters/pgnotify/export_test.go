package pgnotify

// BackendPID returns the server process id of the Listener's current
// connection, 0 when it has none, so that tests can terminate it.
func (l *Listener) BackendPID() uint32 { return l.pid.Load() }

// Jitter exposes jitter to the tests.
var Jitter = jitter
