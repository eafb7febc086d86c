package signer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/durable"
)

// maxSecretKeyFile bounds a minisign secret key file (two short lines).
const maxSecretKeyFile = 4 << 10

// PasswordFunc returns the password of an encrypted secret key. ReadSecretKey
// calls it at most once, and only when the key is encrypted.
type PasswordFunc func() (string, error)

// ErrNoPassword is returned (wrapped) by a PasswordFunc that has no way to
// get a password (no file, no environment variable, no terminal).
var ErrNoPassword = errors.New("the secret key is encrypted and no password was given")

// KeyError is a secret key that cannot be used: unreadable, malformed, wrong
// password, inconsistent key material, or not the pair of the public key.
// It never holds key material.
type KeyError struct {
	Path   string
	Reason string
	Err    error
}

func (e *KeyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("secret key %s: %s: %v", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("secret key %s: %s", e.Path, e.Reason)
}

func (e *KeyError) Unwrap() error { return e.Err }

// KeyMismatchError says that the secret key is not the pair of the public key
// the repository publishes: its signatures would never verify.
type KeyMismatchError struct {
	SecretKeyID string // as minisign prints it
	PublicKeyID string
	SameKeyID   bool // key ids equal but key bytes differ
}

func (e *KeyMismatchError) Error() string {
	if e.SameKeyID {
		return fmt.Sprintf("the secret key (key id %s) does not belong to the public key with the same key id: the key bytes differ", e.SecretKeyID)
	}
	return fmt.Sprintf("the secret key has key id %s but the public key has key id %s", e.SecretKeyID, e.PublicKeyID)
}

// ReadSecretKey reads a minisign secret key file as `minisign -G` (encrypted
// with scrypt: password asks for the password, and decrypting costs about
// 2.4 s and 1 GB of RAM — call this once per run) or `minisign -W`
// (unencrypted, zero checksum) writes it. It is OpenSecretKey followed by
// DecryptSecretKey. Errors are *KeyError and never contain key material.
// The caller should Wipe the key when done.
func ReadSecretKey(path string, password PasswordFunc) (*minisign.PrivateKey, error) {
	sk, err := OpenSecretKey(path)
	if err != nil {
		return nil, err
	}
	if err := DecryptSecretKey(path, sk, password); err != nil {
		return nil, err
	}
	return sk, nil
}

// OpenSecretKey reads and decodes a minisign secret key file (at most 4 KiB)
// without decrypting it: cheap, so that a missing or malformed key is
// reported before any work. An unencrypted key is also checked for
// consistency (see DecryptSecretKey) and is ready to sign.
func OpenSecretKey(path string) (*minisign.PrivateKey, error) {
	b, err := durable.ReadFile(path, maxSecretKeyFile)
	var tl *durable.TooLargeError
	var pe *fs.PathError
	switch {
	case errors.As(err, &tl):
		return nil, &KeyError{Path: path, Reason: fmt.Sprintf("larger than %d bytes: not a minisign secret key", maxSecretKeyFile)}
	case errors.As(err, &pe) && pe.Op == "open":
		return nil, &KeyError{Path: path, Reason: "cannot open", Err: err}
	case err != nil:
		return nil, &KeyError{Path: path, Reason: "cannot read", Err: err}
	}
	defer clear(b)
	sk, err := minisign.DecodePrivateKey(string(b))
	if err != nil {
		// go-minisign's messages name no key bytes.
		return nil, &KeyError{Path: path, Reason: "not a minisign secret key", Err: err}
	}
	if !sk.IsEncrypted() {
		if err := checkMaterial(path, &sk); err != nil {
			return nil, err
		}
	}
	return &sk, nil
}

// DecryptSecretKey decrypts sk (read from path) in place, asking password
// once; a no-op for an unencrypted key. It then checks that the key
// material is consistent (the Ed25519 public half derives from the seed),
// so a corrupt unencrypted key (minisign -W writes no checksum) fails here
// and not in the log. On error sk is wiped.
func DecryptSecretKey(path string, sk *minisign.PrivateKey, password PasswordFunc) error {
	if sk.IsEncrypted() {
		if password == nil {
			return &KeyError{Path: path, Reason: "encrypted", Err: ErrNoPassword}
		}
		pw, err := password()
		if err != nil {
			return &KeyError{Path: path, Reason: "no password", Err: err}
		}
		if err := sk.Decrypt(pw); err != nil {
			sk.Wipe()
			return &KeyError{Path: path, Reason: "cannot decrypt (wrong password?)", Err: err}
		}
	}
	return checkMaterial(path, sk)
}

func checkMaterial(path string, sk *minisign.PrivateKey) error {
	seed, pub := sk.SecretKey[:32], sk.SecretKey[32:]
	derived := ed25519.NewKeyFromSeed(seed)
	ok := subtle.ConstantTimeCompare(derived[32:], pub) == 1
	clear(derived)
	if !ok {
		sk.Wipe()
		return &KeyError{Path: path, Reason: "corrupt key material (the public half does not match the seed)"}
	}
	return nil
}

// KeyIDString formats a minisign key id as minisign prints it: the 8 key-id
// bytes as a little-endian integer in 16 upper-case hex digits.
func KeyIDString(id [8]byte) string {
	return fmt.Sprintf("%016X", binary.LittleEndian.Uint64(id[:]))
}

// CheckKeyPair returns a *KeyMismatchError unless sk is the secret half of
// pub (same key id and same Ed25519 public key).
func CheckKeyPair(sk *minisign.PrivateKey, pub minisign.PublicKey) error {
	derived := sk.PublicKey()
	if derived.KeyId != pub.KeyId {
		return &KeyMismatchError{SecretKeyID: KeyIDString(derived.KeyId), PublicKeyID: KeyIDString(pub.KeyId)}
	}
	if !bytes.Equal(derived.PublicKey[:], pub.PublicKey[:]) || pub.SignatureAlgorithm != [2]byte{'E', 'd'} {
		return &KeyMismatchError{SecretKeyID: KeyIDString(derived.KeyId), PublicKeyID: KeyIDString(pub.KeyId), SameKeyID: true}
	}
	return nil
}
