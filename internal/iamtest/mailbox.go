// Package iamtest holds test helpers shared by the module's test suites
// that use the Service: a Notifier that keeps the reset messages it is
// given, and for the example programs a terminal buffer (Buffer) and a
// runner (Start). It is for tests only.
package iamtest

import (
	"context"
	"sync"
	"testing"
	"time"

	iam "github.com/kiops/iam"
)

// Mailbox is an iam.Notifier that keeps every reset message it is given,
// so a test can read the token a person would have received. Safe for
// concurrent use.
type Mailbox struct {
	mu   sync.Mutex
	msgs []iam.ResetMessage
	got  chan struct{}
}

var _ iam.Notifier = (*Mailbox)(nil)

// NewMailbox returns an empty Mailbox.
func NewMailbox() *Mailbox { return &Mailbox{got: make(chan struct{}, 1000)} }

// PasswordReset keeps msg.
func (m *Mailbox) PasswordReset(_ context.Context, msg iam.ResetMessage) error {
	m.mu.Lock()
	m.msgs = append(m.msgs, msg)
	m.mu.Unlock()
	m.got <- struct{}{}
	return nil
}

// Next waits (up to 10 seconds) for the next message to arrive and
// returns the newest one kept. The Service delivers in the background, so
// a test calls Next after the call that sends.
func (m *Mailbox) Next(t testing.TB) iam.ResetMessage {
	t.Helper()
	select {
	case <-m.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no reset message arrived")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.msgs[len(m.msgs)-1]
}
