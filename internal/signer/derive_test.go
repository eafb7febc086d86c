package signer

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// The derived root and inclusion proofs equal a real RFC 6962 tree's, for
// every tree size up to 70, every first leaf a, and the compact range left
// of a taken from a proof of leaf a at every size between a+1 and the final
// size.
func TestDerivedTreeMatchesRFC6962(t *testing.T) {
	const maxSize = 70
	tree := testonly.New(rfc6962.DefaultHasher)
	var leaves [][]byte
	for i := range maxSize {
		d := []byte(fmt.Sprintf("leaf %d", i))
		tree.AppendData(d)
		leaves = append(leaves, rfc6962.DefaultHasher.HashLeaf(d))
	}
	for size := int64(1); size <= maxSize; size++ {
		for a := int64(0); a < size; a++ {
			for sa := a + 1; sa <= size; sa += max(1, (size-a)/4) {
				p, err := tree.InclusionProof(uint64(a), uint64(sa))
				if err != nil {
					t.Fatal(err)
				}
				dt, err := deriveTree(a, sa, p, leaves[a:size])
				if err != nil || !bytes.Equal(dt.root, tree.HashAt(uint64(size))) {
					t.Fatalf("size %d a %d sa %d: root %v, %v", size, a, sa, dt, err)
				}
				for i := a; i < size; i++ {
					got, err := dt.inclusion(i)
					want, _ := tree.InclusionProof(uint64(i), uint64(size))
					if err != nil || len(got) != len(want) {
						t.Fatalf("size %d a %d leaf %d: %d hashes, want %d (%v)", size, a, i, len(got), len(want), err)
					}
					for j := range got {
						if !bytes.Equal(got[j], want[j]) {
							t.Fatalf("size %d a %d leaf %d: hash %d differs", size, a, i, j)
						}
					}
				}
			}
		}
	}
}

// A proof that does not cover the tree left of its leaf is refused.
func TestLeftRangeRefusesShortProofs(t *testing.T) {
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range 13 {
		tree.AppendData([]byte{byte(i)})
	}
	hs, _ := tree.InclusionProof(9, 13)
	for name, c := range map[string]struct {
		index, size int64
		hs          [][]byte
	}{
		"truncated":   {9, 13, hs[:len(hs)-1]},
		"extra":       {9, 13, append(append([][]byte(nil), hs...), hs[0])},
		"bad hash":    {9, 13, append([][]byte{{1, 2}}, hs[1:]...)},
		"out of tree": {13, 13, hs},
	} {
		if _, err := leftRange(c.index, c.size, c.hs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
