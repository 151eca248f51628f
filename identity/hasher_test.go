package identity_test

import (
	"encoding/base64"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// cheapHasher is a Hasher at the test-only cost, for tests whose subject
// is not the cost.
func cheapHasher(t *testing.T) *identity.Hasher {
	t.Helper()
	h, err := identity.NewHasher(identity.TestingHasherConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// phc is a parsed PHC string.
type phc struct {
	alg, version string
	m, t, p      uint64
	salt, key    []byte
}

func parsePHC(t *testing.T, s string) phc {
	t.Helper()
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		t.Fatalf("%q is not a PHC string", s)
	}
	var out phc
	out.alg, out.version = f[1], f[2]
	for _, kv := range strings.Split(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("%q: parameter %q: %v", s, kv, err)
		}
		switch k {
		case "m":
			out.m = n
		case "t":
			out.t = n
		case "p":
			out.p = n
		default:
			t.Fatalf("%q: unknown parameter %q", s, k)
		}
	}
	var err error
	if out.salt, err = base64.RawStdEncoding.DecodeString(f[4]); err != nil {
		t.Fatalf("%q: salt: %v", s, err)
	}
	if out.key, err = base64.RawStdEncoding.DecodeString(f[5]); err != nil {
		t.Fatalf("%q: key: %v", s, err)
	}
	return out
}

// TestHasherDefaultParameters hashes with the zero config (the real cost)
// and reads the parameters back from the PHC string: argon2id version 19,
// m=19456 KiB, t=2, p=1, a 16-byte salt and a 32-byte key, and a fresh salt
// for every hash of the same password.
func TestHasherDefaultParameters(t *testing.T) {
	t.Parallel()
	h, err := identity.NewHasher(identity.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ran []identity.Derivation
	var mu sync.Mutex
	identity.ObserveDerive(h, func(d identity.Derivation) { mu.Lock(); ran = append(ran, d); mu.Unlock() })

	const pw = "vivid-otter-carries-lantern"
	a, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := parsePHC(t, a), parsePHC(t, b)
	if pa.alg != "argon2id" || pa.version != "v=19" || pa.m != 19456 || pa.t != 2 || pa.p != 1 {
		t.Fatalf("hash %q: want $argon2id$v=19$m=19456,t=2,p=1$…", a)
	}
	if len(pa.salt) != 16 || len(pa.key) != 32 {
		t.Fatalf("hash %q: salt %d bytes, key %d bytes; want 16 and 32", a, len(pa.salt), len(pa.key))
	}
	if string(pa.salt) == string(pb.salt) || string(pa.key) == string(pb.key) {
		t.Fatalf("two hashes of one password share a salt or key:\n%s\n%s", a, b)
	}
	for _, d := range ran {
		if d.Memory != 19456 || d.Time != 2 || d.Threads != 1 || d.SaltLen != 16 || d.KeyLen != 32 {
			t.Fatalf("argon2id ran with %+v, want m=19456 t=2 p=1 salt 16 key 32", d)
		}
	}
	if len(ran) != 2 {
		t.Fatalf("argon2id ran %d times for two hashes", len(ran))
	}
	if ok, err := h.Verify(a, pw); !ok || err != nil {
		t.Fatalf("Verify(own hash) = %v, %v", ok, err)
	}
	if ok, err := h.Verify(a, pw+"x"); ok || err != nil {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
	if h.NeedsRehash(a) {
		t.Fatal("NeedsRehash of a hash at the current cost = true")
	}
}

// TestHasherMinimums checks that a cost below DESIGN.md's minimums is
// refused at construction, whatever field is low.
func TestHasherMinimums(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    identity.HasherConfig
		ok   bool
	}{
		{"zero means minimums", identity.HasherConfig{}, true},
		{"above minimums", identity.HasherConfig{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLen: 32, KeyLen: 64}, true},
		{"memory 19455 KiB", identity.HasherConfig{Memory: 19455}, false},
		{"time 1", identity.HasherConfig{Time: 1}, false},
		{"salt 15 bytes", identity.HasherConfig{SaltLen: 15}, false},
		{"key 16 bytes", identity.HasherConfig{KeyLen: 16}, false},
		{"memory above 1 GiB", identity.HasherConfig{Memory: identity.MaxMemory + 1}, false},
		{"time above 64", identity.HasherConfig{Time: 65}, false},
		{"threads above 64", identity.HasherConfig{Threads: 65}, false},
		{"negative concurrency", identity.HasherConfig{MaxConcurrent: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := identity.NewHasher(tc.c)
			if tc.ok {
				if err != nil || h == nil {
					t.Fatalf("NewHasher(%+v) = %v", tc.c, err)
				}
				return
			}
			if !errors.Is(err, authz.ErrInvalid) {
				t.Fatalf("NewHasher(%+v) = %v, want an error matching ErrInvalid", tc.c, err)
			}
		})
	}
	// The same cheap cost is refused unless it comes from the test knob.
	cheap := identity.TestingHasherConfig(t)
	if _, err := identity.NewHasher(cheap); err != nil {
		t.Fatalf("NewHasher(TestingHasherConfig) = %v", err)
	}
	if _, err := identity.NewHasher(identity.HasherConfig{Memory: cheap.Memory, Time: cheap.Time}); !errors.Is(err, authz.ErrInvalid) {
		t.Fatalf("NewHasher with the test cost spelled out = %v, want ErrInvalid", err)
	}
}

// TestTestingHasherConfigNeedsT checks that the cheap knob refuses a nil
// testing.TB.
func TestTestingHasherConfigNeedsT(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("TestingHasherConfig(nil) did not panic")
		}
	}()
	identity.TestingHasherConfig(nil)
}

