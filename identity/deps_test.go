package identity_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps fails when identity or identitytest depends on storage
// technology, an adapter or the root package (DESIGN.md section 2).
func TestDeps(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"github.com/kiops/iam/identity", "github.com/kiops/iam/identity/identitytest"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			if dep == "github.com/kiops/iam" {
				t.Errorf("%s imports the root package", pkg)
			}
			for _, bad := range []string{"gorm.io/", "github.com/casbin/gorm-adapter", "github.com/jackc/", "github.com/mattn/", "github.com/glebarez/", "modernc.org/", "github.com/kiops/iam/adapters", "github.com/kiops/iam/internal/"} {
				if strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
