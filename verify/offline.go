package verify

import (
	"bytes"
	"context"
	"fmt"
	"sort"
)

// storedLabel names the stored checkpoint in offline evidence.
const storedLabel = "stored signed tree head"

// offlineChecks is what can be checked of the batch's checkpoints without
// the log: two signed tree heads of the same origin and size must have the
// same root, among the bundles of the batch and against the stored
// checkpoint. A contradiction is a *SecurityError (every pending package
// fails with it), found in a deterministic order: by tree size, the stored
// checkpoint first at its size, then by root.
//
// Checkpoints of different sizes cannot be proven consistent without a
// consistency proof, which only the log serves: offline, a bundle whose
// tree is smaller than the stored one (an older proof) or larger (a newer
// one) passes. A fork at any size other than the stored one and the
// batch's own is therefore not detected offline (docs/SECURITY.md).
//
// The stored checkpoint is read, never written: an unusable one (the file
// is corrupt, or does not verify under the pinned log key) fails the run
// as it does online.
func (r *run) offlineChecks(ctx context.Context) error {
	stored, err := r.storedCheckpoints(ctx)
	if err != nil {
		return r.failPending(err)
	}
	heads := r.offlineHeads(stored)
	for a := 0; a < len(heads); a++ {
		for b := a + 1; b < len(heads); b++ {
			x, y := heads[a].cp, heads[b].cp
			if x.Origin != y.Origin || x.Size != y.Size {
				break
			}
			if bytes.Equal(x.Root, y.Root) {
				continue
			}
			what := "two proof bundles' checkpoints"
			if heads[a].label == storedLabel {
				what = "a proof bundle's checkpoint and the stored checkpoint"
			}
			return r.failPending(&SecurityError{
				Reason:   fmt.Sprintf("%s have the same tree size %d but different roots (offline: found without asking the log)", what, x.Size),
				Old:      x.Text,
				New:      y.Text,
				OldLabel: heads[a].label,
				NewLabel: heads[b].label,
			})
		}
	}
	return nil
}

type head struct {
	cp    *Checkpoint
	label string
}

// offlineHeads lists the stored checkpoint and each distinct checkpoint of
// the pending packages' proofs, labelled for the evidence, ordered by
// origin, size (the stored one first at its size) and root.
func (r *run) offlineHeads(stored []*Checkpoint) []head {
	var heads []head
	for _, s := range stored {
		heads = append(heads, head{s, storedLabel})
	}
	seen := map[string]bool{}
	for _, p := range r.pkgs {
		if !p.pending {
			continue
		}
		c := p.proof.Checkpoint
		if k := headKey(c); !seen[k] {
			seen[k] = true
			heads = append(heads, head{c, "signed tree head in the proof bundle of " + p.res.Artifact.Filename})
		}
	}
	// Stable: the stored head (appended first) stays first at its size.
	sort.SliceStable(heads, func(a, b int) bool {
		x, y := heads[a].cp, heads[b].cp
		if x.Origin != y.Origin {
			return x.Origin < y.Origin
		}
		if x.Size != y.Size {
			return x.Size < y.Size
		}
		if (heads[a].label == storedLabel) != (heads[b].label == storedLabel) {
			return heads[a].label == storedLabel
		}
		return bytes.Compare(x.Root, y.Root) < 0
	})
	return heads
}

// storedCheckpoints is the stored checkpoint, or, for a log with Shards
// (when a LogClient is given offline), the stored checkpoint of each shard
// the pending packages' proofs came from.
func (r *run) storedCheckpoints(ctx context.Context) ([]*Checkpoint, error) {
	stores := []CheckpointStore{r.v.store}
	if sh, ok := r.v.log.(Shards); ok {
		stores = nil
		seen := map[string]bool{}
		for _, p := range r.pkgs {
			if o := p.proof; p.pending && o != nil && !seen[o.Checkpoint.Origin] {
				seen[o.Checkpoint.Origin] = true
				if _, st, ok := sh.Shard(o.Checkpoint.Origin); ok {
					stores = append(stores, st)
				}
			}
		}
	}
	var out []*Checkpoint
	for _, st := range stores {
		cp, err := r.storedCheckpoint(ctx, st)
		if err != nil {
			return nil, err
		}
		if cp != nil {
			out = append(out, cp)
		}
	}
	return out, nil
}
