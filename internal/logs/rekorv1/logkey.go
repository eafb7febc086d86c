package rekorv1

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"

	"github.com/bintrans/bintrans/verify"
)

// maxLogKeyPEM bounds ParseLogKey's input.
const maxLogKeyPEM = 16 << 10

// maxVerifiedNotes bounds a LogKey's memo of verified checkpoint notes.
const maxVerifiedNotes = 4096

// LogKey is the pinned public key of a Rekor v1 log: it signs checkpoints
// and signed entry timestamps. Rekor uses ECDSA P-256 with SHA-256; Ed25519
// is accepted too. It is the engine's verify.LogVerifier for Rekor v1 (see
// Kind, VerifyCheckpoint, VerifyBundle) and is safe for concurrent use.
type LogKey struct {
	pub  any // *ecdsa.PublicKey or ed25519.PublicKey
	der  []byte
	id   string
	hint [4]byte
	// Origin, when non-empty, is the exact origin line ("<host> - <tree
	// id>") every checkpoint must carry. Empty means any origin; the engine
	// still requires all checkpoints of a run to share the current one's.
	Origin string

	// verified remembers notes (exact bytes) that verified: a batch's
	// bundles share a few (a settled sign run writes one note into all its
	// bundles).
	mu       sync.Mutex
	verified map[string]bool
}

// ParseLogKey parses a PEM "PUBLIC KEY" (PKIX) block holding an ECDSA or
// Ed25519 key. Trailing data after the block is rejected.
func ParseLogKey(pemBytes []byte) (*LogKey, error) {
	if len(pemBytes) > maxLogKeyPEM {
		return nil, fmt.Errorf("log key: %d bytes, at most %d accepted", len(pemBytes), maxLogKeyPEM)
	}
	blk, rest := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("log key: no PEM block")
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("log key: PEM block %q, want \"PUBLIC KEY\"", blk.Type)
	}
	if len(trimSpace(rest)) != 0 {
		return nil, errors.New("log key: data after the PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("log key: %T not supported (want ECDSA or Ed25519)", pub)
	}
	return newLogKey(pub, blk.Bytes), nil
}

func newLogKey(pub any, der []byte) *LogKey {
	sum := sha256.Sum256(der)
	k := &LogKey{pub: pub, der: der, id: hex.EncodeToString(sum[:])}
	copy(k.hint[:], sum[:4])
	return k
}

// ID is the log id: hex sha256 of the key's DER (Rekor's logID).
func (k *LogKey) ID() string { return k.id }

// PEM is the key as a PEM block.
func (k *LogKey) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.der})
}

// Kind is "rekor-v1".
func (k *LogKey) Kind() string { return Kind }

// Kind names Rekor v1 logs (--log-kind).
const Kind = "rekor-v1"

// verify checks sig over msg the way Rekor signs: ECDSA (ASN.1) over
// SHA-256(msg), or plain Ed25519.
func (k *LogKey) verify(msg, sig []byte) bool {
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(pub, d[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, msg, sig)
	}
	return false
}

// VerifyCheckpoint parses a signed checkpoint and verifies it: at least one
// signature line carries the key's hint and verifies under the key; lines
// by other keys (witness cosignatures) are ignored. When k.Origin is set,
// the origin must equal it. Errors are *verify.CheckpointError.
func (k *LogKey) VerifyCheckpoint(text []byte) (*verify.Checkpoint, error) {
	c, err := verify.ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	if k.Origin != "" && c.Origin != k.Origin {
		return nil, &verify.CheckpointError{Reason: fmt.Sprintf("origin is not the pinned %q", k.Origin), Origin: c.Origin, Size: c.Size}
	}
	k.mu.Lock()
	known := k.verified[string(text)]
	k.mu.Unlock()
	if known {
		return c, nil
	}
	if !c.SignedBy(k.hint, k.verify) {
		return nil, &verify.CheckpointError{Reason: "no signature by the pinned log key " + k.ID()[:16] + "…", Origin: c.Origin, Size: c.Size}
	}
	k.mu.Lock()
	if k.verified == nil || len(k.verified) >= maxVerifiedNotes {
		k.verified = map[string]bool{}
	}
	k.verified[string(text)] = true
	k.mu.Unlock()
	return c, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// WithOrigin returns a copy of k that pins the checkpoint origin.
func (k *LogKey) WithOrigin(origin string) *LogKey {
	c := newLogKey(k.pub, k.der)
	c.Origin = origin
	return c
}
