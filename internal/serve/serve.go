// Package serve runs the HTTP servers of the module's example programs:
// listen, serve until the context ends, then shut down gracefully. Both
// examples/apiserver and examples/console use it, so that their timeouts
// and shutdown behave alike.
package serve

import (
	"context"
	"crypto/tls"
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
// returns nil after a clean shutdown. With c.TLSCert and c.TLSKey it
// serves HTTPS (TLS 1.2 and later) and nothing else on c.Addr; their
// files are read before it listens, so a wrong path fails at once.
func Run(ctx context.Context, c Config) error {
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		TLSConfig:         tlsConfig,
		Handler:           c.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn),
	}
	scheme, serve := "http", srv.Serve
	if tlsConfig != nil {
		scheme, serve = "https", func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	c.Log.Info(c.Name+": serving", "url", scheme+"://"+ln.Addr().String(), "db", dbopen.Redact(c.DB))
	if c.Listening != nil {
		c.Listening(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- serve(ln) }()
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

// tlsConfig loads f's certificate and key: nil, nil without them.
func (f Flags) tlsConfig() (*tls.Config, error) {
	if f.TLSCert == "" && f.TLSKey == "" {
		return nil, nil
	}
	if f.TLSCert == "" || f.TLSKey == "" {
		return nil, errors.New("give both --tls-cert and --tls-key, or neither")
	}
	cert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert and --tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
