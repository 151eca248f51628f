package pgnotify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/pgnotify"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// newChannel returns a channel name no other test uses: NOTIFY reaches
// every session of the database, whatever its schema.
func newChannel(t *testing.T) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	return "pgnotify_test_" + hex.EncodeToString(b[:])
}

// recorder collects what the callbacks saw, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) count(e string) int {
	n := 0
	for _, x := range r.snapshot() {
		if x == e {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// notify sends payloads on ch in one committed transaction of db.
func notify(t *testing.T, db *gorm.DB, ch string, payloads ...string) {
	t.Helper()
	err := db.Transaction(func(tx *gorm.DB) error {
		for _, p := range payloads {
			if err := tx.Exec("SELECT pg_notify(?, ?)", ch, p).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("notify: %v", err)
	}
}

// lockedBuffer is a log destination safe for the Listener's goroutine and
// the test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start starts a Listener on db that records "connect" and "n:<payload>"
// into rec, and closes it in t.Cleanup (before dbtest closes db).
func start(t *testing.T, db *gorm.DB, ch string, rec *recorder, cfg pgnotify.Config) *pgnotify.Listener {
	t.Helper()
	cfg.Channel = ch
	cfg.OnNotify = func(p string) { rec.add("n:" + p) }
	if cfg.OnConnect == nil {
		cfg.OnConnect = func() { rec.add("connect") }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))
	}
	l, err := pgnotify.Start(db, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func waitListening(t *testing.T, l *pgnotify.Listener) {
	t.Helper()
	waitFor(t, "listening", 10*time.Second, func() bool { return l.State().Status == pgnotify.Listening })
}

// setup opens the Listener's database, with a pool of at most maxOpen
// connections when maxOpen > 0, and a sender's database (another pool, so
// that sending never waits for the Listener's), and returns a fresh channel.
func setup(t *testing.T, maxOpen int) (db, sender *gorm.DB, ch string) {
	t.Helper()
	db = dbtest.Open(t, dbtest.Postgres)
	if maxOpen > 0 {
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.SetMaxOpenConns(maxOpen)
	}
	return db, dbtest.Open(t, dbtest.Postgres), newChannel(t)
}

func TestDeliveryOnlyCommittedExactlyOnceInOrder(t *testing.T) {
	t.Parallel()
	db, sender, ch := setup(t, 0)
	var rec recorder
	l := start(t, db, ch, &rec, pgnotify.Config{})
	waitListening(t, l)

	var want []string
	for i := range 20 {
		p := fmt.Sprintf("a%d", i)
		notify(t, sender, ch, p)
		want = append(want, "n:"+p)
	}
	notify(t, sender, ch, "b0", "b1", "b2")
	want = append(want, "n:b0", "n:b1", "n:b2")

	// A rolled-back transaction notifies nobody.
	rollback := errors.New("roll back")
	err := sender.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_notify(?, ?)", ch, "rolledback").Error; err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("rolled-back transaction: %v", err)
	}

	// An open transaction's notification waits for its commit.
	tx := sender.Begin()
	if err := tx.Exec("SELECT pg_notify(?, ?)", ch, "late").Error; err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := rec.count("n:late"); n != 0 {
		t.Fatalf("notification of an uncommitted transaction delivered %d times", n)
	}
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	want = append(want, "n:late")

	notify(t, sender, ch, "end")
	want = append(want, "n:end")
	waitFor(t, "the last notification", 10*time.Second, func() bool { return rec.count("n:end") == 1 })
	// Room for a duplicate or the rolled-back one to show up.
	time.Sleep(100 * time.Millisecond)
	want = append([]string{"connect"}, want...)
	if got := rec.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func TestOnConnectRunsBeforeDelivery(t *testing.T) {
	t.Parallel()
	db, sender, ch := setup(t, 0)
	var rec recorder
	start(t, db, ch, &rec, pgnotify.Config{OnConnect: func() {
		// LISTEN is in force: this notification reaches the connection
		// while OnConnect still runs, and must wait for it.
		notify(t, sender, ch, "during-connect")
		time.Sleep(200 * time.Millisecond)
		rec.add("connect")
	}})
	waitFor(t, "the notification", 10*time.Second, func() bool { return rec.count("n:during-connect") == 1 })
	if got, want := rec.snapshot(), []string{"connect", "n:during-connect"}; !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

// listeners counts the server sessions whose last statement was this
// channel's LISTEN.
func listeners(t *testing.T, db *gorm.DB, ch string) int {
	t.Helper()
	var n int
	if err := db.Raw("SELECT count(*) FROM pg_stat_activity WHERE query = ?", `LISTEN "`+ch+`"`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReconnectAfterBackendKilled(t *testing.T) {
	t.Parallel()
	// One connection: the reconnection can only succeed if the killed
	// connection went back to database/sql as bad and was closed.
	db, sender, ch := setup(t, 1)
	var rec recorder
	var logs lockedBuffer
	l := start(t, db, ch, &rec, pgnotify.Config{
		// Long enough for the test to see Connecting.
		MinBackoff: 400 * time.Millisecond,
		MaxBackoff: 800 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
	})
	waitListening(t, l)
	first := l.State()
	if first.Err != nil {
		t.Fatalf("first state: Err = %v, want nil", first.Err)
	}
	pid := l.BackendPID()
	if pid == 0 {
		t.Fatal("no backend pid while listening")
	}
	if n := listeners(t, sender, ch); n != 1 {
		t.Fatalf("%d sessions listen, want 1", n)
	}
	notify(t, sender, ch, "before")
	waitFor(t, "before", 10*time.Second, func() bool { return rec.count("n:before") == 1 })

	var killed bool
	if err := sender.Raw("SELECT pg_terminate_backend(?)", pid).Scan(&killed).Error; err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
	}
	waitFor(t, "connecting", 5*time.Second, func() bool { return l.State().Status == pgnotify.Connecting })
	if st := l.State(); st.Err == nil || !st.Since.After(first.Since) {
		t.Fatalf("state after the kill = %+v, want an error and a later Since", st)
	}
	waitListening(t, l)
	if got := l.BackendPID(); got == pid || got == 0 {
		t.Fatalf("backend pid after reconnect = %d, was %d", got, pid)
	}
	if st := l.State(); st.Err == nil {
		t.Fatal("reconnected state forgot why the connection dropped")
	}
	if n := rec.count("connect"); n != 2 {
		t.Fatalf("OnConnect ran %d times, want 2", n)
	}
	if n := listeners(t, sender, ch); n != 1 {
		t.Fatalf("%d sessions listen after the reconnection, want 1", n)
	}
	notify(t, sender, ch, "after")
	waitFor(t, "after", 10*time.Second, func() bool { return rec.count("n:after") == 1 })
	want := []string{"connect", "n:before", "connect", "n:after"}
	if got := rec.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	out := logs.String()
	for _, msg := range []string{"pgnotify: listening", "pgnotify: connection lost", "retry_in=", "pgnotify: reconnected"} {
		if !strings.Contains(out, msg) {
			t.Errorf("log lacks %q:\n%s", msg, out)
		}
	}
}

func TestCloseReleasesConnectionAndStops(t *testing.T) {
	t.Parallel()
	db, sender, ch := setup(t, 1)
	var rec recorder
	l := start(t, db, ch, &rec, pgnotify.Config{})
	waitListening(t, l)
	pid := l.BackendPID()

	for i := range 2 {
		if err := l.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if st := l.State(); st.Status != pgnotify.Closed {
		t.Fatalf("state after Close = %v", st.Status)
	}
	notify(t, sender, ch, "after-close")
	time.Sleep(300 * time.Millisecond)
	if got := rec.snapshot(); !slices.Equal(got, []string{"connect"}) {
		t.Fatalf("events after Close = %q", got)
	}

	// The pool's only connection is free again, and it is the
	// listener's, back from the pool with its LISTEN undone.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got struct {
		Pid       uint32
		Listening int
	}
	if err := db.WithContext(ctx).Raw("SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM pg_listening_channels()) AS listening").Scan(&got).Error; err != nil {
		t.Fatalf("query after Close: %v", err)
	}
	if got.Pid != pid || got.Listening != 0 {
		t.Fatalf("after Close: backend %d listening on %d channels; want backend %d listening on none", got.Pid, got.Listening, pid)
	}
}

func TestCloseWhileWaitingForAConnection(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, dbtest.Postgres)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	held, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var rec recorder
	l := start(t, db, newChannel(t), &rec, pgnotify.Config{})
	time.Sleep(100 * time.Millisecond)
	if st := l.State(); st.Status != pgnotify.Connecting {
		t.Fatalf("state without a free connection = %v", st.Status)
	}
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while the listener waits for a connection")
	}
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("events = %q, want none", got)
	}
}

func TestStartRejectsBadInput(t *testing.T) {
	t.Parallel()
	notifyFn := func(string) {}
	check := func(t *testing.T, db *gorm.DB, cfg pgnotify.Config, field string) {
		t.Helper()
		l, err := pgnotify.Start(db, cfg)
		if l != nil || !errors.Is(err, authz.ErrInvalid) {
			t.Fatalf("Start = %v, %v; want nil, ErrInvalid", l, err)
		}
		var ie *authz.InvalidError
		if !errors.As(err, &ie) || ie.Field != field {
			t.Fatalf("error %v is not an *authz.InvalidError on %q", err, field)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		check(t, dbtest.Open(t, dbtest.SQLiteMemory), pgnotify.Config{Channel: "ok", OnNotify: notifyFn}, "db")
	})
	t.Run("nil db", func(t *testing.T) {
		t.Parallel()
		check(t, nil, pgnotify.Config{Channel: "ok", OnNotify: notifyFn}, "db")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db := dbtest.Open(t, dbtest.Postgres)
		for _, tc := range []struct {
			name  string
			cfg   pgnotify.Config
			field string
		}{
			{"empty channel", pgnotify.Config{OnNotify: notifyFn}, "channel"},
			{"upper case", pgnotify.Config{Channel: "Policy", OnNotify: notifyFn}, "channel"},
			{"leading digit", pgnotify.Config{Channel: "1policy", OnNotify: notifyFn}, "channel"},
			{"hyphen", pgnotify.Config{Channel: "kiops-iam", OnNotify: notifyFn}, "channel"},
			{"injection", pgnotify.Config{Channel: `x"; DROP TABLE t; --`, OnNotify: notifyFn}, "channel"},
			{"64 bytes", pgnotify.Config{Channel: strings.Repeat("a", 64), OnNotify: notifyFn}, "channel"},
			{"trailing newline", pgnotify.Config{Channel: "policy\n", OnNotify: notifyFn}, "channel"},
			{"nil OnNotify", pgnotify.Config{Channel: "policy"}, "OnNotify"},
			{"negative backoff", pgnotify.Config{Channel: "policy", OnNotify: notifyFn, MinBackoff: -time.Second}, "backoff"},
			{"min above max", pgnotify.Config{Channel: "policy", OnNotify: notifyFn, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "backoff"},
		} {
			t.Run(tc.name, func(t *testing.T) { check(t, db, tc.cfg, tc.field) })
		}
		// The longest valid name is accepted.
		l, err := pgnotify.Start(db, pgnotify.Config{Channel: strings.Repeat("a", 63), OnNotify: notifyFn, Logger: slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))})
		if err != nil {
			t.Fatalf("63-byte channel: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestJitterStaysInUpperHalf(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{1, 2, 50 * time.Millisecond, 5 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 1000 {
			j := pgnotify.Jitter(d)
			if j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v, outside [%v, %v]", d, j, d/2, d)
			}
			seen[j] = true
		}
		if d >= 50*time.Millisecond && len(seen) < 100 {
			t.Errorf("jitter(%v) never varies", d)
		}
	}
}

func TestStatusString(t *testing.T) {
	t.Parallel()
	for s, want := range map[pgnotify.Status]string{
		pgnotify.Connecting: "connecting",
		pgnotify.Listening:  "listening",
		pgnotify.Closed:     "closed",
		pgnotify.Status(0):  "Status(0)",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestConnectFailuresBackOff(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; gorm must not ping it at Open.
	db, err := gorm.Open(postgres.Open("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"), &gorm.Config{DisableAutomaticPing: true})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() }) // after the Listener's Close, registered later
	var rec recorder
	var logs lockedBuffer
	l := start(t, db, newChannel(t), &rec, pgnotify.Config{
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond,
		Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	failures := func() int { return strings.Count(logs.String(), `"msg":"pgnotify: connect failed"`) }
	waitFor(t, "five failed attempts", 10*time.Second, func() bool { return failures() >= 5 })
	if st := l.State(); st.Status != pgnotify.Connecting || st.Err == nil {
		t.Fatalf("state = %+v, want Connecting with an error", st)
	}
	var delays []time.Duration
	for line := range strings.Lines(logs.String()) {
		var entry struct {
			Msg     string
			RetryIn time.Duration `json:"retry_in"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delays = append(delays, entry.RetryIn)
	}
	// 10ms, 20ms, 40ms, 40ms...: each in the upper half of its step.
	for i, d := range delays[:5] {
		step := min(10*time.Millisecond<<i, 40*time.Millisecond)
		if d < step/2 || d > step {
			t.Errorf("retry %d waited %v, want within [%v, %v]; all: %v", i, d, step/2, step, delays)
		}
	}
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("callbacks ran without a connection: %q", got)
	}
}
