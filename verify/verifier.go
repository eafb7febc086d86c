package verify

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Policy is what must hold for a package to be accepted. It is data: every
// command builds one from flags and the config file, and nothing else
// changes the engine's behaviour.
type Policy struct {
	// Keys are the transparency keys (minisign): a `.t` must be signed by one.
	Keys []PublicKey
	// Log is the pinned transparency log: its kind's verifier (key,
	// origin, proof format). Required.
	Log LogVerifier
	// Witnesses, when set, is the witness quorum the checkpoints must
	// carry. Offline, every bundle's checkpoint must meet it. Online, the
	// log's current checkpoint must (fetched with its cosignatures), and
	// every other checkpoint the run relies on is proven a prefix of it;
	// the stored checkpoint is checked under the log key only (it met the
	// quorum when it was stored; cosignatures age).
	Witnesses Witnesses
	// Offline: verify from proof bundles only; never ask the log. A package
	// without a bundle is StatusMissingBundle. The batch's bundle
	// checkpoints are compared with each other and with the stored one
	// (read, never written): the same origin and size with another root is
	// a *SecurityError; other sizes cannot be compared without the log
	// (see offlineChecks). Online (false): also find bundle-less
	// signatures in the log (EntryFinder), prove every checkpoint an
	// inclusion was proven in, and the persisted one, consistent with the
	// log's current checkpoint, and store that.
	Offline bool
	// Concurrency bounds the packages verified at once (hashing, fetching
	// signatures, log lookups) and the consistency proofs in flight. 0
	// means 2 × runtime.NumCPU().
	Concurrency int
	// RequiredRebuildConfirms is how many independent rebuilders must have
	// reproduced a package (0: rebuilders are not consulted).
	RequiredRebuildConfirms int
}

// Verifier runs a Policy over batches of packages. It is safe for
// concurrent use only through separate VerifyAll calls on separate
// Verifiers: a CheckpointStore is read and written once per run.
type Verifier struct {
	p      Policy
	src    SignatureSource
	log    LogClient
	finder EntryFinder
	store  CheckpointStore
	rb     Rebuilders

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
// log is required online (when it also implements EntryFinder, `.t` files
// without a bundle are looked up in the log); store may be nil (no
// persisted checkpoint: no rollback detection across runs); rb may be nil
// unless the policy requires rebuild confirmations.
func NewVerifier(p Policy, src SignatureSource, log LogClient, store CheckpointStore, rb Rebuilders) (*Verifier, error) {
	switch {
	case len(p.Keys) == 0:
		return nil, errors.New("verify: policy has no transparency key")
	case p.Log == nil:
		return nil, errors.New("verify: policy has no pinned log")
	case src == nil:
		return nil, errors.New("verify: no signature source")
	case !p.Offline && log == nil:
		return nil, errors.New("verify: online mode needs a log")
	case p.RequiredRebuildConfirms < 0:
		return nil, errors.New("verify: negative rebuild confirmation threshold")
	case p.RequiredRebuildConfirms > 0 && rb == nil:
		return nil, fmt.Errorf("verify: policy requires %d rebuild confirmation(s) but no rebuilders are configured", p.RequiredRebuildConfirms)
	case p.Concurrency < 0:
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
	p.Keys = append([]PublicKey(nil), p.Keys...)
	v := &Verifier{p: p, src: src, log: log, store: store, rb: rb}
	if f, ok := log.(EntryFinder); ok && !p.Offline {
		v.finder = f
	}
	return v, nil
}

// Policy returns the policy in force (defaults filled in).
func (v *Verifier) Policy() Policy { return v.p }

// VerifyAll verifies a batch and returns one Result per artifact, in order.
//
// Per package (in parallel, Policy.Concurrency at a time): hash the file
// (Open) and compare with the database's SHA256; fetch and verify the `.t`;
// fetch the bundle and verify it (LogVerifier.VerifyBundle); without a
// bundle, online, ask the log for the signature's entry (EntryFinder).
//
// Then, for the whole batch: offline, compare the checkpoints of the
// batch's proofs with each other and with the stored one (offlineChecks);
// online, fetch the log's current checkpoint (after every entry) and prove
// every checkpoint an inclusion was proven in, and the stored one,
// consistent with it (Consistency); only then is it stored. A bundle's
// inclusion proof at its checkpoint plus the consistency proof from that
// checkpoint to the current one prove the entry is in the current tree:
// no entry is fetched for a package with a bundle. Rebuilders are asked
// once for the batch, alongside.
//
// A failed package is a Result. The returned error is non-nil only when the
// batch as a whole has no trustworthy verdict: ctx ended (the error is
// context.Cause(ctx): a run deadline's own error, say), a
// *LogUnavailableError (online mode, log unreachable: affected results are
// StatusUnavailable; the first one met by any package cancels the lookups
// of all the others, and every package not judged by then is "not
// verified: <that error>"), or a *SecurityError (the log contradicts itself:
// every result that relied on it is StatusLogInconsistent; when several
// contradictions are found, the one returned is chosen deterministically:
// the first of the checks in order of checkpoint size, see Consistency).
func (v *Verifier) VerifyAll(ctx context.Context, arts []Artifact) ([]Result, error) {
	r := v.newRun(arts)
	if cause := r.checkAll(ctx); cause != nil {
		return r.abort(cause)
	}
	// Rebuilders run alongside the batch-wide log checks, for the packages
	// that passed so far; they are cancelled when those checks fail the run.
	rb := r.askRebuilders(ctx)
	var runErr error
	if v.p.Offline {
		runErr = r.offlineChecks(ctx)
	} else {
		runErr = r.online(ctx)
	}
	if runErr != nil {
		rb.cancel()
	}
	r.judgeRebuilds(rb.wait())
	if ctx.Err() != nil && OutcomeOf(runErr) != Inconsistent {
		// The run's deadline or an interrupt, not the log, cut it short
		// (the log's evidence of a fork is kept whatever happened after).
		return r.abort(context.Cause(ctx))
	}
	return r.finish(), runErr
}
