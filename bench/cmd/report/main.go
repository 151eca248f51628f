// Command report runs the performance comparison of KIOPS IAM with plain
// Casbin v2 (package bench) and prints one Markdown table of the figures
// and their ratios, with the machine's details:
//
//	go run ./bench/cmd/report                       # 1,000 / 100,000 / 1,000,000 users
//	go run ./bench/cmd/report -users 1000,100000    # quicker
//
// PostgreSQL is measured when -postgres (default: $IAM_BENCH_POSTGRES_DSN,
// then $IAM_TEST_POSTGRES_DSN) names a server where the role may create
// schemas; each run works in a fresh schema and drops it. Progress goes to
// standard error, the table to standard output (and to -out if given).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kiops/iam/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.String("users", "1000,100000,1000000", "comma-separated scale points, in users")
	pg := fs.String("postgres", firstEnv("IAM_BENCH_POSTGRES_DSN", "IAM_TEST_POSTGRES_DSN"), "PostgreSQL DSN; empty skips PostgreSQL")
	writes := fs.Int("writes", 300, "operations per write measurement")
	tmp := fs.String("tmp", "", "directory for the SQLite files (default: the system's temporary directory)")
	out := fs.String("out", "", "also write the table to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := bench.Config{PostgresDSN: *pg, TempDir: *tmp, Writes: *writes, Log: stderr}
	for _, f := range strings.Split(*users, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < bench.UsersPerOrg {
			return fmt.Errorf("-users: %q is not a number of users of at least %d", f, bench.UsersPerOrg)
		}
		cfg.Scales = append(cfg.Scales, n)
	}
	if *writes < 1 {
		return fmt.Errorf("-writes: want at least 1")
	}
	if cfg.PostgresDSN == "" {
		fmt.Fprintln(stderr, "report: no PostgreSQL DSN (-postgres): measuring SQLite only")
	}
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		return err
	}
	var sb strings.Builder
	rep.Markdown(&sb)
	fmt.Fprint(stdout, sb.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(sb.String()), 0o644)
	}
	return nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
