package legacy_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/legacy"
	"github.com/ecrd-pos/ecrd/internal/legacy/legacytest"
)

// frame is one frame of a log: where it starts and ends, and its ops.
type frame struct {
	start, end int
	ops        []struct {
		Path string `json:"p"`
		Data []byte `json:"d"`
	}
}

// frames splits a sound log into its frames.
func frames(t *testing.T, b []byte) []frame {
	t.Helper()
	var out []frame
	for off := 0; off < len(b); {
		if len(b)-off < 12 || binary.LittleEndian.Uint32(b[off:]) != 0xEC4D0A1E {
			t.Fatalf("no frame at %d", off)
		}
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		f := frame{start: off, end: off + 12 + n}
		if err := json.Unmarshal(b[off+12:f.end], &f.ops); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
		off = f.end
	}
	return out
}

// phaseIn is the phase a frame writes for transaction id's active record, or "".
func (f frame) phaseIn(id string) string {
	for _, o := range f.ops {
		if o.Path == "journal/"+id+".json" {
			var r struct {
				Phase string `json:"phase"`
			}
			json.Unmarshal(o.Data, &r)
			return r.Phase
		}
	}
	return ""
}

func (f frame) clock() []byte {
	for _, o := range f.ops {
		if o.Path == "steady-clock.json" {
			return o.Data
		}
	}
	return nil
}

// logWithFrames returns the fixture's log that holds frames, and its frames.
func logWithFrames(t *testing.T, dir string, m *legacytest.Manifest) (string, []byte, []frame) {
	t.Helper()
	for _, l := range m.Wal.Logs {
		p := filepath.Join(dir, l)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			return p, b, frames(t, b)
		}
	}
	t.Fatal("no log with frames")
	return "", nil, nil
}

