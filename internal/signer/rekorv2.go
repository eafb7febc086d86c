package signer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/verify"
)

// DefaultInflight is the default number of Rekor v2 adds in flight. Rekor
// v2 answers an add once a checkpoint covers it (about one second), so the
// throughput is about this many entries per second.
const DefaultInflight = 256

// RekorV2 is a Rekor v2 log (rekor-tiles) as the signer's NoteLog: entries
// are hashedrekord v0.0.2 with an Ed25519ph signature by the transparency
// key over SHA-512 of the message the `.t` signs, bundles are C2SP
// tlog-proofs (rekorv2.Bundle), and the settle re-proves a run's bundles at
// the log's newest checkpoint from its tiles.
type RekorV2 struct {
	Log    *rekorv2.LogVerifier
	Writer *rekorv2.Writer
	Reader *rekorv2.Reader
	// Inflight bounds the adds in flight (DefaultInflight when 0).
	Inflight int
	// Witnesses, when set, cosign the settled checkpoint.
	Witnesses Cosigner
	// Earlier are the log's earlier shards (--log-shard): a package whose
	// bundle verifies under one of them is published already (its bundle
	// stays valid after a rotation; it is not logged again).
	Earlier []*rekorv2.LogVerifier

	// signed keeps the entries Leaf made for LogAll (Ed25519ph is
	// deterministic: signing again gives the same entry), keyed by
	// public key and message.
	signed sync.Map
}

// VerifyPublished is Verify, also under the earlier shards (the shard of
// the bundle's checkpoint origin).
func (l *RekorV2) VerifyPublished(bundle []byte, pub ed25519.PublicKey, sha string) (*NoteProof, error) {
	p, err := l.Verify(bundle, pub, sha)
	if err == nil || len(l.Earlier) == 0 {
		return p, err
	}
	b, perr := rekorv2.ParseBundle(bundle)
	if perr != nil {
		return nil, err
	}
	origin, _, _ := strings.Cut(string(b.Checkpoint), "\n")
	for _, lv := range l.Earlier {
		if lv.Origin() != origin {
			continue
		}
		v, verr := rekorv2.VerifyBundle(bundle, lv, []ed25519.PublicKey{pub}, []byte(sha))
		if verr != nil {
			return nil, verr
		}
		return &NoteProof{Index: v.Index, Leaf: v.LeafHash, Checkpoint: noteCP(&v.Checkpoint)}, nil
	}
	return nil, err
}

func signedKey(priv ed25519.PrivateKey, sha string) string {
	return string(priv.Public().(ed25519.PublicKey)) + sha
}

// Cosigner asks witnesses to cosign a checkpoint of the log (sign
// --witness): tree is the log's tree at that checkpoint, which serves the
// consistency proofs a witness needs. It returns the checkpoint with the
// cosignature lines obtained, the witnesses that cosigned and why the
// others did not.
type Cosigner interface {
	Cosign(ctx context.Context, note []byte, size uint64, proof func(ctx context.Context, oldSize uint64) ([][32]byte, error)) (cosigned []byte, names []string, errs []error)
}

var _ NoteLog = (*RekorV2)(nil)

// Kind is "rekor-v2".
func (l *RekorV2) Kind() string { return audit.LogKindRekorV2 }

// Origin is the log's checkpoint origin.
func (l *RekorV2) Origin() string { return l.Log.Origin() }

// Leaf is the leaf hash of the hashedrekord entry of sha signed by priv.
func (l *RekorV2) Leaf(priv ed25519.PrivateKey, sha string) ([32]byte, error) {
	h, err := rekorv2.Sign(priv, []byte(sha))
	if err != nil {
		return [32]byte{}, err
	}
	l.signed.Store(signedKey(priv, sha), h)
	return h.LeafHash(), nil
}

// LogAll adds the entries with up to Inflight adds at a time.
func (l *RekorV2) LogAll(ctx context.Context, priv ed25519.PrivateKey, shas []string, each func(int, NoteResult)) []NoteResult {
	out := make([]NoteResult, len(shas))
	var entries []*rekorv2.HashedRekord
	var idx []int
	for i, sha := range shas {
		var h *rekorv2.HashedRekord
		if v, ok := l.signed.LoadAndDelete(signedKey(priv, sha)); ok {
			h = v.(*rekorv2.HashedRekord)
		} else {
			var err error
			if h, err = rekorv2.Sign(priv, []byte(sha)); err != nil {
				out[i].Err = err
				if each != nil {
					each(i, out[i])
				}
				continue
			}
		}
		entries = append(entries, h)
		idx = append(idx, i)
	}
	inflight := l.Inflight
	if inflight <= 0 {
		inflight = DefaultInflight
	}
	l.Writer.AddEach(ctx, entries, inflight, func(k int, r rekorv2.AddResult) {
		i := idx[k]
		out[i] = noteResult(r)
		if each != nil {
			each(i, out[i])
		}
	})
	return out
}

