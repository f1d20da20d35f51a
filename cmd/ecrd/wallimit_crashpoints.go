//go:build crashpoints

package main

import (
	"os"
	"strconv"
)

// walLimit is the size at which the state directory's write-ahead log is checkpointed. The
// crash tests' build (and only it: wallimit.go is the release build) takes it from
// ECRD_WAL_LIMIT, so that a checkpoint's steps — prepare, switch, syncfs, remove, each a
// crash point in internal/wal — fall inside one capture instead of after a few hundred.
// 0 or unset is internal/wal's default.
func walLimit() int64 {
	n, _ := strconv.ParseInt(os.Getenv("ECRD_WAL_LIMIT"), 10, 64)
	return n
}
