//go:build race

package receipt

// raceDetector says the tests run under the race detector, where drawing is many times
// slower: tests that check sizes rather than goroutines draw smaller pictures then.
const raceDetector = true
