package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/kiops/iam/authz"
)

// The least argon2id cost a Hasher accepts (DESIGN.md section 5, after
// OWASP's and ASVS 5.0's minimum for argon2id): 19 MiB of memory, 2
// passes, 1 lane, a 16-byte salt and a 32-byte key. They are also the
// defaults.
const (
	MinMemory  = 19 * 1024 // KiB
	MinTime    = 2
	MinThreads = 1
	MinSaltLen = 16
	MinKeyLen  = 32
)

// The largest argon2id cost this package computes, for a Hasher and for a
// stored hash that Verify parses: a corrupt or hostile hash string cannot
// make one verification take gigabytes or minutes.
const (
	MaxMemory  = 1 << 20 // KiB: 1 GiB
	MaxTime    = 64
	MaxThreads = 64
	maxSaltLen = 64
	maxKeyLen  = 64
)

// HasherConfig is the cost of a Hasher's argon2id. The zero value means
// the minimums of DESIGN.md (MinMemory, MinTime, MinThreads, MinSaltLen,
// MinKeyLen); each zero field takes its minimum. Values below a minimum
// are refused by NewHasher, except in a configuration returned by
// TestingHasherConfig.
type HasherConfig struct {
	Memory  uint32 // KiB; 0 means MinMemory (19 MiB)
	Time    uint32 // passes over memory; 0 means MinTime
	Threads uint8  // lanes; 0 means MinThreads
	SaltLen uint32 // bytes of salt from crypto/rand; 0 means MinSaltLen
	KeyLen  uint32 // bytes of derived key; 0 means MinKeyLen

	// MaxConcurrent bounds how many hashes the Hasher computes at once;
	// further calls wait for one to finish. It bounds the memory that
	// logins can take (MaxConcurrent × Memory) however many arrive
	// together. 0 means 2 × GOMAXPROCS at construction.
	MaxConcurrent int

	insecure bool   // set only by TestingHasherConfig
	observe  func() // set only by ObservedTestingHasherConfig
}

// TestingHasherConfig returns a deliberately cheap configuration (64 KiB,
// one pass) that NewHasher accepts only because it came from here, for
// tests whose subject is not the cost of hashing. It needs the test's tb,
// so that no program other than a test can hold such a configuration, and
// panics outside a test binary. Production code has no way to go below
// the minimums.
func TestingHasherConfig(tb testing.TB) HasherConfig {
	if tb == nil || !testing.Testing() {
		panic("identity: TestingHasherConfig outside a test")
	}
	tb.Helper()
	return HasherConfig{Memory: 64, Time: 1, Threads: 1, SaltLen: MinSaltLen, KeyLen: MinKeyLen, insecure: true}
}

// ObservedTestingHasherConfig is TestingHasherConfig whose Hasher calls
// observe before every argon2id derivation (Hash, Verify and VerifyDummy
// alike), so that a test of code built on a Hasher, such as the Service's
// login or sign-up, can count the work done: that an unknown email costs
// as many derivations as a known one. observe must be safe for concurrent
// use. Like TestingHasherConfig, it panics outside a test.
func ObservedTestingHasherConfig(tb testing.TB, observe func()) HasherConfig {
	c := TestingHasherConfig(tb)
	c.observe = observe
	return c
}

// params are the argon2id parameters of one hash.
type params struct {
	memory  uint32
	time    uint32
	threads uint8
	saltLen uint32
	keyLen  uint32
}

// Hasher hashes and verifies passwords with argon2id
// (golang.org/x/crypto/argon2) and encodes hashes as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in unpadded standard base64. Verify reads the cost
// from the string, so raising the configured cost later still verifies
// older hashes (NeedsRehash tells when to replace one).
//
// Both Hash and Verify normalize the password to Unicode NFKC first, so
// the NFC and NFD spellings of one password (a precomposed "é" or "e"
// and a combining accent) are the same password.
//
// A Hasher is safe for concurrent use by multiple goroutines. Each hash
// holds Memory KiB while it runs; at most MaxConcurrent run at once.
type Hasher struct {
	p     params
	sem   chan struct{}
	dummy []byte // a random key that no password derives, for VerifyDummy
	dsalt []byte

	// derive computes the key; tests replace it to observe the work done.
	derive func(password, salt []byte, p params) []byte
}

