package monitor

import (
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// batchLog wraps the fixture's client: it records each EntriesByUUID batch
// and can fail one batch (the one holding failOn), after every batch
// sorted before it has been answered, while later batches keep going.
type batchLog struct {
	Log
	mu       sync.Mutex
	batches  [][]string // as asked, first uuid sorted
	failOn   string     // a uuid; "" never fails
	before   int        // batches sorted before failOn's
	answered int
	ready    chan struct{} // closed when before batches were answered
	inFlight int
	maxIn    int
}

var errInjected = errors.New("injected: connection reset")

func (b *batchLog) EntriesByUUID(ctx context.Context, uuids []string) (map[string]*rekorv1.Entry, error) {
	b.mu.Lock()
	b.batches = append(b.batches, slices.Clone(uuids))
	b.inFlight++
	b.maxIn = max(b.maxIn, b.inFlight)
	fail := b.failOn != "" && slices.Contains(uuids, b.failOn)
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.inFlight--; b.mu.Unlock() }()
	if fail {
		select {
		case <-b.ready:
		case <-time.After(30 * time.Second):
			return nil, errors.New("the batches before the failing one were never asked for")
		}
		return nil, errInjected
	}
	m, err := b.Log.EntriesByUUID(ctx, uuids)
	if err == nil && b.failOn != "" && uuids[0] < b.failOn {
		b.mu.Lock()
		b.answered++
		if b.answered == b.before {
			close(b.ready)
		}
		b.mu.Unlock()
	}
	return m, err
}

// sortedUUIDs are the fixture's entry UUIDs in the order the monitor
// batches them.
func (f *fixture) sortedUUIDs() []string {
	var u []string
	for _, s := range f.sigs {
		u = append(u, f.log.UUID(s.body))
	}
	sort.Strings(u)
	return u
}

func (f *fixture) sigsOf(uuids []string) []signed {
	want := map[string]bool{}
	for _, u := range uuids {
		want[u] = true
	}
	var out []signed
	for _, s := range f.sigs {
		if want[f.log.UUID(s.body)] {
			out = append(out, s)
		}
	}
	return out
}

// Concurrent batches: every concurrency gives the same report, entries in
// log-index order, one request per MaxBatch entries, never more than the
// limit in flight.
func TestMonitorConcurrentFetch(t *testing.T) {
	f := newFixture(t, 45)
	var first []Entry
	for _, conc := range []int{1, 3, 64} {
		bl := &batchLog{Log: f.c}
		o := f.opts()
		o.State, o.Log, o.Concurrency = nil, bl, conc
		before := f.log.Requests(fakelog.EndpointRetrieve)
		rep := f.run(o)
		checkEntries(t, rep.Entries, f.sigs)
		if got := f.log.Requests(fakelog.EndpointRetrieve) - before; got != 5 || len(bl.batches) != 5 {
			t.Errorf("concurrency %d: %d retrieve requests in %d batches, want 5", conc, got, len(bl.batches))
		}
		if bl.maxIn > conc {
			t.Errorf("concurrency %d: %d batches in flight", conc, bl.maxIn)
		}
		if rep.Stats.Fetched != 45 || rep.Incomplete {
			t.Errorf("concurrency %d: fetched %d incomplete %v", conc, rep.Stats.Fetched, rep.Incomplete)
		}
		for i := range rep.Entries {
			rep.Entries[i].FirstSeen = "" // the run's clock
		}
		if first == nil {
			first = rep.Entries
		} else if !slices.Equal(first, rep.Entries) {
			t.Errorf("concurrency %d: another listing than with 1", conc)
		}
	}
}

// A failure in batch k: the run reports and stores exactly batches 0..k-1
// (although later batches were answered), says it is incomplete and
// returns the error; the next run fetches and reports only the rest.
func TestMonitorFailureKeepsPrefix(t *testing.T) {
	const n, k = 57, 3 // 6 batches, the 4th fails
	f := newFixture(t, n)
	uuids := f.sortedUUIDs()
	bl := &batchLog{Log: f.c, failOn: uuids[k*MaxBatch+4], before: k, ready: make(chan struct{})}
	o := f.opts()
	o.Log, o.Concurrency = bl, 4
	rep, err := Run(context.Background(), o)
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) || !errors.Is(err, errInjected) {
		t.Fatalf("run with a failing batch: %v", err)
	}
	if rep == nil || !rep.Incomplete || rep.Remaining != n-k*MaxBatch {
		t.Fatalf("report %+v", rep)
	}
	prefix := uuids[:k*MaxBatch]
	checkEntries(t, rep.Entries, f.sigsOf(prefix))
	if rep.New != k*MaxBatch || rep.Total != k*MaxBatch || rep.Current == nil {
		t.Errorf("new %d total %d current %v", rep.New, rep.Total, rep.Current)
	}
	answeredLater := 0
	for _, b := range bl.batches {
		if b[0] > bl.failOn {
			answeredLater++
		}
	}
	if answeredLater == 0 {
		t.Logf("no batch after the failing one was asked for (the prefix check is weaker)")
	}
	// The state holds the prefix, with the checkpoint.
	st, err := loadState(f.dir.Path(stateName(f.lk.ID())), f.lk.ID())
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, e := range st.Entries {
		stored = append(stored, e.UUID)
	}
	sort.Strings(stored)
	if !slices.Equal(stored, prefix) || st.Checkpoint != rep.Current.Note {
		t.Errorf("state: %d entries (want the %d of the prefix), checkpoint stored: %v", len(stored), len(prefix), st.Checkpoint == rep.Current.Note)
	}

	// The next run: the rest, and only the rest.
	next := f.run(f.opts())
	checkEntries(t, next.Entries, f.sigsOf(uuids[k*MaxBatch:]))
	if next.New != n-k*MaxBatch || next.Total != n || next.Incomplete || next.Previous == nil || next.Previous.Size != rep.Current.Size {
		t.Errorf("next run: new %d total %d incomplete %v previous %v", next.New, next.Total, next.Incomplete, next.Previous)
	}
}

