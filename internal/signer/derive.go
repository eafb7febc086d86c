package signer

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

// maxDerivedLeaves bounds the tree range a derivation may hash.
const maxDerivedLeaves = 1 << 20

// rangeFactory builds RFC 6962 compact ranges (transparency-dev/merkle).
var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// deriveFresh computes, without asking the log for proofs, each item's
// inclusion proof at the newest tree head among the items' own bundles
// (the last upload answers of the run): RFC 6962 needs only the hashes of
// the leaves after the first item, which are the run's own entries (their
// leaf hashes are known) plus entries of other writers in between
// (fetched by index, only their bodies used), and the compact range of the
// tree before the first item, which its published proof holds (its left
// siblings). Every derived entry must verify in full (rekorv1.VerifyEntry)
// against that signed tree head; only then are the items' fresh entries set.
//
// It reports whether it set them. It does nothing and returns false when
// the items do not lie in one tree, when other writers' entries outnumber
// the items (fetching the items' own entries costs less), or when anything
// does not add up; the caller then fetches every entry.
func (s *Signer) deriveFresh(ctx context.Context, items []*settleItem) bool {
	span, ok := s.deriveSpan(items)
	if !ok {
		return false
	}
	leaves, ok := s.spanLeaves(ctx, items, span)
	if !ok {
		return false
	}
	fp := span.first.e.Proof
	tree, err := deriveTree(fp.LogIndex, fp.TreeSize, fp.Hashes, leaves)
	if err != nil || !bytes.Equal(tree.root, span.head.Root) {
		return false
	}
	fresh := make([]*rekorv1.Entry, len(items))
	for i, it := range items {
		hashes, err := tree.inclusion(it.e.Proof.LogIndex)
		if err != nil {
			return false
		}
		f := *it.e
		f.Proof = &rekorv1.InclusionProof{LogIndex: it.e.Proof.LogIndex, RootHash: tree.root, TreeSize: tree.size,
			Hashes: hashes, Checkpoint: span.hi.e.Proof.Checkpoint}
		fresh[i] = &f
	}
	return s.acceptDerived(items, fresh)
}

// deriveSpan is the tree range a derivation covers: from the first item's
// leaf to the newest tree head among the items' bundles.
type deriveSpan struct {
	first, hi *settleItem
	head      *verify.Checkpoint // hi's, verified
	offset    int64              // global index − tree-local index
}

// deriveSpan checks that every item's proof is in one tree (origin, the
// same offset between global and tree-local index) of at most
// maxDerivedLeaves leaves after the first item, and verifies the newest
// tree head.
func (s *Signer) deriveSpan(items []*settleItem) (deriveSpan, bool) {
	if len(items) == 0 {
		return deriveSpan{}, false
	}
	sp := deriveSpan{first: items[0], hi: items[0], offset: items[0].e.LogIndex - items[0].e.Proof.LogIndex}
	var origin string
	for _, it := range items {
		p := it.e.Proof
		cp, err := verify.ParseCheckpoint(p.Checkpoint)
		if err != nil || it.e.LogIndex-p.LogIndex != sp.offset {
			return sp, false
		}
		if origin == "" {
			origin = cp.Origin
		}
		if cp.Origin != origin {
			return sp, false
		}
		if p.TreeSize > sp.hi.e.Proof.TreeSize {
			sp.hi = it
		}
		if p.LogIndex < sp.first.e.Proof.LogIndex {
			sp.first = it
		}
	}
	head, err := s.o.LogKey.VerifyCheckpoint(sp.hi.e.Proof.Checkpoint)
	if err != nil || head.Size-sp.first.e.Proof.LogIndex > maxDerivedLeaves {
		return sp, false
	}
	sp.head = head
	return sp, true
}

// spanLeaves returns the leaf hashes of [first, head.Size): the items',
// then, fetched by index, the others' (when they do not outnumber the
// items).
func (s *Signer) spanLeaves(ctx context.Context, items []*settleItem, sp deriveSpan) ([][]byte, bool) {
	a := sp.first.e.Proof.LogIndex
	leaves := make([][]byte, sp.head.Size-a)
	for _, it := range items {
		leaves[it.e.Proof.LogIndex-a] = leafHash(it.e.Body)
	}
	var unknown []int64
	for i, l := range leaves {
		if l == nil {
			unknown = append(unknown, a+int64(i)+sp.offset)
		}
	}
	if len(unknown) > len(items) {
		return nil, false
	}
	if len(unknown) > 0 {
		others, err := s.fetchBodies(ctx, unknown)
		if err != nil {
			return nil, false
		}
		for _, gi := range unknown {
			leaves[gi-sp.offset-a] = leafHash(others[gi])
		}
	}
	return leaves, true
}

