//go:build !crashpoints

package crashpoint

import "testing"

// child reaches the point the environment names, as the daemon would.
func child() {
	say("armed %v", Armed("after-print"))
	Hit("after-print")
	say("survived")
}

// A release build cannot stop itself, whatever its environment says: the variables the crash
// tests and the till test bed set mean nothing to it.
func TestReleaseBuildIgnoresTheEnvironment(t *testing.T) {
	for _, env := range [][]string{
		{"ECRD_CRASHPOINT=after-print"},
		{"ECRD_CRASHPOINT=after-print", "ECRD_CRASHPOINT_HOLD=1"},
	} {
		cmd, out := start(t, env...)
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: child ended with %v\n%s", env, err, out)
		}
		if got := out.String(); got != "armed false\nsurvived\n" {
			t.Fatalf("%v: child said %q", env, got)
		}
	}
}
