// Package dirscan reads a long directory's file names and modification times in memory that
// does not grow with the directory.
//
// The journal's finished records and the spool's printed jobs are one small file each, and a
// till that has run for years has a hundred thousand of them. os.ReadDir and (*os.File).ReadDir
// hand out a batch of DirEntry values, and each entry's Info another FileInfo and a joined
// path: a few hundred KiB of garbage per batch, which lifts the heap's peak and, with it, the
// collector's metadata that the runtime never returns (see TestMeasureIdleAfterPrune in
// cmd/ecrd). Each reads the directory with getdents(2) into one reused buffer and asks
// fstatat(2) relative to the open directory, so a scan holds a few KiB whatever the count.
package dirscan

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// bufSize is the getdents buffer: about 200 entries of the names ecrd writes per call.
const bufSize = 8 << 10

// Each calls f with the name and modification time of every regular file in dir, in the
// directory's own order. An entry removed between the read and its stat is skipped, so a scan
// can run beside writers. An error from f stops the scan and is returned as it is.
func Each(dir string, f func(name string, mod time.Time) error) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, bufSize)
	names := make([]string, 0, 256)
	var st unix.Stat_t
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n == 0 {
			return nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names[:0])
		for _, name := range names {
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if err == unix.ENOENT {
					continue // removed meanwhile
				}
				return &os.PathError{Op: "fstatat", Path: dir + "/" + name, Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if err := f(name, time.Unix(st.Mtim.Unix())); err != nil {
				return err
			}
		}
		clear(names) // let the batch's names go before the next read
	}
}
