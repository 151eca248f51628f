package iamtest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/serve"
)

// Buffer is a bytes.Buffer safe for concurrent use: the terminal of a
// program under test, written by its goroutines while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs an example program's run function in the background, as its
// main would, and returns the base URL it serves and a function that
// stops it (as SIGINT would) and returns run's error. run must call
// listening with the address once it listens.
func Start(t testing.TB, run func(ctx context.Context, listening func(net.Addr)) error) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(a net.Addr) { addr <- a }) }()
	select {
	case a := <-addr:
		return "http://" + a.String(), func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the program did not start")
	}
	return "", nil
}

// StartProgram runs an example program (run is its serve.Program.Run) on f in the
// background (see Start): on a free loopback port, with a quiet log, a
// cheap password hasher and a short shutdown, writing its terminal to term.
func StartProgram(t *testing.T, f serve.Flags, term io.Writer,
	run func(ctx context.Context, f serve.Flags, term io.Writer, log *slog.Logger, opts ...iam.Option) error) (string, func() error) {
	t.Helper()
	f.Addr, f.ShutdownTimeout = "127.0.0.1:0", 5*time.Second
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return Start(t, func(ctx context.Context, listening func(net.Addr)) error {
		f.Listening = listening
		return run(ctx, f, term, quiet, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	})
}
