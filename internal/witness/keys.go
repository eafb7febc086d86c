package witness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Signature algorithm bytes of C2SP signed-note verifier keys.
const (
	algEd25519  = 0x01 // Ed25519 note signature (logs; also accepted for witnesses)
	algECDSA    = 0x02 // ECDSA P-256 with SHA-256 (Rekor v1 checkpoints)
	algCosignV1 = 0x04 // Ed25519 cosignature/v1 (witnesses)
)

// sigsumOriginPrefix starts the checkpoint origin of every Sigsum log.
const sigsumOriginPrefix = "sigsum.org/v1/tree/"

// SigsumOrigin is the checkpoint origin of the Sigsum log with key pub,
// "sigsum.org/v1/tree/<hex sha256(pub)>", which is also the name of its
// note verifier key.
func SigsumOrigin(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return sigsumOriginPrefix + hex.EncodeToString(h[:])
}

// Ed25519VKey is the note verifier key (type 0x01) of an Ed25519 log key.
func Ed25519VKey(name string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(name, pub)
}

// CosignatureVKey is the cosignature/v1 verifier key (type 0x04) of a
// witness's Ed25519 key under its note key name.
func CosignatureVKey(name string, pub ed25519.PublicKey) (string, error) {
	if !validKeyName(name) {
		return "", fmt.Errorf("invalid note key name %q", name)
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", errors.New("not an Ed25519 public key")
	}
	k := append([]byte{algCosignV1}, pub...)
	return fmt.Sprintf("%s+%08x+%s", name, noteKeyHash(name, k), base64.StdEncoding.EncodeToString(k)), nil
}

// RekorV1VKey derives the note verifier key (type 0x02) of a Rekor v1
// log from its PEM (or DER) ECDSA public key: "<name>+<hex sha256(DER)[:4]>+
// base64(0x02 || DER)". name is the key name on the checkpoint's signature
// line, the Rekor server's host name (rekor.sigstore.dev; "rekor.local" for
// a default rekor-server); the checkpoint origin is "<name> - <tree ID>".
func RekorV1VKey(name string, pemOrDER []byte) (string, error) {
	if !validKeyName(name) {
		return "", fmt.Errorf("invalid note key name %q", name)
	}
	der := pemOrDER
	if b, _ := pem.Decode(pemOrDER); b != nil {
		if b.Type != "PUBLIC KEY" {
			return "", fmt.Errorf("PEM block %q, want PUBLIC KEY", b.Type)
		}
		der = b.Bytes
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return "", fmt.Errorf("parse Rekor v1 public key: %w", err)
	}
	if _, ok := k.(*ecdsa.PublicKey); !ok {
		return "", fmt.Errorf("the Rekor v1 key is a %T, want an ECDSA key", k)
	}
	h := sha256.Sum256(der)
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h[:4]),
		base64.StdEncoding.EncodeToString(append([]byte{algECDSA}, der...))), nil
}

// noteKeyHash is the signed-note key ID of an Ed25519-family key:
// the first four bytes of SHA-256(name || "\n" || alg || key).
func noteKeyHash(name string, algKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(algKey)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

// validKeyName reports whether name can be a signed-note key name: not
// empty, valid UTF-8, no '+', no Unicode space.
func validKeyName(name string) bool {
	if name == "" || !utf8.ValidString(name) || strings.Contains(name, "+") {
		return false
	}
	for _, r := range name {
		if unicode.IsSpace(r) || r < 0x20 {
			return false
		}
	}
	return true
}

// isHexKey reports whether s is a Sigsum-style key: 64 hex digits.
func isHexKey(s string) bool {
	if len(s) != 2*ed25519.PublicKeySize {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// splitVKey splits "name+hash+base64" (the base64 may itself contain '+':
// split from the left) and checks the parts' shape.
func splitVKey(s string) (name string, hash uint32, key []byte, err error) {
	name, rest, ok1 := strings.Cut(s, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return "", 0, nil, errors.New("not a verifier key (want name+hash+base64 or 64 hex digits)")
	}
	if !validKeyName(name) {
		return "", 0, nil, fmt.Errorf("invalid key name %q", name)
	}
	h, err := strconv.ParseUint(hash16, 16, 32)
	if len(hash16) != 8 || err != nil {
		return "", 0, nil, fmt.Errorf("key hash %q is not 8 hex digits", hash16)
	}
	key, err = base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(key) < 2 {
		return "", 0, nil, errors.New("key is not valid base64")
	}
	return name, uint32(h), key, nil
}

// parseLogKey reads a log key: a vkey of type 0x01 (Ed25519) or 0x02
// (ECDSA, Rekor v1), or 64 hex digits (a Sigsum log's Ed25519 key, whose
// note key name is its Sigsum origin).
func parseLogKey(s string) (l Log, err error) {
	if isHexKey(s) {
		pub, _ := hex.DecodeString(s)
		l.Name = SigsumOrigin(pub)
		l.Key = ed25519.PublicKey(pub)
		if l.VKey, err = Ed25519VKey(l.Name, pub); err != nil {
			return Log{}, err
		}
		if l.verifier, err = note.NewVerifier(l.VKey); err != nil {
			return Log{}, err
		}
		l.KeyHash = sha256.Sum256(pub)
		return l, nil
	}
	name, _, key, err := splitVKey(s)
	if err != nil {
		return Log{}, err
	}
	switch key[0] {
	case algEd25519:
		if len(key) != 1+ed25519.PublicKeySize {
			return Log{}, errors.New("Ed25519 key of the wrong length")
		}
		v, err := note.NewVerifier(s) // checks the key hash
		if err != nil {
			return Log{}, fmt.Errorf("log key: %w", err)
		}
		pub := ed25519.PublicKey(key[1:])
		return Log{Name: name, Key: pub, VKey: s, KeyHash: sha256.Sum256(pub), verifier: v}, nil
	case algECDSA:
		v, err := fnote.NewECDSAVerifier(s) // checks the key hash
		if err != nil {
			return Log{}, fmt.Errorf("log key: %w", err)
		}
		k, err := x509.ParsePKIXPublicKey(key[1:])
		if err != nil {
			return Log{}, fmt.Errorf("log key: %w", err)
		}
		return Log{Name: name, Key: k.(crypto.PublicKey), VKey: s, KeyHash: sha256.Sum256(key[1:]), verifier: v}, nil
	default:
		return Log{}, fmt.Errorf("log key type 0x%02x is not supported (want 0x01 Ed25519 or 0x02 ECDSA)", key[0])
	}
}

// parseWitnessKey reads a witness key: a vkey of type 0x04 (cosignature/v1)
// or 0x01 (Ed25519, the same key), or 64 hex digits (Sigsum).
func parseWitnessKey(s string) (w Witness, err error) {
	if isHexKey(s) {
		pub, _ := hex.DecodeString(s)
		return Witness{Key: ed25519.PublicKey(pub)}, nil
	}
	name, hash, key, err := splitVKey(s)
	if err != nil {
		return Witness{}, err
	}
	if key[0] != algCosignV1 && key[0] != algEd25519 {
		return Witness{}, fmt.Errorf("witness key type 0x%02x is not supported (want 0x04 cosignature/v1 or 0x01 Ed25519)", key[0])
	}
	if len(key) != 1+ed25519.PublicKeySize {
		return Witness{}, errors.New("Ed25519 key of the wrong length")
	}
	if got := noteKeyHash(name, key); got != hash {
		return Witness{}, fmt.Errorf("key hash %08x does not match the key (want %08x)", hash, got)
	}
	return Witness{KeyName: name, Key: ed25519.PublicKey(key[1:])}, nil
}