// acceptDerived verifies every derived entry in full against its item's
// `.t`; only when all do are they the items' fresh entries.
func (s *Signer) acceptDerived(items []*settleItem, fresh []*rekorv1.Entry) bool {
	cps := make([]*verify.Checkpoint, len(items))
	var g errgroup.Group
	g.SetLimit(s.o.Jobs)
	for i, it := range items {
		g.Go(func() error {
			cp, err := rekorv1.VerifyEntry(fresh[i], it.t, []verify.PublicKey{s.o.PublicKey}, it.sha, it.filename, s.o.LogKey)
			cps[i] = cp
			return err
		})
	}
	if g.Wait() != nil {
		return false
	}
	for i, it := range items {
		it.fresh, it.freshCP = fresh[i], cps[i]
	}
	return true
}

// fetchBodies fetches entries by global index, in parallel batches, and
// returns their bodies; an index the log does not return is an error.
func (s *Signer) fetchBodies(ctx context.Context, indexes []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(indexes))
	parts := make([]map[int64]*rekorv1.Entry, (len(indexes)+settleBatch-1)/settleBatch)
	var g errgroup.Group
	g.SetLimit(s.o.Jobs)
	for k := range parts {
		chunk := indexes[k*settleBatch : min((k+1)*settleBatch, len(indexes))]
		g.Go(func() error {
			m, err := s.o.Log.EntriesByIndex(ctx, chunk)
			parts[k] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, m := range parts {
		for i, e := range m {
			if e != nil && e.LogIndex == i && len(e.Body) > 0 {
				out[i] = e.Body
			}
		}
	}
	for _, i := range indexes {
		if out[i] == nil {
			return nil, fmt.Errorf("no entry at log index %d", i)
		}
	}
	return out, nil
}

func leafHash(body []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(body) }

// derivedTree is the RFC 6962 tree of size leaves, rebuilt from the
// compact range [0, a) and the leaf hashes of [a, size): every node that
// an inclusion proof of a leaf at or after a needs.
type derivedTree struct {
	size  int64
	root  []byte
	nodes map[compact.NodeID][]byte
}

// deriveTree rebuilds the tree whose leaves from a on are leaves. The
// compact range [0, a) comes from proofHashes, a verified RFC 6962
// inclusion proof of leaf a in a tree of size proofSize (> a): its left
// siblings are exactly the perfect subtrees covering [0, a).
func deriveTree(a, proofSize int64, proofHashes [][]byte, leaves [][]byte) (*derivedTree, error) {
	left, err := leftRange(a, proofSize, proofHashes)
	if err != nil {
		return nil, err
	}
	t := &derivedTree{size: a + int64(len(leaves)), nodes: map[compact.NodeID][]byte{}}
	ids := compact.RangeNodes(0, uint64(a), nil)
	for i, id := range ids {
		t.nodes[id] = left[i]
	}
	rng, err := rangeFactory.NewRange(0, uint64(a), left)
	if err != nil {
		return nil, err
	}
	visit := func(id compact.NodeID, h []byte) { t.nodes[id] = h }
	for _, l := range leaves {
		if err := rng.Append(l, visit); err != nil {
			return nil, err
		}
	}
	if t.root, err = rng.GetRootHash(nil); err != nil || t.root == nil {
		return nil, errors.New("empty tree")
	}
	return t, nil
}

// leftRange picks out of an inclusion proof of leaf a in a tree of size
// the hashes of the compact range [0, a), left to right.
func leftRange(a, size int64, hashes [][]byte) ([][]byte, error) {
	if a < 0 || a >= size {
		return nil, errors.New("leaf outside the tree")
	}
	n, err := proof.Inclusion(uint64(a), uint64(size))
	if err != nil {
		return nil, err
	}
	// The proof's hashes are its nodes' with the ephemeral block (nodes on
	// the tree's right border, never left of a) folded into one.
	_, begin, end := n.Ephem()
	want := len(n.IDs)
	if end > begin {
		want -= end - begin - 1
	}
	if len(hashes) != want {
		return nil, fmt.Errorf("proof of %d hashes, want %d", len(hashes), want)
	}
	byID := map[compact.NodeID][]byte{}
	for i, j := 0, 0; i < len(n.IDs); i, j = i+1, j+1 {
		if i >= begin && i < end {
			i = end - 1 // the folded block: not left of a
			continue
		}
		byID[n.IDs[i]] = hashes[j]
	}
	ids := compact.RangeNodes(0, uint64(a), nil)
	out := make([][]byte, len(ids))
	for i, id := range ids {
		if out[i] = byID[id]; len(out[i]) != 32 {
			return nil, errors.New("proof does not cover the tree left of the leaf")
		}
	}
	return out, nil
}

// inclusion is the RFC 6962 inclusion proof of leaf index in the tree.
func (t *derivedTree) inclusion(index int64) ([][]byte, error) {
	n, err := proof.Inclusion(uint64(index), uint64(t.size))
	if err != nil {
		return nil, err
	}
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, ok := t.nodes[id]
		if !ok {
			return nil, fmt.Errorf("no hash for node %d/%d", id.Level, id.Index)
		}
		hs[i] = h
	}
	return n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
}
