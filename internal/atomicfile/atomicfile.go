// Package atomicfile writes files so that after a crash or power loss at any instant the
// reader finds either the old content or the new, whole — never a torn or empty file.
// The journal and the spool both rest on it; it must never return before the data is on disk.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// observer is told about every fsync and every failed write, for metrics and health.
var observer atomic.Pointer[func(op string, d time.Duration, err error)]

// Observe sets the function told about storage: op "fsync" for each fsync of a file or a
// directory with its duration and error, op "write" for each WriteFile, Rename or SyncDir
// that failed (d is 0 then). nil stops it. The function must be quick and must not block:
// it runs on the journal's and the spool's write path.
func Observe(f func(op string, d time.Duration, err error)) {
	if f == nil {
		observer.Store(nil)
		return
	}
	observer.Store(&f)
}

func observe(op string, d time.Duration, err error) {
	if f := observer.Load(); f != nil {
		(*f)(op, d, err)
	}
}

// sync fsyncs f and reports how long it took.
func sync(f *os.File) error {
	start := time.Now()
	err := f.Sync()
	observe("fsync", time.Since(start), err)
	return err
}

// Timed runs flush (an fsync, fdatasync or syncfs of the caller's) and reports it like the
// fsyncs of this package, so that every flush of the state directory reaches one observer.
func Timed(flush func() error) error {
	start := time.Now()
	err := flush()
	observe("fsync", time.Since(start), err)
	return err
}

// WriteFile writes data to a temporary file in path's directory, fsyncs it, renames it over
// path and fsyncs the directory. The temporary name starts with "." and ends in ".tmp" so
// that directory scans can skip (and clean up) leftovers of a crash.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// write is WriteFile, with the two fsyncs only when durable is set.
func write(path string, data []byte, perm os.FileMode, durable bool) (err error) {
	defer func() {
		if err != nil {
			observe("write", 0, err)
		}
	}()
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
	if durable {
		if err := sync(f); err != nil {
			return fmt.Errorf("atomicfile: sync %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	ok = true
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// SyncDir fsyncs a directory: without it a new name or a rename may not survive power loss.
func SyncDir(dir string) error {
	err := syncDir(dir)
	if err != nil {
		observe("write", 0, err)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := sync(d); err != nil {
		return fmt.Errorf("atomicfile: sync dir %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name is a leftover temporary file of WriteFile.
func IsTemp(name string) bool {
	return len(name) > 4 && name[0] == '.' && filepath.Ext(name) == ".tmp"
}
