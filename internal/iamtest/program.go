package iamtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// WaitFor returns the first match of re in what was written (with its
// submatches), waiting up to 10 seconds for it: the Service hands reset
// tokens to the Notifier in the background, after the call returns.
func (s *Buffer) WaitFor(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing matching %s on the terminal:\n%s", re, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
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
// The base URL is https:// when f has a TLS certificate (see TLSFiles).
func StartProgram(t *testing.T, f serve.Flags, term io.Writer,
	run func(ctx context.Context, f serve.Flags, term io.Writer, log *slog.Logger, opts ...iam.Option) error) (string, func() error) {
	t.Helper()
	f.Addr, f.ShutdownTimeout = "127.0.0.1:0", 5*time.Second
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	base, stop := Start(t, func(ctx context.Context, listening func(net.Addr)) error {
		f.Listening = listening
		return run(ctx, f, term, quiet, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	})
	if f.TLSCert != "" {
		base = "https" + strings.TrimPrefix(base, "http")
	}
	return base, stop
}

// TLSFiles writes a new self-signed certificate for 127.0.0.1 and its key
// as PEM files in a temporary directory, for serve.Flags' TLSCert and
// TLSKey, and returns a client that trusts that certificate only.
func TLSFiles(t testing.TB) (cert, key string, client *http.Client) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: der}, key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsed)
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(client.CloseIdleConnections)
	return cert, key, client
}
