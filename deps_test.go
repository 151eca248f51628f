package iam_test

import (
	"os/exec"
	"strings"
	"testing"
)

// domainPackages are the packages at the centre of the design: they may
// import each other and the standard library, Casbin and x/ libraries, but
// never GORM, a database driver, an adapter or the root package.
var domainPackages = []string{
	"github.com/kiops/iam/authz",
	"github.com/kiops/iam/identity",
	"github.com/kiops/iam/approval",
	"github.com/kiops/iam/audit",
}

var forbiddenDeps = []string{
	"gorm.io/",
	"github.com/casbin/gorm-adapter",
	"github.com/jackc/",
	"github.com/mattn/go-sqlite3",
	"github.com/kiops/iam/adapters",
	"github.com/kiops/iam/internal/dbtest",
}

// TestDeps fails when a domain package depends, directly or not, on
// storage technology or on the layers above it (in the style of
// tailscale's TestDeps).
func TestDeps(t *testing.T) {
	for _, pkg := range domainPackages {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			if dep == "github.com/kiops/iam" {
				t.Errorf("%s imports the root package", pkg)
			}
			for _, bad := range forbiddenDeps {
				if strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
