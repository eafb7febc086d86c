package rekorv1

import (
	"encoding/hex"
	"fmt"

	"github.com/bintrans/bintrans/verify"
)

// MaxEntryBodySize bounds a canonical Rekor entry body (about 470 bytes for
// a minisign rekord).
const MaxEntryBodySize = 16 << 10

// maxSETSize bounds a signed entry timestamp (an ECDSA P-256 signature is
// about 72 bytes).
const maxSETSize = 1024

// Entry is a Rekor v1 log entry, converted once from the log's answer or a
// proof bundle into typed values: hex and base64 decoded (and checked).
//
// Index semantics on a sharded log (the public instance): LogIndex is the
// global index (EntriesByIndex takes and keys by it), while
// Proof.LogIndex is tree-local: proofs use the latter, reports the former.
type Entry struct {
	// UUID is the entry id: 16 hex digits of tree id + 64 hex digits of leaf
	// hash on a sharded log, or just the 64-hex leaf hash.
	UUID           string
	LogIndex       int64
	LogID          string // hex sha256 of the log key's DER
	IntegratedTime int64
	// Body is the canonical entry (for bintrans: a minisign rekord).
	Body []byte
	// Proof is the inclusion proof Rekor attaches; nil when it sent none.
	Proof *InclusionProof
	// SET is the signed entry timestamp; nil when the log sent none.
	SET []byte
}

// InclusionProof is an RFC 6962 inclusion proof with the checkpoint it was
// computed against. LogIndex is tree-local.
type InclusionProof struct {
	LogIndex   int64
	TreeSize   int64
	RootHash   []byte   // 32 bytes
	Hashes     [][]byte // 32 bytes each, leaf level first
	Checkpoint []byte   // the signed note
}

// Identity is what reports keep of the entry.
func (e *Entry) Identity() verify.EntryID {
	return verify.EntryID{UUID: e.UUID, LogIndex: e.LogIndex, LogID: e.LogID, IntegratedTime: e.IntegratedTime}
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() *Entry {
	c := *e
	c.Body = append([]byte(nil), e.Body...)
	c.SET = append([]byte(nil), e.SET...)
	if e.Proof != nil {
		p := *e.Proof
		p.RootHash = append([]byte(nil), e.Proof.RootHash...)
		p.Checkpoint = append([]byte(nil), e.Proof.Checkpoint...)
		if e.Proof.Hashes != nil {
			p.Hashes = make([][]byte, len(e.Proof.Hashes))
			for i, h := range e.Proof.Hashes {
				p.Hashes[i] = append([]byte(nil), h...)
			}
		}
		c.Proof = &p
	}
	return &c
}

// CheckEntryShape checks that an entry has everything offline verification
// needs, well-formed and within bounds, so that no later step dereferences
// a nil or trusts a nonsensical number: a body of at most MaxEntryBodySize,
// an inclusion proof and a SET, a checkpoint, indexes 0 <= proof.logIndex <
// proof.treeSize, logIndex >= 0, at most verify.MaxProofHashes proof hashes
// of 32 bytes, a 32-byte root, a 64-hex logID, and, when set, a UUID ending
// in the body's leaf hash. Errors are *EntryError with Step StepBundle.
func CheckEntryShape(e *Entry) error {
	bad := func(field, format string, args ...any) error {
		return &EntryError{Step: StepBundle, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if e == nil {
		return bad("entry", "missing")
	}
	if err := checkIdentityShape(e.UUID, e.LogIndex, e.LogID, e.Body); err != nil {
		return err
	}
	if e.Proof == nil && e.SET == nil {
		return bad("verification", "missing")
	}
	if len(e.SET) == 0 || len(e.SET) > maxSETSize {
		return bad("verification.signedEntryTimestamp", "%d bytes, want 1..%d", len(e.SET), maxSETSize)
	}
	p := e.Proof
	if p == nil {
		return bad("verification.inclusionProof", "missing")
	}
	if err := checkProofIndexes(p.LogIndex, p.TreeSize, len(p.Hashes)); err != nil {
		return err
	}
	for i, h := range p.Hashes {
		if len(h) != 32 {
			return bad("inclusionProof.hashes", "hash %d is not 64 lowercase hex digits", i)
		}
	}
	if len(p.RootHash) != 32 {
		return bad("inclusionProof.rootHash", "not 64 lowercase hex digits")
	}
	if len(p.Checkpoint) == 0 || len(p.Checkpoint) > verify.MaxCheckpointSize {
		return bad("inclusionProof.checkpoint", "%d bytes, want 1..%d", len(p.Checkpoint), verify.MaxCheckpointSize)
	}
	return nil
}

// checkIdentityShape checks the fields an entry and a bundle share.
func checkIdentityShape(uuid string, logIndex int64, logID string, body []byte) error {
	bad := func(field, format string, args ...any) error {
		return &EntryError{Step: StepBundle, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if len(body) == 0 || len(body) > MaxEntryBodySize {
		return bad("body", "%d bytes, want 1..%d", len(body), MaxEntryBodySize)
	}
	if logIndex < 0 {
		return bad("logIndex", "negative (%d)", logIndex)
	}
	if !isLowerHex(logID, 64) {
		return bad("logID", "not 64 lowercase hex digits")
	}
	if uuid != "" {
		leaf := LeafHash(body)
		if (len(uuid) != 64 && len(uuid) != 80) || uuid[len(uuid)-64:] != leaf {
			return &EntryError{Step: StepBundle, Field: "uuid", Expected: "…" + leaf, Got: uuid}
		}
	}
	return nil
}

// checkProofIndexes checks an inclusion proof's index, size and length.
func checkProofIndexes(logIndex, treeSize int64, hashes int) error {
	if treeSize <= 0 || logIndex < 0 || logIndex >= treeSize {
		return &EntryError{Step: StepBundle, Field: "inclusionProof.logIndex", Expected: "0 <= logIndex < treeSize",
			Got: fmt.Sprintf("logIndex %d, treeSize %d", logIndex, treeSize), LogIndex: logIndex, TreeSize: treeSize}
	}
	if hashes > verify.MaxProofHashes {
		return &EntryError{Step: StepBundle, Field: "inclusionProof.hashes", Err: fmt.Errorf("%d hashes, at most %d accepted", hashes, verify.MaxProofHashes)}
	}
	return nil
}

// isLowerHex reports whether s is n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// decodeHash decodes one 32-byte hash in lowercase hex.
func decodeHash(s string) ([]byte, bool) {
	if !isLowerHex(s, 64) {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}
