package crashpoint

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// The tests run this test binary again as the process that reaches the points, with the
// environment a crash test or the till test bed gives the daemon (package variables are read
// from it at start, so only a new process can have them set).
const childEnv = "ECRD_CRASHPOINT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		child()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start starts the test binary as the child with env added and returns it with its stdout
// and stderr buffers (filled as it writes; read them after Wait).
func start(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1"}, env...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	return cmd, &out
}

func say(format string, a ...any) { fmt.Fprintf(os.Stdout, format+"\n", a...) }
