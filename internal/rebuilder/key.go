package rebuilder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/bintrans/bintrans/internal/durable"
)

// MaxKeyFileSize bounds a pinned rebuilder key file (a PEM Ed25519 key is
// about 120 bytes).
const MaxKeyFileSize = 16 << 10

// oidEd25519 is id-Ed25519 (RFC 8410).
var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

// asn1NULL is the DER encoding of an ASN.1 NULL.
var asn1NULL = []byte{0x05, 0x00}

// spki is a SubjectPublicKeyInfo with the algorithm parameters kept raw, so
// that both the RFC 8410 form (no parameters) and the form in-toto-rs writes
// (an explicit NULL) can be told apart and checked.
type spki struct {
	Algorithm struct {
		OID    asn1.ObjectIdentifier
		Params asn1.RawValue `asn1:"optional"`
	}
	PublicKey asn1.BitString
}

// ParsePublicKey parses a rebuilderd signing key: a PEM "PUBLIC KEY" block
// holding an Ed25519 SubjectPublicKeyInfo, as served by
// `/api/v1/meta/public-keys` (CRLF line ends allowed). It accepts the RFC 8410
// encoding and the one rebuilderd (in-toto-rs) writes, whose algorithm
// identifier carries an explicit NULL parameter that
// x509.ParsePKIXPublicKey rejects. Anything else — another algorithm, other
// parameters, trailing bytes, a second PEM block — is an error.
func ParsePublicKey(pemBytes []byte) (ed25519.PublicKey, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("rebuilder key: no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("rebuilder key: PEM type %q, want \"PUBLIC KEY\"", block.Type)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("rebuilder key: more than one PEM block")
	}
	return parseSPKI(block.Bytes)
}

func parseSPKI(der []byte) (ed25519.PublicKey, error) {
	var k spki
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil {
		return nil, fmt.Errorf("rebuilder key: not a SubjectPublicKeyInfo: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("rebuilder key: %d trailing bytes after the key", len(rest))
	}
	if !k.Algorithm.OID.Equal(oidEd25519) {
		return nil, fmt.Errorf("rebuilder key: algorithm %v, want Ed25519 (%v)", k.Algorithm.OID, oidEd25519)
	}
	if p := k.Algorithm.Params.FullBytes; len(p) != 0 && !bytes.Equal(p, asn1NULL) {
		return nil, fmt.Errorf("rebuilder key: Ed25519 algorithm parameters %x, want none or NULL", p)
	}
	if k.PublicKey.BitLength != 8*ed25519.PublicKeySize {
		return nil, fmt.Errorf("rebuilder key: %d-bit key, want %d", k.PublicKey.BitLength, 8*ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(bytes.Clone(k.PublicKey.Bytes)), nil
}

// KeyID returns the in-toto key id of an Ed25519 key, as in-toto-rs (and so
// rebuilderd) computes it: hex sha256 of the canonical JSON of the key with
// keyid_hash_algorithms ["sha256","sha512"]. Attestation signatures name
// their key by this id.
func KeyID(pub ed25519.PublicKey) string {
	// Canonical JSON by construction: keys in byte order, no whitespace, and
	// the only variable part is lowercase hex.
	doc := `{"keyid_hash_algorithms":["sha256","sha512"],"keytype":"ed25519","keyval":{"public":"` +
		hex.EncodeToString(pub) + `"},"scheme":"ed25519"}`
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:])
}

// ParseKeyFlag splits a `--rebuilder-key URL=PEM-FILE` value at its first
// '=' (a rebuilder base URL has no query string, see New).
func ParseKeyFlag(spec string) (rebuilderURL, pemFile string, err error) {
	u, f, ok := strings.Cut(spec, "=")
	u, f = strings.TrimSpace(u), strings.TrimSpace(f)
	if !ok || u == "" || f == "" {
		return "", "", fmt.Errorf("rebuilder key %q: want URL=PEM-FILE", spec)
	}
	return u, f, nil
}

// ReadKeyFile reads and parses a pinned rebuilder key (see ParsePublicKey),
// reading at most MaxKeyFileSize bytes.
func ReadKeyFile(path string) (ed25519.PublicKey, error) {
	b, err := durable.ReadFile(path, MaxKeyFileSize)
	var tl *durable.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, fmt.Errorf("rebuilder key %s: larger than %d bytes", path, MaxKeyFileSize)
	case err != nil:
		return nil, err
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