// A failure in the first batch stores nothing new but the proven
// checkpoint; an interrupted run stores nothing at all.
func TestMonitorFailureFirstBatchAndInterrupt(t *testing.T) {
	f := newFixture(t, 25)
	uuids := f.sortedUUIDs()
	bl := &batchLog{Log: f.c, failOn: uuids[0], ready: make(chan struct{})}
	close(bl.ready)
	o := f.opts()
	o.Log = bl
	rep, err := Run(context.Background(), o)
	if !errors.Is(err, errInjected) || rep == nil || !rep.Incomplete || len(rep.Entries) != 0 || rep.Remaining != 25 {
		t.Fatalf("first batch fails: %v, %+v", err, rep)
	}
	path := f.dir.Path(stateName(f.lk.ID()))
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// Interrupted mid-fetch: nothing is stored, no report.
	ctx, cancel := context.WithCancel(context.Background())
	il := &interruptLog{Log: f.c, cancel: cancel}
	o.Log = il
	rep, err = Run(ctx, o)
	if !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("interrupted run: %v, %v", err, rep)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Errorf("an interrupted run changed the state")
	}
	if rep := f.run(f.opts()); rep.New != 25 {
		t.Errorf("after the failures: new %d, want 25", rep.New)
	}
}

// interruptLog cancels the run's context in its second batch.
type interruptLog struct {
	Log
	cancel func()
	mu     sync.Mutex
	calls  int
}

func (l *interruptLog) EntriesByUUID(ctx context.Context, uuids []string) (map[string]*rekorv1.Entry, error) {
	l.mu.Lock()
	l.calls++
	c := l.calls
	l.mu.Unlock()
	if c == 2 {
		l.cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return l.Log.EntriesByUUID(ctx, uuids)
}

// A security error found after a fetch failure wins: the log's
// inconsistency is the news, and nothing is stored.
func TestMonitorFailureThenFork(t *testing.T) {
	f := newFixture(t, 10)
	f.run(f.opts())
	f.add(20)
	path := f.dir.Path(stateName(f.lk.ID()))
	before, _ := os.ReadFile(path)
	f.log.Fork(5)
	uuids := f.sortedUUIDs()
	bl := &batchLog{Log: f.c, failOn: uuids[len(uuids)-1], ready: make(chan struct{})}
	close(bl.ready)
	o := f.opts()
	o.Log = bl
	_, err := Run(context.Background(), o)
	var sec *verify.SecurityError
	if !errors.As(err, &sec) || !strings.Contains(sec.Error(), "SECURITY ERROR") {
		t.Fatalf("fork after a fetch failure: %v", err)
	}
	if after, _ := os.ReadFile(path); string(before) != string(after) {
		t.Errorf("the state changed")
	}
}

// growingLog appends an entry (of the monitored key, hidden from the key
// search) just before it answers the second Checkpoint call of a run: the
// log grew between the tail's checkpoint and the final one.
type growingLog struct {
	*hidingIndex
	f     *fixture
	calls int
	grow  bool
	added signed
}

func (g *growingLog) Checkpoint(ctx context.Context) ([]byte, error) {
	g.calls++
	if g.grow && g.calls == 2 {
		g.added = g.f.key.sign(g.f.t, randSHA())
		g.hide[rekorv1.LeafHash(g.added.body)] = true
		g.f.log.Add(g.added.body)
		g.grow = false
	}
	return g.hidingIndex.Checkpoint(ctx)
}

// An entry appended while a --tail run works lies between the tail's
// tree and the stored checkpoint: the next --tail run must still read it.
func TestMonitorTailGap(t *testing.T) {
	f := newFixture(t, 12)
	g := &growingLog{hidingIndex: &hidingIndex{Client: f.c, hide: map[string]bool{}}, f: f, grow: true}
	o := f.opts()
	o.Log, o.Tail = g, true
	first := f.run(o)
	if first.New != 12 || len(first.Findings) != 0 || first.Current.Size != f.log.Size() || first.Stats.Tailed != f.log.Size()-1 {
		t.Fatalf("first run: new %d findings %v size %d tailed %d", first.New, first.Findings, first.Current.Size, first.Stats.Tailed)
	}
	st, err := loadState(f.dir.Path(stateName(f.lk.ID())), f.lk.ID())
	if err != nil || st.TailedSize != f.log.Size()-1 || first.TailedSize != st.TailedSize ||
		first.Tail == nil || *first.Tail != (TailSpan{From: 0, To: f.log.Size() - 1, Proven: true}) {
		t.Fatalf("stored tailed_size %d (want %d), report %+v %d, %v", st.TailedSize, f.log.Size()-1, first.Tail, first.TailedSize, err)
	}
	g.calls = 0
	next := f.run(o)
	if next.New != 1 || len(next.Findings) != 1 || next.Findings[0].Kind != FindingUnindexed || next.Findings[0].UUID != f.log.UUID(g.added.body) {
		t.Fatalf("next run: new %d findings %+v", next.New, next.Findings)
	}
	if next.Tail == nil || *next.Tail != (TailSpan{From: f.log.Size() - 1, To: f.log.Size(), Proven: true}) || next.TailedSize != f.log.Size() {
		t.Errorf("next run read %+v, tailed size %d", next.Tail, next.TailedSize)
	}
}
