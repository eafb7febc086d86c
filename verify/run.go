package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// run is one VerifyAll: the batch and the state of each package, each
// package's state owned by its *pkg.
type run struct {
	v    *Verifier
	pkgs []*pkg

	done      atomic.Int64
	witnessed sync.Map // note text → error of Witnesses.CheckCosignatures (offline)
}

// pkg is one package between the steps of a run.
type pkg struct {
	res   Result
	msg   []byte     // the verified message: the package's hex sha256
	sig   *Signature // the verified `.t`
	proof *Proof     // the verified inclusion (bundle or log)
	// pending: passed every check so far; the batch-wide checks decide.
	pending bool
}

func (p *pkg) fail(err error) {
	p.pending = false
	p.res.Err = err
	p.res.Status = StatusOf(err)
}

// pass records a verified inclusion: the package passed its own checks.
func (p *pkg) pass(pr *Proof) {
	id := pr.Entry
	p.proof, p.res.Entry, p.pending = pr, &id, true
}

func (v *Verifier) newRun(arts []Artifact) *run {
	r := &run{v: v, pkgs: make([]*pkg, len(arts))}
	for i, a := range arts {
		r.pkgs[i] = &pkg{res: Result{Artifact: a}}
	}
	return r
}

// checkAll runs every package's own checks, Policy.Concurrency at a time.
// The batch context ends with the run's (deadline, interrupt) or, online,
// with the first *LogUnavailableError: one package finding the log
// unavailable stops the lookups of all the others, whose answers could no
// longer make the run succeed. It returns the cause when either happened.
func (r *run) checkAll(ctx context.Context) error {
	bctx, cancelBatch := context.WithCancelCause(ctx)
	defer cancelBatch(nil)
	var g errgroup.Group
	g.SetLimit(r.v.p.Concurrency)
	for _, p := range r.pkgs {
		g.Go(func() error {
			if bctx.Err() != nil {
				return nil // judged by abort: not verified, with the cause
			}
			start := time.Now()
			r.checkOne(bctx, p)
			p.res.Duration = time.Since(start)
			var lu *LogUnavailableError
			if !r.v.p.Offline && errors.As(p.res.Err, &lu) && bctx.Err() == nil {
				cancelBatch(lu)
			}
			r.progress(p)
			return nil
		})
	}
	_ = g.Wait() // every package records its own outcome
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if bctx.Err() != nil {
		return context.Cause(bctx)
	}
	return nil
}

func (r *run) progress(p *pkg) {
	if r.v.Progress == nil {
		return
	}
	n := r.done.Add(1)
	r.v.progMu.Lock()
	defer r.v.progMu.Unlock()
	r.v.Progress(int(n), len(r.pkgs), p.res)
}

// checkOne runs one package's own checks, in order: hash, `.t`, proof. On
// success the package is pending with its Status empty.
func (r *run) checkOne(ctx context.Context, p *pkg) {
	if r.hash(p) && r.signature(ctx, p) {
		r.inclusion(ctx, p)
	}
}

// hash sets the message: the file's sha256 (which must equal the
// database's, when it gives one), or the database's claim when there is no
// file to hash.
func (r *run) hash(p *pkg) bool {
	a := p.res.Artifact
	if a.Open == nil {
		p.res.SHA256 = a.SHA256
		if !isSHA256Hex(a.SHA256) {
			p.fail(fmt.Errorf("%s: no file to hash and no valid sha256 (%q) to verify", a.Filename, truncate(a.SHA256, 80)))
			return false
		}
		p.msg = []byte(a.SHA256)
		return true
	}
	f, err := a.Open()
	if err != nil {
		p.fail(fmt.Errorf("open %s: %w", a.Filename, err))
		return false
	}
	sum, _, err := HashReader(f)
	f.Close()
	if err != nil {
		p.fail(fmt.Errorf("hash %s: %w", a.Filename, err))
		return false
	}
	p.res.SHA256 = sum
	if a.SHA256 != "" && a.SHA256 != sum {
		p.fail(&HashMismatchError{Filename: a.Filename, Expected: a.SHA256, Got: sum})
		return false
	}
	p.msg = []byte(sum)
	return true
}

// signature fetches and verifies the `.t`.
func (r *run) signature(ctx context.Context, p *pkg) bool {
	a := p.res.Artifact
	t, err := r.v.src.Signature(ctx, a)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotFound):
			err = &MissingError{What: "signature", Filename: a.Filename, Err: err}
		case errors.Is(err, ErrTooLarge):
			err = &SignatureError{Kind: SigMalformed, Err: err}
		}
		p.fail(err)
		return false
	}
	s, err := ParseSignature(t)
	if err != nil {
		p.fail(err)
		return false
	}
	p.res.KeyID = s.KeyID()
	if _, err := s.Verify(r.v.p.Keys, p.msg, a.Filename); err != nil {
		p.fail(err)
		return false
	}
	p.sig = s
	return true
}

// inclusion proves the signature logged: from its bundle, or, online and
// without one, from the log (EntryFinder).
func (r *run) inclusion(ctx context.Context, p *pkg) {
	a := p.res.Artifact
	b, err := r.v.src.Bundle(ctx, a)
	switch {
	case err == nil:
		r.bundle(p, b)
	case errors.Is(err, ErrTooLarge):
		p.fail(&BundleError{Reason: "too large", Err: err})
	case !errors.Is(err, ErrNotFound):
		p.fail(err)
	case r.v.finder == nil:
		p.fail(&MissingError{What: "bundle", Filename: a.Filename, Err: err})
	default:
		r.find(ctx, p)
	}
}

