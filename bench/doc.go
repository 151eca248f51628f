// Package bench holds the performance workload of KIOPS IAM and its
// baselines: a seeded generator of organizations, users and grants at any
// scale, plain Casbin v2 (the enforcer, the cached enforcer and
// gorm-adapter's LoadPolicy and AddPolicy) on the same data, and the
// module's own paths (checks, middleware, listings, loads, writes) side by
// side. The benchmarks in this package and the report command
// (go run ./bench/cmd/report) run the same functions.
package bench
