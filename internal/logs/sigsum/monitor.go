package sigsum

import (
	"context"
	"crypto/ed25519"
	"fmt"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/merkle"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/witness"
)

// TreeHead is a log's tree size and root hash.
type TreeHead struct {
	Size     uint64
	RootHash [32]byte
}

// LogState is what a monitor keeps of one log between runs. The zero value
// (with LogKeyHash unset) starts from the first leaf and trusts the first
// tree head that satisfies the policy.
type LogState struct {
	LogKeyHash [32]byte
	TreeHead   TreeHead // the last verified tree head
	NextIndex  uint64   // leaves below it have been listed
}

// Leaf is a leaf of the log signed by one of the monitored keys.
type Leaf struct {
	Index     uint64
	Checksum  [32]byte // Checksum(package SHA-256)
	Signature [64]byte
	KeyHash   [32]byte
	// SignatureValid is false for a leaf that names the key but whose
	// signature does not verify (the log should never have accepted it).
	SignatureValid bool
}

// Listing is the result of one ListLeaves run.
type Listing struct {
	Log          *witness.Log
	TreeHead     TreeHead // verified: log signature, quorum, consistent with the previous state
	Cosignatures []witness.Cosigned
	Leaves       []Leaf   // the keys' leaves among those read, by index
	Read         uint64   // leaves read and verified in this run
	State        LogState // to persist; State.NextIndex < TreeHead.Size when max stopped the run early
}

// LogError is a log that could not be read (unreachable, an error status,
// a malformed answer, an answer that does not match the question).
type LogError struct {
	URL string
	Op  string
	Err error
}

func (e *LogError) Error() string { return fmt.Sprintf("sigsum log %s: %s: %v", e.URL, e.Op, e.Err) }
func (e *LogError) Unwrap() error { return e.Err }

// TreeHeadError is a tree head that does not verify: a bad log signature,
// or (Err is a *witness.QuorumError) not enough valid cosignatures.
type TreeHeadError struct {
	URL    string
	Size   uint64
	Reason string
	Err    error
}

