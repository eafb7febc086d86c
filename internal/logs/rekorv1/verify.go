package rekorv1

// Pure verification of Rekor v1 entries and proof bundles: no I/O. The
// client (client.go, log.go) converts the log's answers into Entry values;
// everything here checks them against the pinned LogKey.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/verify"
)

// EntryStep names the step of log-entry verification that failed.
type EntryStep string

// The steps of VerifyEntry, in order.
const (
	StepBundle     EntryStep = "bundle"     // the bundle / entry is structurally incomplete or invalid
	StepBody       EntryStep = "body"       // step 1: the entry body is not this `.t`, key and message
	StepInclusion  EntryStep = "inclusion"  // step 2: the inclusion proof does not verify
	StepCheckpoint EntryStep = "checkpoint" // step 3: the checkpoint is not signed by the log key or does not match the proof
	StepSET        EntryStep = "set"        // step 4: the signed entry timestamp does not verify
)

// EntryError is a log entry (from a bundle or from the log) that does not
// prove that the `.t` is in the log.
type EntryError struct {
	Step EntryStep
	// Field names what was compared ("logID", "treeSize", "data.hash", …).
	Field string
	// Expected and Got carry the evidence, as text.
	Expected, Got string
	// LogIndex and TreeSize locate the entry (tree-local index for proofs).
	LogIndex, TreeSize int64
	Err                error
}

func (e *EntryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log entry %s check failed", e.Step)
	if e.Field != "" {
		fmt.Fprintf(&b, " (%s)", e.Field)
	}
	if e.Expected != "" || e.Got != "" {
		fmt.Fprintf(&b, ": expected %s, got %s", quoteEmpty(e.Expected), quoteEmpty(e.Got))
	}
	if e.TreeSize != 0 || e.LogIndex != 0 {
		fmt.Fprintf(&b, " [index %d, tree size %d]", e.LogIndex, e.TreeSize)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *EntryError) Unwrap() error { return e.Err }

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// VerifyEntry verifies, offline, that log entry e proves that the `.t`
// signature t of the package (sha256Hex, filename) by one of keys is in the
// log whose pinned key is lk. It runs the four steps of the design, and
// closes the holes rekor's own verification leaves:
//
//  0. the `.t` verifies (verify.VerifySignature) and e is complete and
//     bounded (CheckEntryShape: no nil dereference, 0 <= index < treeSize,
//     proof length), and e.LogID is lk's id;
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
// is the online engine's job (verify.VerifyAll).
func VerifyEntry(e *Entry, t []byte, keys []verify.PublicKey, sha256Hex, filename string, lk *LogKey) (*verify.Checkpoint, error) {
	if lk == nil {
		return nil, fmt.Errorf("rekorv1: no log key")
	}
	s, _, err := verify.VerifySignature(t, keys, sha256Hex, filename)
	if err != nil {
		return nil, err
	}
	return verifyEntryWith(e, s, keys, []byte(sha256Hex), lk)
}

// VerifyBundle verifies a Rekor v1 proof bundle for a `.t` that already
// verified (verify.LogVerifier): ParseBundle, then the steps of VerifyEntry.
// Errors are *verify.BundleError (the bundle does not parse) or *EntryError.
func (k *LogKey) VerifyBundle(bundle []byte, sig *verify.Signature, keys []verify.PublicKey, msg []byte) (*verify.Proof, error) {
	e, err := ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	cp, err := verifyEntryWith(e, sig, keys, msg, k)
	if err != nil {
		return nil, err
	}
	return k.proofOf(e, cp), nil
}

// proofOf is the engine's view of a verified entry. The log id equals the
// key's (checked): the key's string is shared rather than copied.
func (k *LogKey) proofOf(e *Entry, cp *verify.Checkpoint) *verify.Proof {
	id := e.Identity()
	if id.LogID == k.ID() {
		id.LogID = k.ID()
	}
	return &verify.Proof{Checkpoint: cp, Index: e.Proof.LogIndex, LeafHash: [32]byte(rfc6962.DefaultHasher.HashLeaf(e.Body)), Entry: id}
}

// verifyEntryWith is VerifyEntry for a `.t` that already verified.
func verifyEntryWith(e *Entry, s *verify.Signature, keys []verify.PublicKey, message []byte, lk *LogKey) (*verify.Checkpoint, error) {
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
	return verifyLogProof(e, lk)
}

// verifyLogProof runs steps 2 to 4 on a shape-checked entry of lk's log.
func verifyLogProof(e *Entry, lk *LogKey) (*verify.Checkpoint, error) {
	cp, err := verifyInclusionAndCheckpoint(e, lk)
	if err != nil {
		return nil, err
	}
	// Step 4: the SET.
	if !lk.verify(setPayload(e), e.SET) {
		return nil, &EntryError{Step: StepSET, Field: "signedEntryTimestamp", LogIndex: e.LogIndex, TreeSize: e.Proof.TreeSize, Err: fmt.Errorf("does not verify under log key %s…", lk.ID()[:16])}
	}
	return cp, nil
}

// verifyInclusionAndCheckpoint runs steps 2 and 3 on a shape-checked entry.
func verifyInclusionAndCheckpoint(e *Entry, lk *LogKey) (*verify.Checkpoint, error) {
	// Step 2: inclusion.
	p := e.Proof
	leaf := rfc6962.DefaultHasher.HashLeaf(e.Body)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LogIndex), uint64(p.TreeSize), leaf, p.Hashes, p.RootHash); err != nil {
		return nil, &EntryError{Step: StepInclusion, Field: "inclusionProof", LogIndex: p.LogIndex, TreeSize: p.TreeSize, Err: err}
	}
	// Step 3: the checkpoint is the log's, and it is the proof's tree.
	cp, err := lk.VerifyCheckpoint(p.Checkpoint)
	if err != nil {
		return nil, &EntryError{Step: StepCheckpoint, LogIndex: p.LogIndex, TreeSize: p.TreeSize, Err: err}
	}
	if cp.Size != p.TreeSize {
		return nil, &EntryError{Step: StepCheckpoint, Field: "treeSize", Expected: fmt.Sprint(cp.Size), Got: fmt.Sprint(p.TreeSize), LogIndex: p.LogIndex, TreeSize: p.TreeSize}
	}
	if !bytes.Equal(cp.Root, p.RootHash) {
		return nil, &EntryError{Step: StepCheckpoint, Field: "rootHash", Expected: hex.EncodeToString(cp.Root), Got: hex.EncodeToString(p.RootHash), LogIndex: p.LogIndex, TreeSize: p.TreeSize}
	}
	return cp, nil
}

