// Command apiserver is a KIOPS-style JSON API over the whole of KIOPS IAM:
// the example of how a KIOPS service integrates the module. It shows
//
//   - wiring: a *gorm.DB (an SQLite file by default, or PostgreSQL) into
//     iam.New, the first PlatformAdmin bootstrapped at start, a Notifier
//     for password-reset tokens;
//   - the middleware of package authz on a standard http.ServeMux (Go 1.22
//     patterns): every route but the public ones behind
//     guard.Authenticate (bearer session tokens), the sample feature pages
//     behind guard.RequireCategories, the operations screens behind
//     guard.RequirePlatformAdmin;
//   - management routes that call the Service, which applies the "Who may
//     do what" rules itself, with errors turned into RFC 9457 problem
//     bodies in one place (authz.WriteError).
//
// Run it:
//
//	go run ./examples/apiserver                        # 127.0.0.1:8080, ./kiops-iam.db
//	IAM_ADMIN_EMAIL=ada@example.com IAM_ADMIN_PASSWORD='a long passphrase' go run ./examples/apiserver
//	go run ./examples/apiserver --db 'postgres://user@127.0.0.1:5432/iam?sslmode=disable' --addr :8080
//
// Flags: --addr, --db (sqlite:PATH or a postgres:// URL), --tls-cert and
// --tls-key (PEM files: serve HTTPS instead of HTTP), --admin-email,
// --admin-password and --admin-name (or IAM_ADMIN_EMAIL,
// IAM_ADMIN_PASSWORD, IAM_ADMIN_NAME). The administrator is created only
// when the platform has no PlatformAdmin yet; without --admin-email, such
// a platform gets admin@localhost with a random password, printed once to
// stderr. SIGINT or SIGTERM shut the server down gracefully.
//
// The example sends no mail: password-reset tokens are printed to stderr,
// clearly labelled, where a real host would mail them.
//
// # Routes
//
// Bodies are JSON objects (Content-Type: application/json, at most 64 KiB,
// unknown fields refused); answers are JSON with snake_case fields, ids as
// strings and RFC 3339 times; errors are application/problem+json. Role
// names are "platform_admin", "manager" and "member"; categories are
// arrays of "infra", "service", "backup", "device", "database", "vpn",
// "audit".
//
//	GET    /healthz                                   liveness (public)
//	POST   /v1/signup                                 {email, name, password, org_id}: 201 (public)
//	POST   /v1/login                                  {email, password}: 200 {token} (public; 429 when throttled)
//	POST   /v1/password-reset                         {email}: 202 whatever the email (public)
//	POST   /v1/password-reset/confirm                 {token, new_password}: 200 {token} (public)
//	POST   /v1/logout                                 204
//	GET    /v1/me, PATCH /v1/me {name}                profile and memberships
//	PUT    /v1/me/password                            {current_password, new_password}: 200 {token}
//	DELETE /v1/me                                     {password}: 204
//	GET    /v1/orgs, POST /v1/orgs {name}             list (all for a PlatformAdmin), create: 201
//	GET, PATCH {name}, DELETE /v1/orgs/{org}
//	GET    /v1/orgs/{org}/registrations               ?period=7d|30d|all&status=pending|approved|rejected|any, with pending_count
//	POST   /v1/registrations/{id}/approve             204
//	POST   /v1/registrations/{id}/reject              optional {reason}: 204
//	GET    /v1/orgs/{org}/members                     ?after&limit&category: a page by user id, with next ("" on the last)
//	GET    /v1/orgs/{org}/access                      ?category&after&limit: who may use category in org, and why
//	PUT    /v1/orgs/{org}/members/{user}/role         {role}: 204
//	PUT    /v1/orgs/{org}/members/{user}/categories   {categories: [...]}, the whole set: 204
//	GET, DELETE /v1/orgs/{org}/members/{user}         one member (as listed), remove: 204
//	POST   /v1/orgs/{org}/members/{user}/password-reset  202
//	GET    /v1/users (?after&limit, with next); DELETE /v1/users/{user}; POST /v1/users/{user}/deactivate, /reactivate
//	GET    /v1/orgs/{org}/audit                       ?actor&target&action&outcome&since&until&limit&before
//	GET    /v1/orgs/{org}/audit/export                ?format=csv|jsonl and the same filters
//	GET    /v1/orgs/{org}/runtime|services|backups|devices|databases|vpn   sample feature pages
//	DELETE /v1/orgs/{org}/devices/{device}            sample: needs device
//	GET    /v1/ops/db-explorer, /v1/ops/db-monitoring PlatformAdmins only
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/internal/serve"
)

// program is the apiserver: what it says about itself on the terminal,
// and its handler. It has no write timeout: audit exports stream for as
// long as they take.
var program = serve.Program{Name: "apiserver", ChangePassword: "PUT /v1/me/password", Redeem: "POST /v1/password-reset/confirm",
	Handler: func(svc *iam.Service, log *slog.Logger) (http.Handler, error) {
		return NewHandler(svc, WithLogger(log)), nil
	}}

func main() {
	f := serve.ParseFlags("127.0.0.1:8080", "sqlite:kiops-iam.db")
	serve.Main(program.Name, func(ctx context.Context, term io.Writer, log *slog.Logger) error {
		return program.Run(ctx, f, term, log)
	})
}
