package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// VerifyEntry verifies, offline, that log entry e proves that the `.t`
// signature t of the package (sha256Hex, filename) by one of keys is in the
// log whose pinned key is lk. It runs the four steps of the design, and
// closes the holes rekor's own verification leaves:
//
//  0. the `.t` verifies (VerifySignature) and e is complete and bounded
//     (CheckEntryShape: no nil dereference, 0 <= index < treeSize, proof
//     length), and e.LogID is lk's id;
//  1. the body is the canonical rekord of this `.t` line, a policy key whose
//     id equals the signature's key id, and sha256(message) (BindBody);
//  2. the RFC 6962 inclusion proof of the body's leaf hash verifies to
//     rootHash at treeSize;
//  3. the checkpoint is signed by lk, its root is rootHash and its size is
//     treeSize (rekor does not bind the size);
//  4. the SET verifies under lk over {body, integratedTime, logID, logIndex}.
//
// It returns the verified checkpoint. It proves inclusion in *a* tree the
// log signed; that this tree is consistent with what everybody else sees
// is the online engine's job (VerifyAll).
func VerifyEntry(e *LogEntry, t []byte, keys []PublicKey, sha256Hex, filename string, lk *LogKey) (*Checkpoint, error) {
	if lk == nil {
		return nil, fmt.Errorf("verify: no log key")
	}
	s, _, err := VerifySignature(t, keys, sha256Hex, filename)
	if err != nil {
		return nil, err
	}
	return verifyEntryWith(e, s, keys, []byte(sha256Hex), lk, lk.VerifyCheckpoint)
}

// verifyEntryWith is VerifyEntry for a `.t` that already verified;
// verifyCheckpoint is lk.VerifyCheckpoint or a cache in front of it.
func verifyEntryWith(e *LogEntry, s *Signature, keys []PublicKey, message []byte, lk *LogKey, verifyCheckpoint func([]byte) (*Checkpoint, error)) (*Checkpoint, error) {
	if err := CheckEntryShape(e); err != nil {
		return nil, err
	}
	if e.LogID != lk.ID() {
		return nil, &EntryError{Step: StepBundle, Field: "logID", Expected: lk.ID(), Got: e.LogID, LogIndex: e.LogIndex}
	}
	// Step 1: the body is this signature.
	b, err := DecodeBody(e.Body)
	if err != nil {
		return nil, err
	}
	if err := BindBody(b, s, keys, message); err != nil {
		return nil, err
	}
	return verifyLogProof(e, lk, verifyCheckpoint)
}

// verifyLogProof runs steps 2 to 4 on a shape-checked entry of lk's log.
func verifyLogProof(e *LogEntry, lk *LogKey, verifyCheckpoint func([]byte) (*Checkpoint, error)) (*Checkpoint, error) {
	cp, err := verifyInclusionAndCheckpoint(e, verifyCheckpoint)
	if err != nil {
		return nil, err
	}
	// Step 4: the SET.
	if !lk.verify(setPayload(e), e.Verification.SignedEntryTimestamp) {
		return nil, &EntryError{Step: StepSET, Field: "signedEntryTimestamp", LogIndex: e.LogIndex, TreeSize: e.Verification.InclusionProof.TreeSize, Err: fmt.Errorf("does not verify under log key %s…", lk.ID()[:16])}
	}
	return cp, nil
}

// verifyInclusionAndCheckpoint runs steps 2 and 3 on a shape-checked entry.
func verifyInclusionAndCheckpoint(e *LogEntry, verifyCheckpoint func([]byte) (*Checkpoint, error)) (*Checkpoint, error) {
	// Step 2: inclusion.
	p := e.Verification.InclusionProof
	root, _ := hex.DecodeString(p.RootHash)
	hashes := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i], _ = hex.DecodeString(h) // shape-checked hex
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(e.Body)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LogIndex), uint64(p.TreeSize), leaf, hashes, root); err != nil {
		return nil, &EntryError{Step: StepInclusion, Field: "inclusionProof", LogIndex: p.LogIndex, TreeSize: p.TreeSize, Err: err}
	}
	// Step 3: the checkpoint is the log's, and it is the proof's tree.
	cp, err := verifyCheckpoint([]byte(p.Checkpoint))
	if err != nil {
		return nil, &EntryError{Step: StepCheckpoint, LogIndex: p.LogIndex, TreeSize: p.TreeSize, Err: err}
	}
	if cp.Size != p.TreeSize {
		return nil, &EntryError{Step: StepCheckpoint, Field: "treeSize", Expected: fmt.Sprint(cp.Size), Got: fmt.Sprint(p.TreeSize), LogIndex: p.LogIndex, TreeSize: p.TreeSize}
	}
	if !bytes.Equal(cp.Root, root) {
		return nil, &EntryError{Step: StepCheckpoint, Field: "rootHash", Expected: hex.EncodeToString(cp.Root), Got: p.RootHash, LogIndex: p.LogIndex, TreeSize: p.TreeSize}
	}
	return cp, nil
}

// setPayload is what Rekor signs as the signed entry timestamp: the JCS
// canonical JSON of {body (base64 string), integratedTime, logID, logIndex
// (global)}. With a shape-checked hex logID and base64 body, encoding/json
// of these fields in sorted order is that canonical form.
func setPayload(e *LogEntry) []byte {
	b, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(e.Body), e.IntegratedTime, e.LogID, e.LogIndex})
	return b
}
