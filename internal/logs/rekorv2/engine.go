package rekorv2

// The engine's interfaces (package verify) for Rekor v2: KindVerifier is the pure
// verify.LogVerifier, Online the verify.LogClient over a Reader. Rekor v2
// has no search: a `.t` without a bundle cannot be found (no EntryFinder).

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/bintrans/bintrans/verify"
)

// KindName names Rekor v2 logs (--log-kind).
const KindName = "rekor-v2"

// KindVerifier is a Rekor v2 log as the engine sees it (verify.LogVerifier): the
// pinned LogVerifier and the bundle format.
type KindVerifier struct {
	log *LogVerifier
}

// NewKindVerifier returns the engine's verifier for the log identified by lv.
func NewKindVerifier(lv *LogVerifier) *KindVerifier { return &KindVerifier{log: lv} }

// Kind is "rekor-v2".
func (k *KindVerifier) Kind() string { return KindName }

// VerifyCheckpoint verifies a checkpoint note of the pinned log. Errors are
// *verify.CheckpointError (wrapping this package's *CheckpointError).
func (k *KindVerifier) VerifyCheckpoint(note []byte) (*verify.Checkpoint, error) {
	cp, err := k.log.VerifyCheckpoint(note)
	if err != nil {
		reason := "not a checkpoint of the pinned Rekor v2 log"
		var ce *CheckpointError
		if errors.As(err, &ce) {
			reason, err = ce.Reason, ce.Err
			if ce.Head != "" {
				reason += " [" + ce.Head + "]"
			}
		}
		return nil, &verify.CheckpointError{Reason: reason, Err: err}
	}
	return engineCheckpoint(cp)
}

// engineCheckpoint is the engine's form of a verified checkpoint.
func engineCheckpoint(cp *Checkpoint) (*verify.Checkpoint, error) {
	if cp.Size > math.MaxInt64 {
		return nil, &verify.CheckpointError{Reason: fmt.Sprintf("tree size %d out of range", cp.Size), Origin: cp.Origin}
	}
	return &verify.Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Root: append([]byte(nil), cp.Root[:]...), Text: cp.Raw}, nil
}

// VerifyBundle verifies a Rekor v2 bundle (VerifyBundle) for a `.t` that
// already verified: the logged Ed25519ph signature must be by the key
// that made the `.t` (one of keys with its key id) over SHA-512 of msg.
// Errors are *VerifyError.
func (k *KindVerifier) VerifyBundle(bundle []byte, sig *verify.Signature, keys []verify.PublicKey, msg []byte) (*verify.Proof, error) {
	var eds []ed25519.PublicKey
	for _, pk := range keys {
		if pk.KeyID() == sig.KeyID() {
			eds = append(eds, pk.Ed25519())
		}
	}
	v, err := VerifyBundle(bundle, k.log, eds, msg)
	if err != nil {
		return nil, err
	}
	cp, err := engineCheckpoint(&v.Checkpoint)
	if err != nil {
		return nil, err
	}
	keyID := k.log.KeyID()
	return &verify.Proof{Checkpoint: cp, Index: int64(v.Index), LeafHash: v.LeafHash,
		Entry: verify.EntryID{UUID: hex.EncodeToString(v.LeafHash[:]), LogIndex: int64(v.Index), LogID: hex.EncodeToString(keyID[:])}}, nil
}

// Online is a Rekor v2 log as the engine's online side (verify.LogClient):
// its checkpoint, and consistency proofs built from its tiles. A proof is
// served for the tree of a checkpoint this Online fetched (the engine asks
// for proofs to the current checkpoint it just fetched); every tile is
// authenticated against that checkpoint before use.
type Online struct {
	r *Reader

	mu    sync.Mutex
	trees map[uint64]*Tree // by size: the trees of the checkpoints fetched
}

// NewOnline returns the online side of the log r reads.
func NewOnline(r *Reader) *Online { return &Online{r: r, trees: map[uint64]*Tree{}} }

// Checkpoint fetches the log's checkpoint, verifies it (Reader.Checkpoint)
// and returns the note.
func (o *Online) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := o.r.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	t, err := o.r.At(cp)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	if len(o.trees) >= 16 {
		clear(o.trees)
	}
	o.trees[cp.Size] = t
	o.mu.Unlock()
	return cp.Raw, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof from tree size
// first to last, where last is the size of a checkpoint Checkpoint
// returned, built from tiles authenticated against that checkpoint.
func (o *Online) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	o.mu.Lock()
	t := o.trees[uint64(last)]
	o.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("rekor v2: no checkpoint of size %d was fetched", last)
	}
	return t.ConsistencyHashes(ctx, first)
}

// ConsistencyHashes returns the RFC 6962 consistency proof from tree size
// first (0 < first <= the tree's size) to this tree, read from tiles
// authenticated against the tree's checkpoint. The proof is not checked
// against an old root: the caller has the old checkpoint and does (compare
// ConsistencyProof).
func (t *Tree) ConsistencyHashes(ctx context.Context, first int64) ([][]byte, error) {
	if first <= 0 || uint64(first) > t.cp.Size {
		return nil, fmt.Errorf("rekor v2: consistency from size %d to %d", first, t.cp.Size)
	}
	tp, err := tlog.ProveTree(t.tt.N, first, &tlogHashes{t: t, ctx: ctx})
	if err != nil {
		return nil, t.hashErr(err)
	}
	out := make([][]byte, len(tp))
	for i := range tp {
		out[i] = append([]byte(nil), tp[i][:]...)
	}
	return out, nil
}

var (
	_ verify.LogVerifier = (*KindVerifier)(nil)
	_ verify.LogClient   = (*Online)(nil)
)