// noteResult is an add's outcome as LogAll gives it.
func noteResult(r rekorv2.AddResult) NoteResult {
	if r.Err != nil {
		var rej *rekorv2.RejectedError
		var ve *rekorv2.VerifyError
		return NoteResult{Err: r.Err, Rejected: errors.As(r.Err, &rej) || errors.As(r.Err, &ve)}
	}
	b, err := r.Logged.Bundle().Marshal()
	if err != nil {
		return NoteResult{Err: err, Rejected: true}
	}
	return NoteResult{Bundle: b, Proof: &NoteProof{Index: r.Logged.Index, Leaf: r.Logged.LeafHash, Checkpoint: noteCP(r.Logged.Checkpoint)}}
}

func noteCP(c *rekorv2.Checkpoint) NoteCheckpoint {
	return NoteCheckpoint{Origin: c.Origin, Size: c.Size, Root: c.Root, Note: c.Raw}
}

// Verify checks a bundle offline (rekorv2.VerifyBundle).
func (l *RekorV2) Verify(bundle []byte, pub ed25519.PublicKey, sha string) (*NoteProof, error) {
	v, err := rekorv2.VerifyBundle(bundle, l.Log, []ed25519.PublicKey{pub}, []byte(sha))
	if err != nil {
		return nil, err
	}
	return &NoteProof{Index: v.Index, Leaf: v.LeafHash, Checkpoint: noteCP(&v.Checkpoint)}, nil
}

// VerifyCheckpoint checks a checkpoint of the pinned log.
func (l *RekorV2) VerifyCheckpoint(note []byte) (*NoteCheckpoint, error) {
	c, err := l.Log.VerifyCheckpoint(note)
	if err != nil {
		return nil, err
	}
	cp := noteCP(c)
	return &cp, nil
}

// Settle fetches the log's checkpoint, proves from its tiles that it
// extends stored and every bundle's checkpoint (a rollback or a fork is a
// *verify.SecurityError with both notes), builds every bundle's inclusion
// proof in it from the tiles (authenticated against it), asks the
// witnesses to cosign it, and returns the bundles at that checkpoint.
func (l *RekorV2) Settle(ctx context.Context, stored *NoteCheckpoint, pub ed25519.PublicKey, items []NoteBundle, jobs int) (*NoteSettled, error) {
	cp, err := l.Reader.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("the log's checkpoint: %w", err)
	}
	tree, err := l.Reader.At(cp)
	if err != nil {
		return nil, err
	}
	if stored != nil {
		old := &rekorv2.Checkpoint{Origin: stored.Origin, Size: stored.Size, Root: stored.Root, Raw: stored.Note}
		if _, err := tree.ConsistencyProof(ctx, old); err != nil {
			return nil, securityError(err, "the log's checkpoint stored by the previous run", "the log's current checkpoint")
		}
	}
	res := &NoteSettled{Bundles: make([][]byte, len(items)), Errs: make([]error, len(items))}
	logged := l.parseBundles(items, pub, res)
	if err := proveBundleCheckpoints(ctx, tree, logged); err != nil {
		return nil, err
	}
	reproved, err := reprove(ctx, tree, logged, jobs, res)
	if err != nil {
		return nil, err
	}
	// Witnesses cosign the settled checkpoint; the bundles carry it.
	note, err := l.cosign(ctx, tree, cp, res)
	if err != nil {
		return nil, err
	}
	settled := *cp
	settled.Raw = note
	for i, n := range reproved {
		if n == nil {
			continue
		}
		n.Checkpoint = &settled
		b, err := n.Bundle().Marshal()
		if err != nil {
			res.Errs[i] = err
			continue
		}
		res.Bundles[i] = b
	}
	scp := noteCP(&settled)
	res.Checkpoint = &scp
	return res, nil
}

// parseBundles parses each published bundle and verifies its checkpoint
// under the log's key: the entries to re-prove (nil, with the error in
// res.Errs, for a bundle that does not parse or verify).
func (l *RekorV2) parseBundles(items []NoteBundle, pub ed25519.PublicKey, res *NoteSettled) []*rekorv2.Logged {
	logged := make([]*rekorv2.Logged, len(items))
	for i, it := range items {
		b, err := rekorv2.ParseBundle(it.Bundle)
		if err == nil {
			var c *rekorv2.Checkpoint
			if c, err = l.Log.VerifyCheckpoint(b.Checkpoint); err == nil {
				digest := sha512.Sum512([]byte(it.SHA))
				h := &rekorv2.HashedRekord{Digest: digest, Signature: b.Signature, PublicKey: pub}
				logged[i] = &rekorv2.Logged{Entry: h, Index: b.Index, LeafHash: h.LeafHash(), Checkpoint: c, Hashes: b.Hashes}
			}
		}
		res.Errs[i] = err
	}
	return logged
}

