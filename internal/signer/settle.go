package signer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

// Settling bounds.
const (
	// settleBatch is the number of log indexes per EntriesByIndex call:
	// what one Rekor request may ask for (the server handles the indexes
	// of a request one after another), so Options.Jobs calls in flight are
	// Jobs requests in flight.
	settleBatch = 10
	// settleRounds bounds how often entries are re-fetched when the tree
	// grew during the settle (another writer is logging): each round
	// re-fetches the entries whose fresh proof is at an older tree size.
	settleRounds = 3
	// settleProofs bounds the consistency proofs in flight.
	settleProofs = 4
)

// settleItem is one bundle published (or, with RefreshBundles, found
// published) in this run, to be re-proven against the log's newest tree.
type settleItem struct {
	repo, arch, filename, sha string
	t                         []byte
	e                         *rekorv1.Entry // as published (verified)
	// Results of the settle.
	fresh   *rekorv1.Entry     // the re-fetched entry, verified in full
	freshCP *verify.Checkpoint // its checkpoint
	bad     error              // the log contradicts the published entry
	unavail error              // the log could not be asked
}

// addSettle queues a published bundle for the settle phase.
func (s *Signer) addSettle(it *settleItem) {
	s.settleMu.Lock()
	s.toSettle = append(s.toSettle, it)
	s.settleMu.Unlock()
}

// settle re-proves every queued bundle at one tree head (derived, see
// deriveFresh, or fetched) and rewrites it with the fresh proof, so that
// one run's bundles share one checkpoint; it proves the log's current
// checkpoint consistent with the one stored by the previous run (and with
// the oldest and newest checkpoint of this run's upload answers) and
// stores it.
//
// A published bundle is never removed or made invalid: a bundle is
// replaced (atomically) only by a fresh entry for the same log entry that
// verified in full, and only after the consistency proofs passed. The log
// being unreachable leaves the bundles as they are (sum.SettleError); a
// fresh entry that contradicts the published one is a StageSettle Failure;
// an inconsistent log is a returned *verify.SecurityError, and then nothing
// is rewritten or stored.
func (s *Signer) settle(ctx context.Context, items []*settleItem, sum *Summary) error {
	items = settleOrder(items)
	if len(items) == 0 {
		return nil
	}
	// 1. Fresh entries, derived or fetched.
	s.refreshEntries(ctx, items, sum)
	settled := settledItems(items, sum)
	// 2. The log's current checkpoint, fetched after every entry, and the
	// consistency of every checkpoint that matters with it (even when no
	// fresh entry verified: a log that lies about entries may fork too).
	stored, cur, err := s.settleCheckpoints(ctx, items, settled)
	var sec *verify.SecurityError
	if errors.As(err, &sec) {
		sum.SettleFailed = len(items)
		return err
	}
	if err != nil {
		sum.warnSettle(err)
		sum.SettleFailed = len(items)
		return nil
	}
	// 3. The bundles, rewritten.
	s.rewriteBundles(settled, sum)
	sum.SettleFailed += len(items) - len(settled)
	// 4. Remember the newest consistent tree head.
	if stored == nil || cur.Size > stored.Size {
		if err := s.state.storeCheckpoint(cur.Text); err != nil {
			// The next run proves consistency from the older one: sound.
			sum.warnSettle(fmt.Errorf("storing the log's checkpoint: %w", err))
		}
	}
	sum.Checkpoint = &CheckpointSummary{Origin: cur.Origin, Size: cur.Size, Root: fmt.Sprintf("%x", cur.Root)}
	return nil
}

// warnSettle records the first error that left bundles unsettled.
func (sum *Summary) warnSettle(err error) {
	if sum.SettleError == "" {
		sum.SettleError = err.Error()
	}
}

// settleOrder keeps one item per file (with RefreshBundles, an intent
// recovered in this run is also found published), in log index order.
func settleOrder(items []*settleItem) []*settleItem {
	seenFile := map[string]bool{}
	items = slices.DeleteFunc(items, func(it *settleItem) bool {
		dup := seenFile[it.filename]
		seenFile[it.filename] = true
		return dup
	})
	slices.SortFunc(items, func(a, b *settleItem) int { return cmp.Compare(a.e.LogIndex, b.e.LogIndex) })
	return items
}

