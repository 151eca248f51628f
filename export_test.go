package iam

import (
	"slices"

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
