package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/textcheck"
)

// Bounds of an event's fields. Events are records of what happened, not a
// place for documents: anything longer is a bug of the caller.
const (
	// MaxReasonLen is the longest Reason, in Unicode code points.
	MaxReasonLen = 500
	// MaxClientAddrLen is the longest ClientAddr, in bytes (an IPv6
	// address with a zone and a port takes about 60).
	MaxClientAddrLen = 128
	// MaxChangeLen is the longest Before or After, in bytes of JSON.
	MaxChangeLen = 16 << 10
)

// Event is one recorded action: who did what, to whom, in which org, when,
// from where, whether it happened, and what changed. An Event is a value:
// the functions of this package never keep or modify one given to them
// (Before and After are not retained beyond the call), so Events may be
// shared between goroutines as long as nobody writes to their slices.
//
// The JSON form (the struct tags) is deterministic for a given Event, and
// so is every field's stored form: Time is in UTC whole microseconds and
// Before and After are stored byte for byte, so an event reads back equal
// to what was appended.
type Event struct {
	// ID is assigned by the Store when the event is appended: positive,
	// and greater than the ID of every event appended before. Zero until
	// then.
	ID int64 `json:"id"`
	// Time is when the action happened, in UTC whole microseconds.
	Time time.Time `json:"time"`
	// Actor is who acted; empty when nobody was authenticated (a failed
	// login, a forgot-password request).
	Actor authz.UserID `json:"actor,omitempty"`
	// Action is what was done.
	Action Action `json:"action"`
	// Target is the person acted on, if any (the member whose role
	// changed, the requester of a registration, the actor themselves on
	// the Profile page).
	Target authz.UserID `json:"target,omitempty"`
	// Org is the org acted in, if any. The audit log's scope is by Org: an
	// event without one is visible only to PlatformAdmins.
	Org authz.OrgID `json:"org,omitempty"`
	// ClientAddr is the client's network address when known, as the HTTP
	// layer determined it.
	ClientAddr string `json:"client_addr,omitempty"`
	// Outcome is Success or Denied.
	Outcome Outcome `json:"outcome"`
	// Reason says why a Denied action was refused: an error kind or the
	// rule that refused it (see DenialReason), never internals. Empty for
	// Success.
	Reason string `json:"reason,omitempty"`
	// Before and After describe what changed, each a JSON object or nil
	// when there is nothing to say (see SetChange and the package
	// documentation). They never hold secrets: Validate refuses keys that
	// name one.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`

	// PrevHash and Hash chain the log (see ChainHash): PrevHash is the
	// Hash of the event appended before this one (Genesis for the first),
	// and Hash is ChainHash(PrevHash, this event). The Store sets both
	// when it appends the event, under the same exclusion that orders IDs,
	// so the chain never forks; they are zero until then.
	PrevHash Hash `json:"prev_hash,omitzero"`
	Hash     Hash `json:"hash,omitzero"`
}

// NewEvent returns an event of action by actor, with outcome Success and
// Time set to at in UTC, truncated to whole microseconds (what every
// database stores exactly). Set the other fields by name, describe the
// change with SetChange, and call Deny for a refused action. NewEvent
// checks nothing; Validate (which Store.Append calls) does.
func NewEvent(at time.Time, actor authz.UserID, action Action) Event {
	return Event{Time: at.UTC().Truncate(time.Microsecond), Actor: actor, Action: action, Outcome: Success}
}

// SetChange sets e.Before and e.After to the JSON encodings of before and
// after (encoding/json, so struct fields in declaration order and map keys
// sorted: one value, one encoding). A nil value, or one that encodes to
// null, means nothing to say. Each must encode to a JSON object no longer
// than MaxChangeLen holding no key that names a secret (see Validate);
// otherwise SetChange returns an *authz.InvalidError and leaves e as it
// was.
//
// Describe a change with the smallest object that shows it, in the words
// of the product: {"role":"member"} → {"role":"manager"}, or
// {"categories":["infra"]} → {"categories":["infra","vpn"]} (pass
// CategorySet.Slice(), whose elements encode as names).
func (e *Event) SetChange(before, after any) error {
	b, err := encodeChange("audit event before", before)
	if err != nil {
		return err
	}
	a, err := encodeChange("audit event after", after)
	if err != nil {
		return err
	}
	e.Before, e.After = b, a
	return nil
}

