//go:build race

package main

// raceEnabled: the race detector multiplies memory use; tests that
// measure it loosen their bounds.
const raceEnabled = true