// setPayload is what Rekor signs as the signed entry timestamp: the JCS
// canonical JSON of {body (base64 string), integratedTime, logID, logIndex
// (global)}. With a shape-checked hex logID and base64 body, encoding/json
// of these fields in sorted order is that canonical form.
func setPayload(e *Entry) []byte {
	b, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(e.Body), e.IntegratedTime, e.LogID, e.LogIndex})
	return b
}

// VerifyLogged verifies, offline, a log entry found without its `.t` (by a
// key search, as a monitor does): e is complete and bounded
// (CheckEntryShape), e.LogID is lk's id, the body decodes as a canonical
// minisign rekord (DecodeBody), its RFC 6962 inclusion proof verifies to
// rootHash at treeSize, the checkpoint is signed by lk and has that root
// and size, and the SET verifies under lk.
//
// It returns the decoded body and the verified checkpoint. It does NOT
// check which key signed (compare Body.Key with the policy), that the
// signature line's key id equals the key's (Body.KeyIDMatches: Rekor does
// not compare them), nor the signature over the message: the log stores
// only sha256(message), so that needs the message (Body.VerifyMessage).
func VerifyLogged(e *Entry, lk *LogKey) (*Body, *verify.Checkpoint, error) {
	if lk == nil {
		return nil, nil, fmt.Errorf("rekorv1: no log key")
	}
	if err := CheckEntryShape(e); err != nil {
		return nil, nil, err
	}
	if e.LogID != lk.ID() {
		return nil, nil, &EntryError{Step: StepBundle, Field: "logID", Expected: lk.ID(), Got: e.LogID, LogIndex: e.LogIndex}
	}
	b, err := DecodeBody(e.Body)
	if err != nil {
		return nil, nil, err
	}
	cp, err := verifyLogProof(e, lk)
	if err != nil {
		return nil, nil, err
	}
	return b, cp, nil
}

// SameEntry checks that fresh, an entry re-fetched from the log, is
// well-formed and is the entry known already verified: same body, log
// index, log id, integrated time and proof index (what known's SET
// signed). It verifies nothing cryptographically. Errors are *EntryError
// (or CheckEntryShape's).
func SameEntry(fresh, known *Entry) error {
	if err := CheckEntryShape(fresh); err != nil {
		return err
	}
	switch {
	case !bytes.Equal(fresh.Body, known.Body):
		return &EntryError{Step: StepBody, Field: "body", Expected: LeafHash(known.Body), Got: LeafHash(fresh.Body), LogIndex: fresh.LogIndex}
	case fresh.LogIndex != known.LogIndex || fresh.LogID != known.LogID || fresh.IntegratedTime != known.IntegratedTime ||
		fresh.Proof.LogIndex != known.Proof.LogIndex:
		return &EntryError{Step: StepBundle, Field: "logIndex/logID/integratedTime",
			Expected: fmt.Sprintf("%d/%s/%d", known.LogIndex, known.LogID, known.IntegratedTime),
			Got:      fmt.Sprintf("%d/%s/%d", fresh.LogIndex, fresh.LogID, fresh.IntegratedTime), LogIndex: fresh.LogIndex}
	}
	return nil
}
