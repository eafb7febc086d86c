package signer

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/witness"
)

// Sigsum is a Sigsum log (sigsum.org) as the signer's NoteLog: the
// transparency key signs the package's sha256 as a Sigsum leaf (Ed25519
// over the Sigsum leaf namespace and SHA-256 of the package's sha256:
// sigsum.SignLeaf), so no package is read; the leaf is submitted to a log
// of the policy, and the bundle is the Sigsum proof (sigsum-go's proof
// format, which sigsum-verify reads), whose tree head carries the policy's
// quorum of witness cosignatures. A Sigsum proof is final: nothing to
// settle.
type Sigsum struct {
	Config sigsum.Config
}

var _ NoteLog = (*Sigsum)(nil)

// NewSigsum checks that cfg's policy names a log to submit to.
func NewSigsum(cfg sigsum.Config) (*Sigsum, error) {
	if cfg.Policy == nil {
		return nil, errors.New("sigsum: no policy")
	}
	for _, l := range cfg.Policy.Logs {
		if l.URL != "" && l.Ed25519() != nil {
			return &Sigsum{Config: cfg}, nil
		}
	}
	return nil, errors.New("the policy names no Sigsum log with a URL to submit to (a line \"log <hex key> <URL>\")")
}

// Kind is "sigsum".
func (l *Sigsum) Kind() string { return audit.LogKindSigsum }

// Origin is the origin of the policy's first log with a URL (each entry's
// audit record names the origin of the log that logged it).
func (l *Sigsum) Origin() string {
	if lg := l.first(); lg != nil {
		return witness.SigsumOrigin(lg.Ed25519())
	}
	return ""
}

// URL is the URL of the policy's first log with a URL.
func (l *Sigsum) URL() string {
	if lg := l.first(); lg != nil {
		return lg.URL
	}
	return ""
}

func (l *Sigsum) first() *witness.Log {
	for i := range l.Config.Policy.Logs {
		if lg := &l.Config.Policy.Logs[i]; lg.URL != "" && lg.Ed25519() != nil {
			return lg
		}
	}
	return nil
}

func pkgHash(sha string) ([32]byte, error) {
	b, err := hex.DecodeString(sha)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != sha {
		return [32]byte{}, fmt.Errorf("sigsum: %q is not a lowercase hex sha256", sha)
	}
	return [32]byte(b), nil
}

// Leaf is the RFC 6962 leaf hash of the Sigsum leaf of sha signed by priv.
func (l *Sigsum) Leaf(priv ed25519.PrivateKey, sha string) ([32]byte, error) {
	m, err := pkgHash(sha)
	if err != nil {
		return [32]byte{}, err
	}
	sig, err := sigsum.SignLeaf(priv, m)
	if err != nil {
		return [32]byte{}, err
	}
	leaf := types.Leaf{Checksum: scrypto.Hash(sigsum.Checksum(m)), Signature: scrypto.Signature(sig),
		KeyHash: scrypto.HashBytes(priv.Public().(ed25519.PublicKey))}
	return [32]byte(leaf.ToHash()), nil
}

// LogAll submits the leaves (sigsum.Submit, in batches of sigsum.MaxBatch)
// and waits for each to be in a tree head with the policy's quorum.
func (l *Sigsum) LogAll(ctx context.Context, priv ed25519.PrivateKey, shas []string, each func(int, NoteResult)) []NoteResult {
	out := make([]NoteResult, len(shas))
	var ms [][32]byte
	var idx []int
	for i, sha := range shas {
		m, err := pkgHash(sha)
		if err != nil {
			out[i] = NoteResult{Err: err, Rejected: true}
			continue
		}
		ms = append(ms, m)
		idx = append(idx, i)
	}
	pub := priv.Public().(ed25519.PublicKey)
	for start := 0; start < len(ms); start += sigsum.MaxBatch {
		end := min(start+sigsum.MaxBatch, len(ms))
		proofs, err := sigsum.Submit(ctx, l.Config, priv, ms[start:end])
		for k := start; k < end; k++ {
			i := idx[k]
			if err != nil {
				out[i] = NoteResult{Err: err}
				continue
			}
			b := proofs[k-start]
			p, err := l.Verify(b, pub, shas[i])
			out[i] = NoteResult{Bundle: b, Proof: p, Err: err, Rejected: err != nil}
		}
	}
	if each != nil {
		for i := range out {
			each(i, out[i])
		}
	}
	return out
}

// Verify checks a Sigsum proof offline against the policy.
func (l *Sigsum) Verify(bundle []byte, pub ed25519.PublicKey, sha string) (*NoteProof, error) {
	m, err := pkgHash(sha)
	if err != nil {
		return nil, err
	}
	r, err := sigsum.VerifyProof(bundle, m, []ed25519.PublicKey{pub}, l.Config.Policy, l.Config.Witness)
	if err != nil {
		return nil, err
	}
	return &NoteProof{Index: r.LeafIndex, Leaf: r.LeafHash, Checkpoint: NoteCheckpoint{
		Origin: witness.SigsumOrigin(r.Log.Ed25519()), Size: r.TreeSize, Root: r.RootHash, Note: r.Checkpoint}}, nil
}

// VerifyCheckpoint checks a checkpoint note of a policy log, with its
// quorum.
func (l *Sigsum) VerifyCheckpoint(note []byte) (*NoteCheckpoint, error) {
	c, err := l.Config.Policy.VerifyCheckpoint(note, l.Config.Witness)
	if err != nil {
		return nil, err
	}
	return &NoteCheckpoint{Origin: c.Origin, Size: c.Size, Root: c.Hash, Note: note}, nil
}

// Settle: a Sigsum proof carries its own cosigned tree head.
func (l *Sigsum) Settle(context.Context, *NoteCheckpoint, ed25519.PublicKey, []NoteBundle, int) (*NoteSettled, error) {
	return nil, nil
}
