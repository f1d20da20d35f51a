//go:build !crashpoints

// Package crashpoint marks the steps of a capture where the crash tests kill the daemon.
// In release builds Hit does nothing and compiles away; only a binary built with
// `-tags crashpoints` can stop itself (see crashpoint_on.go), so the hook cannot change
// what a till's daemon does.
package crashpoint

// Hit marks the named step. It does nothing in this build.
func Hit(name string) {}

// Armed reports whether the process is set to die at name. It is always false here.
func Armed(name string) bool { return false }