// refreshEntries sets each item's fresh entry: derived from what the run
// knows (the newest tree head of its upload answers, its own leaves), or
// else fetched, in rounds while the tree grows under us.
func (s *Signer) refreshEntries(ctx context.Context, items []*settleItem, sum *Summary) {
	pending := items
	sum.SettleMode = "fetched"
	if !s.o.RefreshBundles && s.deriveFresh(ctx, items) {
		pending, sum.SettleMode = nil, "derived"
	}
	for round := 0; round < settleRounds && len(pending) > 0; round++ {
		s.fetchFresh(ctx, pending)
		var newest *verify.Checkpoint
		for _, it := range items {
			if it.freshCP != nil && (newest == nil || it.freshCP.Size > newest.Size) {
				newest = it.freshCP
			}
		}
		pending = nil
		for _, it := range items {
			if it.freshCP != nil && newest != nil && it.freshCP.Size < newest.Size {
				pending = append(pending, it)
			}
		}
	}
}

// settledItems returns the items whose fresh entry verified; the others
// are failures (the log contradicts the bundle) or warnings (the log
// could not be asked).
func settledItems(items []*settleItem, sum *Summary) []*settleItem {
	var settled []*settleItem
	for _, it := range items {
		switch {
		case it.bad != nil:
			sum.Failures = append(sum.Failures, Failure{Repo: it.repo, Arch: it.arch, Filename: it.filename, Stage: StageSettle,
				Error: "published, but the log contradicts its bundle (the bundle from the upload stays): " + it.bad.Error(), Err: it.bad})
		case it.freshCP == nil:
			sum.warnSettle(it.unavail)
		default:
			settled = append(settled, it)
		}
	}
	return settled
}

// settleCheckpoints loads the stored checkpoint, fetches the log's
// current one and proves it consistent with every checkpoint that matters
// (proveConsistent).
func (s *Signer) settleCheckpoints(ctx context.Context, items, settled []*settleItem) (stored, cur *verify.Checkpoint, err error) {
	if stored, err = s.state.loadCheckpoint(s.o.LogKey); err != nil {
		return nil, nil, err
	}
	if cur, err = s.currentCheckpoint(ctx); err != nil {
		return nil, nil, err
	}
	return stored, cur, s.proveConsistent(ctx, stored, items, settled, cur)
}

// rewriteBundles writes the settled items' fresh entries as their bundles,
// one checkpoint note per tree head: Rekor signs the checkpoint anew on
// every read (random ECDSA nonces), and every note here verified, so any
// of them can stand for its tree head. Temp files in parallel, one sync
// for the batch, then the renames: a crash leaves the old bundle or the
// new one (both valid) and at most temp files, removed by the next run.
// It counts sum.Settled, the failed writes in sum.SettleFailed, and
// sum.BundleCheckpoints.
func (s *Signer) rewriteBundles(settled []*settleItem, sum *Summary) {
	notes := map[string][]byte{}
	for _, it := range settled {
		k := headKey(it.freshCP)
		if _, ok := notes[k]; !ok {
			notes[k] = it.fresh.Proof.Checkpoint
		}
		it.fresh.Proof.Checkpoint = notes[k]
	}
	// Temp files in parallel, one sync for the batch, then the renames: a
	// crash leaves the old bundle or the new one (both valid) and at most
	// temp files, removed by the next run.
	batch := s.bundleBatch()
	refs := make([]bundleRef, len(settled)) // each item's file in the batch
	errs := make([]error, len(settled))
	var g errgroup.Group
	g.SetLimit(s.o.Jobs)
	for i, it := range settled {
		refs[i] = noBundle
		if bytes.Equal(it.e.Proof.Checkpoint, it.fresh.Proof.Checkpoint) {
			continue // already carries that very note
		}
		g.Go(func() error {
			b, err := s.prepareBundle(it)
			if err == nil {
				refs[i], err = batch.add(it.filename, b)
			}
			errs[i] = err
			return nil
		})
	}
	g.Wait()
	written := batch.commit(sum)
	for i, it := range settled {
		if errs[i] == nil {
			errs[i] = written(refs[i])
		}
		if errs[i] != nil {
			sum.warnSettle(fmt.Errorf("%s: %w", it.filename, errs[i]))
			sum.SettleFailed++
			settled[i] = nil
		}
	}
	heads := map[string]bool{}
	for _, it := range settled {
		if it != nil {
			sum.Settled++
			heads[headKey(it.freshCP)] = true
		}
	}
	sum.BundleCheckpoints = len(heads)
}