func encodeChange(field string, v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, invalid(field, fmt.Sprintf("%T", v), "cannot encode as JSON")
	}
	if string(raw) == "null" {
		return nil, nil
	}
	if err := checkChange(field, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Deny marks e as refused because of err: Outcome Denied and Reason
// DenialReason(err).
func (e *Event) Deny(err error) {
	e.Outcome, e.Reason = Denied, DenialReason(err)
}

// DenialReason returns the Reason a denied event records for err: the
// message of the management rule that refused (an *authz.RuleError, such
// as authz.ErrSelfRoleChange or "a Manager cannot manage a PlatformAdmin"),
// the missing categories of an *authz.InsufficientPermissionsError, the
// field and reason of an *authz.InvalidError (never the offending value,
// which may be anything a user typed), or else the error's kind:
// "forbidden", "not found", "conflict", "unauthenticated", "invalid
// input", and "error" for an error of no kind. It never returns err's own
// text, which may carry internals. DenialReason(nil) is "", which Validate
// refuses for a denied event.
func DenialReason(err error) string {
	if err == nil {
		return ""
	}
	var rule *authz.RuleError
	if errors.As(err, &rule) {
		return oneLine(strings.TrimPrefix(rule.Error(), "authz: "), MaxReasonLen)
	}
	var ipe *authz.InsufficientPermissionsError
	if errors.As(err, &ipe) {
		return "insufficient permissions: missing " + ipe.Missing.String()
	}
	var ie *authz.InvalidError
	if errors.As(err, &ie) {
		return oneLine("invalid "+ie.Field+": "+ie.Reason, MaxReasonLen)
	}
	for _, k := range []struct {
		kind error
		name string
	}{
		{authz.ErrUnauthenticated, "unauthenticated"},
		{authz.ErrForbidden, "forbidden"},
		{authz.ErrNotFound, "not found"},
		{authz.ErrConflict, "conflict"},
		{authz.ErrInvalid, "invalid input"},
	} {
		if errors.Is(err, k.kind) {
			return k.name
		}
	}
	return "error"
}

// oneLine returns s without what badText refuses (invalid UTF-8 becomes
// U+FFFD, control and bidirectional-formatting characters a space),
// shortened to at most n code points.
func oneLine(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if n == 0 {
			break
		}
		if textcheck.Unsafe(r) {
			r = ' '
		}
		b.WriteRune(r)
		n--
	}
	return b.String()
}

