//go:build !race

package receipt

// raceDetector says the tests run under the race detector (race_test.go).
const raceDetector = false