// headKey identifies a tree head (origin, size, root, extension lines).
func headKey(c *verify.Checkpoint) string {
	return fmt.Sprintf("%s\n%d\n%x\n%q", c.Origin, c.Size, c.Root, c.Extra)
}

// fetchFresh re-fetches items by log index in parallel batches and
// verifies each answer: it must be the published entry (body, indexes, log
// id, integrated time: what its SET signs) and verify in full
// (rekorv1.VerifyEntry). A log error leaves an item's earlier fresh entry,
// if any, in place.
func (s *Signer) fetchFresh(ctx context.Context, items []*settleItem) {
	var g errgroup.Group
	g.SetLimit(s.o.Jobs)
	for lo := 0; lo < len(items); lo += settleBatch {
		chunk := items[lo:min(lo+settleBatch, len(items))]
		g.Go(func() error {
			idx := make([]int64, len(chunk))
			for i, it := range chunk {
				idx[i] = it.e.LogIndex
			}
			m, err := s.o.Log.EntriesByIndex(ctx, idx)
			if err != nil {
				lu := &verify.LogUnavailableError{Op: fmt.Sprintf("entries by index (%d)", len(idx)), Err: err}
				for _, it := range chunk {
					it.unavail = lu
				}
				return nil
			}
			for _, it := range chunk {
				it.check(m[it.e.LogIndex], s)
			}
			return nil
		})
	}
	g.Wait()
}

// check verifies the fresh entry f for the item.
func (it *settleItem) check(f *rekorv1.Entry, s *Signer) {
	if f == nil {
		it.bad = fmt.Errorf("the log returned no entry at index %d, which it proved to hold (entry %s)", it.e.LogIndex, it.e.UUID)
		return
	}
	if err := rekorv1.SameEntry(f, it.e); err != nil {
		it.bad = fmt.Errorf("fresh entry at log index %d: %w", it.e.LogIndex, err)
		return
	}
	cp, err := rekorv1.VerifyEntry(f, it.t, []verify.PublicKey{s.o.PublicKey}, it.sha, it.filename, s.o.LogKey)
	if err != nil {
		it.bad = fmt.Errorf("fresh entry at log index %d does not verify: %w", it.e.LogIndex, err)
		return
	}
	it.fresh, it.freshCP, it.unavail = f, cp, nil
}

