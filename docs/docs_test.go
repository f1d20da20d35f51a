// Package docs holds the documents the code cites; this test keeps the citations honest.
package docs

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// cited matches a path under docs/ in a comment, e.g. "docs/durability.md".
	cited = regexp.MustCompile(`\bdocs/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*[A-Za-z0-9_]`)
	// outside matches documents a clone does not have: the design card and research notes
	// the code was written from live outside the repository.
	outside = regexp.MustCompile(`\bDESIGN\.md\b|\bresearch/|\.\./shared/|\bshared/research\b`)
)

// TestCommentsCiteDocsThatExist walks every Go file's comments and fails for a cited docs/
// path that is not in the repository, and for a citation of a document outside it.
func TestCommentsCiteDocsThatExist(t *testing.T) {
	root := ".."
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, cg := range f.Comments {
			text := cg.Text()
			for _, ref := range cited.FindAllString(text, -1) {
				n++
				if _, err := os.Stat(filepath.Join(root, ref)); err != nil {
					t.Errorf("%s: comment cites %s, which is not in the repository", path, ref)
				}
			}
			for _, ref := range outside.FindAllString(text, -1) {
				t.Errorf("%s: comment cites %q, which a clone does not have; cite docs/ instead", path, ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no comment cites docs/: the walk found nothing to check")
	}
}

// mdLink matches a relative link target in Markdown: [text](target) or [text](target#anchor).
var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)

// TestMarkdownLinksExist fails for a relative link in README.md or docs/*.md to a file that
// is not in the repository.
func TestMarkdownLinksExist(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	for _, name := range append(files, filepath.Join("..", "README.md")) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(name), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", name, target)
			}
		}
	}
}
