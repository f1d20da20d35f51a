// Package deptest turns rules about imports into tests: a DepChecker lists what a package
// links (or imports directly) with `go list`, for a chosen GOOS, GOARCH, build tags and cgo
// setting, and fails on each forbidden dependency, saying why it is forbidden and through
// which imports it came in. It follows Tailscale's tstest/deptest.
//
// A rule that names a package which does not exist would pass for ever, so Check also fails
// when a package of the module named in BadDeps is gone (renamed, moved), and when a package
// outside it belongs to no module go.mod requires: a rename cannot switch a rule off.
//
// The module's rules, the package map's "never" lines (docs/architecture.md), are
// deps_test.go at the module root.
package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
)

// DepChecker is one rule: Pkg must not depend on any package in BadDeps.
type DepChecker struct {
	// Pkg is the package checked: an import path, or a relative path ("./receipt") from Dir.
	Pkg string
	// GOOS and GOARCH select the platform ("": the host's); Tags are build tags, comma-separated.
	GOOS, GOARCH, Tags string
	// CGO is CGO_ENABLED for the listing: "0", "1", or "" for go's default.
	CGO string
	// Tests adds what Pkg's tests import (internal and external test files, go list -test).
	Tests bool
	// Direct checks only the packages Pkg imports itself, not everything they import in turn:
	// for a rule about who may call whom where a dependency further down is fine.
	Direct bool
	// BadDeps maps an import path to why Pkg must not depend on it. A path ending in "/..."
	// stands for that package and every package under it ("github.com/google/gousb/...").
	BadDeps map[string]string
	// Dir is where go runs ("": the test's working directory); it must be inside the module.
	Dir string
}

// Check fails t for each package in BadDeps that Pkg depends on, and for each entry of BadDeps
// that names nothing (see the package comment). It fails at once when go list does: a package
// that does not build for this platform cannot be checked.
func (c DepChecker) Check(t testing.TB) {
	t.Helper()
	if c.Pkg == "" || len(c.BadDeps) == 0 {
		t.Fatalf("deptest: a DepChecker needs Pkg and BadDeps: %+v", c)
	}
	c.checkBadDepsExist(t)
	graph, err := c.list()
	if err != nil {
		t.Fatalf("deptest: %v", err)
	}
	for _, dep := range graph.deps(c.Direct) {
		for _, bad := range sortedKeys(c.BadDeps) {
			if matches(bad, dep) {
				t.Errorf("%s must not depend on %s (%s): %s\n\timported through %s",
					graph.root, dep, c.env(), c.BadDeps[bad], strings.Join(graph.path(dep), " → "))
			}
		}
	}
}

