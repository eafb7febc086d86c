package rekorv1

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/jedisct1/go-minisign"
)

// testKey is a minisign key made in the test (go-minisign cannot generate
// keys; the layout is minisign's: "Ed" ‖ key id ‖ key).
type testKey struct {
	sk      minisign.PrivateKey
	pubFile []byte
}

func newTestKey(t testing.TB) *testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var k testKey
	k.sk.SignatureAlgorithm = [2]byte{'E', 'd'}
	if _, err := rand.Read(k.sk.KeyId[:]); err != nil {
		t.Fatal(err)
	}
	copy(k.sk.SecretKey[:], priv)
	raw := append(append([]byte("Ed"), k.sk.KeyId[:]...), pub...)
	k.pubFile = fmt.Appendf(nil, "untrusted comment: minisign public key %016X\n%s\n",
		binary.LittleEndian.Uint64(k.sk.KeyId[:]), base64.StdEncoding.EncodeToString(raw))
	return &k
}

// sign returns a `.t` over message (prehashed, trusted comment = filename).
func (k *testKey) sign(t testing.TB, message []byte, filename string) []byte {
	t.Helper()
	sig, err := k.sk.Sign(message, minisign.SignOptions{TrustedComment: filename, Hashed: true})
	if err != nil {
		t.Fatal(err)
	}
	return sig.Encode()
}

// randomMessage is the hex sha256 of random bytes: what bintrans signs.
func randomMessage(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return []byte(hex.EncodeToString(s[:]))
}
