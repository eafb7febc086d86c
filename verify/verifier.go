package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"
)

// Defaults of a Policy's limits.
const (
	// DefaultIndexBatch is how many log indexes one EntriesByIndex call asks
	// for (the Log implementation splits it further if its server needs to).
	DefaultIndexBatch = 100
	// maxSearchCandidates bounds how many entries of an index search are
	// fetched and tried for one package.
	maxSearchCandidates = 8
)

// Policy is what must hold for a package to be accepted. It is data: every
// command builds one from flags and the config file, and nothing else
// changes the engine's behaviour.
type Policy struct {
	// Keys are the transparency keys (minisign): a `.t` must be signed by one.
	Keys []PublicKey
	// LogKey is the pinned key of the transparency log. Required.
	LogKey *LogKey
	// Offline: verify from proof bundles only; never ask the log. A package
	// without a bundle is StatusMissingBundle. The batch's bundle
	// checkpoints are compared with each other and with the stored one
	// (read, never written): the same origin and size with another root is
	// a *SecurityError; other sizes cannot be compared without the log
	// (see offlineChecks). Online (false): also find
	// bundle-less signatures in the log, re-prove every inclusion against
	// the log's current tree and check that tree's consistency with every
	// checkpoint seen and with the persisted one.
	Offline bool
	// Concurrency bounds the packages verified at once (hashing, fetching
	// signatures, log lookups). 0 means 2 × runtime.NumCPU().
	Concurrency int
	// IndexBatch is the number of log indexes per EntriesByIndex call; 0
	// means DefaultIndexBatch.
	IndexBatch int
	// RequiredRebuildConfirms is how many independent rebuilders must have
	// reproduced a package (0: rebuilders are not consulted).
	RequiredRebuildConfirms int
}

// Verifier runs a Policy over batches of packages. It is safe for
// concurrent use only through separate VerifyAll calls on separate
// Verifiers: a CheckpointStore is read and written once per run.
type Verifier struct {
	p     Policy
	src   SignatureSource
	log   Log
	store CheckpointStore
	rb    Rebuilders

	// Progress, when set, is called once per package when its own checks
	// (hash, signature, bundle or log lookup) are done, with the number of
	// packages done so far and the package's preliminary Result: a failure
	// is final, an empty Status means "passed so far" (the batch-wide log
	// and rebuilder checks follow the last call and decide). It is called
	// from several goroutines, never concurrently.
	Progress func(done, total int, r Result)
	progMu   sync.Mutex
}

// NewVerifier checks the policy and returns a Verifier. src is required;
// log is required online; store may be nil (no persisted checkpoint: no
// rollback detection across runs); rb may be nil unless the policy
// requires rebuild confirmations.
func NewVerifier(p Policy, src SignatureSource, log Log, store CheckpointStore, rb Rebuilders) (*Verifier, error) {
	switch {
	case len(p.Keys) == 0:
		return nil, errors.New("verify: policy has no transparency key")
	case p.LogKey == nil:
		return nil, errors.New("verify: policy has no pinned log key")
	case src == nil:
		return nil, errors.New("verify: no signature source")
	case !p.Offline && log == nil:
		return nil, errors.New("verify: online mode needs a log")
	case p.RequiredRebuildConfirms < 0:
		return nil, errors.New("verify: negative rebuild confirmation threshold")
	case p.RequiredRebuildConfirms > 0 && rb == nil:
		return nil, fmt.Errorf("verify: policy requires %d rebuild confirmation(s) but no rebuilders are configured", p.RequiredRebuildConfirms)
	case p.Concurrency < 0 || p.IndexBatch < 0:
		return nil, errors.New("verify: negative limit")
	}
	for _, k := range p.Keys {
		if k.IsZero() {
			return nil, errors.New("verify: zero transparency key in policy")
		}
	}
	if p.Concurrency == 0 {
		p.Concurrency = 2 * runtime.NumCPU()
	}
	if p.IndexBatch == 0 {
		p.IndexBatch = DefaultIndexBatch
	}
	p.Keys = append([]PublicKey(nil), p.Keys...)
	return &Verifier{p: p, src: src, log: log, store: store, rb: rb}, nil
}

