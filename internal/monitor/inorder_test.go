package monitor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestInOrder: results are committed in order, at most jobs work calls
// run at once, at most 2×jobs results are started ahead of the commit.
func TestInOrder(t *testing.T) {
	for _, tc := range []struct{ n, jobs int }{{0, 3}, {1, 3}, {7, 1}, {50, 3}, {50, 8}, {5, 64}} {
		t.Run(fmt.Sprintf("%d/%d", tc.n, tc.jobs), func(t *testing.T) {
			var mu sync.Mutex
			running, maxRunning, committed := 0, 0, 0
			maxAhead := 0
			var got []int
			n, err := inOrder(context.Background(), tc.n, tc.jobs, func(ctx context.Context, i int) (int, error) {
				mu.Lock()
				running++
				maxRunning = max(maxRunning, running)
				maxAhead = max(maxAhead, i-committed+1)
				mu.Unlock()
				defer func() { mu.Lock(); running--; mu.Unlock() }()
				return i * i, nil
			}, func(i, v int) error {
				if v != i*i {
					t.Errorf("commit %d got %d", i, v)
				}
				got = append(got, i)
				mu.Lock()
				committed = i + 1
				mu.Unlock()
				return nil
			})
			if err != nil || n != tc.n {
				t.Fatalf("inOrder: %d, %v", n, err)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("commit order %v", got)
				}
			}
			if maxRunning > tc.jobs || maxAhead > 2*tc.jobs {
				t.Errorf("%d running at once (limit %d), %d ahead of the commit (limit %d)", maxRunning, tc.jobs, maxAhead, 2*tc.jobs)
			}
		})
	}
}

// TestInOrderConcurrent: jobs work calls really run at once (they wait for
// each other; one at a time would never get past the gate).
func TestInOrderConcurrent(t *testing.T) {
	const jobs = 4
	var gate sync.WaitGroup
	gate.Add(jobs)
	released := make(chan struct{})
	go func() { gate.Wait(); close(released) }()
	_, err := inOrder(context.Background(), 3*jobs, jobs, func(ctx context.Context, i int) (int, error) {
		if i < jobs {
			gate.Done()
			select {
			case <-released:
			case <-time.After(30 * time.Second):
				return 0, errors.New("the first batches were not in flight together")
			}
		}
		return i, nil
	}, func(int, int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
}

// TestInOrderError: a failure in batch k commits exactly 0..k-1 (when
// those finished first), never a later batch even if it finished, cancels
// the work still running, and returns the cause.
func TestInOrderError(t *testing.T) {
	const k, n, jobs = 5, 40, 4
	cause := errors.New("batch 5 failed")
	var mu sync.Mutex
	finished := map[int]bool{}
	earlier := make(chan struct{})
	later := make(chan struct{}) // batch k+3 is running
	cancelled := 0
	var committed []int
	done, err := inOrder(context.Background(), n, jobs, func(ctx context.Context, i int) (int, error) {
		switch {
		case i == k:
			<-earlier // fail only after every earlier batch finished
			<-later   // and while a later one is in flight
			return 0, cause
		case i > k:
			// Later batches: the first ones finish, the rest wait for the
			// cancellation that the failure must send.
			if i <= k+2 {
				break
			}
			if i == k+3 {
				close(later)
			}
			select {
			case <-ctx.Done():
				mu.Lock()
				cancelled++
				mu.Unlock()
				return 0, ctx.Err()
			case <-time.After(30 * time.Second):
				return 0, errors.New("not cancelled after the failure")
			}
		}
		mu.Lock()
		finished[i] = true
		if i < k && len(finished) >= k {
			all := true
			for j := range k {
				all = all && finished[j]
			}
			if all {
				close(earlier)
			}
		}
		mu.Unlock()
		return i, nil
	}, func(i, v int) error {
		committed = append(committed, i)
		return nil
	})
	if !errors.Is(err, cause) {
		t.Fatalf("error %v, want the cause %v", err, cause)
	}
	if done != k || len(committed) != k || committed[k-1] != k-1 {
		t.Fatalf("committed %v (done %d), want batches 0..%d", committed, done, k-1)
	}
	if cancelled == 0 {
		t.Errorf("no running batch saw the cancellation")
	}
}

// TestInOrderCommitError: an error of commit stops everything too.
func TestInOrderCommitError(t *testing.T) {
	stop := errors.New("too many")
	var started sync.Map
	done, err := inOrder(context.Background(), 100, 2, func(ctx context.Context, i int) (int, error) {
		started.Store(i, true)
		return i, nil
	}, func(i, v int) error {
		if i == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || done != 3 {
		t.Fatalf("done %d, %v", done, err)
	}
	if _, ok := started.Load(3 + 2*2 + 1); ok {
		t.Errorf("a batch beyond the window was started after the commit failed")
	}
}

// TestInOrderParentCancelled: a cancelled context stops before any work.
func TestInOrderParentCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done, err := inOrder(ctx, 10, 2, func(ctx context.Context, i int) (int, error) {
		return 0, ctx.Err()
	}, func(int, int) error { return nil })
	if done != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("done %d, %v", done, err)
	}
}