// A power cut while the last frame was written: replayed without it, as the old code did.
func TestImportTornLastFrame(t *testing.T) {
	dir, st, m := fixture(t)
	p, b, fs := logWithFrames(t, dir, m)
	last := fs[len(fs)-1]
	logOnly := m.ID("log_only")
	if last.phaseIn(logOnly) != "in_doubt" || fs[len(fs)-2].phaseIn(logOnly) != "intent" {
		t.Fatal("the fixture's last frames are not log_only's intent and doubt")
	}
	if err := os.WriteFile(p, b[:last.start+(last.end-last.start)/2], 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if rep.Frames != len(fs)-1 || rep.SkippedFrames != 1 || !hasProblem(rep, "wal/"+filepath.Base(p)) {
		t.Fatalf("report: %d frames, %d skipped, problems %v", rep.Frames, rep.SkippedFrames, rep.Problems)
	}
	// log_only is as its intent left it: sent, in doubt until read back.
	if c := capture(t, st, logOnly); c.Phase != "intent" || c.Attempts != 1 || !c.Unfinished || c.Doubted {
		t.Fatalf("log_only: %+v", c)
	}
	if c := capture(t, st, m.ID("late")); c.Phase != "in_doubt" {
		t.Fatalf("late: %s", c.Phase)
	}
	if mark, _ := st.Meta("steady_clock"); !bytes.Equal(mark, fs[len(fs)-2].clock()) {
		t.Fatalf("mark %s, want the last whole frame's %s", mark, fs[len(fs)-2].clock())
	}
}

// A flipped bit in a frame in the middle: that frame is skipped, the later ones are applied.
func TestImportCorruptMiddleFrame(t *testing.T) {
	dir, st, m := fixture(t)
	p, b, fs := logWithFrames(t, dir, m)
	late := m.ID("late")
	i := slices.IndexFunc(fs, func(f frame) bool { return f.phaseIn(late) == "in_doubt" })
	if i < 0 || i == len(fs)-1 {
		t.Fatal("no frame of late's doubt in the middle of the log")
	}
	b[fs[i].start+12+(fs[i].end-fs[i].start-12)/2] ^= 0x20
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if rep.Frames != len(fs)-1 || rep.SkippedFrames != 1 || !hasProblem(rep, "wal/"+filepath.Base(p)) {
		t.Fatalf("report: %d frames, %d skipped, problems %v", rep.Frames, rep.SkippedFrames, rep.Problems)
	}
	// late keeps the state before the bad frame (its intent, as the file has it) …
	if c := capture(t, st, late); c.Phase != "intent" || !c.Unfinished {
		t.Fatalf("late: %+v", c)
	}
	// … and the frames after it were replayed: log_only exists only in them.
	if c := capture(t, st, m.ID("log_only")); c.Phase != "in_doubt" || !c.Doubted {
		t.Fatalf("log_only: %+v", c)
	}
	if mark, _ := st.Meta("steady_clock"); string(mark) != m.SteadyClock.Replayed {
		t.Fatalf("mark %s, want %s", mark, m.SteadyClock.Replayed)
	}
}

// The log's changes are laid over the files in the order of the logs' numbers, and a removal
// in the log hides a file on disk.
func TestImportLogsInOrder(t *testing.T) {
	dir := t.TempDir()
	const a, b = "STX_A", "STX_B"
	rec := func(id, phase string) []byte {
		r := map[string]any{"transaction_id": id, "phase": phase, "attempts": 1, "created": time.Now().UTC(),
			"updated": time.Now().UTC(), "spooled": false, "reprints": 0}
		if phase == "refused" {
			r["refusal"] = map[string]any{"http_status": 400}
		}
		js, _ := json.Marshal(r)
		return js
	}
	os.MkdirAll(filepath.Join(dir, "journal/finished"), 0o750)
	os.MkdirAll(filepath.Join(dir, "wal"), 0o750)
	os.WriteFile(filepath.Join(dir, "journal", b+".json"), rec(b, "intent"), 0o640)
	type o struct {
		P string `json:"p"`
		D []byte `json:"d,omitempty"`
		R bool   `json:"r,omitempty"`
	}
	frameOf := func(ops ...o) []byte {
		payload, _ := json.Marshal(ops)
		h := make([]byte, 12)
		binary.LittleEndian.PutUint32(h, 0xEC4D0A1E)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(h[8:], crc32c(payload))
		return append(h, payload...)
	}
	// Log 9 before log 10 (numbers, not names), and garbage between frames.
	os.WriteFile(filepath.Join(dir, "wal/0000000000000009.log"), slices.Concat(
		frameOf(o{P: "journal/" + a + ".json", D: rec(a, "intent")}),
		[]byte("garbage\xec"),
		frameOf(o{P: "journal/" + a + ".json", D: rec(a, "in_doubt")})), 0o640)
	os.WriteFile(filepath.Join(dir, "wal/0000000000000010.log"), frameOf(
		o{P: "journal/finished/" + b + ".json", D: rec(b, "refused")}, o{P: "journal/" + b + ".json", R: true},
		o{P: "../outside", D: []byte("x")}), 0o640)
	os.WriteFile(filepath.Join(dir, "wal/0000000000000011.log"), nil, 0o640)
	st := openStore(t, dir)
	rep := mustImport(t, dir, st)
	if rep.Logs != 3 || rep.Frames != 3 || rep.SkippedFrames != 1 || rep.Captures != 2 {
		t.Fatalf("report %+v", rep)
	}
	if c := capture(t, st, a); c.Phase != "in_doubt" || !c.Unfinished {
		t.Fatalf("%s: %+v", a, c)
	}
	if c := capture(t, st, b); c.Phase != "refused" || c.Unfinished || len(c.Refusal) == 0 {
		t.Fatalf("%s: %+v", b, c)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "outside")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the import wrote outside the state directory")
	}
	if !slices.ContainsFunc(rep.Problems, func(p legacy.Problem) bool { return strings.Contains(p.What, "../outside") }) {
		t.Fatalf("the change outside the state directory was not reported: %v", rep.Problems)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