// Policy returns the policy in force (defaults filled in).
func (v *Verifier) Policy() Policy { return v.p }

// work is the state of one package between the phases of VerifyAll.
type work struct {
	msg     []byte
	cp      *Checkpoint   // checkpoint the current Entry was verified against
	extra   []*Checkpoint // earlier checkpoints that proved the entry (a bundle's, when re-proven)
	bundled bool          // Entry came from a bundle (online: re-prove it)
	pending bool          // passed every check so far
	// unserved: online, the log served no entry, or another one, at the
	// log index the bundle proves (reprove). The package stays pending so
	// that its bundle's checkpoint is proven consistent with the current
	// tree; the verdict is decided in consistency.
	unserved *NotInLogError
}

// VerifyAll verifies a batch and returns one Result per artifact, in order.
//
// Per package (in parallel, Policy.Concurrency at a time): hash the file
// (Open) and compare with the database's SHA256; fetch and verify the `.t`;
// fetch the bundle and verify its entry offline (VerifyEntry); without a
// bundle, online, find the entry in the log by its leaf hash, then by index
// search, and verify it the same way.
//
// Then, online, for the whole batch: re-fetch bundled entries by index and
// verify each fresh inclusion proof against its own checkpoint; fetch the
// log's current checkpoint (after the entries) and prove every checkpoint
// seen, and the persisted one, consistent with it. Only then is the
// current checkpoint stored. Rebuilders are asked once for the batch.
//
// A bundled entry that the log no longer serves at its index (no entry, or
// another or altered one) is not judged alone: its bundle's checkpoint is
// proven consistent with the current tree like every other. When that
// fails (a rollback below the entry, a fork), the package reports that
// *SecurityError. When it succeeds, the current tree provably contains the
// entry (the bundle's inclusion proof plus the consistency proof), so a log
// that does not serve it contradicts its own signed tree: that too is a
// *SecurityError (Old: the bundle's checkpoint, New: the current one,
// wrapping the *NotInLogError evidence), never StatusNotInLog. StatusNotInLog
// is left for signatures whose entry the log never showed (no bundle, and
// neither the leaf hash nor the index search finds a matching entry).
//
// Result.Entry, when set, is the identity of the verified entry only (UUID,
// LogIndex, LogID, IntegratedTime): its body, proofs, checkpoint and SET
// are dropped once verified (offline at once, online after the batch-wide
// checks), so a scan of many packages does not hold them all.
//
// A failed package is a Result. The returned error is non-nil only when the
// batch as a whole has no trustworthy verdict: ctx ended (the error is
// context.Cause(ctx): a run deadline's own error, say), a
// *LogUnavailableError (online mode, log unreachable: affected results are
// StatusUnavailable; the first one met by any package cancels the lookups
// of all the others, and every package not judged by then is "not
// verified: <that error>"), or a *SecurityError (the log contradicts itself:
// every result that relied on it is StatusLogInconsistent; when several
// contradictions are found, the one returned and given to the packages not
// involved is chosen deterministically: the first of the checks in order
// of checkpoint size, see consistency; an unserved entry's own error goes
// to its package).
func (v *Verifier) VerifyAll(ctx context.Context, arts []Artifact) ([]Result, error) {
	res := make([]Result, len(arts))
	ws := make([]work, len(arts))
	cache := &checkpointCache{m: map[string]*Checkpoint{}}
	var done atomic.Int64

	// The batch context ends with the run's (deadline, interrupt) or with
	// the first fatal log error: one package finding the log unavailable
	// stops the lookups of all the others, whose answers could no longer
	// make the run succeed.
	bctx, cancelBatch := context.WithCancelCause(ctx)
	defer cancelBatch(nil)
	var g errgroup.Group
	g.SetLimit(v.p.Concurrency)
	for i := range arts {
		res[i].Artifact = arts[i]
	}
	for i := range arts {
		g.Go(func() error {
			if bctx.Err() != nil {
				return nil // judged below: not verified, with the cause
			}
			start := time.Now()
			v.checkOne(bctx, arts[i], &res[i], &ws[i], cache)
			res[i].Duration = time.Since(start)
			var lu *LogUnavailableError
			if !v.p.Offline && errors.As(res[i].Err, &lu) && bctx.Err() == nil {
				cancelBatch(lu)
			}
			if v.Progress != nil {
				n := done.Add(1)
				v.progMu.Lock()
				v.Progress(int(n), len(arts), res[i])
				v.progMu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // every package records its own outcome
	if ctx.Err() != nil {
		return v.abort(res, ws, context.Cause(ctx))
	}
	if bctx.Err() != nil {
		// The first fatal log error: the package that met it keeps it,
		// every other one not judged yet (or cut short) is unverified
		// with that cause.
		return v.abort(res, ws, context.Cause(bctx))
	}

	// Rebuilders run alongside the batch-wide log checks, for the packages
	// whose signature (and bundle or lookup) verified.
	// They are cancelled when those checks fail the run.
	rbCtx, cancelRebuilders := context.WithCancel(ctx)
	defer cancelRebuilders()
	var rbDone chan struct{}
	var verdicts []*RebuildVerdict
	if v.rb != nil && v.p.RequiredRebuildConfirms > 0 {
		rbDone = make(chan struct{})
		var rbArts []Artifact
		var sums []string
		var idx []int
		for i := range ws {
			if ws[i].pending {
				idx = append(idx, i)
				rbArts = append(rbArts, arts[i])
				sums = append(sums, string(ws[i].msg))
			}
		}
		verdicts = make([]*RebuildVerdict, len(ws))
		go func() {
			defer close(rbDone)
			if len(idx) == 0 {
				return
			}
			got := v.rb.Verdicts(rbCtx, rbArts, sums)
			for j, i := range idx {
				var vd RebuildVerdict // a missing verdict confirms nothing
				if j < len(got) {
					vd = got[j]
				}
				verdicts[i] = &vd
			}
		}()
	}

	var runErr error
	if v.p.Offline {
		runErr = v.offlineChecks(ctx, res, ws)
	} else {
		runErr = v.online(ctx, res, ws, cache)
	}
	if runErr != nil {
		cancelRebuilders()
	}
	if rbDone != nil {
		<-rbDone
		for i := range ws {
			vd := verdicts[i]
			if vd == nil {
				continue
			}
			res[i].Rebuild = vd
			if ws[i].pending && len(vd.Confirmed) < v.p.RequiredRebuildConfirms {
				fail(&res[i], &ws[i], &RebuildError{Required: v.p.RequiredRebuildConfirms, Confirmed: vd.Confirmed, Verdict: *vd})
			}
		}
	}
	var sec *SecurityError
	if ctx.Err() != nil && !errors.As(runErr, &sec) {
		// The run's deadline or an interrupt, not the log, cut it short
		// (the log's evidence of a fork is kept whatever happened after).
		return v.abort(res, ws, context.Cause(ctx))
	}
	for i := range ws {
		if ws[i].pending {
			res[i].Status, res[i].Err = StatusOK, nil
		}
	}
	v.slim(res)
	return res, runErr
}

// abort ends a run that was cut short by cause (the run's context, or the
// first fatal log error): every package not judged yet, still pending, or
// whose own check failed only because of the cancellation is unverified,
// "not verified: <cause>". The package whose error is the cause keeps it.
func (v *Verifier) abort(res []Result, ws []work, cause error) ([]Result, error) {
	for i := range res {
		err := res[i].Err
		cut := err != nil && err != cause &&
			(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cause))
		if res[i].Status == "" || ws[i].pending || cut {
			fail(&res[i], &ws[i], fmt.Errorf("not verified: %w", cause))
		}
	}
	v.slim(res)
	return res, cause
}

// slim replaces every Result's entry by its identity once the batch is
// judged.
func (v *Verifier) slim(res []Result) {
	for i := range res {
		if e := res[i].Entry; e != nil && (e.Body != nil || e.Verification != nil) {
			res[i].Entry = identity(e, v.p.LogKey)
		}
	}
}

// identity is what a Result keeps of a verified entry: what identifies it
// and what reports print (UUID, log index, log id, integrated time). The
// body, proof hashes, checkpoint and SET (about 2 KiB per entry) are
// dropped. e.LogID equals the pinned key's id (checked by the
// verification); the key's string is shared rather than copied.
func identity(e *LogEntry, lk *LogKey) *LogEntry {
	id := e.LogID
	if lk != nil && id == lk.ID() {
		id = lk.ID()
	}
	return &LogEntry{UUID: e.UUID, LogIndex: e.LogIndex, LogID: id, IntegratedTime: e.IntegratedTime}
}

func fail(r *Result, w *work, err error) {
	w.pending = false
	r.Err = err
	r.Status = StatusOf(err)
}

// checkOne runs the per-package checks. On success it leaves w.pending set
// and the Result's Status empty.
func (v *Verifier) checkOne(ctx context.Context, a Artifact, r *Result, w *work, cache *checkpointCache) {
	// Hash.
	msg := a.SHA256
	if a.Open != nil {
		f, err := a.Open()
		if err != nil {
			fail(r, w, fmt.Errorf("open %s: %w", a.Filename, err))
			return
		}
		sum, _, err := HashReader(f)
		f.Close()
		if err != nil {
			fail(r, w, fmt.Errorf("hash %s: %w", a.Filename, err))
			return
		}
		r.SHA256 = sum
		if a.SHA256 != "" && a.SHA256 != sum {
			fail(r, w, &HashMismatchError{Filename: a.Filename, Expected: a.SHA256, Got: sum})
			return
		}
		msg = sum
	} else {
		r.SHA256 = msg
		if !isSHA256Hex(msg) {
			fail(r, w, fmt.Errorf("%s: no file to hash and no valid sha256 (%q) to verify", a.Filename, truncate(msg, 80)))
			return
		}
	}
	w.msg = []byte(msg)

	// Signature.
	t, err := v.src.Signature(ctx, a)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotFound):
			err = &MissingError{What: "signature", Filename: a.Filename, Err: err}
		case errors.Is(err, ErrTooLarge):
			err = &SignatureError{Kind: SigMalformed, Err: err}
		}
		fail(r, w, err)
		return
	}
	s, err := ParseSignature(t)
	if err != nil {
		fail(r, w, err)
		return
	}
	r.KeyID = s.KeyID()
	if _, err := s.Verify(v.p.Keys, w.msg, a.Filename); err != nil {
		fail(r, w, err)
		return
	}

	// Bundle, or the log.
	b, err := v.src.Bundle(ctx, a)
	switch {
	case err == nil:
		e, err := ParseBundle(b)
		if err != nil {
			fail(r, w, err)
			return
		}
		cp, err := verifyEntryCached(e, s, v.p.Keys, w.msg, v.p.LogKey, cache)
		if err != nil {
			fail(r, w, err)
			return
		}
		if v.p.Offline {
			// Nothing later needs the body or the proofs: keep only what
			// identifies the entry (a scan holds every Result at once).
			e = identity(e, v.p.LogKey)
		}
		r.Entry, w.cp, w.bundled, w.pending = e, cp, true, true
	case errors.Is(err, ErrTooLarge):
		fail(r, w, &BundleError{Reason: "too large", Err: err})
	case !errors.Is(err, ErrNotFound):
		fail(r, w, err)
	case v.p.Offline:
		fail(r, w, &MissingError{What: "bundle", Filename: a.Filename, Err: err})
	default:
		e, cp, err := v.lookup(ctx, s, w.msg, cache)
		if err != nil {
			fail(r, w, err)
			return
		}
		r.Entry, w.cp, w.pending = e, cp, true
	}
}