// env describes the build the rule was checked in, for error messages.
func (c DepChecker) env() string {
	var parts []string
	for _, kv := range [][2]string{{"GOOS", c.GOOS}, {"GOARCH", c.GOARCH}, {"CGO_ENABLED", c.CGO}, {"tags", c.Tags}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if c.Tests {
		parts = append(parts, "with tests")
	}
	if c.Direct {
		parts = append(parts, "direct imports")
	}
	if len(parts) == 0 {
		return "default build"
	}
	return strings.Join(parts, ", ")
}

// matches reports whether import path dep is what rule names.
func matches(rule, dep string) bool {
	if tree, ok := strings.CutSuffix(rule, "/..."); ok {
		return dep == tree || strings.HasPrefix(dep, tree+"/")
	}
	return dep == rule
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkBadDepsExist fails t for a rule about nothing: a module package that is not there, an
// outside package whose module go.mod does not require, a standard package go does not know.
func (c DepChecker) checkBadDepsExist(t testing.TB) {
	t.Helper()
	mod, err := c.module()
	if err != nil {
		t.Fatalf("deptest: %v", err)
	}
	var pkgs []string
	for _, bad := range sortedKeys(c.BadDeps) {
		path := strings.TrimSuffix(bad, "/...")
		switch {
		case path == mod.path || strings.HasPrefix(path, mod.path+"/"):
			if pkgs == nil {
				if pkgs, err = c.modulePackages(mod.path); err != nil {
					t.Fatalf("deptest: %v", err)
				}
			}
			if !anyMatch(bad, pkgs) {
				t.Errorf("deptest: the rule %q (%s) names no package of %s: renamed or removed? Fix the rule, do not drop it", bad, c.BadDeps[bad], mod.path)
			}
		case strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
			if !mod.requires(path) {
				t.Errorf("deptest: the rule %q (%s) names a package of no module go.mod requires: renamed or removed? Fix the rule, do not drop it", bad, c.BadDeps[bad])
			}
		default: // the standard library
			out, err := c.goCmd(nil, "list", "-e", "-f", "{{with .Error}}{{.}}{{end}}", path)
			if err == nil && len(bytes.TrimSpace(out)) > 0 {
				err = errors.New(string(bytes.TrimSpace(out)))
			}
			if err != nil {
				t.Errorf("deptest: the rule %q (%s) names no standard package: %v", bad, c.BadDeps[bad], err)
			}
		}
	}
}

func anyMatch(rule string, pkgs []string) bool {
	for _, p := range pkgs {
		if matches(rule, p) {
			return true
		}
	}
	return false
}

// module is the main module as go.mod says: its path and the modules it requires.
type module struct {
	path     string
	required []string
}

// requires reports whether import path belongs to a module go.mod requires.
func (m module) requires(path string) bool {
	for _, r := range m.required {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

// listed keeps what go said about the module and its packages, by where and how go ran: they
// do not change while the tests run, and every rule would otherwise ask go for them again
// (two of the three go commands a Check runs).
var listed struct {
	sync.Mutex
	modules  map[string]module
	packages map[string][]string
}

// cacheKey names where and how go runs for c: its directory and the environment that could
// change what go mod and go list say.
func (c DepChecker) cacheKey() string {
	return strings.Join([]string{c.Dir, os.Getenv("GOFLAGS"), os.Getenv("GOWORK"), os.Getenv("GO111MODULE")}, "\x00")
}

func (c DepChecker) module() (module, error) {
	key := c.cacheKey()
	listed.Lock()
	m, ok := listed.modules[key]
	listed.Unlock()
	if ok {
		return m, nil
	}
	m, err := c.readModule()
	if err == nil {
		listed.Lock()
		if listed.modules == nil {
			listed.modules = map[string]module{}
		}
		listed.modules[key] = m
		listed.Unlock()
	}
	return m, err
}

func (c DepChecker) readModule() (module, error) {
	out, err := c.goCmd(nil, "mod", "edit", "-json")
	if err != nil {
		return module{}, err
	}
	var gomod struct {
		Module  struct{ Path string }
		Require []struct{ Path string }
	}
	if err := json.Unmarshal(out, &gomod); err != nil {
		return module{}, fmt.Errorf("go mod edit -json: %v", err)
	}
	m := module{path: gomod.Module.Path}
	for _, r := range gomod.Require {
		m.required = append(m.required, r.Path)
	}
	return m, nil
}

// modulePackages lists every package of the module whatever the build: a package that this
// platform's build leaves out still exists.
func (c DepChecker) modulePackages(modPath string) ([]string, error) {
	key := c.cacheKey() + "\x00" + modPath
	listed.Lock()
	pkgs, ok := listed.packages[key]
	listed.Unlock()
	if ok {
		return pkgs, nil
	}
	out, err := c.goCmd(nil, "list", "-e", "-f", "{{.ImportPath}}", modPath+"/...")
	if err != nil {
		return nil, err
	}
	pkgs = strings.Fields(string(out))
	listed.Lock()
	if listed.packages == nil {
		listed.packages = map[string][]string{}
	}
	listed.packages[key] = pkgs
	listed.Unlock()
	return pkgs, nil
}

// graph is the import graph go list reported: each package's imports, by import path with a
// test variant's " [p.test]" removed.
type graph struct {
	root    string
	imports map[string][]string
}

// list runs go list on Pkg in the checker's build.
func (c DepChecker) list() (graph, error) {
	args := []string{"list", "-deps", "-json=ImportPath,Imports,DepOnly"}
	if c.Tags != "" {
		args = append(args, "-tags", c.Tags)
	}
	if c.Tests {
		args = append(args, "-test")
	}
	out, err := c.goCmd(c.buildEnv(), append(args, c.Pkg)...)
	if err != nil {
		return graph{}, err
	}
	g := graph{imports: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			DepOnly    bool
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return graph{}, fmt.Errorf("go list -json: %v", err)
		}
		if c.Tests && !strings.Contains(p.ImportPath, " ") && strings.HasSuffix(p.ImportPath, ".test") {
			continue // the generated test main: the testing framework, not the package's code
		}
		path := stripVariant(p.ImportPath)
		if !p.DepOnly && g.root == "" && !strings.Contains(p.ImportPath, " ") {
			g.root = path // the package named on the command line, resolved from "./dir"
		}
		if _, seen := g.imports[path]; !seen {
			g.imports[path] = nil
		}
		for _, imp := range p.Imports {
			g.imports[path] = append(g.imports[path], stripVariant(imp))
		}
	}
	if g.root == "" {
		return graph{}, fmt.Errorf("go list %s: no package", c.Pkg)
	}
	if _, ok := g.imports[g.root+"_test"]; ok {
		// The external test package (Tests) is part of the package as a rule sees it.
		g.imports[g.root] = append(g.imports[g.root], g.root+"_test")
	}
	return g, nil
}

// stripVariant turns "p [q.test]" into "p".
func stripVariant(path string) string {
	p, _, _ := strings.Cut(path, " ")
	return p
}

// deps is what the root depends on: everything reachable, or its direct imports.
func (g graph) deps(direct bool) []string {
	if direct {
		var ds []string
		seen := map[string]bool{}
		for _, d := range g.imports[g.root] {
			// An external test package counts as the package itself.
			if d == g.root+"_test" {
				for _, x := range g.imports[d] {
					if !seen[x] && x != g.root {
						seen[x] = true
						ds = append(ds, x)
					}
				}
				continue
			}
			if !seen[d] {
				seen[d] = true
				ds = append(ds, d)
			}
		}
		sort.Strings(ds)
		return ds
	}
	// Everything reachable from the root: with -test, go list also printed what only the
	// test main needs.
	seen := map[string]bool{g.root: true}
	queue := []string{g.root}
	var ds []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range g.imports[p] {
			if !seen[imp] {
				seen[imp] = true
				queue = append(queue, imp)
				if imp != g.root+"_test" {
					ds = append(ds, imp)
				}
			}
		}
	}
	sort.Strings(ds)
	return ds
}

// path is the shortest chain of imports from the root to dep, both included; nil when dep is
// not reachable.
func (g graph) path(dep string) []string {
	prev := map[string]string{g.root: ""}
	queue := []string{g.root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, imp := range g.imports[p] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

// buildEnv is the environment of the checked build.
func (c DepChecker) buildEnv() []string {
	var env []string
	if c.GOOS != "" {
		env = append(env, "GOOS="+c.GOOS)
	}
	if c.GOARCH != "" {
		env = append(env, "GOARCH="+c.GOARCH)
	}
	if c.CGO != "" {
		env = append(env, "CGO_ENABLED="+c.CGO)
	}
	return env
}

// goCmd runs the go command in Dir with env added to the process's environment.
func (c DepChecker) goCmd(env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s (%s): %v\n%s", strings.Join(args, " "), strings.Join(env, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Packages lists the import paths pattern matches ("github.com/ecrd-pos/ecrd/...") from the
// test's working directory, for rules about every package. A package that the default build
// leaves out is listed too.
func Packages(t testing.TB, pattern string) []string {
	t.Helper()
	pkgs, err := DepChecker{}.goCmd(nil, "list", "-e", "-f", "{{.ImportPath}}", pattern)
	if err != nil {
		t.Fatalf("deptest: %v", err)
	}
	return strings.Fields(string(pkgs))
}