// currentCheckpoint fetches and verifies the log's checkpoint.
func (s *Signer) currentCheckpoint(ctx context.Context) (*verify.Checkpoint, error) {
	text, err := s.o.Log.Checkpoint(ctx)
	if err != nil {
		return nil, &verify.LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	cp, err := s.o.LogKey.VerifyCheckpoint(text)
	if err != nil {
		// A note the pinned key did not sign: not a view of this log.
		return nil, &verify.LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	return cp, nil
}

// proveConsistent proves cur consistent with the checkpoint stored by the
// previous run, with the oldest and the newest checkpoint of this run's
// upload answers and with every tree head the fresh entries were proven
// against (verify.Consistency, in that order). It returns a
// *verify.SecurityError when the log contradicts itself, a
// *verify.LogUnavailableError when it could not be asked.
func (s *Signer) proveConsistent(ctx context.Context, stored *verify.Checkpoint, items, settled []*settleItem, cur *verify.Checkpoint) error {
	var c verify.Consistency
	c.Add(stored, "the checkpoint this signer stored in "+s.state.checkpointPath())
	// This run's upload answers (each verified when published): the oldest
	// and the newest tree head.
	lo, hi := items[0], items[0]
	for _, it := range items {
		if it.e.Proof.TreeSize < lo.e.Proof.TreeSize {
			lo = it
		}
		if it.e.Proof.TreeSize > hi.e.Proof.TreeSize {
			hi = it
		}
	}
	for _, it := range []*settleItem{lo, hi} {
		cp, err := s.o.LogKey.VerifyCheckpoint(it.e.Proof.Checkpoint)
		if err != nil {
			return fmt.Errorf("the published bundle of %s: %w", it.filename, err)
		}
		c.Add(cp, "the checkpoint of the bundle published for "+it.filename)
	}
	for _, it := range settled {
		c.Add(it.freshCP, fmt.Sprintf("the checkpoint of the fresh entry at log index %d", it.e.LogIndex))
	}
	return c.Prove(ctx, s.o.Log, cur, settleProofs)
}

// prepareBundle returns the item's fresh entry as a bundle. The fresh
// entry verified in full (rekorv1.VerifyEntry) with a note that was
// replaced only by another verified note of the same tree head; the bytes
// written must parse back to exactly that entry.
func (s *Signer) prepareBundle(it *settleItem) ([]byte, error) {
	b, err := rekorv1.MarshalBundle(it.fresh)
	if err != nil {
		return nil, err
	}
	e, err := rekorv1.ParseBundle(b)
	if err != nil {
		return nil, fmt.Errorf("the settled bundle does not parse, not written: %w", err)
	}
	if !reflect.DeepEqual(e, it.fresh) {
		return nil, errors.New("the settled bundle does not parse back to the verified entry, not written")
	}
	if cp, err := verify.ParseCheckpoint(e.Proof.Checkpoint); err != nil || headKey(cp) != headKey(it.freshCP) {
		return nil, errors.New("the settled bundle's checkpoint is not its verified tree head, not written")
	}
	return b, nil
}

// bundles is a batch of rewritten proof bundles: one durable.Batch for the
// signature dir and one for its statements subdirectory (a batch is one
// directory). Temp files first (add, safe from many goroutines), then one
// sync, the renames and one directory sync per directory (commit): a crash
// leaves the old bundle or the new one (both valid) and at most temp
// files, removed by the next run.
type bundles struct {
	pkg, stmt *durable.Batch
}

// bundleRef names a file added to a bundles batch.
type bundleRef struct {
	stmt bool
	i    int
}

// noBundle is the bundleRef of an item not written.
var noBundle = bundleRef{i: -1}

func (s *Signer) bundleBatch() *bundles {
	b := &bundles{pkg: s.sigDir.Batch()}
	s.stmtMu.Lock()
	if s.stmtDir != nil {
		b.stmt = s.stmtDir.Batch()
	}
	s.stmtMu.Unlock()
	return b
}

// add writes the temp file of filename's new bundle.
func (b *bundles) add(filename string, data []byte) (bundleRef, error) {
	name, ok := strings.CutPrefix(filename, freshness.Dir+"/")
	if !ok {
		i, err := b.pkg.Add(filename+verify.BundleSuffix, data, 0o644)
		return bundleRef{i: i}, err
	}
	if b.stmt == nil {
		return noBundle, fmt.Errorf("the statements directory is not open")
	}
	i, err := b.stmt.Add(name+verify.BundleSuffix, data, 0o644)
	return bundleRef{stmt: true, i: i}, err
}

// commit renames the batch's files into place. A directory that could not
// be synced is a settle warning: the renames happened, readers see the new
// bundles (which verify as the old ones did), they may not survive a
// crash. It returns each file's outcome (nil for noBundle).
func (b *bundles) commit(sum *Summary) func(bundleRef) error {
	written, dirErr := b.pkg.Commit()
	if dirErr != nil {
		sum.warnSettle(dirErr)
	}
	var stmtWritten []error
	if b.stmt != nil {
		var err error
		if stmtWritten, err = b.stmt.Commit(); err != nil {
			sum.warnSettle(err)
		}
	}
	return func(r bundleRef) error {
		switch {
		case r.i < 0:
			return nil
		case r.stmt:
			return stmtWritten[r.i]
		default:
			return written[r.i]
		}
	}
}
