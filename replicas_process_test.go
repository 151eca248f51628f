package iam_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
	"github.com/kiops/iam/internal/dbtest"
)

// childDSN is the environment variable that makes this test binary a
// replica process (TestReplicaChild) on the PostgreSQL schema it names;
// childFollow set to "1" makes that replica follow the others by itself
// (WithReplicaSync), otherwise it syncs only when a token asks.
const (
	childDSN    = "IAM_TEST_REPLICA_CHILD_DSN"
	childFollow = "IAM_TEST_REPLICA_CHILD_FOLLOW"
)

// TestReplicaChild is not a test of its own: run by TestReplicaProcesses
// as a child process, it is one replica. It answers lines on standard
// input, "check USER ORG CATEGORY MINVERSION", with "allow" or "deny"
// (after waiting for MINVERSION when it is not 0), until its input ends.
func TestReplicaChild(t *testing.T) {
	dsn := os.Getenv(childDSN)
	if dsn == "" {
		t.Skip("run by TestReplicaProcesses")
	}
	ctx := context.Background()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	opts := []iam.Option{iam.WithPasswordHasher(identity.TestingHasherConfig(t))}
	if os.Getenv(childFollow) == "1" {
		opts = append(opts, iam.WithReplicaSync(time.Hour)) // notifications only
	}
	svc, err := iam.New(ctx, db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var u, o, c string
		var min int64
		if _, err := fmt.Sscan(in.Text(), new(string), &u, &o, &c, &min); err != nil {
			fmt.Println("error", err)
			continue
		}
		cat, err := authz.ParseCategory(c)
		if err != nil {
			fmt.Println("error", err)
			continue
		}
		if min > 0 {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := svc.WaitVersion(wctx, min)
			cancel()
			if err != nil {
				fmt.Println("error", err)
				continue
			}
		}
		if svc.Check(ctx, authz.UserID(u), authz.OrgID(o), cat).Allowed {
			fmt.Println("allow")
		} else {
			fmt.Println("deny")
		}
	}
}

// replicaProcess is a child replica and its pipes.
type replicaProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func (p *replicaProcess) check(t *testing.T, u authz.UserID, o authz.OrgID, c authz.Category, min int64) bool {
	t.Helper()
	fmt.Fprintf(p.in, "check %s %s %s %d\n", u, o, c, min)
	if !p.out.Scan() {
		t.Fatalf("replica %d: no answer: %v", p.cmd.Process.Pid, p.out.Err())
	}
	switch line := p.out.Text(); line {
	case "allow":
		return true
	case "deny":
		return false
	default:
		t.Fatalf("replica %d: %s", p.cmd.Process.Pid, line)
	}
	return false
}

// Separate processes on one PostgreSQL: writes through this process
// become visible in two child replicas for every kind of change, and with
// the consistency token the first check after each write is already
// right in every child.
func TestReplicaProcesses(t *testing.T) {
	if os.Getenv(childDSN) != "" {
		t.Skip("a child does not start children")
	}
	base := os.Getenv(dbtest.EnvPostgresDSN)
	if base == "" {
		t.Skipf("%s is not set", dbtest.EnvPostgresDSN)
	}
	dsn, drop, err := dbtest.NewSchema(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() {
		sqlDB.Close()
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	writer, err := iam.New(ctx, db, iam.WithPasswordHasher(identity.TestingHasherConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	// Child 0 syncs only for a token, so its first answer after each
	// write shows what the token does; child 1 follows the notifications.
	var children []*replicaProcess
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childDSN+"="+dsn, fmt.Sprintf("%s=%d", childFollow, i))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &replicaProcess{cmd: cmd, in: in, out: bufio.NewScanner(out)}
		t.Cleanup(func() {
			p.in.Close()
			p.cmd.Wait()
		})
		if !p.out.Scan() || p.out.Text() != "ready" {
			t.Fatalf("replica did not start: %q %v", p.out.Text(), p.out.Err())
		}
		children = append(children, p)
	}

	admin, err := writer.Bootstrap(ctx, "ada@example.com", "Ada", pw)
	if err != nil {
		t.Fatal(err)
	}
	var receipt iam.Receipt
	rctx := iam.WithReceipt(ctx, &receipt)
	org, err := writer.CreateOrg(rctx, admin, "Seoul DC")
	if err != nil {
		t.Fatal(err)
	}
	seoul := org.ID
	for _, email := range []string{"joon@example.com", "mina@example.com"} {
		if err := writer.SignUp(ctx, email, "Person", pw, seoul); err != nil {
			t.Fatal(err)
		}
	}
	reqs, err := writer.Registrations(ctx, admin, seoul, 0, 0)
	if err != nil || len(reqs) != 2 {
		t.Fatalf("registrations: %v %v", reqs, err)
	}
	joon, mina := reqs[0].User, reqs[1].User
	everyone := func(step string, u authz.UserID, c authz.Category) {
		t.Helper()
		want := writer.Check(ctx, u, seoul, c).Allowed
		// The following child gets there by itself, through the
		// notifications, without a token.
		deadline := time.Now().Add(10 * time.Second)
		for children[1].check(t, u, seoul, c, 0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the following replica never followed", step)
			}
			time.Sleep(5 * time.Millisecond)
		}
		// With the token, the first answer is right in every child, the
		// one that has not synced at all since the write included.
		for i, p := range children {
			if got := p.check(t, u, seoul, c, receipt.Version()); got != want {
				t.Fatalf("%s: replica %d answers %v with the token, the writer %v", step, i, got, want)
			}
		}
	}
	steps := []struct {
		name  string
		write func() error
		user  authz.UserID
		cat   authz.Category
	}{
		{"approval", func() error { return writer.Approve(rctx, admin, reqs[0].ID) }, joon, authz.VPN},
		{"grant", func() error { return writer.SetCategories(rctx, admin, joon, seoul, authz.NewCategorySet(authz.VPN)) }, joon, authz.VPN},
		{"revocation", func() error { return writer.SetCategories(rctx, admin, joon, seoul, 0) }, joon, authz.VPN},
		{"approval of a second", func() error { return writer.Approve(rctx, admin, reqs[1].ID) }, mina, authz.Database},
		{"role change", func() error { return writer.ChangeRole(rctx, admin, mina, seoul, authz.Manager) }, mina, authz.Database},
		{"grant again", func() error { return writer.SetCategories(rctx, admin, joon, seoul, authz.NewCategorySet(authz.Infra)) }, joon, authz.Infra},
		{"deactivation", func() error { return writer.DeactivateUser(rctx, admin, joon) }, joon, authz.Infra},
		{"reactivation", func() error { return writer.ReactivateUser(rctx, admin, joon) }, joon, authz.Infra},
		{"removal", func() error { return writer.RemoveMember(rctx, admin, joon, seoul) }, joon, authz.Infra},
		{"org deletion", func() error { return writer.DeleteOrg(rctx, admin, seoul) }, mina, authz.Database},
	}
	for _, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		everyone(s.name, s.user, s.cat)
	}
	if receipt.Version() != writer.Version() {
		t.Fatalf("receipt at %d, writer at %d", receipt.Version(), writer.Version())
	}
}