// lookup finds the log entry of a verified signature without a bundle: by
// the leaf hash of its canonical body, then by index search.
func (v *Verifier) lookup(ctx context.Context, s *Signature, msg []byte, cache *checkpointCache) (*LogEntry, *Checkpoint, error) {
	nl := &NotInLogError{SearchHash: sha256Hex(msg)}
	// The key that verified s: rebuild the body with each policy key of
	// that id (normally one).
	tried := map[string]bool{}
	for _, k := range v.p.Keys {
		if k.keyNum != s.keyNum() {
			continue
		}
		leaf := LeafHash(CanonicalBody(s, k, msg))
		if nl.LeafHash == "" {
			nl.LeafHash = leaf
		}
		e, err := v.log.EntryByUUID(ctx, leaf)
		if errors.Is(err, ErrNotFound) {
			continue // an older server may only answer to the full UUID: search
		}
		if err != nil {
			return nil, nil, &LogUnavailableError{Op: "entry " + leaf, Err: err}
		}
		tried[leaf] = true
		cp, err := verifyEntryCached(e, s, v.p.Keys, msg, v.p.LogKey, cache)
		if err == nil {
			return e, cp, nil
		}
		nl.Candidates = append(nl.Candidates, err)
	}
	uuids, err := v.log.SearchByHash(ctx, nl.SearchHash)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, &LogUnavailableError{Op: "search sha256:" + nl.SearchHash, Err: err}
	}
	n := 0
	for _, u := range uuids {
		if len(u) < 64 || tried[u[len(u)-64:]] {
			continue
		}
		if n++; n > maxSearchCandidates {
			break
		}
		tried[u[len(u)-64:]] = true
		e, err := v.log.EntryByUUID(ctx, u)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, &LogUnavailableError{Op: "entry " + u, Err: err}
		}
		cp, err := verifyEntryCached(e, s, v.p.Keys, msg, v.p.LogKey, cache)
		if err == nil {
			return e, cp, nil
		}
		nl.Candidates = append(nl.Candidates, err)
	}
	return nil, nil, nl
}

