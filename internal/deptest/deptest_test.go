package deptest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that keeps what a Check reports instead of failing the test.
// Fatalf ends the calling goroutine, as testing's does, so Check runs in one of its own.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

// check runs c against the module in testdata/mod and returns what it reported.
func check(t *testing.T, c DepChecker) *recorder {
	t.Helper()
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	c.Dir = "testdata/mod"
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Check(r)
	}()
	<-done
	return r
}

// In testdata/mod, a imports b, b imports c; a's tests import d (a_test.go) and f (an
// external test); with the tag special a imports e, and on Windows b does.
func TestCheckerFindsForbiddenDependencies(t *testing.T) {
	tests := []struct {
		name string
		c    DepChecker
		want []string // each must be in one reported error; none: the check passes
	}{
		{"a direct import", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"example.com/m/b": "b is off limits"}},
			[]string{"example.com/m/a must not depend on example.com/m/b (default build): b is off limits", "example.com/m/a → example.com/m/b"}},
		{"an indirect import, with the chain that brings it in", DepChecker{Pkg: "./a", BadDeps: map[string]string{"example.com/m/c": "c is off limits"}},
			[]string{"must not depend on example.com/m/c", "c is off limits", "example.com/m/a → example.com/m/b → example.com/m/c"}},
		{"a tree", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"example.com/m/c/...": "nothing under c"}},
			[]string{"must not depend on example.com/m/c (default build): nothing under c"}},
		{"direct only: an indirect import is fine", DepChecker{Pkg: "example.com/m/a", Direct: true, BadDeps: map[string]string{"example.com/m/c": "only a's own imports"}},
			nil},
		{"direct only: a direct import is not", DepChecker{Pkg: "example.com/m/a", Direct: true, BadDeps: map[string]string{"example.com/m/b": "not from a itself"}},
			[]string{"must not depend on example.com/m/b (direct imports): not from a itself"}},
		{"tests are not counted unless asked for", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"example.com/m/d": "x", "example.com/m/f": "y"}},
			nil},
		{"an internal test's import", DepChecker{Pkg: "example.com/m/a", Tests: true, BadDeps: map[string]string{"example.com/m/d": "not in tests either"}},
			[]string{"must not depend on example.com/m/d (with tests): not in tests either"}},
		{"an external test's import", DepChecker{Pkg: "example.com/m/a", Tests: true, Direct: true, BadDeps: map[string]string{"example.com/m/f": "not in tests either"}},
			[]string{"must not depend on example.com/m/f (with tests, direct imports)", "example.com/m/a → example.com/m/a_test → example.com/m/f"}},
		{"build tags", DepChecker{Pkg: "example.com/m/a", Tags: "special", BadDeps: map[string]string{"example.com/m/e": "not with special"}},
			[]string{"must not depend on example.com/m/e (tags=special): not with special"}},
		{"without the tag", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"example.com/m/e": "not with special"}},
			nil},
		{"another GOOS", DepChecker{Pkg: "example.com/m/a", GOOS: "windows", GOARCH: "amd64", BadDeps: map[string]string{"example.com/m/e": "not on Windows"}},
			[]string{"must not depend on example.com/m/e (GOOS=windows, GOARCH=amd64): not on Windows", "example.com/m/a → example.com/m/b → example.com/m/e"}},
		{"a rule about a package that is gone", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"example.com/m/gone": "renamed since"}},
			[]string{`the rule "example.com/m/gone" (renamed since) names no package of example.com/m`}},
		{"a rule about a tree that is gone", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"example.com/m/gone/...": "renamed since"}},
			[]string{`the rule "example.com/m/gone/..." (renamed since) names no package`}},
		{"a rule about a module go.mod does not require", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"github.com/google/gousb/...": "cgo"}},
			[]string{`the rule "github.com/google/gousb/..." (cgo) names a package of no module go.mod requires`}},
		{"a rule about a standard package that does not exist", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"os/nosuch": "typo"}},
			[]string{`the rule "os/nosuch" (typo) names no standard package`}},
		{"a standard package that is not used", DepChecker{Pkg: "example.com/m/a", BadDeps: map[string]string{"os/exec": "no subprocesses"}},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := check(t, tc.c)
			if r.fatal {
				t.Fatalf("Check stopped: %q", r.errors)
			}
			if len(tc.want) == 0 && len(r.errors) > 0 {
				t.Fatalf("Check reported %q, want nothing", r.errors)
			}
			if len(tc.want) > 0 && len(r.errors) == 0 {
				t.Fatal("Check passed, want it to fail")
			}
			all := strings.Join(r.errors, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("Check reported\n%s\nwant it to say %q", all, w)
				}
			}
		})
	}
}

// A package that does not exist or does not build cannot be checked: Check stops.
func TestCheckerStopsWhenGoListFails(t *testing.T) {
	for _, c := range []DepChecker{
		{Pkg: "example.com/m/nosuch", BadDeps: map[string]string{"example.com/m/c": "x"}},
		{Pkg: "example.com/m/a"},
	} {
		if r := check(t, c); !r.fatal {
			t.Errorf("Check(%+v) did not stop: %q", c, r.errors)
		}
	}
}
