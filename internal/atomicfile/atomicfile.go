// Package atomicfile writes files so that after a crash or power loss at any instant the
// reader finds either the old content or the new, whole — never a torn or empty file.
// The journal and the spool both rest on it; it must never return before the data is on disk.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file in path's directory, fsyncs it, renames it over
// path and fsyncs the directory. The temporary name starts with "." and ends in ".tmp" so
// that directory scans can skip (and clean up) leftovers of a crash.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	ok = true
	return SyncDir(dir)
}

// Rename moves oldpath to newpath and fsyncs both directories, so that the move itself
// survives power loss (a rename lives in the directory, not in the file).
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := SyncDir(filepath.Dir(newpath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldpath); od != filepath.Dir(newpath) {
		return SyncDir(od)
	}
	return nil
}

// SyncDir fsyncs a directory: without it a new name or a rename may not survive power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync dir %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name is a leftover temporary file of WriteFile.
func IsTemp(name string) bool {
	return len(name) > 4 && name[0] == '.' && filepath.Ext(name) == ".tmp"
}
