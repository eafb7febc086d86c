package signer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/verify"
)

// maxDerivedLeaves bounds the tree range a derivation may hash.
const maxDerivedLeaves = 1 << 20

// deriveFresh computes, without asking the log for proofs, each item's
// inclusion proof at the newest tree head among the items' own bundles
// (the last upload answers of the run): RFC 6962 needs only the hashes of
// the leaves after the first item, which are the run's own entries (their
// leaf hashes are known) plus entries of other writers in between
// (fetched by index, only their bodies used), and the left siblings of the
// first item's published proof (the subtrees covering the tree before it).
// Every derived entry must verify in full (verify.VerifyEntry) against that
// signed tree head; only then are the items' fresh entries set.
//
// It reports whether it set them. It does nothing and returns false when
// the items do not lie in one tree, when other writers' entries outnumber
// the items (fetching the items' own entries costs less), or when anything
// does not add up; the caller then fetches every entry.
func (s *Signer) deriveFresh(ctx context.Context, items []*settleItem) bool {
	if len(items) == 0 {
		return false
	}
	// The tree: every item's proof in the same tree (origin), the same
	// offset between global and tree-local index.
	hi, first := items[0], items[0]
	offset := items[0].e.LogIndex - items[0].e.Verification.InclusionProof.LogIndex
	var origin string
	for _, it := range items {
		p := it.e.Verification.InclusionProof
		cp, err := verify.ParseCheckpoint([]byte(p.Checkpoint))
		if err != nil || it.e.LogIndex-p.LogIndex != offset {
			return false
		}
		if origin == "" {
			origin = cp.Origin
		}
		if cp.Origin != origin {
			return false
		}
		if p.TreeSize > hi.e.Verification.InclusionProof.TreeSize {
			hi = it
		}
		if p.LogIndex < first.e.Verification.InclusionProof.LogIndex {
			first = it
		}
	}
	head, err := s.o.LogKey.VerifyCheckpoint([]byte(hi.e.Verification.InclusionProof.Checkpoint))
	if err != nil {
		return false
	}
	a, size := first.e.Verification.InclusionProof.LogIndex, head.Size
	if size-a > maxDerivedLeaves {
		return false
	}

	// Leaf hashes of [a, size): the items', then the others'.
	leaves := make([][]byte, size-a)
	for _, it := range items {
		leaves[it.e.Verification.InclusionProof.LogIndex-a] = leafHash(it.e.Body)
	}
	var unknown []int64
	for i, l := range leaves {
		if l == nil {
			unknown = append(unknown, a+int64(i)+offset)
		}
	}
	if len(unknown) > len(items) {
		return false
	}
	if len(unknown) > 0 {
		others, err := s.fetchBodies(ctx, unknown)
		if err != nil {
			return false
		}
		for _, gi := range unknown {
			leaves[gi-offset-a] = leafHash(others[gi])
		}
	}

	// The subtrees left of the first item: the left siblings on its path.
	fp := first.e.Verification.InclusionProof
	frontier, err := leftSiblings(fp.LogIndex, fp.TreeSize, fp.Hashes)
	if err != nil {
		return false
	}
	t := &derivedTree{a: a, leaves: leaves, frontier: frontier, memo: map[[2]int64][]byte{}}
	root, err := t.mth(0, size)
	if err != nil || !bytes.Equal(root, head.Root) {
		return false
	}

	fresh := make([]*verify.LogEntry, len(items))
	cps := make([]*verify.Checkpoint, len(items))
	for i, it := range items {
		p := it.e.Verification.InclusionProof
		path, err := t.path(p.LogIndex, 0, size)
		if err != nil {
			return false
		}
		hs := make([]string, len(path))
		for j, h := range path {
			hs[j] = hex.EncodeToString(h)
		}
		f := *it.e
		f.Verification = &verify.Verification{
			InclusionProof: &verify.InclusionProof{LogIndex: p.LogIndex, RootHash: hex.EncodeToString(root), TreeSize: size,
				Hashes: hs, Checkpoint: hi.e.Verification.InclusionProof.Checkpoint},
			SignedEntryTimestamp: it.e.Verification.SignedEntryTimestamp,
		}
		fresh[i] = &f
	}
	var g errgroup.Group
	g.SetLimit(s.o.Jobs)
	for i, it := range items {
		g.Go(func() error {
			cp, err := verify.VerifyEntry(fresh[i], it.t, []verify.PublicKey{s.o.PublicKey}, it.sha, it.filename, s.o.LogKey)
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
	parts := make([]map[int64]*verify.LogEntry, (len(indexes)+settleBatch-1)/settleBatch)
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

// leftSiblings walks an RFC 6962 inclusion proof of leaf index in a tree
// of size (RFC 9162, 2.1.3.2) and returns its left siblings by the start
// of the subtree each covers: together the perfect subtrees covering
// [0, index). The caller has verified the proof.
func leftSiblings(index, size int64, hashes []string) (map[int64][]byte, error) {
	if index < 0 || index >= size {
		return nil, errors.New("leaf outside the tree")
	}
	out := map[int64][]byte{}
	fn, sn := uint64(index), uint64(size-1)
	level, covered := 0, int64(0)
	for _, ph := range hashes {
		if sn == 0 {
			return nil, errors.New("proof longer than the path")
		}
		if fn&1 == 1 || fn == sn {
			for fn&1 == 0 { // the last node of its level is promoted
				fn, sn, level = fn>>1, sn>>1, level+1
			}
			p, err := hex.DecodeString(ph)
			if err != nil || len(p) != 32 {
				return nil, errors.New("malformed proof hash")
			}
			out[int64(fn-1)<<level] = p
			covered += 1 << level
		}
		fn, sn, level = fn>>1, sn>>1, level+1
	}
	if sn != 0 || covered != index {
		return nil, errors.New("proof does not cover the tree left of the leaf")
	}
	return out, nil
}

// derivedTree computes RFC 6962 hashes over leaves [a, len) given the
// perfect subtrees covering [0, a).
type derivedTree struct {
	a        int64
	leaves   [][]byte         // leaf hashes of [a, a+len(leaves))
	frontier map[int64][]byte // subtree hashes covering [0, a), by start
	memo     map[[2]int64][]byte
}

// mth is the Merkle tree hash of leaves [start, end).
func (t *derivedTree) mth(start, end int64) ([]byte, error) {
	n := end - start
	switch {
	case n <= 0:
		return nil, errors.New("empty range")
	case end <= t.a:
		// A maximal perfect subtree left of a (see deriveFresh).
		h, ok := t.frontier[start]
		if !ok || n&(n-1) != 0 || start%n != 0 {
			return nil, fmt.Errorf("no subtree [%d, %d) left of %d", start, end, t.a)
		}
		return h, nil
	case n == 1:
		return t.leaves[start-t.a], nil
	}
	key := [2]int64{start, end}
	if h, ok := t.memo[key]; ok {
		return h, nil
	}
	k := split(n)
	l, err := t.mth(start, start+k)
	if err != nil {
		return nil, err
	}
	r, err := t.mth(start+k, end)
	if err != nil {
		return nil, err
	}
	h := rfc6962.DefaultHasher.HashChildren(l, r)
	t.memo[key] = h
	return h, nil
}

// path is RFC 6962's PATH(m, D[start:end]): the inclusion proof of leaf m,
// leaf level first.
func (t *derivedTree) path(m, start, end int64) ([][]byte, error) {
	n := end - start
	if n == 1 {
		return nil, nil
	}
	k := split(n)
	var sub [][]byte
	var sib []byte
	var err error
	if m < start+k {
		if sub, err = t.path(m, start, start+k); err == nil {
			sib, err = t.mth(start+k, end)
		}
	} else {
		if sub, err = t.path(m, start+k, end); err == nil {
			sib, err = t.mth(start, start+k)
		}
	}
	if err != nil {
		return nil, err
	}
	return append(sub, sib), nil
}

// split is the largest power of two smaller than n (n > 1).
func split(n int64) int64 { return 1 << (bits.Len64(uint64(n-1)) - 1) }
