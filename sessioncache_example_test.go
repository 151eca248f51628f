package iam_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	iam "github.com/kiops/iam"
)

// Authenticate answers a session it has validated once from memory; a
// Logout on the same Service ends it at once. A deployment of several
// replicas that wants revocations made on one to reach the others sooner
// than DefaultSessionCacheMaxAge trusts cached sessions for less time.
func ExampleWithSessionCache() {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB("example_session_cache"),
		iam.WithSessionCache(10_000, 10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	admin, err := svc.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := svc.Login(ctx, "ada@example.com", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	for range 2 { // the first reads the database, the second only memory
		u, err := svc.Authenticate(ctx, tok.Reveal())
		fmt.Println("request as the admin:", err == nil && u == admin)
	}
	if err := svc.Logout(ctx, tok.Reveal()); err != nil {
		log.Fatal(err)
	}
	_, err = svc.Authenticate(ctx, tok.Reveal())
	fmt.Println("after logout, refused:", errors.Is(err, iam.ErrUnauthenticated))
	// Output:
	// request as the admin: true
	// request as the admin: true
	// after logout, refused: true
}
