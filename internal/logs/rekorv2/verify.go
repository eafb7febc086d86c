package rekorv2

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Verified is what a verified bundle proves: the entry with LeafHash is at
// Index in the tree of Checkpoint, and it is Key's Ed25519ph signature over
// SHA-512 of the message.
type Verified struct {
	Checkpoint Checkpoint
	Index      uint64
	LeafHash   [32]byte
	// Entry is the logged entry (its Body is the leaf's content).
	Entry *HashedRekord
}

// VerifyBundle checks a bundle offline, with no I/O: that the checkpoint is
// signed by the pinned log key with the pinned origin; that the signature
// in the bundle is a valid Ed25519ph signature by one of keys (the
// transparency keys) over SHA-512(message); that the hashedrekord v0.0.2
// body rebuilt from that digest, signature and key is, by the RFC 6962
// inclusion proof, the leaf at the bundle's index in the checkpoint's tree.
// message is the package's 64-character lowercase hex SHA-256.
//
// The bundle has no field that duplicates the checkpoint (the tree size and
// root exist only in the signed checkpoint, the index only once), so there
// is nothing that could disagree with it. Errors are *VerifyError, whose
// Step says which check failed (a *CheckpointError is wrapped in Step
// StepCheckpoint).
func VerifyBundle(data []byte, log *LogVerifier, keys []ed25519.PublicKey, message []byte) (*Verified, error) {
	if log == nil {
		return nil, errors.New("rekor v2 verify: no log verifier")
	}
	if err := checkMessage(message); err != nil {
		return nil, err
	}
	b, err := ParseBundle(data)
	if err != nil {
		return nil, err
	}
	cp, err := log.VerifyCheckpoint(b.Checkpoint)
	if err != nil {
		return nil, &VerifyError{Step: StepCheckpoint, Reason: "the bundle's checkpoint is not the pinned log's", Index: b.Index, Err: err}
	}
	digest := sha512.Sum512(message)
	entry := &HashedRekord{Digest: digest, Signature: b.Signature}
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize &&
			ed25519.VerifyWithOptions(k, digest[:], b.Signature[:], &ed25519.Options{Hash: crypto.SHA512}) == nil {
			entry.PublicKey = k
			break
		}
	}
	if entry.PublicKey == nil {
		return nil, &VerifyError{Step: StepSignature, Reason: "the logged signature is not a signature of this package by a transparency key",
			Expected: fmt.Sprintf("Ed25519ph over SHA-512(%s) by one of %s", message, keyList(keys)),
			Got:      hex.EncodeToString(b.Signature[:8]) + "…", Index: b.Index, TreeSize: cp.Size}
	}
	leaf := entry.LeafHash()
	if err := verifyInclusion(b.Index, cp, leaf, b.Hashes); err != nil {
		return nil, err
	}
	return &Verified{Checkpoint: *cp, Index: b.Index, LeafHash: leaf, Entry: entry}, nil
}

// verifyInclusion checks an RFC 6962 inclusion proof of leaf at index in
// cp's tree. Errors are *VerifyError with Step StepInclusion.
func verifyInclusion(index uint64, cp *Checkpoint, leaf [32]byte, hashes [][32]byte) error {
	if index >= cp.Size {
		return &VerifyError{Step: StepInclusion, Field: "index", Reason: "beyond the checkpoint's tree",
			Expected: fmt.Sprintf("< %d", cp.Size), Got: fmt.Sprint(index), Index: index, TreeSize: cp.Size}
	}
	if len(hashes) > MaxProofHashes {
		return &VerifyError{Step: StepInclusion, Reason: fmt.Sprintf("%d proof hashes", len(hashes)), Index: index, TreeSize: cp.Size}
	}
	hs := make([][]byte, len(hashes))
	for i := range hashes {
		hs[i] = hashes[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf[:], hs, cp.Root[:]); err != nil {
		e := &VerifyError{Step: StepInclusion, Reason: "the entry is not in the checkpoint's tree", Index: index, TreeSize: cp.Size, Err: err}
		var rm proof.RootMismatchError
		if errors.As(err, &rm) {
			e.Reason = "the inclusion proof leads to another root"
			e.Expected, e.Got = hex.EncodeToString(rm.ExpectedRoot), hex.EncodeToString(rm.CalculatedRoot)
			e.Err = nil
		}
		return e
	}
	return nil
}

// verifyConsistency checks an RFC 6962 consistency proof from old to new.
func verifyConsistency(old, new *Checkpoint, hashes [][]byte) error {
	err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, new.Size, hashes, old.Root[:], new.Root[:])
	var rm proof.RootMismatchError
	if errors.As(err, &rm) {
		return fmt.Errorf("the consistency proof from the new tree's tiles leads to root %x, not the old root %x",
			rm.CalculatedRoot, rm.ExpectedRoot)
	}
	return err
}

func keyList(keys []ed25519.PublicKey) string {
	if len(keys) == 0 {
		return "no keys"
	}
	var s []string
	for _, k := range keys {
		s = append(s, KeyFingerprint(k))
	}
	return strings.Join(s, ", ")
}

// KeyFingerprint is a short name for an Ed25519 key in messages: the first
// 8 bytes of the key, hex.
func KeyFingerprint(k ed25519.PublicKey) string {
	if len(k) < 8 {
		return "invalid key"
	}
	return "ed25519:" + hex.EncodeToString(k[:8])
}
