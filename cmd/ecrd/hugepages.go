package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// withoutHugePages makes the daemon's memory 4 KiB pages only, by setting the kernel's
// no-transparent-huge-pages flag for the process and executing the daemon again: the flag
// holds for memory touched after it is set, and by the time any Go code runs, the runtime has
// touched its first heap arena. It reports whether this process is that second execution.
//
// Why: Debian's kernels back anonymous memory with 2 MiB huge pages wherever they can
// (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS). The daemon's heap is about 2 MiB and its other
// memory a few scattered pages, so every huge page is mostly memory it never uses: measured
// on Debian 13, 9 MiB anonymous after 1,000 captures against 6 without (make test-till, the
// memory scenario). The flag covers the Go heap, the GC's own memory, the C stacks and
// malloc of libusb alike (GODEBUG=disablethp covers only the heap), and is kept across exec.
//
// The second execution has the same process id, environment and descriptors, so socket
// activation (LISTEN_PID, LISTEN_FDS), sd_notify and the watchdog are untouched. It runs at
// most once: the first marks the environment (reexecMarker), and the second removes the mark.
// Nothing is done when the flag is set already (a parent set it) or cannot be set; exec only
// fails when the binary cannot be run again, and then the daemon goes on with huge pages.
// It returns only then, or when nothing was needed.
func withoutHugePages() (again bool, err error) {
	if os.Getenv(reexecMarker) != "" {
		os.Unsetenv(reexecMarker)
		return true, nil
	}
	if on, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0); err != nil || on != 0 {
		return false, nil
	}
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return false, nil
	}
	// /proc/self/exe, not os.Args[0] or a path: it is this very binary, even when an upgrade
	// has just replaced the file at its path.
	return false, unix.Exec("/proc/self/exe", os.Args, append(os.Environ(), reexecMarker+"=1"))
}

// reexecMarker is set in the environment of the daemon's second execution only.
const reexecMarker = "ECRD_INTERNAL_REEXEC_WITHOUT_HUGE_PAGES"
