// Package legacytest gives tests the state directory an ecrd before the SQLite store wrote
// (store/testdata/legacy-30fc41b.tar.gz) and its manifest: what the old code reported for it.
package legacytest

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// testdata is store/testdata, found from this file's place in the module.
func testdata() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("legacytest: no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "store", "testdata")
}

// Archive is the fixture's path; ManifestPath its manifest's.
func Archive() string      { return filepath.Join(testdata(), "legacy-30fc41b.tar.gz") }
func ManifestPath() string { return filepath.Join(testdata(), "legacy-30fc41b.json") }

// Extract unpacks the fixture into dir (created if needed) with each file's mode and
// modification time, to the nanosecond.
func Extract(dir string) error { return ExtractArchive(Archive(), dir) }

// ExtractArchive unpacks a gzipped tar of regular files and directories into dir.
func ExtractArchive(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	type stamp struct {
		path string
		mod  time.Time
	}
	var dirs []stamp
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(h.Name) {
			return fmt.Errorf("legacytest: %q is not inside the archive's root", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode).Perm()|0o700); err != nil {
				return err
			}
			dirs = append(dirs, stamp{p, h.ModTime})
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.Chtimes(p, h.ModTime, h.ModTime); err != nil {
				return err
			}
		default:
			return fmt.Errorf("legacytest: %s: not a file or directory", h.Name)
		}
	}
	// Directories last, deepest first: writing their files changed their times.
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := os.Chtimes(d.path, d.mod, d.mod); err != nil {
			return err
		}
	}
	return nil
}

// Manifest is legacy-30fc41b.json (see store/testdata/make_legacy.go, which wrote it).
type Manifest struct {
	Names        map[string]string `json:"names"` // name -> transaction id
	Transactions []Transaction     `json:"transactions"`
	Jobs         struct {
		Queued  []Job `json:"queued"`  // oldest first
		Printed []Job `json:"printed"` // spool/done
	} `json:"jobs"`
	LogOnly []struct {
		Name     string `json:"name"`
		ID       string `json:"transaction_id"`
		OnDisk   string `json:"on_disk"`
		Replayed string `json:"replayed"`
		File     string `json:"file"`
	} `json:"log_only"`
	Wal struct {
		Logs            []string `json:"logs"`
		Frames          int      `json:"frames"`
		NotApplied      int      `json:"frames_not_applied"`
		NotAppliedPaths []string `json:"paths_not_applied"`
	} `json:"wal"`
	SteadyClock struct {
		File     string `json:"file"`
		OnDisk   string `json:"on_disk"`
		Replayed string `json:"replayed"`
	} `json:"steady_clock"`
	Paid []struct {
		File string   `json:"file"`
		IDs  []string `json:"transaction_ids"`
	} `json:"paid_index"`
}

// Transaction is what the old code reported for one transaction once the log was replayed.
type Transaction struct {
	Name          string `json:"name"`
	ID            string `json:"transaction_id"`
	Phase         string `json:"phase"`
	Attempts      int    `json:"attempts"`
	Spooled       bool   `json:"spooled"`
	Pruned        bool   `json:"pruned"`
	Reprints      int    `json:"reprints"`
	Finished      bool   `json:"finished"`
	File          string `json:"file"`
	TransID       string `json:"trans_id"`
	PaymentMethod string `json:"payment_method"`
	HasAnswer     bool   `json:"answer"`
	Refusal       bool   `json:"refusal"`
	Doubt         bool   `json:"doubt"`
	Sent          bool   `json:"sent"`
	LogOnly       bool   `json:"log_only"`
}

// Job is a queued or printed job of the manifest.
type Job struct {
	ID            string `json:"id"`
	TransactionID string `json:"transaction_id"`
	Kind          string `json:"kind"`
	Kick          bool   `json:"kick"`
	KickLife      string `json:"kick_life"` // "" no pulse, "empty" handed over, "other" a dead life's
	KickLifeValue string `json:"kick_life_value"`
	Seq           uint64 `json:"seq"`
}

// LoadManifest reads the fixture's manifest.
func LoadManifest() (*Manifest, error) {
	b, err := os.ReadFile(ManifestPath())
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("legacytest: %s: %w", ManifestPath(), err)
	}
	return &m, nil
}

// ID is the transaction id of the manifest's name.
func (m *Manifest) ID(name string) string {
	id, ok := m.Names[name]
	if !ok {
		panic("legacytest: no transaction named " + name)
	}
	return id
}
