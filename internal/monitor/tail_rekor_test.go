package monitor

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// appendingLog uploads one more signature of the monitored key to the real
// log the first time the monitor reads by index: after the tail took its
// checkpoint, before the run's final one.
type appendingLog struct {
	*rekorv1.Client
	t     *testing.T
	k     key
	once  sync.Once
	added *rekorv1.Entry
}

func (a *appendingLog) EntriesByIndex(ctx context.Context, idx []int64) (map[int64]*rekorv1.Entry, error) {
	a.once.Do(func() {
		msg := randSHA()
		s := a.k.sign(a.t, msg)
		e, err := a.Client.Upload(ctx, s.t, a.k.pub.File(), []byte(msg))
		if err != nil {
			a.t.Errorf("upload during the run: %v", err)
			return
		}
		a.added = e
	})
	return a.Client.EntriesByIndex(ctx, idx)
}

// The real Rekor (a shared stack: other tests append at the same time, so
// assertions are by key and by span, never by tree size): a --tail run
// proves every leaf it read against the log's real root; an entry
// appended while it runs lies beyond its span and is read by the next
// --tail run, which starts exactly where this one stopped, even after a run
// without --tail in between.
func TestMonitorTailRealRekor(t *testing.T) {
	url, keyPath := testenv.Rekor(t)
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := rekorv1.ParseLogKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := httpclient.New(httpclient.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rekorv1.New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	for range 3 {
		msg := randSHA()
		if _, err := c.Upload(context.Background(), k.sign(t, msg).t, k.pub.File(), []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexed(t, c, k, 3)
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	al := &appendingLog{Client: c, t: t, k: k}
	o := Options{Keys: []verify.PublicKey{k.pub}, LogKey: lk, Log: al, LogURL: url, State: dir, Tail: true}
	t0 := time.Now()
	first, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if first.Tail == nil || !first.Tail.Proven || first.Tail.From != 0 || first.TailedSize != first.Tail.To || len(first.Findings) != 0 || first.New != 3 {
		t.Fatalf("first --tail run: span %+v tailed %d new %d findings %v", first.Tail, first.TailedSize, first.New, first.Findings)
	}
	if al.added == nil || al.added.LogIndex < first.Tail.To {
		t.Fatalf("the entry appended during the run (%+v) is not beyond the span %+v", al.added, first.Tail)
	}
	t.Logf("first --tail run: %d indexes read and proven in %v", first.Tail.To, time.Since(t0).Round(time.Millisecond))
	waitIndexed(t, c, k, 4)

	// A run without --tail reports the new entry (the key search lists
	// it) but reads nothing by index.
	o.Tail, o.Log = false, c
	plain, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if plain.New != 1 || plain.Tail != nil || plain.TailedSize != first.Tail.To {
		t.Fatalf("run without --tail: new %d span %+v tailed %d", plain.New, plain.Tail, plain.TailedSize)
	}
	// The next --tail run starts where the first one stopped.
	o.Tail = true
	next, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if next.Tail == nil || !next.Tail.Proven || next.Tail.From != first.Tail.To || next.Tail.To <= al.added.LogIndex || len(next.Findings) != 0 {
		t.Fatalf("second --tail run: span %+v (first %+v, appended at %d), findings %v", next.Tail, first.Tail, al.added.LogIndex, next.Findings)
	}
	t.Logf("second --tail run: %s", fmt.Sprintf("%d..%d", next.Tail.From, next.Tail.To-1))
}

func waitIndexed(t *testing.T, c *rekorv1.Client, k key, n int) {
	t.Helper()
	for range 100 {
		u, err := c.SearchByPublicKey(context.Background(), k.pub.File())
		if err != nil {
			t.Fatal(err)
		}
		if len(u) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the log's index did not list %d entries of the key", n)
}