// online runs the batch-wide checks against the log's current tree.
func (v *Verifier) online(ctx context.Context, res []Result, ws []work, cache *checkpointCache) error {
	var idx []int
	for i := range ws {
		if ws[i].pending {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	// 1. Fresh inclusion proofs for bundled entries.
	if err := v.reprove(ctx, res, ws, idx, cache); err != nil {
		for _, i := range idx {
			if ws[i].pending {
				fail(&res[i], &ws[i], err)
			}
		}
		return err
	}
	// 2. The current checkpoint, fetched after every entry.
	curText, err := v.log.Checkpoint(ctx)
	if err == nil {
		var cur *Checkpoint
		cur, err = v.p.LogKey.VerifyCheckpoint(curText)
		if err == nil {
			return v.consistency(ctx, res, ws, cur)
		}
	}
	lu := &LogUnavailableError{Op: "current checkpoint", Err: err}
	for i := range ws {
		if ws[i].pending {
			fail(&res[i], &ws[i], lu)
		}
	}
	return lu
}

// reprove re-fetches bundled entries by index and verifies their fresh
// proofs, each against its own checkpoint (one batch can span several
// tree sizes). A log failure is returned. An entry the log does not serve,
// or serves differently, leaves its package pending with w.unserved set:
// consistency decides its verdict once the bundle's checkpoint has been
// checked against the current tree.
func (v *Verifier) reprove(ctx context.Context, res []Result, ws []work, idx []int, cache *checkpointCache) error {
	byIndex := map[int64][]int{}
	var indexes []int64
	for _, i := range idx {
		if !ws[i].bundled {
			continue
		}
		li := res[i].Entry.LogIndex
		if _, ok := byIndex[li]; !ok {
			indexes = append(indexes, li)
		}
		byIndex[li] = append(byIndex[li], i)
	}
	sort.Slice(indexes, func(a, b int) bool { return indexes[a] < indexes[b] })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.p.Concurrency)
	for lo := 0; lo < len(indexes); lo += v.p.IndexBatch {
		chunk := indexes[lo:min(lo+v.p.IndexBatch, len(indexes))]
		g.Go(func() error {
			m, err := v.log.EntriesByIndex(gctx, chunk)
			if err != nil {
				return &LogUnavailableError{Op: fmt.Sprintf("entries by index (%d)", len(chunk)), Err: err}
			}
			for _, li := range chunk {
				e := m[li]
				for _, i := range byIndex[li] {
					// Each package index appears in exactly one chunk: no race.
					if e == nil {
						ws[i].unserved = &NotInLogError{LeafHash: LeafHash(res[i].Entry.Body), SearchHash: sha256Hex(ws[i].msg),
							Candidates: []error{fmt.Errorf("log index %d is proven by the bundle but the log returned no entry for it", li)}}
						continue
					}
					cp, err := verifyFresh(e, res[i].Entry, v.p.LogKey, cache)
					if err != nil {
						ws[i].unserved = &NotInLogError{LeafHash: LeafHash(res[i].Entry.Body), SearchHash: sha256Hex(ws[i].msg),
							Candidates: []error{fmt.Errorf("fresh entry at log index %d: %w", li, err)}}
						continue
					}
					// Keep the bundle's checkpoint for consistency too.
					ws[i].extra = append(ws[i].extra, ws[i].cp)
					res[i].Entry, ws[i].cp = e, cp
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// consistencyCheck is one earlier checkpoint to prove consistent with the
// current one.
type consistencyCheck struct {
	old  *Checkpoint
	what string
}

// needsProof: a consistency proof is fetched only between two sizes of the
// same tree; every other case is decided by CheckConsistency alone.
func needsProof(old, cur *Checkpoint) bool {
	return old.Origin == cur.Origin && old.Size > 0 && old.Size < cur.Size
}

// consistency proves every checkpoint seen, and the stored one, consistent
// with cur, judges the entries the log did not serve (work.unserved), then
// stores cur.
//
// Order, for a deterministic verdict whatever the timing: first the checks
// that need no proof (another origin, a larger tree, the same size), in
// order of size (then root; the stored checkpoint last); then every
// distinct consistency proof is fetched concurrently (Policy.Concurrency
// at a time, one request per old size, all cancelled on the first
// failure: a *LogUnavailableError); then the proofs are checked in the
// same order. The first *SecurityError in that order is the verdict.
func (v *Verifier) consistency(ctx context.Context, res []Result, ws []work, cur *Checkpoint) error {
	// Distinct checkpoints, smallest first.
	seen := map[string]*Checkpoint{}
	for i := range ws {
		if !ws[i].pending {
			continue
		}
		for _, c := range append([]*Checkpoint{ws[i].cp}, ws[i].extra...) {
			seen[fmt.Sprintf("%d/%x", c.Size, c.Root)] = c
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

	var stored *Checkpoint
	if v.store != nil {
		text, err := v.store.Load(ctx)
		if err != nil {
			return v.failPending(res, ws, fmt.Errorf("load stored checkpoint: %w", err))
		}
		if len(text) > 0 {
			stored, err = v.p.LogKey.VerifyCheckpoint(text)
			if err != nil {
				return v.failPending(res, ws, fmt.Errorf("stored checkpoint does not verify under the pinned log key (state corrupted or log key changed): %w", err))
			}
		}
	}

	checks := make([]consistencyCheck, 0, len(cps)+1)
	for _, c := range cps {
		checks = append(checks, consistencyCheck{c, "a checkpoint of an entry's inclusion proof"})
	}
	if stored != nil {
		checks = append(checks, consistencyCheck{stored, "the stored checkpoint"})
	}

	// 1. What needs no proof.
	var sizes []int64
	want := map[int64]bool{}
	for _, c := range checks {
		if !needsProof(c.old, cur) {
			if err := CheckConsistency(c.old, cur, nil, c.what); err != nil {
				return v.failPending(res, ws, err)
			}
			continue
		}
		if !want[c.old.Size] {
			want[c.old.Size] = true
			sizes = append(sizes, c.old.Size)
		}
	}
	// 2. Every distinct proof, concurrently.
	proofs, err := v.fetchProofs(ctx, sizes, cur.Size)
	if err != nil {
		return v.failPending(res, ws, err)
	}
	// 3. The proofs, in order.
	for _, c := range checks {
		if needsProof(c.old, cur) {
			if err := CheckConsistency(c.old, cur, proofs[c.old.Size], c.what); err != nil {
				return v.failPending(res, ws, err)
			}
		}
	}
	// 4. Every checkpoint, the bundles' included, is an earlier state of
	// the current tree: an entry the log did not serve is in it.
	if err := v.judgeUnserved(res, ws, cur); err != nil {
		return err
	}
	if v.store != nil && (stored == nil || cur.Size > stored.Size) {
		if err := v.store.Store(ctx, cur.Text); err != nil {
			return fmt.Errorf("store checkpoint: %w", err)
		}
	}
	return nil
}

// fetchProofs fetches the consistency proofs from each old size to cur,
// Policy.Concurrency at a time; the first failure cancels the others and
// is returned as a *LogUnavailableError.
func (v *Verifier) fetchProofs(ctx context.Context, sizes []int64, cur int64) (map[int64][][]byte, error) {
	proofs := make([][][]byte, len(sizes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.p.Concurrency)
	for j, size := range sizes {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			p, err := v.log.ConsistencyProof(gctx, size, cur)
			if err != nil {
				return &LogUnavailableError{Op: fmt.Sprintf("consistency proof %d→%d", size, cur), Err: err}
			}
			proofs[j] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		var lu *LogUnavailableError
		if !errors.As(err, &lu) {
			// ctx ended before the first request failed.
			err = &LogUnavailableError{Op: "consistency proofs", Err: err}
		}
		return nil, err
	}
	m := make(map[int64][][]byte, len(sizes))
	for j, size := range sizes {
		m[size] = proofs[j]
	}
	return m, nil
}

// judgeUnserved fails, once every checkpoint has been proven consistent
// with cur, each package whose bundled entry the log did not serve: the
// bundle proves the leaf at its index in a tree of which cur is a later
// state, so the log contradicts its own signed tree. Each such package
// gets its own *SecurityError; the other pending packages, and the return
// value, the one of the lowest log index (then the first package).
func (v *Verifier) judgeUnserved(res []Result, ws []work, cur *Checkpoint) error {
	var first *SecurityError
	var firstIndex int64
	for i := range ws {
		if !ws[i].pending || ws[i].unserved == nil {
			continue
		}
		e, bcp := res[i].Entry, ws[i].cp
		sec := &SecurityError{
			Reason: fmt.Sprintf("log index %d (leaf %s) is in the log: the bundle proves it in the tree of size %d, which is consistent with the current tree of size %d, yet the log serves no entry, or another one, at that index",
				e.LogIndex, LeafHash(e.Body), bcp.Size, cur.Size),
			Old: bcp.Text, New: cur.Text, Err: ws[i].unserved,
		}
		fail(&res[i], &ws[i], sec)
		if first == nil || e.LogIndex < firstIndex {
			first, firstIndex = sec, e.LogIndex
		}
	}
	if first == nil {
		return nil
	}
	return v.failPending(res, ws, first)
}

func (v *Verifier) failPending(res []Result, ws []work, err error) error {
	for i := range ws {
		if ws[i].pending {
			fail(&res[i], &ws[i], err)
		}
	}
	return err
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
func (v *Verifier) offlineChecks(ctx context.Context, res []Result, ws []work) error {
	type head struct {
		cp    *Checkpoint
		label string
	}
	var heads []head
	if v.store != nil {
		text, err := v.store.Load(ctx)
		if err != nil {
			return v.failPending(res, ws, fmt.Errorf("load stored checkpoint: %w", err))
		}
		if len(text) > 0 {
			stored, err := v.p.LogKey.VerifyCheckpoint(text)
			if err != nil {
				return v.failPending(res, ws, fmt.Errorf("stored checkpoint does not verify under the pinned log key (state corrupted or log key changed): %w", err))
			}
			heads = append(heads, head{stored, "stored signed tree head"})
		}
	}
	seen := map[string]bool{}
	for i := range ws {
		if !ws[i].pending || ws[i].cp == nil {
			continue
		}
		c := ws[i].cp
		k := fmt.Sprintf("%s\n%d\n%x", c.Origin, c.Size, c.Root)
		if seen[k] {
			continue
		}
		seen[k] = true
		heads = append(heads, head{c, "signed tree head in the proof bundle of " + res[i].Artifact.Filename})
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
		if (heads[a].label == "stored signed tree head") != (heads[b].label == "stored signed tree head") {
			return heads[a].label == "stored signed tree head"
		}
		return bytes.Compare(x.Root, y.Root) < 0
	})
	var first *SecurityError
	for a := 0; a < len(heads) && first == nil; a++ {
		for b := a + 1; b < len(heads); b++ {
			x, y := heads[a].cp, heads[b].cp
			if x.Origin != y.Origin || x.Size != y.Size {
				break
			}
			if bytes.Equal(x.Root, y.Root) {
				continue
			}
			what := "two proof bundles' checkpoints"
			if heads[a].label == "stored signed tree head" {
				what = "a proof bundle's checkpoint and the stored checkpoint"
			}
			first = &SecurityError{
				Reason:   fmt.Sprintf("%s have the same tree size %d but different roots (offline: found without asking the log)", what, x.Size),
				Old:      x.Text,
				New:      y.Text,
				OldLabel: heads[a].label,
				NewLabel: heads[b].label,
			}
			break
		}
	}
	if first == nil {
		return nil
	}
	return v.failPending(res, ws, first)
}

// checkpointCache remembers checkpoint notes that verified in this run
// (exact bytes), so a batch whose entries share a tree head verifies its
// signature once.
type checkpointCache struct {
	mu sync.Mutex
	m  map[string]*Checkpoint
}

// verify returns the verified checkpoint for a note. The key is the signed
// body, not the whole note: Rekor re-signs its checkpoint on every read
// (random ECDSA nonces), and one valid signature by the pinned key
// authenticates the body whatever other signature bytes come with it.
func (cache *checkpointCache) verify(lk *LogKey, text []byte) (*Checkpoint, error) {
	c, err := ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	cache.mu.Lock()
	known, ok := cache.m[string(c.body)]
	cache.mu.Unlock()
	if ok {
		return known, nil
	}
	c, err = lk.VerifyCheckpoint(text)
	if err != nil {
		return nil, err
	}
	cache.mu.Lock()
	if len(cache.m) < 4096 {
		cache.m[string(c.body)] = c
	}
	cache.mu.Unlock()
	return c, nil
}

func verifyEntryCached(e *LogEntry, s *Signature, keys []PublicKey, msg []byte, lk *LogKey, cache *checkpointCache) (*Checkpoint, error) {
	return verifyEntryWith(e, s, keys, msg, lk, func(text []byte) (*Checkpoint, error) { return cache.verify(lk, text) })
}

// SameEntry checks that fresh, an entry re-fetched from the log, is
// well-formed and is the entry known already verified: same body, log
// index, log id, integrated time and proof index (what known's SET
// signed). It verifies nothing cryptographically. Errors are *EntryError
// (or CheckEntryShape's).
func SameEntry(fresh, known *LogEntry) error {
	if err := CheckEntryShape(fresh); err != nil {
		return err
	}
	switch {
	case !bytes.Equal(fresh.Body, known.Body):
		return &EntryError{Step: StepBody, Field: "body", Expected: LeafHash(known.Body), Got: LeafHash(fresh.Body), LogIndex: fresh.LogIndex}
	case fresh.LogIndex != known.LogIndex || fresh.LogID != known.LogID || fresh.IntegratedTime != known.IntegratedTime ||
		fresh.Verification.InclusionProof.LogIndex != known.Verification.InclusionProof.LogIndex:
		return &EntryError{Step: StepBundle, Field: "logIndex/logID/integratedTime",
			Expected: fmt.Sprintf("%d/%s/%d", known.LogIndex, known.LogID, known.IntegratedTime),
			Got:      fmt.Sprintf("%d/%s/%d", fresh.LogIndex, fresh.LogID, fresh.IntegratedTime), LogIndex: fresh.LogIndex}
	}
	return nil
}

// verifyFresh verifies an entry re-fetched from the log for a bundle entry
// that already verified in full: it must be the same entry (SameEntry),
// and its fresh inclusion proof must verify against its own checkpoint
// (steps 2 and 3).
func verifyFresh(e, bundled *LogEntry, lk *LogKey, cache *checkpointCache) (*Checkpoint, error) {
	if err := SameEntry(e, bundled); err != nil {
		return nil, err
	}
	return verifyInclusionAndCheckpoint(e, func(text []byte) (*Checkpoint, error) { return cache.verify(lk, text) })
}