// TestHasherNormalization checks that the NFC and NFD spellings of one
// password (and its NFKC compatibility forms) verify against one hash.
func TestHasherNormalization(t *testing.T) {
	t.Parallel()
	h := cheapHasher(t)
	nfc := norm.NFC.String("Ångström-café-naïve-Øre")
	nfd := norm.NFD.String(nfc)
	if nfc == nfd {
		t.Fatal("test strings are equal; the test would prove nothing")
	}
	for _, tc := range []struct{ stored, typed string }{
		{nfc, nfd},
		{nfd, nfc},
		{"ﬁne-ﬃ-password-①", "fine-ffi-password-1"}, // NFKC compatibility forms
	} {
		enc, err := h.Hash(tc.stored)
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{tc.stored, tc.typed} {
			if ok, err := h.Verify(enc, pw); !ok || err != nil {
				t.Errorf("Verify(hash of %q, %q) = %v, %v; want true", tc.stored, pw, ok, err)
			}
		}
	}
}

// TestHasherVerifyReadsParameters checks that Verify uses the cost written
// in the hash, not its own: a hash made at a lower cost (before the cost
// was raised) still verifies, and NeedsRehash says to replace it.
func TestHasherVerifyReadsParameters(t *testing.T) {
	t.Parallel()
	old := cheapHasher(t)
	cfg := identity.TestingHasherConfig(t)
	cfg.Memory, cfg.Time = 128, 2
	raised, err := identity.NewHasher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ran []identity.Derivation
	identity.ObserveDerive(raised, func(d identity.Derivation) { ran = append(ran, d) })

	enc, err := old.Hash(strong)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := raised.Verify(enc, strong); !ok || err != nil {
		t.Fatalf("Verify(older, cheaper hash) = %v, %v", ok, err)
	}
	if p := parsePHC(t, enc); len(ran) != 1 || uint64(ran[0].Memory) != p.m || uint64(ran[0].Time) != p.t {
		t.Fatalf("Verify ran %+v, want the hash's own m=%d t=%d", ran, p.m, p.t)
	}
	if !raised.NeedsRehash(enc) {
		t.Fatal("NeedsRehash(cheaper hash) = false")
	}
	if old.NeedsRehash(enc) {
		t.Fatal("NeedsRehash(own hash) = true")
	}
	if !raised.NeedsRehash("garbage") {
		t.Fatal("NeedsRehash(garbage) = false")
	}
}

