package rekorv2

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/transparency-dev/formats/proof"
)

// Bounds of a bundle.
const (
	// MaxBundleSize bounds ParseBundle's input: a checkpoint of at most
	// MaxCheckpointSize plus 64 proof hashes and the header lines.
	MaxBundleSize = MaxCheckpointSize + 4<<10
	// MaxProofHashes is the longest inclusion proof of a tree with up to
	// 2^64 entries.
	MaxProofHashes = 64
	// BundleHeader is the first line of every bundle (C2SP tlog-proof).
	BundleHeader = "c2sp.org/tlog-proof@v1"
)

// Bundle is the on-disk proof that a package's entry is in a Rekor v2 log
// (`<pkg>.t.bundle`): a C2SP tlog-proof (c2sp.org/tlog-proof) whose extra
// data is the entry's 64-byte Ed25519ph signature. With the message (the
// package's hex SHA-256) and the transparency key the verifier has, the
// signature is the one piece missing to rebuild the entry body and its leaf
// hash, which is what the spec means extra data for. docs/BUNDLES.md has
// the format and the reasons.
type Bundle struct {
	// Index is the entry's index in the log.
	Index uint64
	// Hashes is the RFC 6962 inclusion proof of the entry in the
	// checkpoint's tree, from the leaf's sibling up.
	Hashes [][32]byte
	// Checkpoint is the log's signed checkpoint, verbatim.
	Checkpoint []byte
	// Signature is the entry's Ed25519ph signature (the tlog-proof extra).
	Signature [ed25519.SignatureSize]byte
}

func (b *Bundle) tlogProof() proof.TLogProof {
	return proof.TLogProof{Index: b.Index, Hashes: b.Hashes, Checkpoint: b.Checkpoint, ExtraData: b.Signature[:]}
}

// Marshal writes the bundle. It refuses one that ParseBundle would refuse
// (in shape; nothing is verified here).
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.checkShape(); err != nil {
		return nil, err
	}
	out := b.tlogProof().Marshal()
	if len(out) > MaxBundleSize {
		return nil, bundleErr(fmt.Sprintf("bundle would be %d bytes, at most %d accepted", len(out), MaxBundleSize), nil)
	}
	return out, nil
}

func (b *Bundle) checkShape() error {
	if len(b.Hashes) > MaxProofHashes {
		return bundleErr(fmt.Sprintf("%d proof hashes, at most %d accepted", len(b.Hashes), MaxProofHashes), nil)
	}
	n := len(b.Checkpoint)
	if n == 0 || n > MaxCheckpointSize {
		return bundleErr(fmt.Sprintf("checkpoint of %d bytes, want 1..%d", n, MaxCheckpointSize), nil)
	}
	// tlog-proof reads the checkpoint as the lines after the proof: it
	// must end with a newline (every signed note does) and cannot start
	// with an empty line.
	if b.Checkpoint[n-1] != '\n' || b.Checkpoint[0] == '\n' {
		return bundleErr("checkpoint is not a signed note (must end with a newline)", nil)
	}
	return nil
}

// ParseBundle parses a bundle strictly: at most MaxBundleSize bytes, the
// tlog-proof header, extra data of exactly 64 bytes, at most MaxProofHashes
// hashes, a checkpoint, and nothing that does not re-marshal to the same
// bytes (no CRLF, leading zeros, non-canonical base64, missing final
// newline). It verifies nothing: VerifyBundle does. Errors are
// *VerifyError with Step StepBundle.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, bundleErr(fmt.Sprintf("%d bytes, at most %d accepted", len(data), MaxBundleSize), nil)
	}
	if !bytes.HasPrefix(data, []byte(BundleHeader+"\n")) {
		if len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] == '{' {
			return nil, bundleErr("a JSON bundle (Rekor v1?), not a Rekor v2 tlog-proof", nil)
		}
		return nil, bundleErr("does not start with "+BundleHeader, nil)
	}
	var p proof.TLogProof
	if err := p.Unmarshal(data); err != nil {
		return nil, bundleErr("not a tlog-proof", err)
	}
	if len(p.ExtraData) != ed25519.SignatureSize {
		return nil, bundleErr(fmt.Sprintf("extra data of %d bytes, want the %d-byte Ed25519ph signature", len(p.ExtraData), ed25519.SignatureSize), nil)
	}
	b := &Bundle{Index: p.Index, Hashes: p.Hashes, Checkpoint: p.Checkpoint, Signature: [64]byte(p.ExtraData)}
	if err := b.checkShape(); err != nil {
		return nil, err
	}
	if !bytes.Equal(b.tlogProof().Marshal(), data) {
		return nil, bundleErr("not in canonical form (CRLF, leading zeros, non-canonical base64 or a missing final newline)", nil)
	}
	return b, nil
}

func bundleErr(reason string, err error) error {
	return &VerifyError{Step: StepBundle, Reason: reason, Err: err}
}
