package iam

import (
	"context"
	"fmt"
	"time"

	"github.com/kiops/iam/audit"
)

// VerifyAudit walks the whole audit log oldest first and checks its hash
// chain (audit.Verify): every event's hash matches its contents and links
// to the event before it. The result's Break names the first broken event
// (its ID and what is wrong: changed, unlinked, …), nil when the log is
// intact; its Head is a checkpoint of what was verified. VerifyAudit is an
// operator's call, not a management operation: it takes no actor and
// records no event, so expose it only to operators (iamctl, an operations
// screen behind CheckOperations).
//
// The log is streamed from one query, never held in memory. Errors (a
// database failure, a closed Service) are wrapped with "iam: verify
// audit"; a broken chain is not an error. Safe for concurrent use, also
// while operations append events.
func (s *Service) VerifyAudit(ctx context.Context) (audit.VerifyResult, error) {
	return s.VerifyAuditCheckpoint(ctx, audit.Checkpoint{})
}

// VerifyAuditCheckpoint is VerifyAudit that also checks the log against
// cp, a checkpoint taken earlier with AuditCheckpoint and kept apart from
// the database: if cp's event is gone (the tail was deleted) the Break is
// audit.Truncated at cp.ID, and if it holds another hash, audit.Rewritten.
// The zero Checkpoint checks nothing more than VerifyAudit.
func (s *Service) VerifyAuditCheckpoint(ctx context.Context, cp audit.Checkpoint) (audit.VerifyResult, error) {
	if s.closed.Load() {
		return audit.VerifyResult{}, fmt.Errorf("iam: verify audit: %w", errClosed)
	}
	res, err := s.store.VerifyAuditCheckpoint(ctx, cp)
	if err != nil {
		return res, fmt.Errorf("iam: verify audit: %w", err)
	}
	return res, nil
}

// AuditCheckpoint returns the head of the audit log now: the ID and hash
// of its newest event (ID 0 and audit.Genesis when empty), At the
// Service's clock. Export it (it encodes as JSON) and keep it apart from
// the database; VerifyAuditCheckpoint then detects a later truncation. It
// does not verify the log. Operator's call: no actor, no event. Errors are
// wrapped with "iam: audit checkpoint". Safe for concurrent use.
func (s *Service) AuditCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	if s.closed.Load() {
		return audit.Checkpoint{}, fmt.Errorf("iam: audit checkpoint: %w", errClosed)
	}
	cp, err := s.store.AuditHead(ctx)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("iam: audit checkpoint: %w", err)
	}
	cp.At = s.cfg.now().UTC().Truncate(time.Microsecond)
	return cp, nil
}
