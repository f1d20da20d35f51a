package legacy_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/store"
)

// Found by the red team: upgrade, a rollback to the old release (which keeps its journal in files again, beside
// ecrd.db), then the upgrade again: the second start of the new release finds old files and
// the first import's summary, "resumes" — moves the files aside — and imports nothing. A
// start/cash the old release journaled (an intent: it may have captured) is forgotten, so a
// repeat of the POS's request sends start/cash again.
func TestReupgradeAfterARollbackImportsTheOldReleasesJournal(t *testing.T) {
	dir, st, _ := fixture(t)
	mustImport(t, dir, st)

	// The old release runs again on this state directory (a rollback) and journals an intent.
	id := "STX_rollbackintent1"
	if err := os.MkdirAll(filepath.Join(dir, "journal"), 0o750); err != nil {
		t.Fatal(err)
	}
	rec := `{"transaction_id":"` + id + `","phase":"intent","attempts":1,"created":"2026-12-05T10:00:00Z","updated":"2026-12-05T10:00:00Z","sent":"2026-12-05T10:00:00Z","spooled":false,"reprints":0}`
	if err := os.WriteFile(filepath.Join(dir, "journal", id+".json"), []byte(rec), 0o640); err != nil {
		t.Fatal(err)
	}

	rep := mustImport(t, dir, st) // the new release starts again
	t.Logf("report: imported=%v resumed=%v moved=%v captures=%d", rep.Imported, rep.Resumed, rep.Moved, rep.Captures)
	if _, err := st.Capture(id); errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the old release's intent for %s was moved aside (%v) and never imported: the journal says 'no record', so the POS's repeat sends start/cash again", id, rep.Moved)
	}
}