// TestHasherMalformed checks that a corrupt stored hash is an error
// matching ErrInvalid that does not echo the key, and that a hostile cost
// is refused before any work.
func TestHasherMalformed(t *testing.T) {
	t.Parallel()
	h := cheapHasher(t)
	good, err := h.Hash(strong)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(good, "$")
	identity.ObserveDerive(h, func(d identity.Derivation) { t.Errorf("argon2id ran for a malformed hash: %+v", d) })
	for _, tc := range []struct{ name, enc string }{
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$" + strings.Join(f[2:], "$")},
		{"version 16", "$argon2id$v=16$" + strings.Join(f[3:], "$")},
		{"params reordered", "$argon2id$v=19$t=1,m=64,p=1$" + f[4] + "$" + f[5]},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + f[4] + "$" + f[5]},
		{"sign", "$argon2id$v=19$m=+64,t=1,p=1$" + f[4] + "$" + f[5]},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,k=2$" + f[4] + "$" + f[5]},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + f[4] + "==$" + f[5]},
		{"bad base64", "$argon2id$v=19$m=64,t=1,p=1$!!!$" + f[5]},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + f[5]},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + f[4] + "$a2V5"},
		{"hostile memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + f[4] + "$" + f[5]},
		{"hostile time", "$argon2id$v=19$m=64,t=100000,p=1$" + f[4] + "$" + f[5]},
		{"hostile lanes", "$argon2id$v=19$m=64,t=1,p=255$" + f[4] + "$" + f[5]},
		{"trailing field", good + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(tc.enc, strong)
			if ok || !errors.Is(err, authz.ErrInvalid) {
				t.Fatalf("Verify(%q) = %v, %v; want false and ErrInvalid", tc.enc, ok, err)
			}
			if k := f[5]; strings.Contains(tc.enc, k) && strings.Contains(err.Error(), k) {
				t.Fatalf("error %q shows the stored key", err)
			}
		})
	}
}

// TestHasherInputLimits checks the byte limit and UTF-8 rule of Hash and
// the matching behaviour of Verify.
func TestHasherInputLimits(t *testing.T) {
	t.Parallel()
	h := cheapHasher(t)
	if _, err := h.Hash(strings.Repeat("x", identity.MaxPasswordBytes+1)); !errors.Is(err, authz.ErrInvalid) {
		t.Fatalf("Hash(too long) = %v", err)
	}
	if _, err := h.Hash("bad\xffutf8-password"); !errors.Is(err, authz.ErrInvalid) {
		t.Fatalf("Hash(invalid UTF-8) = %v", err)
	}
	enc, err := h.Hash(strong)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(enc, strings.Repeat("x", identity.MaxPasswordBytes+1)); ok || err != nil {
		t.Fatalf("Verify(too long) = %v, %v; want false, nil", ok, err)
	}
}

