//go:build race

package signer

// raceEnabled: scrypt at minisign's cost (N=2^20, 1 GB) takes minutes under
// the race detector.
const raceEnabled = true
