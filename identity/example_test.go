package identity_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

func ExampleCheckPassword() {
	const email, name = "jane.doe@example.com", "Jane Doe"
	for _, pw := range []string{
		"short",
		"Password1234!",
		"jane.doe-lantern-2024",
		"vivid-otter-carries-lantern",
	} {
		err := identity.CheckPassword(pw, email, name)
		var pe *identity.PasswordError
		if errors.As(err, &pe) {
			fmt.Printf("refused (%s): %s; invalid input: %v\n", pe.Rule, pe.Reason, errors.Is(err, authz.ErrInvalid))
			continue
		}
		fmt.Println("accepted")
	}
	// Output:
	// refused (too short): must be at least 12 characters; invalid input: true
	// refused (common): is a commonly used password with digits or symbols added; invalid input: true
	// refused (personal): contains your email address; invalid input: true
	// accepted
}

func ExampleHasher() {
	// The zero config is DESIGN.md's minimum cost: argon2id, 19 MiB,
	// 2 passes, 1 lane.
	h, err := identity.NewHasher(identity.HasherConfig{})
	if err != nil {
		panic(err)
	}
	stored, err := h.Hash("vivid-otter-carries-lantern")
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$"))

	ok, err := h.Verify(stored, "vivid-otter-carries-lantern")
	fmt.Println(ok, err)
	ok, err = h.Verify(stored, "vivid-otter-carries-lamp")
	fmt.Println(ok, err)

	// A login for an email with no account does the same work, so that
	// its timing does not tell that the account does not exist.
	h.VerifyDummy("vivid-otter-carries-lantern")
	// Output:
	// true
	// true <nil>
	// false <nil>
}

func ExampleNewToken() {
	tok, hash := identity.NewToken()

	// Printing or logging a Token shows nothing of it.
	fmt.Println(tok)
	fmt.Printf("%#v\n", tok)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("issued", "token", tok)

	// Reveal is for handing it to its owner; only the hash is stored.
	fmt.Println(len(tok.Reveal()), hash == identity.HashToken(tok.Reveal()))
	// Output:
	// [REDACTED]
	// [REDACTED]
	// level=INFO msg=issued token=[REDACTED]
	// 43 true
}

func ExampleNewResetToken() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tok, rt, err := identity.NewResetToken(authz.NewUserID(), now, 0)
	if err != nil {
		panic(err)
	}
	// The host's notifier sends tok.Reveal() to the user; the store keeps rt.
	_ = tok
	fmt.Println(rt.ExpiresAt.Sub(rt.CreatedAt), rt.Expired(now.Add(29*time.Minute)), rt.Expired(now.Add(30*time.Minute)))
	// Output:
	// 30m0s false true
}

func ExampleCanonicalEmail() {
	for _, in := range []string{"  Jane.Doe@Example.COM ", "jane doe@example.com"} {
		e, err := identity.CanonicalEmail(in)
		fmt.Printf("%q %v\n", e, err)
	}
	// Output:
	// "jane.doe@example.com" <nil>
	// "" authz: invalid email "jane doe@example.com": contains white space
}

func ExampleThrottle() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	th := identity.NewThrottle(identity.ThrottleConfig{Now: func() time.Time { return now }})
	for i := range 6 {
		// Before checking the password:
		if err := th.Attempt("jane@example.com", "192.0.2.7"); err != nil {
			fmt.Println(i+1, err)
			continue
		}
		// The password was wrong: nothing more to do. (A right one
		// would call th.Succeeded.)
		fmt.Println(i+1, "checked")
	}
	// Output:
	// 1 checked
	// 2 checked
	// 3 checked
	// 4 checked
	// 5 checked
	// 6 identity: too many failed logins; try again in 30s
}
