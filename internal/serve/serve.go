// Package serve runs the HTTP servers of the module's example programs:
// listen, serve until the context ends, then shut down gracefully. Both
// examples/apiserver and examples/console use it, so that their timeouts
// and shutdown behave alike.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kiops/iam/internal/dbopen"
)

// Config is one server: an example program's Flags (Addr, DB,
// ShutdownTimeout, Listening) and what the program adds.
type Config struct {
	Flags
	// Name prefixes the log lines ("apiserver", "console").
	Name    string
	Handler http.Handler
	Log     *slog.Logger
	// WriteTimeout bounds writing a response; 0 means none (the apiserver
	// streams audit exports for as long as they take).
	WriteTimeout time.Duration
}

// Run serves c until ctx ends, then shuts down gracefully: it stops
// accepting, waits up to c.ShutdownTimeout for requests under way, and
// returns nil after a clean shutdown.
func Run(ctx context.Context, c Config) error {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           c.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn),
	}
	c.Log.Info(c.Name+": serving", "url", "http://"+ln.Addr().String(), "db", dbopen.Redact(c.DB))
	if c.Listening != nil {
		c.Listening(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	c.Log.Info(c.Name + ": shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Main is the end of an example program's main: it runs run with a
// context that SIGINT and SIGTERM end, the terminal (stderr) and a text
// logger on it, and exits with status 1 when run fails.
func Main(name string, run func(ctx context.Context, term io.Writer, log *slog.Logger) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Stderr, log)
	stop()
	if err != nil {
		log.Error(name + ": " + err.Error())
		os.Exit(1)
	}
}
