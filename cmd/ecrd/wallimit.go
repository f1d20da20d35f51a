//go:build !crashpoints

package main

// walLimit is the size at which the state directory's write-ahead log is checkpointed:
// internal/wal's default in every build a till runs (wallimit_crashpoints.go is the crash
// tests' build, which can make it tiny).
func walLimit() int64 { return 0 }