// Validate checks that e can be stored:
//   - Time is non-zero and in whole microseconds;
//   - Action is a declared Action, Outcome is Success or Denied;
//   - Actor, Target and Org are empty or canonical ids;
//   - ClientAddr is at most MaxClientAddrLen bytes of text;
//   - Reason is at most MaxReasonLen code points of text, non-empty for a
//     Denied event and empty for a Success;
//   - Before and After are nil or a JSON object of at most MaxChangeLen
//     bytes, valid UTF-8, with no duplicate keys, no key that names a
//     secret (one containing "password", "passwd", "hash", "token",
//     "secret" or "salt", in any case, at any depth) and no string value
//     that looks like a password hash ("$argon2…", "$2a$…").
//
// "Text" is valid UTF-8 without control or bidirectional-formatting
// characters, so a field is one line in logs and exports. Validate does
// not look at ID, PrevHash and Hash, which the Store sets. Anything else
// is an *authz.InvalidError matching authz.ErrInvalid, which never
// repeats Before or After.
func (e Event) Validate() error {
	switch {
	case e.Time.IsZero():
		return invalid("audit event time", "", "missing")
	case e.Time.Nanosecond()%1000 != 0:
		return invalid("audit event time", e.Time.Format(time.RFC3339Nano), "not in whole microseconds")
	case e.Time.UTC().Year() > 9999 || e.Time.UTC().Year() < 1:
		// RFC 3339, the exports' time format, has four-digit years: such
		// an event could be stored but not exported and read back.
		return invalid("audit event time", e.Time.UTC().Format(time.RFC3339Nano), "outside the years 0001 to 9999")
	case !e.Action.Valid():
		return invalid("audit action", string(e.Action), "not an action this module records")
	case !e.Outcome.Valid():
		return invalid("audit outcome", e.Outcome.String(), "want success or denied")
	case e.Actor != "" && !e.Actor.Valid():
		return invalid("audit actor user id", string(e.Actor), "not an id this module issued")
	case e.Target != "" && !e.Target.Valid():
		return invalid("audit target user id", string(e.Target), "not an id this module issued")
	case e.Org != "" && !e.Org.Valid():
		return invalid("audit org id", string(e.Org), "not an id this module issued")
	case len(e.ClientAddr) > MaxClientAddrLen:
		return invalid("audit client address", e.ClientAddr, fmt.Sprintf("longer than %d bytes", MaxClientAddrLen))
	}
	if why := textcheck.Problem(e.ClientAddr); why != "" {
		return invalid("audit client address", e.ClientAddr, why)
	}
	switch {
	case e.Outcome == Denied && e.Reason == "":
		return invalid("audit reason", "", "a denied event says why")
	case e.Outcome == Success && e.Reason != "":
		return invalid("audit reason", e.Reason, "only a denied event has a reason")
	case utf8.RuneCountInString(e.Reason) > MaxReasonLen:
		return invalid("audit reason", e.Reason, fmt.Sprintf("longer than %d characters", MaxReasonLen))
	}
	if why := textcheck.Problem(e.Reason); why != "" {
		return invalid("audit reason", e.Reason, why)
	}
	if err := checkChange("audit event before", e.Before); err != nil {
		return err
	}
	return checkChange("audit event after", e.After)
}

// secretWords are the parts of a key that mark it as holding a secret.
var secretWords = []string{"password", "passwd", "hash", "token", "secret", "salt"}

// hashPrefixes start the string forms of password hashes.
var hashPrefixes = []string{"$argon2", "$2a$", "$2b$", "$2y$", "$scrypt$", "$pbkdf2"}

// checkChange checks a Before or After value; see Event.Validate. Errors
// name the offending key at most, never a value.
func checkChange(field string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) > MaxChangeLen {
		return invalid(field, fmt.Sprintf("%d bytes", len(raw)), fmt.Sprintf("longer than %d bytes", MaxChangeLen))
	}
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return invalid(field, "", "not valid JSON text")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object  bool
		keyNext bool
		keys    map[string]bool
	}
	var stack []frame
	for first := true; ; first = false {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return invalid(field, "", "not valid JSON text")
		}
		if first && tok != json.Delim('{') {
			return invalid(field, "", "not a JSON object")
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.keyNext {
				k := tok.(string) // json.Valid: an object's keys are strings
				if secretKey(k) {
					return invalid(field, k, "a key naming a secret: audit events never hold passwords, hashes, tokens or secrets")
				}
				if top.keys[k] {
					return invalid(field, k, "a duplicate key")
				}
				top.keys[k], top.keyNext = true, false
				continue
			}
			top.keyNext = true
		}
		switch v := tok.(type) {
		case json.Delim: // '{' or '['
			stack = append(stack, frame{object: v == '{', keyNext: true, keys: map[string]bool{}})
		case string:
			for _, p := range hashPrefixes {
				if strings.HasPrefix(v, p) {
					return invalid(field, "", "a value that looks like a password hash: audit events never hold secrets")
				}
			}
		}
	}
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}
