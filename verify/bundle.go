package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// BundleSchemaVersion is the schema_version of the proof bundles this
// package writes and reads.
const BundleSchemaVersion = 1

// bundleFile is the JSON form of a proof bundle: schema_version plus the
// Rekor LogEntry fields (body base64, proofs, SET).
type bundleFile struct {
	SchemaVersion int `json:"schema_version"`
	*LogEntry
}

// ParseBundle parses a proof bundle strictly: at most MaxBundleSize bytes,
// schema_version 1, no unknown fields, no trailing data, and every field
// the offline verification needs present and well-formed (see
// CheckEntryShape). It does not verify anything cryptographically:
// VerifyEntry does. Errors are *BundleError.
func ParseBundle(b []byte) (*LogEntry, error) {
	if len(b) > MaxBundleSize {
		return nil, &BundleError{Reason: fmt.Sprintf("%d bytes, at most %d accepted", len(b), MaxBundleSize)}
	}
	// One strict pass; only when it fails is the version probed on its own,
	// so that a newer bundle is reported as such and not as "unknown field".
	f := bundleFile{SchemaVersion: -1, LogEntry: new(LogEntry)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)
	if err != nil || f.SchemaVersion != BundleSchemaVersion {
		var probe struct {
			SchemaVersion *int `json:"schema_version"`
		}
		if perr := json.Unmarshal(b, &probe); perr != nil {
			return nil, &BundleError{Reason: "not JSON", Err: perr}
		}
		if probe.SchemaVersion == nil {
			return nil, &BundleError{Reason: "no schema_version"}
		}
		if *probe.SchemaVersion != BundleSchemaVersion {
			return nil, &BundleError{Reason: fmt.Sprintf("schema_version %d, this bintrans reads %d", *probe.SchemaVersion, BundleSchemaVersion)}
		}
		return nil, &BundleError{Reason: "invalid bundle", Err: err}
	}
	if dec.More() {
		return nil, &BundleError{Reason: "trailing data after the bundle"}
	}
	if err := CheckEntryShape(f.LogEntry); err != nil {
		return nil, &BundleError{Reason: "incomplete bundle", Err: err}
	}
	return f.LogEntry, nil
}

// MarshalBundle writes a proof bundle for e (indented JSON, trailing
// newline). It refuses an entry that ParseBundle would refuse.
func MarshalBundle(e *LogEntry) ([]byte, error) {
	if err := CheckEntryShape(e); err != nil {
		return nil, &BundleError{Reason: "incomplete entry", Err: err}
	}
	b, err := json.MarshalIndent(bundleFile{SchemaVersion: BundleSchemaVersion, LogEntry: e}, "", "  ")
	if err != nil {
		return nil, &BundleError{Reason: "marshal", Err: err}
	}
	b = append(b, '\n')
	if len(b) > MaxBundleSize {
		return nil, &BundleError{Reason: fmt.Sprintf("bundle would be %d bytes, at most %d accepted", len(b), MaxBundleSize)}
	}
	return b, nil
}

// CheckEntryShape checks that an entry has everything offline verification
// needs, well-formed and within bounds, so that no later step dereferences
// a nil or trusts a nonsensical number: a body of at most MaxEntryBodySize,
// verification with an inclusion proof and a SET, a checkpoint, indexes
// 0 <= proof.logIndex < proof.treeSize, logIndex >= 0, at most
// MaxProofHashes proof hashes of 32 bytes (hex), a 32-byte hex root, a
// 64-hex logID, and, when set, a UUID ending in the body's leaf hash.
// Errors are *EntryError with Step StepBundle.
func CheckEntryShape(e *LogEntry) error {
	bad := func(field, format string, args ...any) error {
		return &EntryError{Step: StepBundle, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if e == nil {
		return bad("entry", "missing")
	}
	if len(e.Body) == 0 || len(e.Body) > MaxEntryBodySize {
		return bad("body", "%d bytes, want 1..%d", len(e.Body), MaxEntryBodySize)
	}
	if e.LogIndex < 0 {
		return bad("logIndex", "negative (%d)", e.LogIndex)
	}
	if !isSHA256Hex(e.LogID) {
		return bad("logID", "not 64 lowercase hex digits")
	}
	if e.UUID != "" {
		leaf := LeafHash(e.Body)
		if (len(e.UUID) != 64 && len(e.UUID) != 80) || e.UUID[len(e.UUID)-64:] != leaf {
			return &EntryError{Step: StepBundle, Field: "uuid", Expected: "…" + leaf, Got: e.UUID}
		}
	}
	v := e.Verification
	if v == nil {
		return bad("verification", "missing")
	}
	if len(v.SignedEntryTimestamp) == 0 || len(v.SignedEntryTimestamp) > 1024 {
		return bad("verification.signedEntryTimestamp", "%d bytes, want 1..1024", len(v.SignedEntryTimestamp))
	}
	p := v.InclusionProof
	if p == nil {
		return bad("verification.inclusionProof", "missing")
	}
	if p.TreeSize <= 0 || p.LogIndex < 0 || p.LogIndex >= p.TreeSize {
		return &EntryError{Step: StepBundle, Field: "inclusionProof.logIndex", Expected: "0 <= logIndex < treeSize", Got: fmt.Sprintf("logIndex %d, treeSize %d", p.LogIndex, p.TreeSize), LogIndex: p.LogIndex, TreeSize: p.TreeSize}
	}
	if len(p.Hashes) > MaxProofHashes {
		return bad("inclusionProof.hashes", "%d hashes, at most %d accepted", len(p.Hashes), MaxProofHashes)
	}
	for i, h := range p.Hashes {
		if !isSHA256Hex(h) {
			return bad("inclusionProof.hashes", "hash %d is not 64 lowercase hex digits", i)
		}
	}
	if !isSHA256Hex(p.RootHash) {
		return bad("inclusionProof.rootHash", "not 64 lowercase hex digits")
	}
	if p.Checkpoint == "" || len(p.Checkpoint) > MaxCheckpointSize {
		return bad("inclusionProof.checkpoint", "%d bytes, want 1..%d", len(p.Checkpoint), MaxCheckpointSize)
	}
	return nil
}
