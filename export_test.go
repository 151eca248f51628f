package iam

import (
	"context"
	"slices"

	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
)

// EngineRules returns the rules the Service's in-memory engine holds,
// sorted, for tests that compare memory with the database.
func (s *Service) EngineRules() []string {
	var out []string
	for r := range s.engine.Rules() {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

// Engine exposes the engine to tests.
func (s *Service) Engine() *authz.Engine { return s.engine }

// UnrecordedAuditEvents reads the whole audit log as f selects it (scope
// AllOrgs), newest first, straight from the store: unlike AuditEvents it
// records no audit.view event, so tests can look at the log without
// adding to it.
func (s *Service) UnrecordedAuditEvents(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	f.AllOrgs, f.Orgs = true, nil
	return s.store.Audit().Events(ctx, f)
}

// SyncChannel is the notification channel of the Service's store.
func (s *Service) SyncChannel() string { return s.store.Channel() }