// bundle verifies a proof bundle with the log kind's verifier and, offline,
// the witness quorum of its checkpoint.
func (r *run) bundle(p *pkg, b []byte) {
	pr, err := r.v.p.Log.VerifyBundle(b, p.sig, r.v.p.Keys, p.msg)
	if err != nil {
		p.fail(&InvalidProofError{Err: err})
		return
	}
	if r.v.p.Offline && r.v.p.Witnesses != nil {
		if err := r.cosigned(pr.Checkpoint); err != nil {
			p.fail(err)
			return
		}
	}
	p.pass(pr)
}

// cosigned checks the witness quorum of a checkpoint, once per note.
func (r *run) cosigned(cp *Checkpoint) error {
	if err, ok := r.witnessed.Load(string(cp.Text)); ok {
		e, _ := err.(error)
		return e
	}
	var res error
	if err := r.v.p.Witnesses.CheckCosignatures(cp.Text); err != nil {
		res = &CheckpointError{Reason: "not cosigned by the witness quorum", Origin: cp.Origin, Size: cp.Size, Err: err}
	}
	r.witnessed.Store(string(cp.Text), res)
	return res
}

// find asks the log for the entry of a `.t` published without a bundle.
func (r *run) find(ctx context.Context, p *pkg) {
	pr, err := r.v.finder.FindEntry(ctx, p.sig, r.v.p.Keys, p.msg)
	if err != nil {
		var nl *NotInLogError
		var lu *LogUnavailableError
		if !errors.As(err, &nl) && !errors.As(err, &lu) {
			err = &LogUnavailableError{Op: "find the entry of " + p.res.Artifact.Filename, Err: err}
		}
		p.fail(err)
		return
	}
	p.pass(pr)
}

// failPending fails every package still pending with err and returns it.
func (r *run) failPending(err error) error {
	for _, p := range r.pkgs {
		if p.pending {
			p.fail(err)
		}
	}
	return err
}

// abort ends a run that was cut short by cause (the run's context, or the
// first fatal log error): every package not judged yet, still pending, or
// whose own check failed only because of the cancellation is unverified,
// "not verified: <cause>". The package whose error is the cause keeps it.
func (r *run) abort(cause error) ([]Result, error) {
	for _, p := range r.pkgs {
		err := p.res.Err
		cut := err != nil && err != cause && (cancelled(err) || errors.Is(err, cause))
		if p.res.Status == "" || p.pending || cut {
			p.fail(fmt.Errorf("not verified: %w", cause))
		}
	}
	return r.results(), cause
}

// finish passes every package still pending.
func (r *run) finish() []Result {
	for _, p := range r.pkgs {
		if p.pending {
			p.res.Status, p.res.Err = StatusOK, nil
		}
	}
	return r.results()
}

func (r *run) results() []Result {
	out := make([]Result, len(r.pkgs))
	for i, p := range r.pkgs {
		out[i] = p.res
	}
	return out
}

// rebuilds is the rebuilders' answer being awaited.
type rebuilds struct {
	cancel func()
	done   chan struct{}
	got    map[*pkg]*RebuildVerdict
}

func (rb *rebuilds) wait() map[*pkg]*RebuildVerdict {
	if rb.done == nil {
		return nil
	}
	<-rb.done
	return rb.got
}

// askRebuilders asks the rebuilders, in the background, about every
// package that passed its own checks (nothing when the policy requires no
// confirmation).
func (r *run) askRebuilders(ctx context.Context) *rebuilds {
	if r.v.rb == nil || r.v.p.RequiredRebuildConfirms == 0 {
		return &rebuilds{cancel: func() {}}
	}
	rctx, cancel := context.WithCancel(ctx)
	rb := &rebuilds{cancel: cancel}
	var asked []*pkg
	var arts []Artifact
	var sums []string
	for _, p := range r.pkgs {
		if p.pending {
			asked = append(asked, p)
			arts = append(arts, p.res.Artifact)
			sums = append(sums, string(p.msg))
		}
	}
	rb.done, rb.got = make(chan struct{}), make(map[*pkg]*RebuildVerdict, len(asked))
	go func() {
		defer close(rb.done)
		defer cancel()
		if len(asked) == 0 {
			return
		}
		got := r.v.rb.Verdicts(rctx, arts, sums)
		for j, p := range asked {
			var vd RebuildVerdict // a missing verdict confirms nothing
			if j < len(got) {
				vd = got[j]
			}
			rb.got[p] = &vd
		}
	}()
	return rb
}

// judgeRebuilds attaches the verdicts and fails the packages still pending
// that too few rebuilders reproduced.
func (r *run) judgeRebuilds(got map[*pkg]*RebuildVerdict) {
	for _, p := range r.pkgs {
		vd := got[p]
		if vd == nil {
			continue
		}
		p.res.Rebuild = vd
		if p.pending && len(vd.Confirmed) < r.v.p.RequiredRebuildConfirms {
			p.fail(&RebuildError{Required: r.v.p.RequiredRebuildConfirms, Confirmed: vd.Confirmed, Verdict: *vd})
		}
	}
}
