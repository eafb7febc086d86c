//go:build race

package publish

// raceEnabled: scrypt at minisign's cost (N=2^20, 1 GB) takes minutes under
// the race detector.
const raceEnabled = true
