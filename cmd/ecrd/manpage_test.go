package main

import (
	"flag"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// manSource is the man page's source, ecrd(1) in Markdown for go-md2man (scripts/build-deb.sh
// turns it into /usr/share/man/man1/ecrd.1.gz).
const manSource = "../../docs/ecrd.1.md"

// manSections splits the man page's source into its sections ("# NAME" ... "# SEE ALSO"),
// each section's text by its heading.
func manSections(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(manSource)
	if err != nil {
		t.Fatal(err)
	}
	secs := map[string]string{}
	name := ""
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "# "); ok {
			name = strings.TrimSpace(h)
			if _, dup := secs[name]; dup {
				t.Errorf("%s: section %q twice", manSource, name)
			}
			secs[name] = ""
			continue
		}
		if name != "" {
			secs[name] += line + "\n"
		}
	}
	for _, want := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"} {
		if _, ok := secs[want]; !ok {
			t.Errorf("%s has no %s section", manSource, want)
		}
	}
	return secs
}

// manTerm matches a definition-list term of OPTIONS: **--flag** [*ARG*], **ECRD_FLAG**.
var manTerm = regexp.MustCompile(`^\*\*--([a-z0-9-]+)\*\*(?: \*[A-Z]+\*)?, \*\*(ECRD_[A-Z0-9_]+)\*\*$`)

// TestManPageListsEveryServeFlag keeps the man page's OPTIONS and the flag set of `ecrd serve`
// the same: every flag serveConfig.register adds has its term (**--name** ..., **ECRD_NAME**)
// in OPTIONS, and OPTIONS documents no flag serve does not have.
func TestManPageListsEveryServeFlag(t *testing.T) {
	opts := manSections(t)["OPTIONS"]
	documented := map[string]bool{}
	lines := strings.Split(opts, "\n")
	for i, line := range lines {
		// A term is the line above its definition (":   ..."); the section's prose is not.
		if line == "" || i+1 == len(lines) || !strings.HasPrefix(lines[i+1], ":") {
			continue
		}
		m := manTerm.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s OPTIONS: term %q is not **--flag** *ARG*, **ECRD_FLAG**", manSource, line)
			continue
		}
		if envName(m[1]) != m[2] {
			t.Errorf("%s OPTIONS: --%s is given the variable %s, not %s", manSource, m[1], m[2], envName(m[1]))
		}
		documented[m[1]] = true
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			missing = append(missing, "--"+f.Name+" ("+envName(f.Name)+")")
		}
		delete(documented, f.Name)
	})
	if len(missing) > 0 {
		t.Errorf("%s OPTIONS lacks these flags of ecrd serve: %s", manSource, strings.Join(missing, ", "))
	}
	var extra []string
	for name := range documented {
		extra = append(extra, "--"+name)
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("%s OPTIONS documents flags ecrd serve does not have: %s", manSource, strings.Join(extra, ", "))
	}
}

// TestManPageSynopsisHasEveryCommand checks that SYNOPSIS has a line for every command of the
// usage text (a new command is added there first) and for help.
func TestManPageSynopsisHasEveryCommand(t *testing.T) {
	syn := manSections(t)["SYNOPSIS"]
	cmds := []string{"help"}
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  ecrd "); ok {
			cmds = append(cmds, strings.Fields(rest)[0])
		}
	}
	if len(cmds) < 9 {
		t.Fatalf("found only %q in the usage text", cmds)
	}
	var missing []string
	for _, c := range cmds {
		if !strings.Contains(syn, "**ecrd "+c+"**") {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s SYNOPSIS lacks these commands: %s", manSource, strings.Join(missing, ", "))
	}
}
