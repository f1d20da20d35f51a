package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// withoutHugePages makes the daemon's memory 4 KiB pages only, by setting the kernel's
// no-transparent-huge-pages flag for the process and, the first time, executing the daemon
// again: the flag holds for memory touched after it is set, and by the time any Go code
// runs, the runtime has touched its first heap arena.
//
// Why: Debian's kernels back anonymous memory with 2 MiB huge pages wherever they can
// (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS). The daemon's heap is about 2 MiB and its other
// memory a few scattered pages, so every huge page is mostly memory it never uses: measured
// on Debian 13, 9 MiB anonymous after 1,000 captures against 6.5 without (make test-till,
// the memory scenario). The flag covers the Go heap, the GC's own memory, the C stacks and
// malloc of libusb alike (GODEBUG=disablethp covers only the heap), and is kept across exec.
//
// The second execution has the same process id, environment and descriptors, so socket
// activation (LISTEN_PID, LISTEN_FDS), sd_notify and the watchdog are untouched. It is
// skipped when the flag is already set (the second execution, or a parent that set it)
// or cannot be set; exec only fails when the binary cannot be run again, and then the
// daemon simply goes on with huge pages. It returns only then, or when nothing was needed.
func withoutHugePages() error {
	if on, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0); err != nil || on == 1 {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return nil
	}
	// /proc/self/exe, not os.Args[0] or a path: it is this very binary, even when an upgrade
	// has just replaced the file at its path.
	return unix.Exec("/proc/self/exe", os.Args, os.Environ())
}