// TestVerifyDummyDoesTheSameWork checks that VerifyDummy, and Verify of
// an empty hash (an account without a password), run argon2id exactly
// once with the parameters a real verification uses, so that a login for
// an unknown email or a passwordless account costs what a wrong password
// costs; the empty hash never verifies and is no error.
func TestVerifyDummyDoesTheSameWork(t *testing.T) {
	t.Parallel()
	h, err := identity.NewHasher(identity.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash(strong)
	if err != nil {
		t.Fatal(err)
	}
	var ran []identity.Derivation
	identity.ObserveDerive(h, func(d identity.Derivation) { ran = append(ran, d) })
	if ok, _ := h.Verify(enc, "wrong-password-here"); ok {
		t.Fatal("wrong password verified")
	}
	h.VerifyDummy("wrong-password-here")
	for _, pw := range []string{"wrong-password-here", strong} {
		if ok, err := h.Verify("", pw); ok || err != nil {
			t.Fatalf("Verify(\"\", %q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
	if len(ran) != 4 {
		t.Fatalf("argon2id ran %d times for one Verify, one VerifyDummy and two Verifies of an empty hash, want 4", len(ran))
	}
	known := ran[0]
	for _, unknown := range ran[1:3] { // the same password: the same derivation
		if known != unknown {
			t.Fatalf("VerifyDummy or an empty hash ran %+v, Verify ran %+v; want the same work", unknown, known)
		}
	}
	if p := ran[3]; p.Memory != known.Memory || p.Time != known.Time || p.Threads != known.Threads || p.KeyLen != known.KeyLen {
		t.Fatalf("an empty hash ran %+v, Verify ran %+v; want the same cost", p, known)
	}
	if known.Memory != identity.MinMemory || known.Time != identity.MinTime {
		t.Fatalf("Verify ran at %+v, want the real cost", known)
	}
}

// TestCheckPasswordHash checks that CheckPasswordHash accepts exactly
// what Verify reads (hashes of any computable cost, cheaper than the
// minimums too, for NeedsRehash to upgrade) and refuses the rest, the
// empty string included, with ErrInvalid and without echoing the key.
func TestCheckPasswordHash(t *testing.T) {
	t.Parallel()
	cheap, err := cheapHasher(t).Hash(strong)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(cheap, "$")
	for _, good := range []string{
		cheap,
		"$argon2id$v=19$m=19456,t=2,p=1$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=65536,t=3,p=4$" + f[4] + "$" + f[5],
	} {
		if err := identity.CheckPasswordHash(good); err != nil {
			t.Errorf("CheckPasswordHash(%q) = %v, want nil", good, err)
		}
	}
	for _, bad := range []string{
		"",
		"x",
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"$argon2i$" + strings.Join(f[2:], "$"),
		"$argon2id$v=16$" + strings.Join(f[3:], "$"),
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + f[4] + "$a2V5",
		cheap + "$x",
	} {
		err := identity.CheckPasswordHash(bad)
		if !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("CheckPasswordHash(%q) = %v, want ErrInvalid", bad, err)
			continue
		}
		if strings.Contains(err.Error(), f[5]) {
			t.Errorf("error %q shows the key", err)
		}
	}
}

// TestConstantTimeCompare reads hasher.go and checks that Verify and
// VerifyDummy compare keys with crypto/subtle.ConstantTimeCompare and
// that nothing in the package compares byte slices any other way
// (bytes.Equal, bytes.Compare, or a string conversion with ==).
func TestConstantTimeCompare(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	subtleIn := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, _ := sel.X.(*ast.Ident)
				switch {
				case pkg != nil && pkg.Name == "subtle" && sel.Sel.Name == "ConstantTimeCompare":
					subtleIn[fn.Name.Name] = true
				case pkg != nil && pkg.Name == "bytes" && (sel.Sel.Name == "Equal" || sel.Sel.Name == "Compare"):
					t.Errorf("%s: %s compares bytes with bytes.%s", fset.Position(call.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	for _, fn := range []string{"Verify", "VerifyDummy"} {
		if !subtleIn[fn] {
			t.Errorf("%s does not call subtle.ConstantTimeCompare", fn)
		}
	}
}

// TestHasherConcurrent hashes and verifies from several goroutines under
// a concurrency bound of 1 (run with -race).
func TestHasherConcurrent(t *testing.T) {
	t.Parallel()
	cfg := identity.TestingHasherConfig(t)
	cfg.MaxConcurrent = 1
	h, err := identity.NewHasher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			pw := strong + strconv.Itoa(i)
			enc, err := h.Hash(pw)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, err := h.Verify(enc, pw); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
			h.VerifyDummy(pw)
		})
	}
	wg.Wait()
	if got := h.Config(); got.MaxConcurrent != 1 || got.Memory != 64 {
		t.Fatalf("Config() = %+v", got)
	}
}
