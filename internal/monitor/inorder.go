package monitor

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// inOrder runs work(ctx, i) for every i in [0, n), at most jobs at a time,
// and hands each result to commit in the order 0, 1, 2, … as soon as it and
// every result before it are done. At most 2×jobs results wait for their
// turn (a slow batch stops new ones from starting), so memory is bounded by
// the window, not by n.
//
// The first error (of work or commit) cancels the context of every work
// call and stops new ones. inOrder then returns how many results were
// committed — a contiguous prefix: result k is never committed when an
// earlier one failed — and the first error that occurred (the cause, not
// the cancellations it provoked). commit runs on the calling goroutine.
func inOrder[T any](ctx context.Context, n, jobs int, work func(ctx context.Context, i int) (T, error), commit func(i int, v T) error) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	jobs = max(jobs, 1)
	window := min(2*jobs, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	type result struct {
		v   T
		err error
	}
	// slots[i%window] carries result i; result i+window is started only
	// after result i was taken, so a slot never holds two.
	slots := make([]chan result, window)
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	started := 0
	for i := 0; i < n; i++ {
		for started < n && started < i+window && gctx.Err() == nil {
			j := started
			g.Go(func() error {
				v, err := work(gctx, j)
				slots[j%window] <- result{v, err}
				return err
			})
			started++
		}
		if started <= i {
			// Cancelled before batch i was started.
			err := g.Wait()
			if err == nil {
				err = context.Cause(gctx)
			}
			return i, err
		}
		r := <-slots[i%window]
		if r.err != nil {
			// The first error wins: a work call that failed before
			// this one (and cancelled it) is the cause.
			return i, g.Wait()
		}
		if err := commit(i, r.v); err != nil {
			cancel(err)
			_ = g.Wait() // the cancellations this error provoked
			return i, err
		}
	}
	return n, g.Wait()
}
