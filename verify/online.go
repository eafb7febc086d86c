package verify

import (
	"bytes"
	"context"
	"fmt"
	"sort"
)

// online runs the batch-wide checks against the log's current tree: the
// current checkpoint, fetched after every entry (and, with a witness
// policy, its quorum); every checkpoint an inclusion was proven in, and the
// stored one, proven consistent with it (Consistency: one proof per
// distinct tree size); then the current checkpoint is stored. No entry is
// fetched: a proof's inclusion at its checkpoint and that checkpoint's
// consistency with the current one prove the entry is in the current tree.
func (r *run) online(ctx context.Context) error {
	if !r.anyPending() {
		return nil
	}
	if sh, ok := r.v.log.(Shards); ok {
		return r.onlineShards(ctx, sh)
	}
	return r.onlineLog(ctx, r.v.log, r.v.store, r.proofCheckpoints(""))
}

// onlineLog runs the online checks of one log (or shard): its current
// checkpoint (with the witness quorum), the stored one and the proofs'
// checkpoints cps proven consistent with it, then the current one stored.
// A failure fails every pending package.
func (r *run) onlineLog(ctx context.Context, log LogClient, store CheckpointStore, cps []*Checkpoint) error {
	cur, err := r.currentCheckpoint(ctx, log)
	if err != nil {
		return r.failPending(err)
	}
	stored, err := r.storedCheckpoint(ctx, store)
	if err != nil {
		return r.failPending(err)
	}
	var c Consistency
	for _, cp := range cps {
		c.Add(cp, "a checkpoint of an entry's inclusion proof")
	}
	if stored != nil {
		c.Add(stored, "the stored checkpoint")
	}
	if err := c.Prove(ctx, log, cur, r.v.p.Concurrency); err != nil {
		return r.failPending(err)
	}
	if store != nil && (stored == nil || cur.Size > stored.Size) {
		if err := store.Store(ctx, cur.Text); err != nil {
			return fmt.Errorf("store checkpoint: %w", err)
		}
	}
	return nil
}

// onlineShards runs onlineLog once per shard the pending packages' proofs
// came from, in order of origin, each against that shard's current
// checkpoint and store.
func (r *run) onlineShards(ctx context.Context, sh Shards) error {
	origins := map[string]bool{}
	for _, p := range r.pkgs {
		if p.pending {
			origins[p.proof.Checkpoint.Origin] = true
		}
	}
	sorted := make([]string, 0, len(origins))
	for o := range origins {
		sorted = append(sorted, o)
	}
	sort.Strings(sorted)
	for _, o := range sorted {
		log, store, ok := sh.Shard(o)
		if !ok || log == nil {
			return r.failPending(&CheckpointError{Reason: "no configured shard of the log has this origin", Origin: o})
		}
		if err := r.onlineLog(ctx, log, store, r.proofCheckpoints(o)); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) anyPending() bool {
	for _, p := range r.pkgs {
		if p.pending {
			return true
		}
	}
	return false
}

// currentCheckpoint fetches the log's checkpoint and verifies it: the log's
// signature and origin, and the witness quorum when a policy sets one. A
// checkpoint that does not verify is no view of this log: the log is
// unavailable.
func (r *run) currentCheckpoint(ctx context.Context, log LogClient) (*Checkpoint, error) {
	text, err := log.Checkpoint(ctx)
	if err != nil {
		return nil, &LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	return CurrentCheckpoint(r.v.p.Log, r.v.p.Witnesses, text)
}

// CurrentCheckpoint verifies text, a log's current checkpoint as fetched
// with its cosignatures, as an online run does: the log's signature and
// origin (log), then the witness quorum w when it is not nil. The error is
// a *LogUnavailableError: a checkpoint that does not verify, or that
// misses the quorum (a *CheckpointError wrapping the Witnesses' error), is
// no usable view of the log. Monitors tailing a log call it too.
func CurrentCheckpoint(log LogVerifier, w Witnesses, text []byte) (*Checkpoint, error) {
	cur, err := log.VerifyCheckpoint(text)
	if err != nil {
		return nil, &LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	if w != nil {
		if err := w.CheckCosignatures(cur.Text); err != nil {
			return nil, &LogUnavailableError{Op: "current checkpoint",
				Err: &CheckpointError{Reason: "not cosigned by the witness quorum", Origin: cur.Origin, Size: cur.Size, Err: err}}
		}
	}
	return cur, nil
}

// storedCheckpoint loads and verifies the persisted checkpoint (nil when
// there is none, or no store). One that does not verify under the pinned
// log fails the run: it is never skipped.
func (r *run) storedCheckpoint(ctx context.Context, store CheckpointStore) (*Checkpoint, error) {
	if store == nil {
		return nil, nil
	}
	text, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load stored checkpoint: %w", err)
	}
	if len(text) == 0 {
		return nil, nil
	}
	cp, err := r.v.p.Log.VerifyCheckpoint(text)
	if err != nil {
		return nil, fmt.Errorf("stored checkpoint does not verify under the pinned log key (state corrupted or log key changed): %w", err)
	}
	return cp, nil
}

// proofCheckpoints returns the distinct checkpoints the pending packages'
// inclusions were proven in, smallest tree first (then by root, origin):
// the order of the consistency checks, whatever the order of the batch.
func (r *run) proofCheckpoints(origin string) []*Checkpoint {
	seen := map[string]*Checkpoint{}
	for _, p := range r.pkgs {
		if p.pending && (origin == "" || p.proof.Checkpoint.Origin == origin) {
			seen[headKey(p.proof.Checkpoint)] = p.proof.Checkpoint
		}
	}
	cps := make([]*Checkpoint, 0, len(seen))
	for _, c := range seen {
		cps = append(cps, c)
	}
	sort.Slice(cps, func(a, b int) bool {
		if cps[a].Size != cps[b].Size {
			return cps[a].Size < cps[b].Size
		}
		if c := bytes.Compare(cps[a].Root, cps[b].Root); c != 0 {
			return c < 0
		}
		return cps[a].Origin < cps[b].Origin
	})
	return cps
}
