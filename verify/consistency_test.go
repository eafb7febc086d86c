package verify_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/verify"
)

// treeOf returns a log of n entries and its verified checkpoints by size.
func treeOf(t *testing.T, n int) (*memlog.Log, func(size int64) *verify.Checkpoint) {
	t.Helper()
	l := memlog.New(t)
	for i := range n {
		l.Add([]byte{byte(i)})
	}
	return l, func(size int64) *verify.Checkpoint {
		cp, err := l.Key.VerifyCheckpoint(l.CheckpointAt(size))
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
}

func TestCheckConsistency(t *testing.T) {
	l, at := treeOf(t, 9)
	old, cur := at(4), at(9)
	p, _ := l.ConsistencyProof(context.Background(), 4, 9)
	if err := verify.CheckConsistency(old, cur, p, ""); err != nil {
		t.Fatal(err)
	}
	if err := verify.CheckConsistency(cur, cur, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := verify.ProveConsistent(context.Background(), l, old, cur, "old"); err != nil {
		t.Fatal(err)
	}
	empty := *old
	empty.Size = 0
	if err := verify.ProveConsistent(context.Background(), l, &empty, cur, "empty"); err != nil {
		t.Fatalf("empty tree: %v", err)
	}
	var se *verify.SecurityError
	bad := [][]byte{append([]byte(nil), p[0]...)}
	bad[0][0] ^= 1
	for name, c := range map[string]func() error{
		"rollback":   func() error { return verify.CheckConsistency(cur, old, nil, "") },
		"bad proof":  func() error { return verify.CheckConsistency(old, cur, append(bad, p[1:]...), "") },
		"no proof":   func() error { return verify.CheckConsistency(old, cur, nil, "") },
		"huge proof": func() error { return verify.CheckConsistency(old, cur, make([][]byte, verify.MaxProofHashes+1), "") },
		"fork same size": func() error {
			o := *cur
			o.Root = old.Root
			return verify.CheckConsistency(&o, cur, nil, "")
		},
	} {
		if err := c(); !errors.As(err, &se) || len(se.Old) == 0 || len(se.New) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestConsistencyDedupesAndOrders: equal tree heads are proven once, under
// the name of the first added; one proof per distinct smaller size; a
// check that needs no proof and fails asks nothing.
func TestConsistencyDedupesAndOrders(t *testing.T) {
	l, at := treeOf(t, 12)
	var c verify.Consistency
	c.Add(at(3), "first")
	c.Add(at(3), "second") // the same head
	c.Add(at(7), "seven")
	c.Add(at(12), "current")
	c.Add(nil, "none")
	if c.Len() != 3 {
		t.Fatalf("%d checks, want 3", c.Len())
	}
	if err := c.Prove(context.Background(), l, at(12), 4); err != nil {
		t.Fatal(err)
	}
	if n := l.Count("consistency"); n != 2 {
		t.Fatalf("%d proofs, want 2 (sizes 3 and 7)", n)
	}
	// A rollback needs no proof: nothing more is asked, and its check
	// comes before the proofs whatever the order of Add.
	var r verify.Consistency
	r.Add(at(5), "five")
	r.Add(at(12), "the larger one")
	l.ConsistencyHook = func(p [][]byte) [][]byte { p[0][0] ^= 1; return p }
	err := r.Prove(context.Background(), l, at(9), 4)
	var se *verify.SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "ROLLBACK: the larger one") {
		t.Fatalf("err %v, want the rollback", err)
	}
	if n := l.Count("consistency"); n != 2 {
		t.Fatalf("%d proofs, want none more", n)
	}
	// With every proof bad, the first in the order of Add is the verdict.
	var o verify.Consistency
	o.Add(at(8), "eight")
	o.Add(at(2), "two")
	err = o.Prove(context.Background(), l, at(12), 4)
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "eight ") {
		t.Fatalf("err %v, want the first added", err)
	}
}

// failOne fails the proof from size bad; the others answer.
type failOne struct {
	*memlog.Log
	bad   int64
	calls atomic.Int32
}

func (f *failOne) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	f.calls.Add(1)
	if first == f.bad {
		return nil, errors.New("502 Bad Gateway")
	}
	return f.Log.ConsistencyProof(ctx, first, last)
}

// TestConsistencyContradictionOutweighsUnavailable: a proof that could not
// be fetched is a *LogUnavailableError, unless a proof that did arrive
// shows the log contradicting itself.
func TestConsistencyContradictionOutweighsUnavailable(t *testing.T) {
	l, at := treeOf(t, 10)
	f := &failOne{Log: l, bad: 4}
	var c verify.Consistency
	c.Add(at(4), "four")
	err := c.Prove(context.Background(), f, at(10), 1)
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) || lu.Op != "consistency proof 4→10" {
		t.Fatalf("err %v", err)
	}
	// The same failure with a fork at size 4 among the checks that need
	// no proof (the same size, another root): the fork is the verdict.
	fork := l.Fork(t, 3)
	fork.Add([]byte("evil"))
	forked, err := l.Key.VerifyCheckpoint(fork.CheckpointAt(4))
	if err != nil {
		t.Fatal(err)
	}
	var d verify.Consistency
	d.Add(at(4), "four")
	d.Add(forked, "forked four")
	err = d.Prove(context.Background(), f, at(4), 1)
	var se *verify.SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "forked four") {
		t.Fatalf("err %v, want the fork", err)
	}
}

// gatedFail fails the proof from size bad only once the other proof has
// been answered.
type gatedFail struct {
	*memlog.Log
	bad      int64
	answered chan struct{}
}

func (g *gatedFail) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	if first == g.bad {
		<-g.answered
		return nil, errors.New("502 Bad Gateway")
	}
	defer close(g.answered)
	return g.Log.ConsistencyProof(ctx, first, last)
}

// TestConsistencyArrivedProofsChecked: a proof that arrived before another
// request failed is still checked: a bad one is the verdict.
func TestConsistencyArrivedProofsChecked(t *testing.T) {
	l, at := treeOf(t, 10)
	l.ConsistencyHook = func(p [][]byte) [][]byte { p[0][0] ^= 1; return p }
	g := &gatedFail{Log: l, bad: 6, answered: make(chan struct{})}
	var c verify.Consistency
	c.Add(at(6), "six (unavailable)")
	c.Add(at(3), "three (bad proof)")
	err := c.Prove(context.Background(), g, at(10), 2)
	var se *verify.SecurityError
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "three ") {
		t.Fatalf("err %v, want the bad proof's security error", err)
	}
}