// NewHasher returns a Hasher with the given cost. A cost below a minimum
// (unless from TestingHasherConfig), above a maximum, or a negative
// MaxConcurrent is an error matching authz.ErrInvalid.
func NewHasher(c HasherConfig) (*Hasher, error) {
	p := params{memory: c.Memory, time: c.Time, threads: c.Threads, saltLen: c.SaltLen, keyLen: c.KeyLen}
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.memory, MinMemory)
	def(&p.time, MinTime)
	def(&p.saltLen, MinSaltLen)
	def(&p.keyLen, MinKeyLen)
	if p.threads == 0 {
		p.threads = MinThreads
	}
	bad := func(field string, v uint64, reason string) (*Hasher, error) {
		return nil, &authz.InvalidError{Field: "hasher " + field, Value: strconv.FormatUint(v, 10), Reason: reason}
	}
	if !c.insecure {
		switch {
		case p.memory < MinMemory:
			return bad("memory", uint64(p.memory), "below the minimum of 19456 KiB (19 MiB)")
		case p.time < MinTime:
			return bad("time", uint64(p.time), "below the minimum of 2 passes")
		case p.saltLen < MinSaltLen:
			return bad("salt length", uint64(p.saltLen), "below the minimum of 16 bytes")
		case p.keyLen < MinKeyLen:
			return bad("key length", uint64(p.keyLen), "below the minimum of 32 bytes")
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	if c.MaxConcurrent < 0 {
		return bad("max concurrent", 0, "negative")
	}
	n := c.MaxConcurrent
	if n == 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	h := &Hasher{p: p, sem: make(chan struct{}, n), derive: argon2id}
	if observe := c.observe; observe != nil {
		h.derive = func(password, salt []byte, p params) []byte {
			observe()
			return argon2id(password, salt, p)
		}
	}
	h.dsalt = make([]byte, p.saltLen)
	h.dummy = make([]byte, p.keyLen)
	_, _ = rand.Read(h.dsalt) // documented never to fail
	_, _ = rand.Read(h.dummy)
	return h, nil
}

// check reports parameters outside what this package computes at all.
func (p params) check() error {
	bad := func(field string, v uint64, reason string) error {
		return &authz.InvalidError{Field: "argon2id " + field, Value: strconv.FormatUint(v, 10), Reason: reason}
	}
	switch {
	case p.memory < 8*uint32(p.threads) || p.memory > MaxMemory:
		return bad("memory", uint64(p.memory), "want 8 KiB per lane up to 1 GiB")
	case p.time < 1 || p.time > MaxTime:
		return bad("time", uint64(p.time), "want 1 to 64 passes")
	case p.threads < 1 || p.threads > MaxThreads:
		return bad("threads", uint64(p.threads), "want 1 to 64 lanes")
	case p.saltLen < 8 || p.saltLen > maxSaltLen:
		return bad("salt length", uint64(p.saltLen), "want 8 to 64 bytes")
	case p.keyLen < 16 || p.keyLen > maxKeyLen:
		return bad("key length", uint64(p.keyLen), "want 16 to 64 bytes")
	}
	return nil
}

func argon2id(password, salt []byte, p params) []byte {
	return argon2.IDKey(password, salt, p.time, p.memory, p.threads, p.keyLen)
}

// key normalizes password and derives its key under the hasher's
// concurrency bound.
func (h *Hasher) key(password string, salt []byte, p params) []byte {
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	return h.derive([]byte(norm.NFKC.String(password)), salt, p)
}

// Hash returns the PHC string of password under the hasher's cost, with
// a fresh random salt: hashing one password twice gives two different
// strings. It does not apply the password policy (see CheckPassword). A
// password that is not valid UTF-8 or longer than MaxPasswordBytes is an
// error matching authz.ErrInvalid (a *PasswordError). Safe for concurrent
// use.
func (h *Hasher) Hash(password string) (string, error) {
	if !utf8.ValidString(password) {
		return "", &PasswordError{Rule: PasswordNotText, Reason: "is not valid UTF-8 text"}
	}
	if len(password) > MaxPasswordBytes {
		return "", &PasswordError{Rule: PasswordTooLong, Reason: "must be at most 128 characters"}
	}
	salt := make([]byte, h.p.saltLen)
	_, _ = rand.Read(salt) // documented never to fail
	return encodePHC(h.p, salt, h.key(password, salt, h.p)), nil
}

// Verify reports whether password matches encoded, a PHC string from
// Hash (of this Hasher or of one with another cost: the parameters are
// read from the string). The comparison is in constant time
// (crypto/subtle). A wrong password is (false, nil); a password longer
// than MaxPasswordBytes is (false, nil) without hashing, since Hash never
// accepts one. A string that is not an argon2id PHC string of version 19
// with parameters this package computes (see MaxMemory and friends) is an
// error matching authz.ErrInvalid: the stored hash is corrupt. Safe for
// concurrent use.
//
// An empty encoded is an account without a password (an imported one, say,
// until a reset sets one): Verify does the work of VerifyDummy and
// reports false, nil, so that such an account answers a login exactly
// as slowly as one with a password, and timing does not tell them apart.
func (h *Hasher) Verify(encoded, password string) (bool, error) {
	if encoded == "" {
		h.VerifyDummy(password)
		return false, nil
	}
	p, salt, want, err := decodePHC(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordBytes {
		return false, nil
	}
	got := h.key(password, salt, p)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy does the work of Verify for a password against a hash
// under the hasher's current cost that no password matches, and discards
// the result. Call it when the account asked for does not exist (or has
// no password), so that the answer takes as long as a wrong password for
// an existing account: timing does not tell which emails have accounts.
// Safe for concurrent use.
func (h *Hasher) VerifyDummy(password string) {
	if len(password) > MaxPasswordBytes {
		return // as Verify
	}
	got := h.key(password, h.dsalt, h.p)
	_ = subtle.ConstantTimeCompare(got, h.dummy)
}

// CheckPasswordHash reports whether encoded is a password hash that
// Verify accepts: an argon2id PHC string of version 19 in the form Hash
// writes ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>"), with parameters
// this package computes (at most MaxMemory, MaxTime and MaxThreads; at
// least 8-byte salts and 16-byte keys). It is for hashes carried over from
// another system (see the root package's Service.Import); it does no
// hashing. A cost below the minimums of NewHasher is accepted, because
// refusing it would force a reset on every such account: the next
// successful login replaces it (NeedsRehash). Anything else, the empty
// string included, is an *authz.InvalidError that never repeats the key.
func CheckPasswordHash(encoded string) error {
	if encoded == "" {
		return &authz.InvalidError{Field: "password hash", Value: "", Reason: "missing"}
	}
	_, _, _, err := decodePHC(encoded)
	return err
}

// NeedsRehash reports whether encoded should be replaced by a fresh Hash
// after the next successful Verify: it is not a PHC string this Hasher
// verifies, or its cost differs from the hasher's (for example a hash
// made before the configured cost was raised). It only parses the string.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decodePHC(encoded)
	return err != nil || p != h.p
}

// Config returns the cost the hasher uses, every field filled in.
func (h *Hasher) Config() HasherConfig {
	return HasherConfig{Memory: h.p.memory, Time: h.p.time, Threads: h.p.threads, SaltLen: h.p.saltLen, KeyLen: h.p.keyLen, MaxConcurrent: cap(h.sem)}
}

var b64 = base64.RawStdEncoding.Strict()

func encodePHC(p params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$key" strictly: that
// order, decimal numbers without signs or leading zeros, unpadded
// standard base64.
func decodePHC(s string) (params, []byte, []byte, error) {
	bad := func(reason string) (params, []byte, []byte, error) {
		v := s
		if i := strings.LastIndexByte(v, '$'); i >= 0 {
			v = v[:i] + "$…" // never echo the key
		}
		return params{}, nil, nil, &authz.InvalidError{Field: "password hash", Value: v, Reason: reason}
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return bad("not an argon2id PHC string")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported argon2 version")
	}
	var p params
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return bad("want parameters m, t and p")
	}
	var nums [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') || v[0] == '+' {
			return bad("want parameters m, t and p")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		nums[i] = n
	}
	if nums[2] > MaxThreads {
		return bad("too many lanes")
	}
	p.memory, p.time, p.threads = uint32(nums[0]), uint32(nums[1]), uint8(nums[2])
	salt, err := b64.DecodeString(f[4])
	if err != nil {
		return bad("salt is not base64")
	}
	key, err := b64.DecodeString(f[5])
	if err != nil {
		return bad("key is not base64")
	}
	p.saltLen, p.keyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return bad("parameters out of range")
	}
	return p, salt, key, nil
}
