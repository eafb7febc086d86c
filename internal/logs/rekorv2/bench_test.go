package rekorv2

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Measurements against the local Rekor v2 stack (docs/PERFORMANCE.md).
// They log entries for good, so they run only when asked:
//
//	BINTRANS_BENCH_REKORV2_ADD=64,256,512 BINTRANS_BENCH_REKORV2_N=2048 \
//	  go test -run TestBenchAdd -v ./internal/logs/rekorv2/
//	BINTRANS_BENCH_REKORV2_READ=100000 go test -run TestBenchRead -v ./internal/logs/rekorv2/
//
// with BINTRANS_TEST_REKORV2_* set (scripts/rekor-v2-stack start).

func benchEnv(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("set %s to run this measurement", name)
	}
	return v
}

// addRun logs n fresh entries with inflight adds at a time and reports
// the throughput and latencies.
func addRun(t *testing.T, st *realStack, n, inflight int) (perSec float64, lat []time.Duration, checkpoints int) {
	t.Helper()
	priv := freshKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	entries := make([]*HashedRekord, n)
	for i := range entries {
		var err error
		if entries[i], err = Sign(priv, msgOf(fmt.Sprintf("%x-%d", pub[:8], i))); err != nil {
			t.Fatal(err)
		}
	}
	lat = make([]time.Duration, n)
	sizes := map[uint64]bool{}
	var mu sync.Mutex
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	errs := 0
	start := time.Now()
	for i, e := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			l, err := st.w.Add(context.Background(), e)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			lat[i] = d
			if err != nil {
				if errs++; errs <= 3 {
					t.Errorf("add: %v", err)
				}
				return
			}
			sizes[l.Checkpoint.Size] = true
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if errs > 0 {
		t.Fatalf("%d of %d adds failed", errs, n)
	}
	slices.Sort(lat)
	return float64(n) / el.Seconds(), lat, len(sizes)
}

func pct(lat []time.Duration, p float64) time.Duration {
	return lat[int(p*float64(len(lat)-1))].Round(10 * time.Millisecond)
}

func TestBenchAddThroughput(t *testing.T) {
	levels := benchEnv(t, "BINTRANS_BENCH_REKORV2_ADD")
	n := 2048
	if v := os.Getenv("BINTRANS_BENCH_REKORV2_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, s := range strings.Split(levels, ",") {
		inflight, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || inflight < 1 {
			t.Fatalf("in-flight level %q", s)
		}
		st := newRealStack(t, inflight)
		count := max(n, inflight)
		rate, lat, cps := addRun(t, st, count, inflight)
		t.Logf("in flight %4d: %5d adds, %6.1f entries/s, latency p50 %v p90 %v max %v, %d distinct checkpoints",
			inflight, count, rate, pct(lat, .5), pct(lat, .9), pct(lat, 1), cps)
	}
}

// TestBenchReadEntries reads and verifies the first N entries of the local
// log from its tiles (logging entries first if the log is smaller), as a
// monitor does: every entry bundle checked against the authenticated hash
// tiles, every body parsed, the key compared, the root recomputed.
func TestBenchReadEntries(t *testing.T) {
	n, err := strconv.ParseUint(benchEnv(t, "BINTRANS_BENCH_REKORV2_READ"), 10, 64)
	if err != nil || n == 0 {
		t.Fatal("BINTRANS_BENCH_REKORV2_READ: a number of entries")
	}
	ctx := context.Background()
	st := newRealStack(t, 512)
	cp, err := st.r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size < n {
		missing := int(n - cp.Size)
		t.Logf("the log has %d entries: logging %d more with 512 in flight", cp.Size, missing)
		rate, lat, cps := addRun(t, st, missing, 512)
		t.Logf("filled at %.1f entries/s (p50 %v, p90 %v, max %v, %d checkpoints)", rate, pct(lat, .5), pct(lat, .9), pct(lat, 1), cps)
		for cp.Size < n {
			time.Sleep(200 * time.Millisecond)
			if cp, err = st.r.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	mine := testKey(1).Public().(ed25519.PublicKey)
	for _, jobs := range []int{1, 4, 8, 16} {
		for run := range 2 {
			t0 := time.Now()
			cp, err := st.r.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := st.r.At(cp)
			if err != nil {
				t.Fatal(err)
			}
			var count, parsed, matched uint64
			var bytes int
			for e, err := range tr.Entries(ctx, 0, n, jobs) {
				if err != nil {
					t.Fatal(err)
				}
				count++
				bytes += len(e.Body)
				if b, err := ParseBody(e.Body); err == nil {
					parsed++
					if b.HasKey(mine) {
						matched++
					}
				}
			}
			el := time.Since(t0)
			if count != n || parsed != n {
				t.Fatalf("read %d, parsed %d of %d", count, parsed, n)
			}
			t.Logf("jobs %2d run %d: %d entries (%.1f MB of bodies) read, verified and parsed in %v: %.0f entries/s",
				jobs, run+1, count, float64(bytes)/1e6, el.Round(time.Millisecond), float64(count)/el.Seconds())
		}
	}
	// Consistency between two checkpoints, and inclusion, from tiles (cold
	// trees: every tile fetched and authenticated).
	before, _ := st.r.Checkpoint(ctx)
	addRun(t, st, 256, 256)
	after, err := st.r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	tr, err := st.r.At(after)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tr.ConsistencyProof(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consistency %d -> %d from tiles: %d hashes in %v", before.Size, after.Size, len(p), time.Since(t1).Round(time.Microsecond))
	t2 := time.Now()
	lh, err := tr.LeafHash(ctx, n/2)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := tr.InclusionProof(ctx, n/2, lh)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("inclusion of %d at %d from tiles: %d hashes in %v", n/2, after.Size, len(ip), time.Since(t2).Round(time.Microsecond))
}