func (e *TreeHeadError) Error() string {
	s := fmt.Sprintf("sigsum log %s: tree head of size %d: %s", e.URL, e.Size, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TreeHeadError) Unwrap() error { return e.Err }

// SplitViewError is a log whose new tree head is not an extension of the
// one a previous run verified: a rollback or a fork. Both heads are
// evidence, signed by the log (the old one by the previous run).
type SplitViewError struct {
	URL      string
	Old, New TreeHead
	Reason   string
}

func (e *SplitViewError) Error() string {
	return fmt.Sprintf("SECURITY ERROR: sigsum log %s: %s: verified before: size %d root %x; now: size %d root %x",
		e.URL, e.Reason, e.Old.Size, e.Old.RootHash[:], e.New.Size, e.New.RootHash[:])
}

// ListLeaves reads the leaves of log l from prev.NextIndex (at most max of
// them; 0 means all) and returns those signed by keys. Before reading, it
// verifies the log's current tree head: the log signature, the policy's
// quorum (cfg.Witness.MaxAge applies), and consistency with prev's tree
// head (a rollback or a fork is a *SplitViewError). Every leaf read is
// proven included in that tree head (batch inclusion proofs). sigsum-go's
// pkg/monitor is not used: it does not check cosignatures. Errors:
// *LogError, *TreeHeadError, *SplitViewError.
func ListLeaves(ctx context.Context, cfg Config, l *witness.Log, keys []ed25519.PublicKey, prev LogState, max uint64) (*Listing, error) {
	silence()
	if cfg.Policy == nil || l == nil || l.Ed25519() == nil || l.URL == "" {
		return nil, &LogError{Op: "list leaves", Err: fmt.Errorf("need a policy and a Sigsum log with a URL")}
	}
	if prev.LogKeyHash != ([32]byte{}) && prev.LogKeyHash != l.KeyHash {
		return nil, &LogError{URL: l.URL, Op: "list leaves", Err: fmt.Errorf("the state is for log %x", prev.LogKeyHash[:])}
	}
	if prev.NextIndex > prev.TreeHead.Size {
		return nil, &LogError{URL: l.URL, Op: "list leaves", Err: fmt.Errorf("state: next index %d beyond tree size %d", prev.NextIndex, prev.TreeHead.Size)}
	}
	want := map[scrypto.Hash]scrypto.PublicKey{}
	for _, k := range keys {
		var pub scrypto.PublicKey
		copy(pub[:], k)
		want[scrypto.HashBytes(k)] = pub
	}
	c := cfg.client(l)
	cth, cosigned, err := treeHead(ctx, cfg, l)
	if err != nil {
		return nil, err
	}
	now := TreeHead{Size: cth.Size, RootHash: cth.RootHash}
	old := prev.TreeHead
	switch {
	case prev.LogKeyHash == ([32]byte{}):
	case now.Size < old.Size:
		return nil, &SplitViewError{URL: l.URL, Old: old, New: now, Reason: "the log rolled back"}
	case now.Size == old.Size && now.RootHash != old.RootHash:
		return nil, &SplitViewError{URL: l.URL, Old: old, New: now, Reason: "the log forked (same size, another root)"}
	case now.Size > old.Size && old.Size > 0:
		rctx, cancel := context.WithTimeout(ctx, or(cfg.RequestTimeout, DefaultRequestTimeout))
		p, err := c.GetConsistencyProof(rctx, requests.ConsistencyProof{OldSize: old.Size, NewSize: now.Size})
		cancel()
		if err != nil {
			return nil, &LogError{URL: l.URL, Op: fmt.Sprintf("consistency proof %d→%d", old.Size, now.Size), Err: err}
		}
		oth := types.TreeHead{Size: old.Size, RootHash: old.RootHash}
		if err := p.Verify(&oth, &cth.TreeHead); err != nil {
			return nil, &SplitViewError{URL: l.URL, Old: old, New: now, Reason: "the new tree head is not consistent with the old one: " + err.Error()}
		}
	}
	out := &Listing{Log: l, TreeHead: now, Cosignatures: cosigned}
	end := now.Size
	if max > 0 && prev.NextIndex+max < end {
		end = prev.NextIndex + max
	}
	for idx := prev.NextIndex; idx < end; {
		rctx, cancel := context.WithTimeout(ctx, or(cfg.RequestTimeout, DefaultRequestTimeout))
		leaves, err := c.GetLeaves(rctx, requests.Leaves{StartIndex: idx, EndIndex: end})
		if err == nil {
			if len(leaves) == 0 || uint64(len(leaves)) > end-idx {
				err = fmt.Errorf("%d leaves in the answer for %d..%d", len(leaves), idx, end)
			} else {
				err = verifyBatch(rctx, c, leaves, idx, &cth.TreeHead)
			}
		}
		cancel()
		if err != nil {
			return nil, &LogError{URL: l.URL, Op: fmt.Sprintf("leaves %d..%d", idx, end), Err: err}
		}
		for i, lf := range leaves {
			if pub, ok := want[lf.KeyHash]; ok {
				out.Leaves = append(out.Leaves, Leaf{Index: idx + uint64(i), Checksum: lf.Checksum, Signature: lf.Signature,
					KeyHash: lf.KeyHash, SignatureValid: lf.Verify(&pub)})
			}
		}
		idx += uint64(len(leaves))
		out.Read += uint64(len(leaves))
	}
	out.State = LogState{LogKeyHash: l.KeyHash, TreeHead: now, NextIndex: end}
	return out, nil
}

// verifyBatch proves leaves[i] is leaf start+i of the tree th, with
// inclusion proofs of the first and last leaf (sigsum-go merkle batch
// verification).
func verifyBatch(ctx context.Context, c logClient, leaves []types.Leaf, start uint64, th *types.TreeHead) error {
	hashes := make([]scrypto.Hash, len(leaves))
	for i := range leaves {
		hashes[i] = leaves[i].ToHash()
	}
	proof := func(i uint64) ([]scrypto.Hash, error) {
		p, err := c.GetInclusionProof(ctx, requests.InclusionProof{Size: th.Size, LeafHash: hashes[i-start]})
		if err != nil {
			return nil, err
		}
		if p.LeafIndex != i {
			return nil, fmt.Errorf("inclusion proof for leaf %d is for index %d", i, p.LeafIndex)
		}
		return p.Path, nil
	}
	n := uint64(len(leaves))
	first, err := proof(start)
	if err != nil {
		return err
	}
	switch {
	case n == 1:
		err = merkle.VerifyInclusion(&hashes[0], start, th.Size, &th.RootHash, first)
	case start+n == th.Size:
		err = merkle.VerifyInclusionTail(hashes, start, &th.RootHash, first)
	default:
		last, perr := proof(start + n - 1)
		if perr != nil {
			return perr
		}
		err = merkle.VerifyInclusionBatch(hashes, start, th.Size, &th.RootHash, first, last)
	}
	if err != nil {
		return fmt.Errorf("leaves not included in the tree head: %w", err)
	}
	return nil
}

type logClient interface {
	GetInclusionProof(context.Context, requests.InclusionProof) (types.InclusionProof, error)
}

// treeHead fetches and verifies a log's tree head: log signature, quorum.
func treeHead(ctx context.Context, cfg Config, l *witness.Log) (*types.CosignedTreeHead, []witness.Cosigned, error) {
	rctx, cancel := context.WithTimeout(ctx, or(cfg.RequestTimeout, DefaultRequestTimeout))
	defer cancel()
	cth, err := cfg.client(l).GetTreeHead(rctx)
	if err != nil {
		return nil, nil, &LogError{URL: l.URL, Op: "get-tree-head", Err: err}
	}
	var pub scrypto.PublicKey
	copy(pub[:], l.Ed25519())
	if !cth.Verify(&pub) {
		return nil, nil, &TreeHeadError{URL: l.URL, Size: cth.Size, Reason: "invalid log signature"}
	}
	cosigned, err := checkQuorum(cfg.Policy, pub, cth.TreeHead, cth.Cosignatures, cfg.Witness)
	if err != nil {
		return nil, nil, &TreeHeadError{URL: l.URL, Size: cth.Size, Reason: "not witnessed per the policy", Err: err}
	}
	return &cth, cosigned, nil
}
