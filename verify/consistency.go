package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"
)

// Consistency proves a set of earlier checkpoints of one log consistent
// with its current checkpoint: the one place that does it, for the engine,
// the signer's settle, the monitor and doctor.
//
// Add the checkpoints (each already verified under the pinned log key);
// Prove dedupes them by (origin, size, root), checks first those that
// need no proof (another origin, a larger tree, the same size: no request
// is made when one fails), then fetches one consistency proof per distinct
// smaller size, concurrently, and checks them. Checks run in the order the checkpoints were added (the
// first one added of equal tree heads names it), so the verdict does not
// depend on timing: the first *SecurityError in that order is the result.
// The zero value is ready to use; it is not safe for concurrent Adds.
type Consistency struct {
	checks []consistencyCheck
	seen   map[string]bool
}

type consistencyCheck struct {
	old  *Checkpoint
	what string
}

// Add queues old, described by what in errors ("the stored checkpoint").
func (c *Consistency) Add(old *Checkpoint, what string) {
	if old == nil {
		return
	}
	k := headKey(old)
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	c.checks = append(c.checks, consistencyCheck{old, what})
}

// Len is the number of distinct checkpoints queued.
func (c *Consistency) Len() int { return len(c.checks) }

// headKey identifies a tree head: origin, size and root.
func headKey(cp *Checkpoint) string { return fmt.Sprintf("%s\n%d\n%x", cp.Origin, cp.Size, cp.Root) }

// needsProof: a consistency proof is fetched only between two sizes of the
// same tree; every other case is decided by CheckConsistency alone.
func needsProof(old, cur *Checkpoint) bool {
	return old.Origin == cur.Origin && old.Size > 0 && old.Size < cur.Size
}

// Prove checks every queued checkpoint against cur, the log's current
// verified checkpoint, fetching the consistency proofs it needs from log
// (at most concurrency at a time, at least one). It returns nil when all
// are consistent, the first *SecurityError in the order of Add when one is
// not, and otherwise a *LogUnavailableError: a failed proof request
// cancels the others, and the proofs that did arrive are still checked (a
// contradiction outweighs an unreachable log).
func (c *Consistency) Prove(ctx context.Context, log LogClient, cur *Checkpoint, concurrency int) error {
	for _, ck := range c.checks {
		if !needsProof(ck.old, cur) {
			if err := CheckConsistency(ck.old, cur, nil, ck.what); err != nil {
				return err
			}
		}
	}
	proofs, fetchErr := c.fetch(ctx, log, cur, max(concurrency, 1))
	for _, ck := range c.checks {
		if !needsProof(ck.old, cur) {
			continue
		}
		p, ok := proofs[ck.old.Size]
		if !ok {
			continue // not fetched: fetchErr says why
		}
		if err := CheckConsistency(ck.old, cur, p, ck.what); err != nil {
			return err
		}
	}
	return fetchErr
}

// fetch asks log for one proof per distinct old size that needs one; the
// first failure cancels the others and is returned as a
// *LogUnavailableError with the proofs that arrived.
func (c *Consistency) fetch(ctx context.Context, log LogClient, cur *Checkpoint, concurrency int) (map[int64][][]byte, error) {
	var sizes []int64
	want := map[int64]bool{}
	for _, ck := range c.checks {
		if needsProof(ck.old, cur) && !want[ck.old.Size] {
			want[ck.old.Size] = true
			sizes = append(sizes, ck.old.Size)
		}
	}
	if len(sizes) == 0 {
		return nil, nil
	}
	if log == nil {
		return nil, &LogUnavailableError{Op: "consistency proofs", Err: errors.New("no log client")}
	}
	got := make([][][]byte, len(sizes))
	ok := make([]bool, len(sizes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for j, size := range sizes {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			p, err := log.ConsistencyProof(gctx, size, cur.Size)
			if err != nil {
				return &LogUnavailableError{Op: fmt.Sprintf("consistency proof %d→%d", size, cur.Size), Err: err}
			}
			got[j], ok[j] = p, true
			return nil
		})
	}
	err := g.Wait()
	if err != nil {
		var lu *LogUnavailableError
		if !errors.As(err, &lu) {
			// ctx ended before the first request failed.
			err = &LogUnavailableError{Op: "consistency proofs", Err: err}
		}
	}
	m := make(map[int64][][]byte, len(sizes))
	for j, size := range sizes {
		if ok[j] {
			m[size] = got[j]
		}
	}
	return m, err
}

// CheckConsistency proves that the verified checkpoint old is an earlier
// (or the same) state of the log whose verified current checkpoint is cur:
// same origin, old.Size <= cur.Size, equal roots at equal size, otherwise p
// must be a valid RFC 6962 consistency proof from old to cur (at most
// MaxProofHashes hashes). Any failure is a *SecurityError carrying both
// notes; what names old in its Reason ("the stored checkpoint").
func CheckConsistency(old, cur *Checkpoint, p [][]byte, what string) error {
	if what == "" {
		what = "the earlier checkpoint"
	}
	if old.Origin != cur.Origin {
		return &SecurityError{Reason: fmt.Sprintf("%s has origin %q, the current one %q", what, old.Origin, cur.Origin), Old: old.Text, New: cur.Text}
	}
	switch {
	case old.Size > cur.Size:
		return &SecurityError{Reason: fmt.Sprintf("ROLLBACK: %s has tree size %d, the current checkpoint only %d", what, old.Size, cur.Size), Old: old.Text, New: cur.Text}
	case old.Size == cur.Size:
		if !bytes.Equal(old.Root, cur.Root) {
			return &SecurityError{Reason: fmt.Sprintf("%s and the current checkpoint have the same tree size %d but different roots", what, old.Size), Old: old.Text, New: cur.Text}
		}
		return nil
	}
	var err error
	if len(p) > MaxProofHashes {
		err = fmt.Errorf("consistency proof of %d hashes, at most %d accepted", len(p), MaxProofHashes)
	} else {
		err = proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(cur.Size), p, old.Root, cur.Root)
	}
	if err != nil {
		return &SecurityError{Reason: fmt.Sprintf("%s (tree size %d) is not consistent with the current checkpoint (tree size %d)", what, old.Size, cur.Size), Old: old.Text, New: cur.Text, Err: err}
	}
	return nil
}

// ProveConsistent is a Consistency of one checkpoint: it checks that cur,
// the log's current verified checkpoint, extends old.
func ProveConsistent(ctx context.Context, log LogClient, old, cur *Checkpoint, what string) error {
	var c Consistency
	c.Add(old, what)
	return c.Prove(ctx, log, cur, 1)
}
