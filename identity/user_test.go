package identity_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []identity.Status{identity.Active, identity.Deactivated} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back identity.Status
		if err := back.UnmarshalText(b); err != nil || back != s || !back.Valid() {
			t.Fatalf("%v round trip = %v, %v", s, back, err)
		}
	}
	if identity.Active.String() != "active" || identity.Deactivated.String() != "deactivated" || identity.Status(0).String() != "Status(0)" {
		t.Fatal("Status.String wrong")
	}
	for _, bad := range []string{"", "Active", "none", "deleted"} {
		if _, err := identity.ParseStatus(bad); !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("ParseStatus(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := json.Marshal(identity.Status(0)); !errors.Is(err, authz.ErrInvalid) {
		t.Fatalf("json.Marshal(Status(0)) = %v, want ErrInvalid", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := identity.User{ID: authz.NewUserID(), Email: "jane@example.com", Name: "Jane", Status: identity.Active, CreatedAt: now}
	if err := u.Validate(); err != nil {
		t.Fatalf("Validate(valid user) = %v", err)
	}
	o := identity.Org{ID: authz.NewOrgID(), Name: "Acme", CreatedAt: now}
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate(valid org) = %v", err)
	}
	_, h := identity.NewToken()
	for name, err := range map[string]error{
		"user id":           with(u, func(u *identity.User) { u.ID = "usr_NOT" }).Validate(),
		"user email case":   with(u, func(u *identity.User) { u.Email = "Jane@example.com" }).Validate(),
		"user email shape":  with(u, func(u *identity.User) { u.Email = "jane" }).Validate(),
		"user name padded":  with(u, func(u *identity.User) { u.Name = " Jane" }).Validate(),
		"user name empty":   with(u, func(u *identity.User) { u.Name = "" }).Validate(),
		"user status":       with(u, func(u *identity.User) { u.Status = 0 }).Validate(),
		"user created":      with(u, func(u *identity.User) { u.CreatedAt = time.Time{} }).Validate(),
		"org id":            with(o, func(o *identity.Org) { o.ID = "org_x" }).Validate(),
		"org name":          with(o, func(o *identity.Org) { o.Name = "Acme\n" }).Validate(),
		"org created":       with(o, func(o *identity.Org) { o.CreatedAt = time.Time{} }).Validate(),
		"session hash":      identity.Session{User: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}.Validate(),
		"session user":      identity.Session{Hash: h, User: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}.Validate(),
		"session backwards": identity.Session{Hash: h, User: u.ID, CreatedAt: now, ExpiresAt: now}.Validate(),
		"reset too long":    identity.ResetToken{Hash: h, User: u.ID, CreatedAt: now, ExpiresAt: now.Add(31 * time.Minute)}.Validate(),
		"reset no created":  identity.ResetToken{Hash: h, User: u.ID, ExpiresAt: now}.Validate(),
	} {
		if !errors.Is(err, authz.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

func with[T any](v T, f func(*T)) T {
	f(&v)
	return v
}
