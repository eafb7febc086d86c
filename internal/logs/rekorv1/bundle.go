package rekorv1

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/bintrans/bintrans/verify"
)

// BundleSchemaVersion is the schema_version of the proof bundles this
// package writes and reads.
const BundleSchemaVersion = 1

// The JSON form of a proof bundle: schema_version plus the fields of a
// Rekor LogEntry as the REST API writes them (body base64, proofs in hex,
// SET). Field for field what bintrans has always written: existing bundles
// must keep verifying (testdata/golden).
type bundleFile struct {
	SchemaVersion int `json:"schema_version"`
	*wireEntry
}

type wireEntry struct {
	UUID           string            `json:"uuid"`
	LogIndex       int64             `json:"logIndex"`
	LogID          string            `json:"logID"`
	IntegratedTime int64             `json:"integratedTime"`
	Body           []byte            `json:"body"`
	Verification   *wireVerification `json:"verification"`
}

type wireVerification struct {
	InclusionProof       *wireProof `json:"inclusionProof"`
	SignedEntryTimestamp []byte     `json:"signedEntryTimestamp"`
}

type wireProof struct {
	LogIndex   int64    `json:"logIndex"`
	RootHash   string   `json:"rootHash"`
	TreeSize   int64    `json:"treeSize"`
	Hashes     []string `json:"hashes"`
	Checkpoint string   `json:"checkpoint"`
}

// ParseBundle parses a proof bundle strictly: at most verify.MaxBundleSize
// bytes, schema_version 1, no unknown fields, no trailing data, and every
// field the offline verification needs present and well-formed (see
// CheckEntryShape). It does not verify anything cryptographically:
// VerifyEntry does. Errors are *verify.BundleError.
func ParseBundle(b []byte) (*Entry, error) {
	if len(b) > verify.MaxBundleSize {
		return nil, &verify.BundleError{Reason: fmt.Sprintf("%d bytes, at most %d accepted", len(b), verify.MaxBundleSize)}
	}
	// One strict pass; only when it fails is the version probed on its own,
	// so that a newer bundle is reported as such and not as "unknown field".
	f := bundleFile{SchemaVersion: -1, wireEntry: new(wireEntry)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)
	if err != nil || f.SchemaVersion != BundleSchemaVersion {
		return nil, versionError(b, err)
	}
	if dec.More() {
		return nil, &verify.BundleError{Reason: "trailing data after the bundle"}
	}
	e := f.wireEntry.entry()
	if err := CheckEntryShape(e); err != nil {
		return nil, &verify.BundleError{Reason: "incomplete bundle", Err: err}
	}
	return e, nil
}

// versionError says why a bundle did not decode: not JSON, no version, a
// version this bintrans does not read, or an invalid bundle of its own.
func versionError(b []byte, err error) error {
	var probe struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if perr := json.Unmarshal(b, &probe); perr != nil {
		return &verify.BundleError{Reason: "not JSON", Err: perr}
	}
	if probe.SchemaVersion == nil {
		return &verify.BundleError{Reason: "no schema_version"}
	}
	if *probe.SchemaVersion != BundleSchemaVersion {
		return &verify.BundleError{Reason: fmt.Sprintf("schema_version %d, this bintrans reads %d", *probe.SchemaVersion, BundleSchemaVersion)}
	}
	return &verify.BundleError{Reason: "invalid bundle", Err: err}
}

// MarshalBundle writes a proof bundle for e (indented JSON, trailing
// newline). It refuses an entry that ParseBundle would refuse.
func MarshalBundle(e *Entry) ([]byte, error) {
	if err := CheckEntryShape(e); err != nil {
		return nil, &verify.BundleError{Reason: "incomplete entry", Err: err}
	}
	b, err := json.MarshalIndent(bundleFile{SchemaVersion: BundleSchemaVersion, wireEntry: wireOf(e)}, "", "  ")
	if err != nil {
		return nil, &verify.BundleError{Reason: "marshal", Err: err}
	}
	b = append(b, '\n')
	if len(b) > verify.MaxBundleSize {
		return nil, &verify.BundleError{Reason: fmt.Sprintf("bundle would be %d bytes, at most %d accepted", len(b), verify.MaxBundleSize)}
	}
	return b, nil
}

// entry converts the JSON form. A hash that is not 64 lowercase hex digits
// becomes an empty one, which CheckEntryShape then reports by position.
func (w *wireEntry) entry() *Entry {
	e := &Entry{UUID: w.UUID, LogIndex: w.LogIndex, LogID: w.LogID, IntegratedTime: w.IntegratedTime, Body: w.Body}
	v := w.Verification
	if v == nil {
		return e
	}
	e.SET = v.SignedEntryTimestamp
	if e.SET == nil {
		e.SET = []byte{} // present but empty: CheckEntryShape names the SET
	}
	if p := v.InclusionProof; p != nil {
		e.Proof = &InclusionProof{LogIndex: p.LogIndex, TreeSize: p.TreeSize, Checkpoint: []byte(p.Checkpoint)}
		e.Proof.RootHash, _ = decodeHash(p.RootHash)
		if p.Hashes != nil {
			e.Proof.Hashes = make([][]byte, len(p.Hashes))
			for i, h := range p.Hashes {
				e.Proof.Hashes[i], _ = decodeHash(h)
			}
		}
	}
	return e
}

// wireOf is the JSON form of a shape-checked entry.
func wireOf(e *Entry) *wireEntry {
	w := &wireEntry{UUID: e.UUID, LogIndex: e.LogIndex, LogID: e.LogID, IntegratedTime: e.IntegratedTime, Body: e.Body,
		Verification: &wireVerification{SignedEntryTimestamp: e.SET}}
	p := e.Proof
	wp := &wireProof{LogIndex: p.LogIndex, RootHash: hex.EncodeToString(p.RootHash), TreeSize: p.TreeSize, Checkpoint: string(p.Checkpoint)}
	if p.Hashes != nil {
		wp.Hashes = make([]string, len(p.Hashes))
		for i, h := range p.Hashes {
			wp.Hashes[i] = hex.EncodeToString(h)
		}
	}
	w.Verification.InclusionProof = wp
	return w
}