// proveBundleCheckpoints proves tree consistent with every distinct
// bundle checkpoint, in order, so that a fork is reported as such (a
// *verify.SecurityError) before any proof is built.
func proveBundleCheckpoints(ctx context.Context, tree *rekorv2.Tree, logged []*rekorv2.Logged) error {
	seen := map[string]bool{}
	for _, lg := range logged {
		if lg == nil {
			continue
		}
		k := fmt.Sprintf("%d/%x", lg.Checkpoint.Size, lg.Checkpoint.Root)
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, err := tree.ConsistencyProof(ctx, lg.Checkpoint); err != nil {
			return securityError(err, "a checkpoint the log returned with an entry of this run", "the log's current checkpoint")
		}
	}
	return nil
}

// reprove builds each entry's inclusion proof in tree, jobs at a time.
// Tiles that contradict an entry's bundle make its error in res.Errs a
// *ContradictionError; another failure is its error there, and the
// first one is returned too when ctx was cancelled (the run stops).
func reprove(ctx context.Context, tree *rekorv2.Tree, logged []*rekorv2.Logged, jobs int, res *NoteSettled) ([]*rekorv2.Logged, error) {
	reproved := make([]*rekorv2.Logged, len(logged))
	var g errgroup.Group
	g.SetLimit(max(jobs, 1))
	var mu sync.Mutex
	var callErr error
	for i, lg := range logged {
		if lg == nil {
			continue
		}
		g.Go(func() error {
			n, err := tree.Reprove(ctx, lg)
			if err != nil {
				var fe *rekorv2.ForkError
				var re *rekorv2.RollbackError
				var te *rekorv2.TileError
				if errors.As(err, &fe) || errors.As(err, &re) || errors.As(err, &te) {
					res.Errs[i] = &ContradictionError{Err: err}
					return nil
				}
				mu.Lock()
				if callErr == nil {
					callErr = err
				}
				mu.Unlock()
				res.Errs[i] = err
				return nil
			}
			reproved[i] = n
			return nil
		})
	}
	g.Wait()
	if callErr != nil && ctx.Err() != nil {
		return nil, callErr
	}
	return reproved, nil
}

// cosign asks the witnesses (if any) to cosign cp, serving them
// consistency proofs from tree, and returns the note the bundles carry:
// the cosigned one when a witness cosigned (it must verify as cp), else
// cp's own. Witnesses that did not cosign are in res.WitnessErrors.
func (l *RekorV2) cosign(ctx context.Context, tree *rekorv2.Tree, cp *rekorv2.Checkpoint, res *NoteSettled) ([]byte, error) {
	if l.Witnesses == nil {
		return cp.Raw, nil
	}
	proof := func(ctx context.Context, oldSize uint64) ([][32]byte, error) {
		if oldSize == 0 || oldSize >= cp.Size {
			return nil, nil
		}
		hs, err := tree.ConsistencyHashes(ctx, int64(oldSize))
		if err != nil {
			return nil, err
		}
		out := make([][32]byte, len(hs))
		for i, h := range hs {
			out[i] = [32]byte(h)
		}
		return out, nil
	}
	cosigned, names, errs := l.Witnesses.Cosign(ctx, cp.Raw, cp.Size, proof)
	res.Cosignatures = names
	for _, e := range errs {
		res.WitnessErrors = append(res.WitnessErrors, e.Error())
	}
	if len(names) == 0 {
		return cp.Raw, nil
	}
	c, err := l.Log.VerifyCheckpoint(cosigned)
	if err != nil || c.Size != cp.Size || c.Root != cp.Root {
		return nil, fmt.Errorf("the cosigned checkpoint does not verify: %v", err)
	}
	return cosigned, nil
}

// securityError turns a rollback or fork between two checkpoints of the log
// into the engine's *verify.SecurityError (both notes as evidence); other
// errors are returned as they are.
func securityError(err error, oldLabel, newLabel string) error {
	var re *rekorv2.RollbackError
	if errors.As(err, &re) {
		return &verify.SecurityError{Reason: "the log's tree is smaller than one it signed before (rollback)",
			Old: re.Old.Raw, New: re.New.Raw, OldLabel: oldLabel, NewLabel: newLabel, Err: err}
	}
	var fe *rekorv2.ForkError
	if errors.As(err, &fe) {
		return &verify.SecurityError{Reason: "the log's tree does not extend one it signed before (fork)",
			Old: fe.Old.Raw, New: fe.New.Raw, OldLabel: oldLabel, NewLabel: newLabel, Err: err}
	}
	return err
}
