package profile

import (
	"strings"
	"testing"
)

// A model typed almost right is named in the error, so a technician fixes it at once.
func TestLookupSuggestsTheModelMeant(t *testing.T) {
	_, err := Lookup("tmt88v")
	if err == nil || !strings.Contains(err.Error(), "did you mean TM-T88V?") {
		t.Fatalf("Lookup(tmt88v): %v, want a suggestion of TM-T88V", err)
	}
	if _, err := Lookup("zebra-label-9000"); err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("Lookup of nothing near: %v, want no suggestion", err)
	}
}
