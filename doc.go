// Package iam is KIOPS IAM: user and permission management that a KIOPS
// service embeds. It gives organizations, three roles (PlatformAdmin for
// the whole platform, Manager of one organization, Member with only what
// was granted), seven permission categories per member per organization
// (infra, service, backup, device, database, vpn, audit), and the checks
// that guard every feature page.
//
// # Layout
//
// The module is built from small packages with the domain at the centre
// and technology at the edges:
//
//   - [github.com/kiops/iam/authz]: roles, categories and ids; the Casbin
//     RBAC-with-domains model that specifies every decision; the Engine,
//     which answers checks from an exact in-memory index of the model's
//     rules without locks or allocations; the management rules of the
//     "Who may do what" table as pure functions.
//   - [github.com/kiops/iam/adapters/gormstore]: storage on any GORM
//     database (SQLite embedded by default, PostgreSQL in production):
//     Casbin's rule table through gorm-adapter, idempotent migrations,
//     one transaction per change, and streaming loads into the Engine.
//
// Domain packages never import GORM, an adapter or this root package; a
// test enforces it.
//
// # Consistency
//
// A change is written to the database in one transaction and applied to
// the in-memory Engine only after the commit succeeds, with the same
// absolute write ("u is a Member of o with vpn"), so a failed commit leaves
// memory untouched and a restart, which loads the stored rules, gives the
// same answers as the running process. Casbin stays the specification: a
// differential test checks the Engine against Casbin's Enforce on random
// policies, and authz.WithCasbinCrossCheck compares every decision at run
// time for deployments that want it.
//
// Reads of the audit log are audited too: AuditEvents and ExportAudit
// append an audit.view or audit.export event (the filter used) in a small
// transaction of their own once the reader is found allowed, and hand
// out nothing if it cannot be recorded; a refused read is recorded as
// denied, like every refusal. ExportAudit streams the log a page at a time
// to the audit package's CSV or JSON Lines exporter.
//
// The quickstart example (go run ./examples/quickstart) shows the pieces
// working together on an SQLite file.
package iam
