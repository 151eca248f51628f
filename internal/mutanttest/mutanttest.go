// Package mutanttest proves that a conformance suite can fail: it runs the
// suite, in child processes of the test binary, against stores that each
// carry one deliberate bug (mutants), and requires the named subtests to
// fail on each. A suite that passes a broken store is itself broken.
//
// A test package using it has two tests: one calls Run, the other is the
// child (named by childTest), which calls Name to learn which mutant to
// wrap around its store and then runs the suite.
package mutanttest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run runs childTest once per mutant, each in a child process of the test
// binary with the environment variable env set to the mutant's name, and
// requires every child to fail, with each of its mustFail subtests of
// childTest failing. In a child process it skips.
func Run(t *testing.T, env, childTest string, mustFail map[string][]string) {
	t.Helper()
	if os.Getenv(env) != "" {
		t.Skip("in a child process")
	}
	for name, subtests := range mustFail {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^"+childTest+"$", "-test.count=1", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), env+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with the %s bug:\n%s", name, out)
			}
			for _, sub := range subtests {
				if !strings.Contains(string(out), "--- FAIL: "+childTest+"/"+sub+" ") {
					t.Errorf("subtest %s did not fail on the %s bug:\n%s", sub, name, out)
				}
			}
		})
	}
}

// Name returns the mutant the child process must run, from env, skipping
// t when this is not a child of Run.
func Name(t *testing.T, env string) string {
	t.Helper()
	name := os.Getenv(env)
	if name == "" {
		t.Skip("runs only as a child of mutanttest.Run")
	}
	return name
}
