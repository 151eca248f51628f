// Package audit is the audit log of every change: who did what, to whom,
// in which org, when, from where, whether it was allowed, and what changed.
// It is what the Audit Log page shows and what the "Accountability
// Tracking in Audits" promise rests on.
//
// # Recording
//
// Every management operation of the Service records one [Event]: a
// successful one inside the same database transaction as the change, so
// the event commits with the change or not at all; a denied one (outcome
// [Denied]) in a small transaction of its own, and nothing else is written.
// The Service builds the event with [NewEvent], fills in the target, org
// and client address, describes the change with [Event.SetChange], marks
// a refusal with [Event.Deny], and appends it with [Store.Append], which
// checks it with [Event.Validate] and assigns its ID.
//
// Each [Action] has a fixed dotted name ("member.categories.set"); whether
// it succeeded is the [Outcome], so a failed login is [SessionLogin] with
// outcome Denied and the Reason "unauthenticated".
//
// # Describing a change
//
// Before and After are small JSON objects in the words of the product,
// holding only what changed, nil when there is nothing to say. Use these
// shapes, so that one auditor's query finds every change of one kind (ids
// are the module's opaque ids):
//
//	action                   target     org  before                         after
//	platform.bootstrap       new admin  -    nil                            {"role":"platformadmin"}
//	org.create               -          new  nil                            {"name":"Acme"}
//	org.rename               -          yes  {"name":"Acme"}                {"name":"Acme Corp"}
//	org.delete               -          yes  {"name":"Acme Corp"}           nil
//	registration.submit      requester  yes  nil                            {"request":"req_…","email":"…","name":"…"}
//	registration.approve     requester  yes  {"request":"req_…","status":"pending"}  {"request":"req_…","status":"approved","role":"member"}
//	registration.reject      requester  yes  {"request":"req_…","status":"pending"}  {"request":"req_…","status":"rejected","reason":"…"}
//	member.role.change       member     yes  {"role":"member"}              {"role":"manager"}
//	member.categories.set    member     yes  {"categories":["infra"]}       {"categories":["infra","vpn"]}
//	member.remove            member     yes  {"role":"member","categories":["infra"]}  nil
//	user.deactivate          user       -    {"status":"active"}            {"status":"deactivated"}
//	user.reactivate          user       -    {"status":"deactivated"}       {"status":"active"}
//	user.delete              user       -    {"email":"…","name":"…"}       nil
//	profile.name.change      self       -    {"name":"Ada"}                 {"name":"Ada Lovelace"}
//	profile.delete           self       -    {"email":"…","name":"…"}       nil
//	profile.password.change, password.reset.request, password.reset.issue,
//	password.reset.complete, session.login, session.logout:   nil, nil
//	audit.view, audit.export  -         if one  nil                         the filter used, e.g. {"action":"member.role.change"}
//	members.view, users.view, registrations.view: recorded only when refused (outcome denied), nil, nil
//	users.import             -          -    nil                            {"orgs":100,"users":10000,"rules":39000,"first_user":"usr_…","last_user":"usr_…"}
//
// A password change or reset records that it happened, never the password,
// its hash or a token: [Event.Validate] refuses any key naming a secret
// ("password", "hash", "token", "secret", …) at any depth, and string
// values that look like password hashes. A denied attempt may say in After
// what was attempted ({"role":"platformadmin"}); its Reason says why it was
// refused ([DenialReason]: the rule or the error kind, never internals).
//
// # Reading
//
// [Store.Events] returns the events a [Filter] selects, newest first, a
// page at a time with a cursor that stays stable while new events arrive.
// Who may read what is authz's rule ([authz.CanViewAudit]): PlatformAdmins
// every org, Managers their org, Members with the audit category their
// org. [Scope] turns the viewer's facts into the Filter's scope, org by
// org, through that rule. A Filter without a scope is refused, so a
// forgotten scope never reads as "everything"; events without an org
// (logins, profile changes, account-wide operations) are visible to
// PlatformAdmins only.
//
// # Export
//
// [Export] writes events, as an iter.Seq2 yields them, to an io.Writer in
// a [Format] parsed strictly with [ParseFormat] ("csv" or "jsonl"):
// [WriteCSV] (a header row, [CSVHeader], then one row per event) or
// [WriteJSONLines] (one event per line, the Event's JSON encoding). Both
// stream: one event in memory at a time, whatever the size of the log.
// Times are RFC 3339 in UTC with six fractional digits; PrevHash and Hash
// are exported too, so an export of the whole log, oldest first, passes
// [Verify]. Every CSV cell that a spreadsheet would read as a formula
// (starting with '=', '+', '-', '@', a tab or a carriage return), or that
// starts with an apostrophe, gets an apostrophe in front ([EscapeCell]);
// [UnescapeCell] gives the recorded value back exactly.
//
// # Determinism
//
// An event reads back exactly as it was appended: Time in UTC whole
// microseconds, Before and After byte for byte, as encoding/json wrote
// them (struct fields in order, map keys sorted). The hash chain and
// its verification build on that.
//
// # Tamper evidence
//
// The log is a hash chain. Every event carries PrevHash, the Hash of the
// event appended before it ([Genesis] for the first), and its own Hash:
//
//	Hash = SHA-256("kiops-iam-audit/v1" || PrevHash || canonical encoding)
//
// where the canonical encoding ([AppendCanonical]) is the version string
// and then the id, the time (RFC 3339 UTC, six fractional digits), actor,
// action, target, org, client address, outcome, reason, before and after,
// each preceded by its length as 4 big-endian bytes. A [Store] sets both
// fields in [Store.Append], under the same exclusion that orders the IDs,
// so concurrent writers and replicas never fork the chain.
//
// [Verify] walks the log oldest first and reports the first broken event
// in a [Break]: its ID and the [Problem]. Editing any field of an event
// is [Changed] at that event; deleting one is [Unlinked] at the one after
// it; inserting one, or moving one elsewhere, is Changed or Unlinked at it
// or the one after it. Cutting off the tail leaves a valid shorter chain,
// so export a [Checkpoint] (the head's ID and Hash at a time) now and
// then and keep it apart from the database: [VerifyWithCheckpoint] reports
// a log that no longer holds it ([Truncated], or [Rewritten] when the
// event is there with another hash). The chain has no key: someone who
// can rewrite the whole database can recompute it, which is what the
// checkpoints kept elsewhere guard against.
//
// Retention: a Store may prune the oldest events (a prefix of the log).
// What remains then starts at an event whose PrevHash is the Hash of the
// last pruned one, not Genesis: [VerifyFrom] verifies it from the
// Checkpoint of that event, which the operator keeps, signed off, as the
// record of what was pruned. The prune itself is recorded as an
// [AuditPrune] event.
//
// # Errors and concurrency
//
// Every error of this package matches one of the module's error kinds
// with errors.Is: malformed input is an [*authz.InvalidError]
// ([authz.ErrInvalid]), and [Scope] returns [authz.ErrForbidden] or
// [authz.ErrNotFound] as authz decides. The functions of this package are
// pure and safe for concurrent use; Stores are safe for concurrent use.
package audit
