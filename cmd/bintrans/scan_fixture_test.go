package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// scanKey is a minisign transparency key for scan tests.
type scanKey struct {
	sk *minisign.PrivateKey
	pk verify.PublicKey
}

// newScanKey derives a minisign key pair from seed (deterministic), with
// the unencrypted key layout go-minisign signs with.
func newScanKey(t testing.TB, seed byte) scanKey {
	t.Helper()
	var s [32]byte
	for i := range s {
		s[i] = seed
	}
	edsk := ed25519.NewKeyFromSeed(s[:])
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	id := sha256.Sum256([]byte{'s', 'c', 'a', 'n', seed})
	copy(sk.KeyId[:], id[:8])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return scanKey{sk: sk, pk: pk}
}

// signed is a `.t` and the proof bundle of its log entry.
type signed struct {
	T      []byte
	Bundle []byte
	Entry  *rekorv1.Entry
}

// signAndLog signs sha256Hex with comment as trusted comment, logs the
// canonical body in l (an honest entry, proof at the new tree size, as
// Rekor answers an upload) and returns the `.t` and bundle bytes.
func signAndLog(t testing.TB, l *fakelog.Log, k scanKey, sha256Hex, comment string) signed {
	t.Helper()
	tf, err := verify.SignPackage(k.sk, sha256Hex, comment)
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.ParseSignature(tf)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Add(rekorv1.CanonicalBody(s, k.pk, []byte(sha256Hex)))
	b, err := rekorv1.MarshalBundle(e)
	if err != nil {
		t.Fatal(err)
	}
	return signed{T: tf, Bundle: b, Entry: e}
}

// writeSigned writes <dir>/<filename>.t and, when withBundle, the bundle.
func writeSigned(t testing.TB, dir, filename string, s signed, withBundle bool) {
	t.Helper()
	writeTestFile(t, filepath.Join(dir, filename+verify.SignatureSuffix), s.T)
	if withBundle {
		writeTestFile(t, filepath.Join(dir, filename+verify.BundleSuffix), s.Bundle)
	}
}

func writeTestFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256Of(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
