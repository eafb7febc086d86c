package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/jedisct1/go-minisign"
)

// testKey returns a minisign key pair derived from seed (deterministic).
func testKey(t testing.TB, seed byte) (*minisign.PrivateKey, PublicKey) {
	t.Helper()
	var s [32]byte
	for i := range s {
		s[i] = seed
	}
	edsk := ed25519.NewKeyFromSeed(s[:])
	sk := &minisign.PrivateKey{
		SignatureAlgorithm: [2]byte{'E', 'd'},
		ChecksumAlgorithm:  [2]byte{'B', '2'},
	}
	copy(sk.SecretKey[:], edsk)
	sum := sha256.Sum256(append([]byte("keyid"), seed))
	copy(sk.KeyId[:], sum[:8])
	mpk := sk.PublicKey()
	pk, err := ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

func hexOf(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// noteKey signs checkpoint notes with Ed25519 under a 4-byte key hint: a
// log kind's key, as far as the generic note code is concerned.
type noteKey struct {
	priv ed25519.PrivateKey
	hint [4]byte
}

func newNoteKey(seed byte) *noteKey {
	var s [32]byte
	s[0] = seed
	k := &noteKey{priv: ed25519.NewKeyFromSeed(s[:])}
	h := sha256.Sum256(k.priv.Public().(ed25519.PublicKey))
	copy(k.hint[:], h[:4])
	return k
}

func (k *noteKey) check(body, sig []byte) bool {
	return ed25519.Verify(k.priv.Public().(ed25519.PublicKey), body, sig)
}

// note is a checkpoint of origin, size and root signed by k.
func (k *noteKey) note(origin string, size int64, root []byte) []byte {
	body := fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root))
	sig := ed25519.Sign(k.priv, []byte(body))
	return []byte(body + "\n\u2014 test.log " + base64.StdEncoding.EncodeToString(append(k.hint[:], sig...)) + "\n")
}
